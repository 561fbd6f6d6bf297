//! `[[source]]`: a source function served as a webhook URL, and where its calls go.

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Segment's Tracking API in the US (the default) and in the EU.
pub const TRACKING_US: &str = "https://api.segment.io";
/// Segment's Tracking API for EU workspaces.
pub const TRACKING_EU: &str = "https://events.eu1.segmentapis.com";
/// Segment's Objects API (`Segment.set`).
pub const OBJECTS_API: &str = "https://objects.segment.com";

/// Shortest webhook token: the URL is all a sender needs, so it must be unguessable.
pub const MIN_TOKEN_LEN: usize = 24;

/// `[[source]]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Name, for logs and metrics.
    pub name: String,
    /// The secret in the webhook URL, `/webhooks/TOKEN` (at least 24 characters).
    pub token: Option<String>,
    /// Or: the environment variable holding it.
    pub token_env: Option<String>,
    /// The Segment source's write key the calls are sent with.
    pub write_key: Option<String>,
    /// Or: the environment variable holding it.
    pub write_key_env: Option<String>,
    /// This source's own function, instead of the server's.
    pub function: Option<PathBuf>,
    /// The function's settings.
    #[serde(default)]
    pub settings: toml::Table,
    /// Settings that are secret (also: any named like a key, token or password).
    #[serde(default)]
    pub secret_settings: Vec<String>,
    /// Hosts `fetch` may reach.
    #[serde(default)]
    pub allow_hosts: Vec<String>,
    /// Hosts whose requests go to a local server instead (see `--map-host`).
    #[serde(default)]
    pub map_hosts: BTreeMap<String, String>,
    /// Segment's Tracking API: `"us"` (default), `"eu"`, or a URL.
    pub tracking_api: Option<String>,
    /// Segment's Objects API, for `Segment.set` (default: Segment's).
    pub objects_api: Option<String>,
    /// Requests this source may run at once (default: the server's tenant share).
    pub max_in_flight: Option<usize>,
    /// Queue a webhook's calls in the store before answering it (default: the server's
    /// `durable`).
    pub durable: Option<bool>,
}

/// A source with its secrets resolved and its URLs checked.
#[derive(Debug, Clone)]
pub struct ResolvedSource {
    /// Name.
    pub name: String,
    /// The webhook token.
    pub token: String,
    /// The write key.
    pub write_key: String,
    /// Own function, if any (relative to the configuration file).
    pub function: Option<PathBuf>,
    /// Settings as JSON.
    pub settings: Value,
    /// Declared secret setting names.
    pub secret_settings: Vec<String>,
    /// Allow-list entries.
    pub allow_hosts: Vec<String>,
    /// Host mappings (checked).
    pub map_hosts: segfn_engine::HostMap,
    /// The Tracking API's base URL, without a trailing slash.
    pub tracking_api: String,
    /// The Objects API's base URL, without a trailing slash.
    pub objects_api: String,
    /// Own in-flight cap, if any.
    pub max_in_flight: Option<usize>,
    /// Own durable mode, if set.
    pub durable: Option<bool>,
}

impl SourceConfig {
    /// Resolves the secrets from the environment and checks the URLs; the message names
    /// the fix.
    pub fn resolve(&self, env: &impl Fn(&str) -> Option<String>) -> Result<ResolvedSource, String> {
        if self.name.is_empty() {
            return Err("a source needs a name".into());
        }
        let token = crate::resolve::required_secret(&self.token, &self.token_env, "token", env)?;
        if token.len() < MIN_TOKEN_LEN
            || !token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "the token must be at least {MIN_TOKEN_LEN} letters, digits, '-' or '_' (it is all a sender needs): for example `openssl rand -hex 24`"
            ));
        }
        let write_key = crate::resolve::required_secret(
            &self.write_key,
            &self.write_key_env,
            "write_key",
            env,
        )?;
        let tracking_api = match self.tracking_api.as_deref() {
            None | Some("us") => TRACKING_US.to_owned(),
            Some("eu") => TRACKING_EU.to_owned(),
            Some(url) => checked_url(url, "tracking_api")?,
        };
        let objects_api = match self.objects_api.as_deref() {
            None => OBJECTS_API.to_owned(),
            Some(url) => checked_url(url, "objects_api")?,
        };
        let map_hosts = crate::resolve::map_hosts(&self.map_hosts)?;
        let settings = serde_json::to_value(&self.settings).map_err(|e| e.to_string())?;
        Ok(ResolvedSource {
            name: self.name.clone(),
            token,
            write_key,
            function: self.function.clone(),
            settings,
            secret_settings: self.secret_settings.clone(),
            allow_hosts: self.allow_hosts.clone(),
            map_hosts,
            tracking_api,
            objects_api,
            max_in_flight: self.max_in_flight,
            durable: self.durable,
        })
    }
}

/// An API URL: https, or http to a loopback address (a local fake in tests).
fn checked_url(url: &str, what: &str) -> Result<String, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{what} {url:?}: {e}"))?;
    let loopback = matches!(parsed.host(), Some(url::Host::Domain("localhost")))
        || matches!(parsed.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
        || matches!(parsed.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback());
    match parsed.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => {
            return Err(format!(
                "{what} must be an https URL (http only to a loopback address)"
            ));
        }
    }
    Ok(url.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(extra: &str) -> SourceConfig {
        toml::from_str(&format!(
            "name = \"gh\"\ntoken = \"t0k3n-abcdefghijklmnopqrstuv\"\nwrite_key = \"wk\"\n{extra}"
        ))
        .unwrap()
    }

    #[test]
    fn a_source_resolves_with_segments_defaults() {
        let r = source("").resolve(&|_| None).unwrap();
        assert_eq!(r.tracking_api, TRACKING_US);
        let r = source("tracking_api = \"eu\"").resolve(&|_| None).unwrap();
        assert_eq!(r.tracking_api, TRACKING_EU);
        let r = source("tracking_api = \"http://127.0.0.1:9/\"")
            .resolve(&|_| None)
            .unwrap();
        assert_eq!(r.tracking_api, "http://127.0.0.1:9");
    }

    #[test]
    fn weak_tokens_and_plain_http_are_refused_naming_the_fix() {
        let weak = SourceConfig {
            token: Some("short".into()),
            ..source("")
        };
        assert!(weak.resolve(&|_| None).unwrap_err().contains("at least 24"));
        let plain = source("tracking_api = \"http://api.segment.io\"");
        assert!(plain.resolve(&|_| None).unwrap_err().contains("https"));
        let missing = SourceConfig {
            write_key: None,
            write_key_env: Some("NOPE".into()),
            ..source("")
        };
        assert!(missing.resolve(&|_| None).unwrap_err().contains("$NOPE"));
    }
}
