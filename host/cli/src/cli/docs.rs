//! `segfn docs FUNCTION`: the integration's documentation page in Markdown, after
//! Segment's partner destination template, from the function's settings schema and the
//! calls it handles.

use super::build::TargetDirArg;
use super::run::read_settings;
use anyhow::Context as _;
use segfn::docs::{Page, display_name, render};
use segfn_engine::describe::sample_settings;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub(crate) struct DocsArgs {
    /// A .wasm file, or a function crate directory (built first).
    function: PathBuf,
    /// The integration's display name (default: from the crate's name).
    #[arg(long)]
    name: Option<String>,
    /// Who maintains the integration ("This destination is maintained by ...").
    #[arg(long, value_name = "NAME")]
    maintainer: Option<String>,
    /// The maintainer's support email address.
    #[arg(long, value_name = "ADDRESS")]
    support_email: Option<String>,
    /// Settings to run the sample events with, which find the calls the function
    /// handles (default: a placeholder for each required setting).
    #[arg(long, short, value_name = "FILE")]
    settings: Option<PathBuf>,
    #[command(flatten)]
    target: TargetDirArg,
}

pub(crate) async fn run(args: DocsArgs) -> anyhow::Result<ExitCode> {
    let (function, description, settings) =
        super::schema::describe(&args.function, &args.target).await?;
    let probe_settings = match &args.settings {
        Some(path) => read_settings(Some(path))?,
        None => sample_settings(&description.settings),
    };
    let handled = function
        .handled_event_types(&probe_settings)
        .await
        .with_context(|| format!("finding the calls {} handles", args.function.display()))?;
    let source = function
        .handles_requests(&probe_settings)
        .await
        .with_context(|| {
            format!(
                "finding whether {} is a source function",
                args.function.display()
            )
        })?;
    let page = Page {
        name: args.name.unwrap_or_else(|| display_name(&description.name)),
        introduction: description.description.clone(),
        maintainer: args.maintainer,
        support_email: args.support_email,
        settings: &settings.settings,
        handled: &handled,
        source,
    };
    super::write_stdout(&render(&page))?;
    Ok(ExitCode::SUCCESS)
}
