//! `segfn status` and `segfn dlq list|show|retry|purge`: the durable queue's figures
//! and its dead letters, from a running server's admin API (`--server`) or, when no
//! server has it open, from the store file (`--store`, or `--config`'s).

use super::UsageError;
use anyhow::{Context as _, bail};
use segfn_serve::admin::{self, AdminRequest};
use segfn_serve::{ServeConfig, StoreLocation};
use serde_json::Value;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Where the queue is.
#[derive(Debug, clap::Args)]
pub(crate) struct Target {
    /// A running `segfn serve`'s base URL (e.g. http://127.0.0.1:8080); needs its
    /// admin_token.
    #[arg(long, value_name = "URL", conflicts_with_all = ["store", "config"])]
    server: Option<String>,
    /// The server's admin_token, for --server.
    #[arg(
        long,
        env = "SEGFN_ADMIN_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    admin_token: Option<String>,
    /// The store: a file no server has open, or a postgres:// database (servers may
    /// be running; better in $SEGFN_STORE than on a command line).
    #[arg(
        long,
        value_name = "FILE|URL",
        conflicts_with = "config",
        env = "SEGFN_STORE",
        hide_env_values = true
    )]
    store: Option<StoreLocation>,
    /// Or: the server's configuration file, for its store.
    #[arg(long, short, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print the answer as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    target: Target,
}

#[derive(Debug, clap::Args)]
pub(crate) struct DlqArgs {
    #[command(subcommand)]
    command: DlqCommand,
}

/// Which dead letters: one, a tenant's, or all (one of them is required).
#[derive(Debug, clap::Args)]
struct Selection {
    /// A dead letter's id.
    id: Option<u64>,
    /// A tenant's dead letters.
    #[arg(long)]
    tenant: Option<String>,
    /// Every dead letter.
    #[arg(long, conflicts_with_all = ["id", "tenant"])]
    all: bool,
}

impl Selection {
    fn pick(self) -> anyhow::Result<(Option<String>, Option<u64>)> {
        if self.id.is_none() && self.tenant.is_none() && !self.all {
            return Err(
                UsageError("name a dead letter's ID, --tenant NAME or --all".into()).into(),
            );
        }
        Ok((self.tenant, self.id))
    }
}

#[derive(Debug, clap::Subcommand)]
enum DlqCommand {
    /// List dead letters, oldest first.
    List {
        /// Only this tenant's.
        #[arg(long)]
        tenant: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = admin::DEFAULT_LIST_LIMIT)]
        limit: usize,
        #[command(flatten)]
        target: Target,
    },
    /// Show one dead letter: its event, attempts and last report.
    Show {
        /// Its id.
        id: u64,
        #[command(flatten)]
        target: Target,
    },
    /// Queue dead letters again, with a fresh retry budget.
    Retry {
        #[command(flatten)]
        which: Selection,
        #[command(flatten)]
        target: Target,
    },
    /// Delete dead letters.
    Purge {
        #[command(flatten)]
        which: Selection,
        #[command(flatten)]
        target: Target,
    },
}

/// Sends `request` to the server, or answers it from the store file.
async fn ask(target: &Target, request: AdminRequest) -> anyhow::Result<Value> {
    if let Some(server) = &target.server {
        let Some(token) = &target.admin_token else {
            return Err(UsageError(
                "--server needs the server's admin_token: --admin-token or $SEGFN_ADMIN_TOKEN"
                    .into(),
            )
            .into());
        };
        let url = format!(
            "{}{}",
            server.trim_end_matches('/'),
            segfn_serve::ADMIN_PATH
        );
        let response = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?
            .post(&url)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&request)?)
            .send()
            .await
            .with_context(|| format!("reaching {url}"))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .with_context(|| format!("reading the answer of {url}"))?;
        let body: Value = serde_json::from_slice(&bytes)
            .with_context(|| format!("{url} answered {status} with something else than JSON"))?;
        if !status.is_success() {
            bail!(
                "{url} answered {status}: {}",
                body["message"].as_str().unwrap_or("")
            );
        }
        return Ok(body);
    }
    let (location, window, max_entries) = match (&target.store, &target.config) {
        (Some(store), _) => {
            let d = segfn_serve::config::ServerConfig::default();
            (store.clone(), d.dedupe_window_secs, d.max_dedupe_entries)
        }
        (None, Some(config)) => {
            let c = ServeConfig::load(config)?;
            (
                c.server.store,
                c.server.dedupe_window_secs,
                c.server.max_dedupe_entries,
            )
        }
        (None, None) => {
            return Err(UsageError(
                "give --server URL (a running segfn serve) or --store FILE|URL / --config FILE"
                    .into(),
            )
            .into());
        }
    };
    if let StoreLocation::File(path) = &location
        && !path.exists()
    {
        bail!("{}: no such store", path.display());
    }
    let opened = location
        .open(Duration::from_secs(window), max_entries, 2)
        .await
        .with_context(|| match &location {
            StoreLocation::File(path) => format!(
                "opening {} (while segfn serve runs, it holds the file: use --server URL)",
                path.display()
            ),
            StoreLocation::Postgres(_) => format!("opening {}", location.describe()),
        })?;
    Ok(admin::answer(opened.as_ref(), request).await?)
}

fn seconds(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s => format!("{}h", s / 3600),
    }
}

fn print(
    target: &Target,
    answer: &Value,
    human: impl FnOnce(&Value) -> String,
) -> anyhow::Result<ExitCode> {
    let text = if target.json {
        format!("{}\n", serde_json::to_string_pretty(answer)?)
    } else {
        human(answer)
    };
    super::write_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let answer = ask(&args.target, AdminRequest::Status).await?;
    print(&args.target, &answer, |answer| {
        let mut out = format!(
            "{:<20} {:>8} {:>8} {:>8} {:>8} {:>6} {:>9} {:>9} {:>11}\n",
            "TENANT",
            "PENDING",
            "RETRYING",
            "RUNNING",
            "OLDEST",
            "DEAD",
            "ATTEMPTS",
            "COMPLETED",
            "REDELIVERED"
        );
        for t in answer["tenants"].as_array().into_iter().flatten() {
            let n = |k: &str| t[k].as_u64().unwrap_or(0);
            let oldest = t["oldest_pending_ms"]
                .as_u64()
                .map_or("-".into(), |ms| seconds(ms / 1000));
            let _ = writeln!(
                out,
                "{:<20} {:>8} {:>8} {:>8} {:>8} {:>6} {:>9} {:>9} {:>11}",
                t["tenant"].as_str().unwrap_or(""),
                n("pending"),
                n("retrying"),
                n("running"),
                oldest,
                n("dead_letters"),
                n("attempts"),
                n("completed"),
                n("redelivered"),
            );
        }
        out
    })
}

pub(crate) async fn dlq(args: DlqArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        DlqCommand::List {
            tenant,
            limit,
            target,
        } => {
            let answer = ask(
                &target,
                AdminRequest::List {
                    tenant,
                    limit: Some(limit),
                },
            )
            .await?;
            print(&target, &answer, |answer| {
                let letters = answer["dead_letters"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                if letters.is_empty() {
                    return "no dead letters\n".into();
                }
                let mut out = format!(
                    "{:>8} {:<16} {:<24} {:<9} {:>8} {:>8}  LAST\n",
                    "ID", "TENANT", "MESSAGE ID", "TYPE", "ATTEMPTS", "DEAD FOR"
                );
                for l in letters {
                    let last = &l["last"];
                    let _ = writeln!(
                        out,
                        "{:>8} {:<16} {:<24} {:<9} {:>8} {:>8}  {}: {}",
                        l["id"],
                        l["tenant"].as_str().unwrap_or(""),
                        l["message_id"].as_str().unwrap_or(""),
                        l["type"].as_str().unwrap_or(""),
                        l["attempts"],
                        seconds(l["dead_for_secs"].as_u64().unwrap_or(0)),
                        last["outcome"].as_str().unwrap_or("-"),
                        last["reason"].as_str().unwrap_or(""),
                    );
                }
                out
            })
        }
        DlqCommand::Show { id, target } => {
            let answer = ask(&target, AdminRequest::Show { id }).await?;
            super::write_stdout(&format!("{}\n", serde_json::to_string_pretty(&answer)?))?;
            Ok(ExitCode::SUCCESS)
        }
        DlqCommand::Retry { which, target } => {
            let (tenant, id) = which.pick()?;
            let answer = ask(&target, AdminRequest::Retry { tenant, id }).await?;
            print(&target, &answer, |a| {
                format!("queued {} dead letter(s) again\n", a["retried"])
            })
        }
        DlqCommand::Purge { which, target } => {
            let (tenant, id) = which.pick()?;
            let answer = ask(&target, AdminRequest::Purge { tenant, id }).await?;
            print(&target, &answer, |a| {
                format!("deleted {} dead letter(s)\n", a["purged"])
            })
        }
    }
}
