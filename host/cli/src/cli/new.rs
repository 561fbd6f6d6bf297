//! `segfn new DIR [--template destination|insert|batch]`.

use segfn::scaffold::{self, NewOptions, Template};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  segfn new acme-destination
  segfn new functions/acme-bulk --template batch
  segfn new my-filter --template insert

Inside a Cargo workspace the crate is added to its members; on its own it gets the
recommended release profile. Then: cd DIR && cargo test && segfn run . --event events/track.json --settings settings.json")]
pub(crate) struct NewArgs {
    /// Directory of the new crate (must not exist or be empty); its last part is the
    /// crate's name unless --name is given.
    dir: PathBuf,
    /// What to start from: a destination (one request per event), an insert function
    /// (drops or changes events before a destination), a batch destination (bulk
    /// requests), or a source function (a third party's webhook into Segment calls).
    #[arg(long, short, value_enum, default_value_t = TemplateArg::Destination)]
    template: TemplateArg,
    /// The crate's name (default: the directory's name).
    #[arg(long)]
    name: Option<String>,
    /// The segfn-sdk crate to depend on (default: guest-sdk/ of the checkout segfn was
    /// built from).
    #[arg(long, value_name = "PATH")]
    sdk: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum TemplateArg {
    Destination,
    Insert,
    Batch,
    Source,
}

impl From<TemplateArg> for Template {
    fn from(t: TemplateArg) -> Template {
        match t {
            TemplateArg::Destination => Template::Destination,
            TemplateArg::Insert => Template::Insert,
            TemplateArg::Batch => Template::Batch,
            TemplateArg::Source => Template::Source,
        }
    }
}

pub(crate) fn run(args: NewArgs) -> anyhow::Result<ExitCode> {
    let template = Template::from(args.template);
    let created = scaffold::create(&NewOptions {
        dir: args.dir.clone(),
        template,
        name: args.name,
        sdk: args.sdk.unwrap_or_else(scaffold::default_sdk),
    })?;
    let mut out = format!(
        "Created {} ({} template) in {}:\n",
        created.name,
        template.name(),
        created.dir.display()
    );
    for file in &created.files {
        out.push_str(&format!("  {}\n", file.display()));
    }
    if let Some(workspace) = &created.workspace {
        out.push_str(&format!(
            "Added it to the workspace members in {}.\n",
            workspace.display()
        ));
    }
    if let Some(profile) = created.workspace_profile {
        out.push_str(&format!(
            "The workspace has no release profile; Cargo uses only the workspace's, so add the recommended one to {}:\n\n{profile}\n",
            created.workspace.as_ref().map_or(String::new(), |w| w.display().to_string())
        ));
    }
    let dir = args.dir.display();
    let run = template.first_run();
    // The tester page edits events; a source function's webhook is run with --request.
    let dev = if template == Template::Source {
        ""
    } else {
        "  segfn dev .\n"
    };
    out.push_str(&format!(
        "\nNext:\n  cd {dir}\n  cargo test\n  {run}\n{dev}"
    ));
    super::write_stdout(&out)?;
    Ok(ExitCode::SUCCESS)
}
