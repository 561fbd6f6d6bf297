//! What tenants and sources share when their configuration is resolved: a secret given
//! inline or through an environment variable, and host mappings.

use segfn_engine::HostMap;
use segfn_engine::policy::HostMapping;
use std::collections::BTreeMap;

/// A secret set as `what = "..."` or `what_env = "VAR"`: `None` when neither is set; an
/// error when both are, or when the variable is unset or empty.
pub(crate) fn secret(
    inline: &Option<String>,
    var: &Option<String>,
    what: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Option<String>, String> {
    let from_env = match var {
        None => None,
        Some(var) => Some(
            env(var)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("{what} is to come from ${var}, which is not set"))?,
        ),
    };
    match (inline, from_env) {
        (Some(_), Some(_)) => Err(format!("set {what} or {what}_env, not both")),
        (inline, from_env) => Ok(inline.clone().or(from_env)),
    }
}

/// A secret that must be set (non-empty), as [`secret`] reads it.
pub(crate) fn required_secret(
    inline: &Option<String>,
    var: &Option<String>,
    what: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    secret(inline, var, what, env)?
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("needs {what} or {what}_env"))
}

/// `map_hosts = { HOST = TARGET }`, checked.
pub(crate) fn map_hosts(table: &BTreeMap<String, String>) -> Result<HostMap, String> {
    table
        .iter()
        .map(|(host, target)| HostMapping::parse_pair(host, target))
        .collect::<Result<Vec<_>, _>>()
        .and_then(HostMap::new)
        .map_err(|e| format!("map_hosts: {e}"))
}
