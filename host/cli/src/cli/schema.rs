//! `segfn schema FUNCTION`: the function's settings in Segment's settings format, from
//! the schema the function exports (`segfn_sdk::export!(F, schema)`).

use super::build::TargetDirArg;
use super::run::load_function;
use anyhow::Context as _;
use segfn::schema::{SegmentSettings, segment_settings};
use segfn_engine::{Limits, LoadedFunction};
use segfn_sdk::abi::Description;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub(crate) struct SchemaArgs {
    /// A .wasm file, or a function crate directory (built first).
    function: PathBuf,
    /// Leave out `default`, which Segment's Public API (FunctionSettingV1) does not take,
    /// so the output can be sent as a function's `settings` as it is.
    #[arg(long)]
    public_api: bool,
    /// Print the settings' JSON Schema as the function exports it instead.
    #[arg(long, conflicts_with = "public_api")]
    json_schema: bool,
    #[command(flatten)]
    target: TargetDirArg,
}

pub(crate) async fn run(args: SchemaArgs) -> anyhow::Result<ExitCode> {
    let (_, description, settings) = describe(&args.function, &args.target).await?;
    let value = if args.json_schema {
        description.settings
    } else {
        let mut value = serde_json::to_value(&settings.settings)?;
        if args.public_api {
            for setting in value.as_array_mut().into_iter().flatten() {
                if let Some(setting) = setting.as_object_mut() {
                    setting.remove("default");
                }
            }
        }
        value
    };
    super::write_stdout(&(serde_json::to_string_pretty(&value)? + "\n"))?;
    Ok(ExitCode::SUCCESS)
}

/// Loads (building a crate directory first) and describes a function; says on stderr
/// what Segment's settings format cannot carry exactly.
pub(crate) async fn describe(
    path: &Path,
    target: &TargetDirArg,
) -> anyhow::Result<(LoadedFunction, Description, SegmentSettings)> {
    let function = load_function(path, target, Limits::default().deadline).await?;
    let description = function
        .describe()
        .await
        .with_context(|| format!("describing {}", path.display()))?;
    let settings = segment_settings(&description.settings)
        .with_context(|| format!("the settings of {}", path.display()))?;
    for warning in &settings.warnings {
        eprintln!("segfn: warning: {warning}");
    }
    Ok((function, description, settings))
}
