//! Host mappings (`--map-host HOST=TARGET`, like curl's `--resolve`): a request whose
//! host matches HOST is sent to TARGET, a server on this machine, instead. A function
//! keeps its real partner URLs (`https://api.partner.example/v1`) while a test or a
//! developer's fake partner receives the requests.
//!
//! HOST is a pattern as for `--allow-host` (`api.example.com`, `*.example.com`,
//! `https://api.example.com:8443`, `*` for every host). TARGET is a loopback address
//! with a port (`127.0.0.1:9000`, `[::1]:9000`, `localhost:9000`), optionally with a
//! scheme:
//!
//! | TARGET | an `https://` request | an `http://` request |
//! |---|---|---|
//! | `127.0.0.1:9000` | TLS to 127.0.0.1:9000, certificate verified for the original host | plain HTTP |
//! | `http://127.0.0.1:9000` | plain HTTP (a local fake needs no certificate) | plain HTTP |
//! | `https://127.0.0.1:9000` | TLS, verified for the original host | TLS, verified for the original host |
//!
//! Method, path, query and the `Host` header stay those of the original URL. Only
//! loopback targets are accepted: a mapping is for reaching a local fake, and anything
//! else would be a way around the allow-list and its address rules.
//!
//! The most specific mapping wins, whatever the order given: an exact host (or
//! address) before `*.domain` (a longer domain first) before `*`; then one with a port
//! before one without, then one with a scheme before one without. The same HOST
//! twice is refused.

use super::{HostMatch, HostPattern, PatternError, canonical};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// The scheme a mapped request uses to reach its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetScheme {
    /// No scheme in TARGET: the request keeps its own (an `https` URL is sent with TLS
    /// to the target, verifying the certificate for the original host name).
    Keep,
    /// `http://`: plain HTTP whatever the request's scheme, so a local fake needs no
    /// certificate.
    Http,
    /// `https://`: TLS whatever the request's scheme, verified for the original host.
    Https,
}

/// Where mapped requests go: a loopback address or `localhost`, with a port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MapTarget {
    scheme: TargetScheme,
    host: TargetHost,
    port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum TargetHost {
    Ip(IpAddr),
    Localhost,
}

/// One `HOST=TARGET`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostMapping {
    pattern: HostPattern,
    target: MapTarget,
}

/// The host mappings of one function instance, most specific first. Empty by default:
/// every request then goes where its URL says, under the allow-list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostMap {
    mappings: Vec<HostMapping>,
}

/// A mapping that cannot be used; the message names the problem and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    /// Not `HOST=TARGET`.
    #[error(
        "map-host {0:?}: expected HOST=TARGET, e.g. `api.partner.example=http://127.0.0.1:9000`"
    )]
    Syntax(String),
    /// HOST is not a valid pattern.
    #[error("map-host {mapping:?}: HOST is not a valid host pattern: {source}")]
    Pattern {
        /// The mapping as given.
        mapping: String,
        /// Why the pattern was refused.
        source: PatternError,
    },
    /// TARGET is not a loopback address with a port.
    #[error(
        "map-host {mapping:?}: the target {target:?} {reason}; TARGET is a loopback address with a port, optionally with a scheme: \
         `127.0.0.1:9000`, `http://127.0.0.1:9000` (plain HTTP even for https URLs), `[::1]:9000` or `localhost:9000`"
    )]
    Target {
        /// The mapping as given.
        mapping: String,
        /// TARGET as given.
        target: String,
        /// What is wrong with it, and the fix where there is one beyond the format.
        reason: String,
    },
    /// The same HOST mapped twice.
    #[error("map-host: {pattern} is mapped twice, to {first} and to {second}; keep one")]
    Duplicate {
        /// The pattern.
        pattern: String,
        /// The first target.
        first: String,
        /// The second target.
        second: String,
    },
}

impl MapTarget {
    /// Reads a TARGET; the error is the reason, for [`MapError::Target`].
    fn parse(target: &str) -> Result<Self, String> {
        let (scheme, rest) = match target.split_once("://") {
            Some((s, rest)) if s.eq_ignore_ascii_case("http") => (TargetScheme::Http, rest),
            Some((s, rest)) if s.eq_ignore_ascii_case("https") => (TargetScheme::Https, rest),
            Some((s, _)) => {
                return Err(format!(
                    "has the scheme {s:?}: only http:// and https:// (or none) can be given"
                ));
            }
            None => (TargetScheme::Keep, target),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') || rest.contains('?') {
            return Err(
                "has a path: a target is an address and a port; requests keep their own path"
                    .into(),
            );
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (addr, after) = v6.split_once(']').ok_or("has an unclosed `[`")?;
            (addr, after.strip_prefix(':'))
        } else {
            match rest.rsplit_once(':') {
                Some((h, _)) if h.contains(':') => {
                    return Err("has an IPv6 address outside brackets: write `[::1]:PORT`".into());
                }
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            }
        };
        let host = if host.eq_ignore_ascii_case("localhost") {
            TargetHost::Localhost
        } else {
            match host.parse::<IpAddr>().map(canonical) {
                Ok(ip) if ip.is_loopback() => TargetHost::Ip(ip),
                _ => {
                    return Err(format!(
                        "is not a loopback address ({host:?}): a mapping sends requests to a server on this machine; \
                         to let fetch reach {host} itself, use --allow-host"
                    ));
                }
            }
        };
        let port = match port {
            None | Some("") => {
                return Err("has no port: add the port the local server listens on".into());
            }
            Some(p) => match p.parse::<u16>() {
                Ok(0) | Err(_) => return Err(format!("has the port {p:?}: give 1 to 65535")),
                Ok(p) => p,
            },
        };
        Ok(MapTarget { scheme, host, port })
    }
}

impl fmt::Display for MapTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scheme {
            TargetScheme::Keep => {}
            TargetScheme::Http => f.write_str("http://")?,
            TargetScheme::Https => f.write_str("https://")?,
        }
        f.write_str(&self.authority())
    }
}

impl MapTarget {
    /// How the target is reached.
    pub fn scheme(&self) -> TargetScheme {
        self.scheme
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:9000`, `[::1]:9000` or `localhost:9000`.
    pub fn authority(&self) -> String {
        format!("{}:{}", self.host_str(), self.port)
    }

    fn host_str(&self) -> String {
        match self.host {
            TargetHost::Ip(IpAddr::V6(ip)) => format!("[{ip}]"),
            TargetHost::Ip(ip) => ip.to_string(),
            TargetHost::Localhost => "localhost".into(),
        }
    }

    /// The addresses to connect to: the address itself, or both loopback addresses for
    /// `localhost` (never the system resolver, so `localhost` cannot leave the machine).
    pub fn addrs(&self) -> Vec<SocketAddr> {
        match self.host {
            TargetHost::Ip(ip) => vec![SocketAddr::new(ip, self.port)],
            TargetHost::Localhost => vec![
                SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), self.port),
                SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), self.port),
            ],
        }
    }

    /// The scheme a request with `scheme` is sent with.
    pub fn scheme_for<'a>(&self, scheme: &'a str) -> &'a str {
        match self.scheme {
            TargetScheme::Keep => scheme,
            TargetScheme::Http => "http",
            TargetScheme::Https => "https",
        }
    }

    /// Where a request with `scheme` is sent, as the request trace shows it:
    /// `http://127.0.0.1:9000`.
    pub fn sent_to(&self, scheme: &str) -> String {
        format!("{}://{}", self.scheme_for(scheme), self.authority())
    }
}

impl FromStr for HostMapping {
    type Err = MapError;

    fn from_str(mapping: &str) -> Result<Self, MapError> {
        let (host, target) = mapping
            .split_once('=')
            .filter(|(h, t)| !h.trim().is_empty() && !t.trim().is_empty())
            .ok_or_else(|| MapError::Syntax(mapping.to_owned()))?;
        HostMapping::from_parts(mapping, host.trim(), target.trim())
    }
}

impl fmt::Display for HostMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.pattern, self.target)
    }
}

/// The rewritten request of a mapped URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    /// The URL to request: the target's scheme, address and port, with the original
    /// path and query. For TLS the host stays the original name (it is what the
    /// certificate is verified for), and the connection goes to the target's address.
    pub url: reqwest::Url,
    /// The original `host[:port]`, sent as the `Host` header.
    pub host_header: String,
}

impl HostMapping {
    /// A mapping from its parts.
    pub fn new(pattern: HostPattern, target: MapTarget) -> HostMapping {
        HostMapping { pattern, target }
    }

    /// Reads HOST and TARGET given separately (a configuration table's key and value).
    pub fn parse_pair(host: &str, target: &str) -> Result<HostMapping, MapError> {
        HostMapping::from_parts(&format!("{host}={target}"), host, target)
    }

    fn from_parts(mapping: &str, host: &str, target: &str) -> Result<HostMapping, MapError> {
        let pattern = host.parse().map_err(|source| MapError::Pattern {
            mapping: mapping.to_owned(),
            source,
        })?;
        let target = MapTarget::parse(target).map_err(|reason| MapError::Target {
            mapping: mapping.to_owned(),
            target: target.to_owned(),
            reason,
        })?;
        Ok(HostMapping { pattern, target })
    }

    /// HOST.
    pub fn pattern(&self) -> &HostPattern {
        &self.pattern
    }

    /// TARGET.
    pub fn target(&self) -> &MapTarget {
        &self.target
    }

    /// The request to make for `url` (which this mapping matches).
    pub fn route(&self, url: &reqwest::Url) -> Routed {
        let scheme = self.target.scheme_for(url.scheme()).to_owned();
        let original_host = url.host_str().unwrap_or_default().to_owned();
        let host_header = match url.port() {
            Some(port) => format!("{original_host}:{port}"),
            None => original_host,
        };
        // With TLS the URL keeps a host name, for SNI and the certificate check (the
        // client resolves it to the target); an address, or plain HTTP, is replaced by
        // the target's, so nothing but the target can be reached.
        let host = match url.domain() {
            Some(name) if scheme == "https" => name.to_owned(),
            _ => self.target.host_str(),
        };
        let mut routed = url.clone();
        // http and https are both special schemes, so switching between them, and
        // setting a host and port on them, cannot fail.
        let _ = routed.set_scheme(&scheme);
        let _ = routed.set_host(Some(&host));
        let _ = routed.set_port(Some(self.target.port));
        Routed {
            url: routed,
            host_header,
        }
    }

    /// How specific the pattern is: larger first.
    fn specificity(&self) -> (u8, usize, bool, bool) {
        let p = &self.pattern;
        let (rank, suffix) = match &p.host {
            HostMatch::Exact(_) | HostMatch::Ip(_) => (2, 0),
            HostMatch::Suffix(s) => (1, s.len()),
            HostMatch::Any => (0, 0),
        };
        (rank, suffix, p.port.is_some(), p.scheme.is_some())
    }
}

impl HostMap {
    /// Mappings, refusing the same HOST twice; ordered most specific first (equally
    /// specific ones, which cannot match the same URL, in the order given).
    pub fn new(mappings: Vec<HostMapping>) -> Result<HostMap, MapError> {
        for (i, m) in mappings.iter().enumerate() {
            if let Some(earlier) = mappings[..i].iter().find(|e| e.pattern == m.pattern) {
                return Err(MapError::Duplicate {
                    pattern: m.pattern.to_string(),
                    first: earlier.target.to_string(),
                    second: m.target.to_string(),
                });
            }
        }
        let mut mappings = mappings;
        // A stable sort: ties keep the given order.
        mappings.sort_by_key(|m| std::cmp::Reverse(m.specificity()));
        Ok(HostMap { mappings })
    }

    /// Parses `HOST=TARGET` entries.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<HostMap, MapError> {
        HostMap::new(
            entries
                .iter()
                .map(|e| e.as_ref().parse())
                .collect::<Result<_, _>>()?,
        )
    }

    /// No mappings.
    pub fn is_empty(&self) -> bool {
        self.mappings.is_empty()
    }

    /// The mappings, most specific first.
    pub fn mappings(&self) -> &[HostMapping] {
        &self.mappings
    }

    /// The mapping that applies to `url`, if any. Only http and https URLs are mapped.
    pub fn find(&self, url: &reqwest::Url) -> Option<&HostMapping> {
        let scheme = url.scheme();
        // Checked first: every fetch asks, and most functions run without mappings.
        if self.mappings.is_empty() || (scheme != "http" && scheme != "https") {
            return None;
        }
        let host = url.host_str()?.to_ascii_lowercase();
        let port = url.port_or_known_default().unwrap_or(0);
        self.mappings
            .iter()
            .find(|m| m.pattern.matches(scheme, &host, port))
    }
}

impl fmt::Display for HostMap {
    /// `HOST=TARGET` entries separated by `, `, most specific first.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, m) in self.mappings.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{m}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(u: &str) -> reqwest::Url {
        u.parse().unwrap()
    }

    fn target_error(mapping: &str) -> String {
        let err = mapping.parse::<HostMapping>().unwrap_err();
        assert!(matches!(err, MapError::Target { .. }), "{mapping}: {err:?}");
        err.to_string()
    }

    #[test]
    fn good_targets_parse_and_print_as_given() {
        for (mapping, scheme, addrs) in [
            (
                "api.partner.example=127.0.0.1:9000",
                TargetScheme::Keep,
                vec!["127.0.0.1:9000"],
            ),
            (
                "api.partner.example=http://127.0.0.1:9000",
                TargetScheme::Http,
                vec!["127.0.0.1:9000"],
            ),
            (
                "*.partner.example=https://127.0.0.2:443",
                TargetScheme::Https,
                vec!["127.0.0.2:443"],
            ),
            ("*=[::1]:8080", TargetScheme::Keep, vec!["[::1]:8080"]),
            (
                "https://api.partner.example:8443=http://localhost:3000",
                TargetScheme::Http,
                vec!["127.0.0.1:3000", "[::1]:3000"],
            ),
        ] {
            let m: HostMapping = mapping.parse().unwrap();
            assert_eq!(m.to_string(), mapping);
            assert_eq!(m.target().scheme(), scheme, "{mapping}");
            let want: Vec<SocketAddr> = addrs.iter().map(|a| a.parse().unwrap()).collect();
            assert_eq!(m.target().addrs(), want, "{mapping}");
        }
        // Spaces around `=`, a trailing slash, a capital scheme and an IPv4-mapped
        // loopback address are read as meant.
        let m: HostMapping = " api.x.example = HTTP://[::ffff:127.0.0.1]:9/ "
            .parse()
            .unwrap();
        assert_eq!(m.to_string(), "api.x.example=http://127.0.0.1:9");
    }

    #[test]
    fn targets_off_this_machine_are_refused_with_the_fix() {
        for (mapping, needle) in [
            ("api.x=10.0.0.1:80", "not a loopback address"),
            ("api.x=http://93.184.216.34:80", "not a loopback address"),
            ("api.x=api.partner.example:443", "not a loopback address"),
            ("api.x=0.0.0.0:80", "not a loopback address"),
            ("api.x=[fe80::1]:80", "not a loopback address"),
            ("api.x=169.254.169.254:80", "not a loopback address"),
            ("api.x=127.0.0.1", "has no port"),
            ("api.x=http://localhost", "has no port"),
            ("api.x=127.0.0.1:", "has no port"),
            ("api.x=127.0.0.1:0", "give 1 to 65535"),
            ("api.x=127.0.0.1:70000", "give 1 to 65535"),
            ("api.x=ftp://127.0.0.1:21", "only http:// and https://"),
            ("api.x=http://127.0.0.1:9000/v1", "has a path"),
            ("api.x=::1:80", "IPv6 address outside brackets"),
            ("api.x=[::1:80", "unclosed"),
        ] {
            let err = target_error(mapping);
            assert!(err.contains(needle), "{mapping}: {err}");
            assert!(
                err.contains("TARGET is a loopback address with a port"),
                "{mapping}: {err}"
            );
        }
        assert!(target_error("api.x=10.0.0.1:80").contains("use --allow-host"));
    }

    #[test]
    fn bad_hosts_and_syntax_are_explained() {
        for bad in ["api.x", "=127.0.0.1:1", "api.x=", ""] {
            let err = bad.parse::<HostMapping>().unwrap_err();
            assert!(matches!(err, MapError::Syntax(_)), "{bad}: {err:?}");
            assert!(err.to_string().contains("expected HOST=TARGET"), "{err}");
        }
        for bad in [
            "ftp://x=127.0.0.1:1",
            "a/b=127.0.0.1:1",
            "*x.com=127.0.0.1:1",
        ] {
            let err = bad.parse::<HostMapping>().unwrap_err();
            assert!(matches!(err, MapError::Pattern { .. }), "{bad}: {err:?}");
            assert!(
                err.to_string().contains("not a valid host pattern"),
                "{err}"
            );
        }
        let err = HostMap::parse(&["api.x=127.0.0.1:1", "API.x=127.0.0.1:2"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "map-host: api.x is mapped twice, to 127.0.0.1:1 and to 127.0.0.1:2; keep one"
        );
    }

    #[test]
    fn the_most_specific_mapping_wins_whatever_the_order() {
        let map = HostMap::parse(&[
            "*=127.0.0.1:1",
            "*.example.com=127.0.0.1:2",
            "*.api.example.com=127.0.0.1:3",
            "api.example.com=127.0.0.1:4",
            "api.example.com:8443=127.0.0.1:5",
            "https://api.example.com:8443=127.0.0.1:6",
            "10.0.0.5=127.0.0.1:7",
        ])
        .unwrap();
        let port = |u: &str| map.find(&url(u)).map(|m| m.target().port());
        assert_eq!(port("https://api.example.com/v1"), Some(4));
        assert_eq!(port("http://API.example.com:8443/"), Some(5));
        assert_eq!(port("https://api.example.com:8443/"), Some(6));
        assert_eq!(port("https://eu.api.example.com/"), Some(3));
        assert_eq!(port("https://www.example.com/"), Some(2));
        assert_eq!(port("https://example.com/"), Some(1));
        assert_eq!(port("http://10.0.0.5/"), Some(7));
        assert_eq!(port("http://169.254.169.254/"), Some(1));
        assert_eq!(port("ftp://api.example.com/"), None);
        assert_eq!(
            map.mappings()[0].to_string(),
            "https://api.example.com:8443=127.0.0.1:6"
        );
        assert_eq!(map.mappings().last().unwrap().to_string(), "*=127.0.0.1:1");

        let narrow = HostMap::parse(&["https://api.example.com=127.0.0.1:1"]).unwrap();
        assert!(narrow.find(&url("http://api.example.com/")).is_none());
        assert!(narrow.find(&url("https://other.example.com/")).is_none());
        assert!(HostMap::default().find(&url("https://a.b/")).is_none());
    }

    #[test]
    fn routes_keep_method_path_query_and_host() {
        let route = |mapping: &str, u: &str| {
            let m: HostMapping = mapping.parse().unwrap();
            let r = m.route(&url(u));
            (r.url.to_string(), r.host_header)
        };
        // Plain HTTP: the target's address, the original Host.
        assert_eq!(
            route(
                "api.partner.example=http://127.0.0.1:9000",
                "https://api.partner.example/v1/track?x=1&y=%20"
            ),
            (
                "http://127.0.0.1:9000/v1/track?x=1&y=%20".into(),
                "api.partner.example".into()
            )
        );
        // TLS kept: the name stays (SNI, certificate), the port is the target's.
        assert_eq!(
            route(
                "api.partner.example=127.0.0.1:9443",
                "https://api.partner.example:8443/v1"
            ),
            (
                "https://api.partner.example:9443/v1".into(),
                "api.partner.example:8443".into()
            )
        );
        // An http URL without a scheme in TARGET stays http.
        assert_eq!(
            route("*=[::1]:9000", "http://api.partner.example/v1"),
            ("http://[::1]:9000/v1".into(), "api.partner.example".into())
        );
        // `https://` TARGET: TLS even for an http URL.
        assert_eq!(
            route("*=https://localhost:9443", "http://api.partner.example/v1"),
            (
                "https://api.partner.example:9443/v1".into(),
                "api.partner.example".into()
            )
        );
        // An address host is replaced even with TLS: nothing else can be reached.
        assert_eq!(
            route("*=127.0.0.1:9443", "https://93.184.216.34/x"),
            ("https://127.0.0.1:9443/x".into(), "93.184.216.34".into())
        );
    }

    #[test]
    fn sent_to_names_the_scheme_used_and_the_target() {
        let m: HostMapping = "*=http://127.0.0.1:9000".parse().unwrap();
        assert_eq!(m.target().sent_to("https"), "http://127.0.0.1:9000");
        let m: HostMapping = "*=[::1]:9000".parse().unwrap();
        assert_eq!(m.target().sent_to("https"), "https://[::1]:9000");
        assert_eq!(m.target().sent_to("http"), "http://[::1]:9000");
    }
}
