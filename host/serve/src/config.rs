//! The `segfn serve` configuration file (TOML): server settings and tenants, each with
//! its API key, settings, secrets, allow-list, host mappings, optional shared secret
//! and function.

use segfn_engine::policy::HostMap;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// Server-wide settings.
    #[serde(default)]
    pub server: ServerConfig,
    /// Invocation limits (defaults as `segfn run`).
    #[serde(default)]
    pub limits: LimitsConfig,
    /// The tenants: one per mutual customer.
    #[serde(default, rename = "tenant")]
    pub tenants: Vec<TenantConfig>,
    /// Source functions served as webhook URLs.
    #[serde(default, rename = "source")]
    pub sources: Vec<super::source::config::SourceConfig>,
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: String,
    /// Invocations running at once; more get 429 with `Retry-After`.
    pub max_in_flight: usize,
    /// Largest request body, in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// How long a `messageId` is remembered, in seconds.
    pub dedupe_window_secs: u64,
    /// The store (deduplication window, durable queue, dead letters): a file for the
    /// embedded engine, created when missing, or `postgres://...` for a database
    /// shared by several replicas. By default the user's data directory's
    /// `segfn/store.redb` ([`super::store::location::StoreLocation::default_file`]).
    pub store: super::store::location::StoreLocation,
    /// Connections to PostgreSQL at most (a `postgres://` store only).
    pub store_connections: usize,
    /// Durable mode: how long past the invocation deadline a claimed event stays
    /// leased; after a crash (or a replica's), its events wait this long to run again.
    pub lease_margin_ms: u64,
    /// Log one JSON object per line instead of human-readable lines.
    pub json_logs: bool,
    /// PEM certificate chain for HTTPS (with `tls_key`).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS.
    pub tls_key: Option<PathBuf>,
    /// Connections open at once. Beyond it, the longest-idle connection (one without a
    /// request in progress) is closed to make room, or the new one is refused.
    pub max_connections: usize,
    /// Time a client has to send a request's headers, from the connection's start or
    /// the end of the previous response: bounds slow headers and idle keep-alives.
    pub header_timeout_ms: u64,
    /// Time a request body has to arrive, once the headers are in.
    pub body_timeout_ms: u64,
    /// Largest request head (request line and headers), in bytes: 431 beyond.
    pub max_header_bytes: usize,
    /// Threads that serve connections, each a single-threaded runtime of its own, the
    /// connections dealt to them in turn; by default one per core; 0 serves them on the
    /// shared multi-thread runtime instead (docs/PERFORMANCE.md, "The runtime's thread
    /// model").
    pub connection_threads: Option<usize>,
    /// Invocations one tenant may run at once (default: all of `max_in_flight` with
    /// one tenant, half of it with several), so a noisy tenant is throttled first.
    pub tenant_max_in_flight: Option<usize>,
    /// `messageId`s remembered per tenant; beyond it the oldest are forgotten early.
    pub max_dedupe_entries: u64,
    /// Durable mode for every tenant (a tenant's own `durable` overrides): deliveries
    /// are committed to the store, answered 202, and run and retried by workers.
    pub durable: bool,
    /// Durable mode: events one tenant may have pending; a delivery beyond it gets 429
    /// (Segment retries it later), so one tenant's backlog cannot fill the disk.
    pub max_queued: u64,
    /// Durable mode: dead letters kept per tenant; every ten minutes the oldest beyond it are
    /// deleted (counted in `segfn_dead_letters_dropped_total`), so a partner down for
    /// days cannot fill the disk with them.
    pub max_dead_letters: u64,
    /// `[server.retry]`: the durable mode's retry schedule.
    pub retry: super::retry::RetryConfig,
    /// Bearer token for `POST /_segfn/admin` (`segfn status`, `segfn dlq`); none: no admin API.
    pub admin_token: Option<String>,
    /// Or: the environment variable holding it (read by `segfn serve`).
    pub admin_token_env: Option<String>,
    /// `[server.traces]`: OpenTelemetry spans sent to a collector; off without an endpoint.
    pub traces: TracesConfig,
}

/// `[server.traces]`: spans for each delivery, invocation and `fetch`, sent over
/// OTLP/HTTP (protobuf) to a collector. Off unless `endpoint` is set; the exporter
/// itself belongs to the binary (`segfn serve`), which also reads the standard
/// `OTEL_EXPORTER_OTLP_HEADERS` for a collector that wants credentials.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TracesConfig {
    /// The collector's OTLP/HTTP address (`http://127.0.0.1:4318`,
    /// `https://host/otlp`), to which `/v1/traces` is added, or its full traces URL.
    pub endpoint: Option<String>,
    /// The spans' `service.name`.
    pub service_name: String,
    /// The share of deliveries traced, from 0.0 to 1.0 (decided per delivery by its
    /// trace id, so a delivery's spans are kept or dropped together).
    pub sample_ratio: f64,
}

impl Default for TracesConfig {
    fn default() -> Self {
        TracesConfig {
            endpoint: None,
            service_name: "segfn".into(),
            sample_ratio: 1.0,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            max_in_flight: 64,
            max_body_bytes: 4 << 20,
            dedupe_window_secs: 24 * 3600,
            store: super::store::location::StoreLocation::default_file(),
            store_connections: 16,
            lease_margin_ms: 30_000,
            json_logs: false,
            tls_cert: None,
            tls_key: None,
            max_connections: 1024,
            header_timeout_ms: 10_000,
            body_timeout_ms: 4_000,
            max_header_bytes: 64 << 10,
            connection_threads: None,
            tenant_max_in_flight: None,
            max_dedupe_entries: 10_000_000,
            durable: false,
            max_queued: 1_000_000,
            max_dead_letters: 10_000,
            retry: super::retry::RetryConfig::default(),
            admin_token: None,
            admin_token_env: None,
            traces: TracesConfig::default(),
        }
    }
}

/// `[limits]`: per-invocation limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Deadline in milliseconds (Segment expects an answer within 5 s).
    pub deadline_ms: u64,
    /// Memory cap in MiB.
    pub memory_mib: usize,
    /// Instruction cap, none by default.
    pub max_instructions: Option<u64>,
    /// Fetches per invocation.
    pub max_fetches: u32,
    /// Largest fetch response body, in KiB.
    pub max_response_kib: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let d = segfn_engine::Limits::default();
        LimitsConfig {
            deadline_ms: d.deadline.as_millis() as u64,
            memory_mib: d.memory_bytes >> 20,
            max_instructions: d.instructions,
            max_fetches: d.fetches,
            max_response_kib: d.response_body_bytes >> 10,
        }
    }
}

impl LimitsConfig {
    /// The engine's limits.
    pub fn limits(&self) -> segfn_engine::Limits {
        segfn_engine::Limits {
            deadline: std::time::Duration::from_millis(self.deadline_ms),
            memory_bytes: self.memory_mib << 20,
            instructions: self.max_instructions,
            fetches: self.max_fetches,
            response_body_bytes: self.max_response_kib << 10,
            ..segfn_engine::Limits::default()
        }
    }
}

/// `[[tenant]]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// Name, for logs and metrics.
    pub name: String,
    /// The API key Segment sends (as Basic auth user name).
    pub api_key: Option<String>,
    /// Or: the environment variable holding it.
    pub api_key_env: Option<String>,
    /// The function's settings for this tenant.
    #[serde(default)]
    pub settings: toml::Table,
    /// Settings that are secret (also: any named like a key, token or password).
    #[serde(default)]
    pub secret_settings: Vec<String>,
    /// Hosts `fetch` may reach (see `--allow-host`).
    #[serde(default)]
    pub allow_hosts: Vec<String>,
    /// Hosts whose requests go to a local server instead, HOST pattern to loopback
    /// TARGET (see `--map-host`): `{ "api.partner.example" = "http://127.0.0.1:9000" }`.
    /// The most specific HOST wins, so the table's order does not matter.
    #[serde(default)]
    pub map_hosts: BTreeMap<String, String>,
    /// Shared secret for `X-Signature` (HMAC-SHA1); when set, unsigned requests are refused.
    pub shared_secret: Option<String>,
    /// Or: the environment variable holding it.
    pub shared_secret_env: Option<String>,
    /// This tenant's own function (`.wasm`), instead of the server's.
    pub function: Option<PathBuf>,
    /// Put the outcome, logs and request trace in responses (for Segment's Event Tester).
    #[serde(default)]
    pub debug_responses: bool,
    /// Invocations this tenant may run at once (overrides `tenant_max_in_flight`).
    pub max_in_flight: Option<usize>,
    /// Settings `X-Segment-Settings` may change; the others keep the configured value.
    /// Absent: every setting may be changed (the header is not signed: see the README).
    pub overridable_settings: Option<Vec<String>>,
    /// What `X-Signature` must cover in a batch.
    #[serde(default)]
    pub batch_signature: BatchSignature,
    /// Durable mode for this tenant (default: the server's `durable`).
    pub durable: Option<bool>,
}

/// What a valid `X-Signature` must cover when a batch arrives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchSignature {
    /// The first event, as Segment signs batches: the other events are not covered, so
    /// anyone holding one signed event can add unsigned ones to it.
    #[default]
    FirstEvent,
    /// The whole body: batches signed only over their first event are refused.
    WholeBody,
}

/// A tenant with its secrets resolved.
#[derive(Debug, Clone)]
pub struct ResolvedTenant {
    /// Name.
    pub name: String,
    /// API key.
    pub api_key: String,
    /// Settings as JSON.
    pub settings: Value,
    /// Declared secret setting names.
    pub secret_settings: Vec<String>,
    /// Allow-list entries.
    pub allow_hosts: Vec<String>,
    /// Host mappings (checked).
    pub map_hosts: HostMap,
    /// Shared secret, if any.
    pub shared_secret: Option<String>,
    /// Own function, if any (relative paths resolved against the config file).
    pub function: Option<PathBuf>,
    /// Debug responses.
    pub debug_responses: bool,
    /// Own in-flight cap, if any.
    pub max_in_flight: Option<usize>,
    /// Settings the header may change (`None`: all).
    pub overridable_settings: Option<Vec<String>>,
    /// Batch signature policy.
    pub batch_signature: BatchSignature,
    /// Durable mode (`None`: the server's).
    pub durable: Option<bool>,
}

/// A configuration that cannot be used; the message names the fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Unreadable file.
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    /// Not valid TOML or unknown keys.
    #[error("{0}: {1}")]
    Parse(PathBuf, String),
    /// A tenant is incomplete or inconsistent.
    #[error("tenant {tenant:?}: {problem}")]
    Tenant {
        /// Which.
        tenant: String,
        /// What is wrong.
        problem: String,
    },
    /// No tenants.
    #[error("no tenants: add a [[tenant]] with a name and api_key (or api_key_env)")]
    NoTenants,
    /// A source is incomplete or inconsistent.
    #[error("source {name:?}: {problem}")]
    Source {
        /// Which.
        name: String,
        /// What is wrong.
        problem: String,
    },
}

/// A TOML error as "line N: message", without the source excerpt toml prints: the
/// offending line may hold an inline API key or shared secret.
fn parse_problem(text: &str, error: &toml::de::Error) -> String {
    match error.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {}", error.message())
        }
        None => error.message().to_owned(),
    }
}

/// Beyond this many connection threads a typo is more likely than a machine.
const MAX_CONNECTION_THREADS: usize = 256;

impl ServeConfig {
    /// Reads a configuration file.
    pub fn load(path: &Path) -> Result<ServeConfig, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| ConfigError::Read(path.to_owned(), e))?;
        let mut config: ServeConfig = toml::from_str(&text)
            .map_err(|e| ConfigError::Parse(path.to_owned(), parse_problem(&text, &e)))?;
        // Paths in the file are relative to the file.
        let base = path.parent().unwrap_or(Path::new("."));
        for tenant in &mut config.tenants {
            if let Some(f) = &tenant.function {
                tenant.function = Some(base.join(f));
            }
        }
        for source in &mut config.sources {
            if let Some(f) = &source.function {
                source.function = Some(base.join(f));
            }
        }
        if let super::store::location::StoreLocation::File(store) = &mut config.server.store
            && store.is_relative()
        {
            *store = base.join(&*store);
        }
        if let Some(n) = config.server.connection_threads
            && n > MAX_CONNECTION_THREADS
        {
            return Err(ConfigError::Parse(
                path.to_owned(),
                format!(
                    "connection_threads = {n}: at most {MAX_CONNECTION_THREADS}; leave it out for one thread per core, or set 0 for the shared runtime"
                ),
            ));
        }
        Ok(config)
    }

    /// The sources with secrets read from the environment, checked for completeness
    /// and for tokens used twice.
    pub fn resolve_sources(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Vec<super::source::config::ResolvedSource>, ConfigError> {
        let mut out: Vec<super::source::config::ResolvedSource> = Vec::new();
        for s in &self.sources {
            let problem = |p: String| ConfigError::Source {
                name: s.name.clone(),
                problem: p,
            };
            let resolved = s.resolve(&env).map_err(problem)?;
            if out
                .iter()
                .any(|o| o.token == resolved.token || o.name == resolved.name)
            {
                return Err(problem(
                    "another source has the same name or token: each needs its own".into(),
                ));
            }
            out.push(resolved);
        }
        Ok(out)
    }

    /// The tenants with secrets read from the environment, checked for completeness
    /// and for keys used twice.
    pub fn resolve_tenants(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Vec<ResolvedTenant>, ConfigError> {
        if self.tenants.is_empty() && self.sources.is_empty() {
            return Err(ConfigError::NoTenants);
        }
        let mut out: Vec<ResolvedTenant> = Vec::new();
        for t in &self.tenants {
            let problem = |p: String| ConfigError::Tenant {
                tenant: t.name.clone(),
                problem: p,
            };
            if t.name.is_empty() {
                return Err(problem("a tenant needs a name".into()));
            }
            let api_key =
                super::resolve::required_secret(&t.api_key, &t.api_key_env, "api_key", &env)
                    .map_err(problem)?;
            let shared_secret = super::resolve::secret(
                &t.shared_secret,
                &t.shared_secret_env,
                "shared_secret",
                &env,
            )
            .map_err(problem)?;
            if out.iter().any(|o| o.api_key == api_key) {
                return Err(problem("its API key is also another tenant's; keys select tenants, so they must differ".into()));
            }
            if out.iter().any(|o| o.name == t.name) {
                return Err(problem("the name is used twice".into()));
            }
            segfn_engine::FetchPolicy::parse(&t.allow_hosts).map_err(|e| problem(e.to_string()))?;
            let map_hosts = super::resolve::map_hosts(&t.map_hosts).map_err(problem)?;
            if t.max_in_flight == Some(0) {
                return Err(problem("max_in_flight must be at least 1".into()));
            }
            out.push(ResolvedTenant {
                name: t.name.clone(),
                api_key,
                settings: serde_json::to_value(&t.settings)
                    .map_err(|e| problem(format!("settings: {e}")))?,
                secret_settings: t.secret_settings.clone(),
                allow_hosts: t.allow_hosts.clone(),
                map_hosts,
                shared_secret,
                function: t.function.clone(),
                debug_responses: t.debug_responses,
                max_in_flight: t.max_in_flight,
                overridable_settings: t.overridable_settings.clone(),
                batch_signature: t.batch_signature,
                durable: t.durable,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ServeConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_full_file_parses() {
        let config = parse(
            r#"
            [server]
            listen = "0.0.0.0:9000"
            dedupe_window_secs = 60
            [limits]
            deadline_ms = 3000
            [[tenant]]
            name = "acme"
            api_key_env = "ACME_KEY"
            settings = { apiKey = "k-1", endpoint = "https://api.partner.example/v1", retries = 3 }
            secret_settings = ["apiKey"]
            allow_hosts = ["api.partner.example"]
            shared_secret = "s3cret"
            "#,
        )
        .unwrap();
        assert_eq!(config.server.listen, "0.0.0.0:9000");
        assert_eq!(config.limits.limits().deadline.as_millis(), 3000);
        let tenants = config
            .resolve_tenants(|v| (v == "ACME_KEY").then(|| "key-from-env".into()))
            .unwrap();
        assert_eq!(tenants[0].api_key, "key-from-env");
        assert_eq!(tenants[0].settings["retries"], 3);
        assert_eq!(tenants[0].shared_secret.as_deref(), Some("s3cret"));
    }

    #[test]
    fn the_documented_example_is_valid() {
        let config: ServeConfig =
            toml::from_str(include_str!("../../../docs/serve.example.toml")).unwrap();
        let env = |v: &str| Some(format!("value-of-{v}"));
        let tenants = config.resolve_tenants(env).unwrap();
        assert_eq!(tenants.len(), 3);
        assert_eq!(tenants[0].api_key, "value-of-ACME_SEGMENT_API_KEY");
        assert_eq!(
            tenants[0].shared_secret.as_deref(),
            Some("value-of-ACME_SHARED_SECRET")
        );
        assert!(tenants[1].debug_responses);
        assert!(tenants[0].map_hosts.is_empty());
        assert_eq!(
            tenants[2].map_hosts.to_string(),
            "api.partner.example=http://127.0.0.1:9000"
        );
        assert!(tenants[2].allow_hosts.is_empty());
        assert_eq!(config.server.traces, TracesConfig::default());
    }

    #[test]
    fn traces_are_off_unless_an_endpoint_is_given_and_typos_are_refused() {
        assert_eq!(parse("").unwrap().server.traces.endpoint, None);
        let traces =
            parse("[server.traces]\nendpoint = \"http://127.0.0.1:4318\"\nsample_ratio = 0.25\n")
                .unwrap()
                .server
                .traces;
        assert_eq!(traces.endpoint.as_deref(), Some("http://127.0.0.1:4318"));
        assert_eq!(
            (traces.sample_ratio, traces.service_name.as_str()),
            (0.25, "segfn")
        );
        let error = parse("[server.traces]\nendpoints = \"http://127.0.0.1:4318\"\n").unwrap_err();
        assert!(error.contains("unknown field `endpoints`"), "{error}");
    }

    #[test]
    fn connection_threads_default_to_one_per_core_and_are_bounded() {
        assert_eq!(parse("").unwrap().server.connection_threads, None);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("segfn.toml");
        std::fs::write(&file, "[server]\nconnection_threads = 2\n").unwrap();
        assert_eq!(
            ServeConfig::load(&file).unwrap().server.connection_threads,
            Some(2)
        );
        std::fs::write(&file, "[server]\nconnection_threads = 5000\n").unwrap();
        let error = ServeConfig::load(&file).unwrap_err().to_string();
        assert!(
            error.contains("connection_threads = 5000: at most 256"),
            "{error}"
        );
    }

    #[test]
    fn host_mappings_are_checked() {
        let tenant = |map: &str| -> Result<String, String> {
            parse(&format!(
                "[[tenant]]\nname = \"a\"\napi_key = \"k\"\nmap_hosts = {map}"
            ))?
            .resolve_tenants(|_| None)
            .map(|t| t[0].map_hosts.to_string())
            .map_err(|e| e.to_string())
        };
        assert_eq!(
            tenant(
                r#"{ "*" = "127.0.0.1:9001", "api.partner.example" = "http://127.0.0.1:9000" }"#
            )
            .unwrap(),
            "api.partner.example=http://127.0.0.1:9000, *=127.0.0.1:9001"
        );
        let err = tenant(r#"{ "api.partner.example" = "http://10.1.2.3:80" }"#).unwrap_err();
        assert!(err.starts_with("tenant \"a\": map_hosts: "), "{err}");
        assert!(err.contains("not a loopback address"), "{err}");
        let err = tenant(
            r#"{ "API.partner.example" = "127.0.0.1:1", "api.partner.example" = "127.0.0.1:2" }"#,
        )
        .unwrap_err();
        assert!(err.contains("mapped twice"), "{err}");
        // A table, not a list of HOST=TARGET strings.
        let err = tenant(r#"["api.partner.example=127.0.0.1:1"]"#).unwrap_err();
        assert!(err.contains("expected a map"), "{err}");
    }

    #[test]
    fn parse_errors_name_the_line_but_not_its_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(
            &path,
            "[[tenant]]\nname = \"a\"\napi_key = \"sk_live_leak\n",
        )
        .unwrap();
        let err = ServeConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains("line 3: "), "{err}");
        assert!(!err.contains("sk_live_leak"), "{err}");
    }

    #[test]
    fn mistakes_are_named() {
        assert!(
            parse("[server]\nlisten_on = \"x\"")
                .unwrap_err()
                .contains("unknown field `listen_on`")
        );
        let no_key = parse("[[tenant]]\nname = \"a\"").unwrap();
        assert!(
            no_key
                .resolve_tenants(|_| None)
                .unwrap_err()
                .to_string()
                .contains("needs api_key")
        );
        let missing_env = parse("[[tenant]]\nname = \"a\"\napi_key_env = \"NOPE\"").unwrap();
        assert!(
            missing_env
                .resolve_tenants(|_| None)
                .unwrap_err()
                .to_string()
                .contains("$NOPE, which is not set")
        );
        let dup = parse(
            "[[tenant]]\nname = \"a\"\napi_key = \"k\"\n[[tenant]]\nname = \"b\"\napi_key = \"k\"",
        )
        .unwrap();
        assert!(
            dup.resolve_tenants(|_| None)
                .unwrap_err()
                .to_string()
                .contains("also another tenant's")
        );
        let bad_host =
            parse("[[tenant]]\nname = \"a\"\napi_key = \"k\"\nallow_hosts = [\"ftp://x\"]")
                .unwrap();
        assert!(
            bad_host
                .resolve_tenants(|_| None)
                .unwrap_err()
                .to_string()
                .contains("only http and https")
        );
        assert!(matches!(
            ServeConfig::default().resolve_tenants(|_| None),
            Err(ConfigError::NoTenants)
        ));
    }
}
