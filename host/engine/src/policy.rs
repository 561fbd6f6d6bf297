//! Where `fetch` may go: the operator's allow-list of hosts, and the refusal of
//! non-public addresses (loopback, private, link-local, metadata and every other
//! special-purpose block: the table in `policy/special.rs`) unless allowed explicitly.
//!
//! Deny by default: an empty allow-list refuses every request. Patterns:
//!
//! | pattern | allows |
//! |---|---|
//! | `api.example.com` | that host, any port |
//! | `api.example.com:8443` | that host on that port |
//! | `*.example.com` | any subdomain of example.com (not example.com itself) |
//! | `https://api.example.com` | that host over https only |
//! | `*` | any host on a public address |
//! | `127.0.0.1:8080`, `[::1]`, `localhost:3000` | that address: the explicit way to allow a non-public one |
//!
//! Names are checked on the URL; addresses on the resolved IP, so a name that resolves
//! to a private address is refused even when the name is allowed.
//!
//! A host with a mapping (`--map-host`, [`HostMap`] in `policy/map.rs`) is allowed:
//! its requests go to the mapping's loopback target, never to the host itself, so
//! neither the allow-list nor the address rules apply to them.

mod map;
mod special;

pub use map::{HostMap, HostMapping, MapError, MapTarget, Routed, TargetScheme};
pub use special::non_public_class;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

/// One allow-list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    scheme: Option<String>,
    host: HostMatch,
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    Any,
    Exact(String),
    Suffix(String),
    Ip(IpAddr),
}

/// A pattern that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "allow-host pattern {pattern:?}: {reason} (expected e.g. `api.example.com`, `*.example.com`, `https://api.example.com:443` or `127.0.0.1:8080`)"
)]
pub struct PatternError {
    pattern: String,
    reason: &'static str,
}

impl FromStr for HostPattern {
    type Err = PatternError;

    fn from_str(pattern: &str) -> Result<Self, Self::Err> {
        let err = |reason| PatternError {
            pattern: pattern.to_owned(),
            reason,
        };
        let (scheme, rest) = match pattern.split_once("://") {
            Some((s @ ("http" | "https"), rest)) => (Some(s.to_owned()), rest),
            Some(_) => return Err(err("only http and https schemes can be allowed")),
            None => (None, pattern),
        };
        let rest = rest.trim_end_matches('/');
        if rest.is_empty() || rest.contains('/') {
            return Err(err("a pattern names a host, not a path"));
        }
        // `[v6]:port`, `[v6]`, `host:port`, `host`.
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (addr, after) = v6.split_once(']').ok_or_else(|| err("unclosed `[`"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(err("unexpected text after `]`")),
            };
            (addr, port)
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') => (h, Some(p)),
                Some(_) => return Err(err("IPv6 addresses go in brackets")),
                None => (rest, None),
            }
        };
        let port = port
            .map(|p| {
                p.parse::<u16>()
                    .map_err(|_| err("the port is not a number from 0 to 65535"))
            })
            .transpose()?;
        let host = host.to_ascii_lowercase();
        let host = if host == "*" {
            HostMatch::Any
        } else if let Ok(ip) = host.parse::<IpAddr>() {
            HostMatch::Ip(ip)
        } else if let Some(suffix) = host.strip_prefix("*.") {
            if suffix.is_empty() || suffix.contains('*') {
                return Err(err("a wildcard is `*` or `*.domain`"));
            }
            HostMatch::Suffix(format!(".{suffix}"))
        } else if host.contains('*') {
            return Err(err("a wildcard is `*` or `*.domain`"));
        } else if host.is_empty() {
            return Err(err("the host is empty"));
        } else {
            HostMatch::Exact(host)
        };
        Ok(HostPattern { scheme, host, port })
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = &self.scheme {
            write!(f, "{s}://")?;
        }
        match &self.host {
            HostMatch::Any => f.write_str("*")?,
            HostMatch::Exact(h) => f.write_str(h)?,
            HostMatch::Suffix(s) => write!(f, "*{s}")?,
            HostMatch::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]")?,
            HostMatch::Ip(ip) => write!(f, "{ip}")?,
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

impl HostPattern {
    fn matches(&self, scheme: &str, host: &str, port: u16) -> bool {
        if self.scheme.as_deref().is_some_and(|s| s != scheme)
            || self.port.is_some_and(|p| p != port)
        {
            return false;
        }
        match &self.host {
            HostMatch::Any => true,
            HostMatch::Exact(h) => h == host,
            HostMatch::Suffix(s) => host.ends_with(s.as_str()),
            HostMatch::Ip(ip) => parse_host_ip(host) == Some(*ip),
        }
    }

    /// Whether this entry names `ip` itself (or `localhost` for loopback addresses),
    /// which is what allows a non-public address.
    fn names_address(&self, ip: IpAddr) -> bool {
        match &self.host {
            HostMatch::Ip(allowed) => *allowed == canonical(ip),
            HostMatch::Exact(h) => h == "localhost" && canonical(ip).is_loopback(),
            _ => false,
        }
    }
}

/// The allow-list and host mappings of one function instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchPolicy {
    allow: Vec<HostPattern>,
    map: HostMap,
}

/// Why a request was refused; the message names the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not an http(s) URL the host can use.
    #[error("{0}")]
    BadUrl(String),
    /// The host is not on the allow-list.
    #[error(
        "{host} is not on the allow-list; allow it with --allow-host {host} (or an allow_hosts entry)"
    )]
    NotAllowed {
        /// The URL's host (and port, when not the default).
        host: String,
    },
    /// The host is allowed but the address it names or resolves to is not public.
    #[error(
        "{host} is {ip}, a non-public address ({class}); requests to it need that address allowed explicitly, with its port (--allow-host {ip_pattern}:PORT)"
    )]
    PrivateAddress {
        /// The URL's host.
        host: String,
        /// The refused address.
        ip: IpAddr,
        /// The name of its special-purpose block: `loopback`, `private-use`, ...
        class: &'static str,
        /// The pattern that would allow it.
        ip_pattern: String,
    },
    /// A redirect that would leave a mapped request's target, or reach a mapped host
    /// directly: redirects are not mapped, so following it could reach the real host.
    #[error(
        "the redirect to {location} is not followed: {reason}, and redirects are not mapped (the function may fetch the Location itself)"
    )]
    MappedRedirect {
        /// The redirect's host (and port, when not the default).
        location: String,
        /// Which of the two cases.
        reason: &'static str,
    },
}

impl FetchPolicy {
    /// A policy from allow-list entries, without host mappings.
    pub fn new(allow: Vec<HostPattern>) -> Self {
        FetchPolicy {
            allow,
            map: HostMap::default(),
        }
    }

    /// The same policy with `map`'s hosts sent to their local targets (and so allowed).
    pub fn with_map(mut self, map: HostMap) -> Self {
        self.map = map;
        self
    }

    /// The host mappings.
    pub fn map(&self) -> &HostMap {
        &self.map
    }

    /// The mapping `url` is sent through, if any.
    pub fn mapping_for(&self, url: &reqwest::Url) -> Option<&HostMapping> {
        self.map.find(url)
    }

    /// Parses allow-list entries.
    pub fn parse<S: AsRef<str>>(patterns: &[S]) -> Result<Self, PatternError> {
        Ok(Self::new(
            patterns
                .iter()
                .map(|p| p.as_ref().parse())
                .collect::<Result<_, _>>()?,
        ))
    }

    /// Checks a URL's scheme and host against the allow-list, and an IP-literal host
    /// against the address rule (names are checked again once resolved). A mapped URL
    /// is allowed: it goes to its local target.
    pub fn check_url(&self, url: &reqwest::Url) -> Result<(), Refusal> {
        let scheme = url.scheme();
        if scheme != "http" && scheme != "https" {
            return Err(Refusal::BadUrl(format!(
                "{url}: only http and https URLs can be fetched"
            )));
        }
        if self.mapping_for(url).is_some() {
            return Ok(());
        }
        let host = url
            .host_str()
            .ok_or_else(|| Refusal::BadUrl(format!("{url}: the URL has no host")))?
            .to_ascii_lowercase();
        let port = url.port_or_known_default().unwrap_or(0);
        let matching: Vec<&HostPattern> = self
            .allow
            .iter()
            .filter(|p| p.matches(scheme, &host, port))
            .collect();
        if matching.is_empty() {
            let shown = match url.port() {
                Some(p) => format!("{host}:{p}"),
                None => host,
            };
            return Err(Refusal::NotAllowed { host: shown });
        }
        // A non-public address (or `localhost`) is allowed only by an entry that names
        // it and matches this scheme and port: `*` or `localhost:3000` never open
        // `127.0.0.1:6379`.
        let ip = parse_host_ip(&host)
            .or_else(|| (host == "localhost").then_some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        if let Some(ip) = ip
            && let Some(class) = non_public_class(ip)
            && !matching.iter().any(|p| p.names_address(ip))
        {
            return Err(private_refusal(&host, ip, class));
        }
        Ok(())
    }

    /// Checks one resolved address of `host` (a name, never an IP literal). Names
    /// resolving to non-public addresses are refused, except `localhost` to loopback
    /// when a `localhost` entry exists (its port was checked by [`Self::check_url`]).
    pub fn check_address(&self, host: &str, ip: IpAddr) -> Result<(), Refusal> {
        let Some(class) = non_public_class(ip) else {
            return Ok(());
        };
        // Mapped requests never get here: their client resolves to the target itself.
        let named_localhost = host.eq_ignore_ascii_case("localhost")
            && canonical(ip).is_loopback()
            && self
                .allow
                .iter()
                .any(|p| matches!(&p.host, HostMatch::Exact(h) if h == "localhost"));
        if named_localhost {
            Ok(())
        } else {
            Err(private_refusal(host, ip, class))
        }
    }
}

fn private_refusal(host: &str, ip: IpAddr, class: &'static str) -> Refusal {
    Refusal::PrivateAddress {
        host: host.to_owned(),
        ip,
        class,
        ip_pattern: match canonical(ip) {
            IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        },
    }
}

fn parse_host_ip(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// IPv4-mapped IPv6 addresses are treated as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(p: &[&str]) -> FetchPolicy {
        FetchPolicy::parse(p).unwrap()
    }
    fn url(u: &str) -> reqwest::Url {
        u.parse().unwrap()
    }

    #[test]
    fn empty_list_denies_everything() {
        assert!(matches!(
            policy(&[]).check_url(&url("https://api.example.com/")),
            Err(Refusal::NotAllowed { .. })
        ));
    }

    #[test]
    fn patterns_match_host_port_and_scheme() {
        let p = policy(&[
            "api.example.com",
            "*.partner.io",
            "https://secure.example.com:8443",
        ]);
        assert!(p.check_url(&url("http://api.example.com/x")).is_ok());
        assert!(p.check_url(&url("https://API.example.com:9000/x")).is_ok());
        assert!(p.check_url(&url("https://a.b.partner.io/")).is_ok());
        assert!(p.check_url(&url("https://partner.io/")).is_err());
        assert!(p.check_url(&url("https://evilpartner.io/")).is_err());
        assert!(
            p.check_url(&url("https://secure.example.com:8443/"))
                .is_ok()
        );
        assert!(
            p.check_url(&url("http://secure.example.com:8443/"))
                .is_err()
        );
        assert!(p.check_url(&url("https://secure.example.com/")).is_err());
        assert!(p.check_url(&url("ftp://api.example.com/")).is_err());
    }

    #[test]
    fn non_public_addresses_need_explicit_entries() {
        let wildcard = policy(&["*"]);
        for u in [
            "http://127.0.0.1:8080/",
            "http://10.1.2.3/",
            "http://169.254.169.254/latest",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://0.0.0.0/",
            "http://[fd00:ec2::254]/",
            // Issue 6: IPv4-compatible, site-local, discard-only and Teredo.
            "http://[::7f00:1]/",
            "http://[fec0::1]/",
            "http://[100::1]/",
            "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
            "http://[64:ff9b::a9fe:a9fe]/",
        ] {
            let err = wildcard.check_url(&url(u)).unwrap_err();
            assert!(matches!(err, Refusal::PrivateAddress { .. }), "{u}: {err}");
        }
        assert!(wildcard.check_url(&url("http://93.184.216.34/")).is_ok());
        assert!(
            wildcard
                .check_url(&url("http://[2606:4700::1111]/"))
                .is_ok()
        );
        let explicit = policy(&["127.0.0.1:8080", "[::1]"]);
        assert!(explicit.check_url(&url("http://127.0.0.1:8080/")).is_ok());
        assert!(explicit.check_url(&url("http://127.0.0.1:8081/")).is_err());
        assert!(explicit.check_url(&url("http://[::1]:9/")).is_ok());
    }

    #[test]
    fn resolved_addresses_are_checked() {
        let p = policy(&["api.example.com", "localhost"]);
        let err = p
            .check_address("api.example.com", "10.0.0.5".parse().unwrap())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "api.example.com is 10.0.0.5, a non-public address (private-use); requests to it need that address allowed explicitly, with its port (--allow-host 10.0.0.5:PORT)"
        );
        assert!(
            p.check_address("api.example.com", "93.184.216.34".parse().unwrap())
                .is_ok()
        );
        assert!(
            p.check_address("localhost", "127.0.0.1".parse().unwrap())
                .is_ok()
        );
        // A name other than localhost never gets a private address, whatever is listed.
        let q = policy(&["api.example.com", "127.0.0.1"]);
        assert!(
            q.check_address("api.example.com", "127.0.0.1".parse().unwrap())
                .is_err()
        );
    }

    #[test]
    fn an_exemption_covers_only_its_own_port_and_host() {
        let p = policy(&["*", "localhost:3000", "127.0.0.1:8080"]);
        assert!(p.check_url(&url("http://localhost:3000/")).is_ok());
        assert!(p.check_url(&url("http://localhost:6379/")).is_err());
        assert!(p.check_url(&url("http://127.0.0.1:8080/")).is_ok());
        assert!(p.check_url(&url("http://127.0.0.1:6379/")).is_err());
        assert!(
            p.check_url(&url("http://[::ffff:127.0.0.1]:6379/"))
                .is_err()
        );
    }

    #[test]
    fn mapped_hosts_are_allowed_and_the_rest_still_checked() {
        let p = policy(&["api.allowed.example"]).with_map(
            HostMap::parse(&[
                "api.partner.example=http://127.0.0.1:9000",
                "10.0.0.5=127.0.0.1:9001",
            ])
            .unwrap(),
        );
        assert!(p.check_url(&url("https://api.partner.example/v1")).is_ok());
        // Mapped, an address is allowed: the request goes to the target, not to it.
        assert!(p.check_url(&url("http://10.0.0.5/")).is_ok());
        assert!(p.check_url(&url("https://api.allowed.example/")).is_ok());
        assert!(matches!(
            p.check_url(&url("https://other.example/")),
            Err(Refusal::NotAllowed { .. })
        ));
        // A mapping does not allow its target to be fetched directly.
        assert!(matches!(
            p.check_url(&url("http://127.0.0.1:9000/")),
            Err(Refusal::NotAllowed { .. })
        ));
        assert!(matches!(
            p.check_url(&url("ftp://api.partner.example/")),
            Err(Refusal::BadUrl(_))
        ));
        assert_eq!(
            p.mapping_for(&url("https://api.partner.example/v1"))
                .map(|m| m.target().to_string()),
            Some("http://127.0.0.1:9000".into())
        );
    }

    #[test]
    fn bad_patterns_are_explained() {
        for bad in ["ftp://x", "a/b", "*x.com", "x:99999", "::1", ""] {
            let err = bad.parse::<HostPattern>().unwrap_err();
            assert!(err.to_string().contains("expected e.g."), "{bad}: {err}");
        }
        assert_eq!(
            "HTTPS://Api.Example.com:443"
                .replace("HTTPS", "https")
                .parse::<HostPattern>()
                .unwrap()
                .to_string(),
            "https://api.example.com:443"
        );
    }
}
