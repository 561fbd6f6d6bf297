//! The host side of `fetch`: an HTTP client that enforces a [`FetchPolicy`] on every
//! URL, resolved address and redirect, sends mapped hosts to their local targets, with
//! a timeout and a response size cap, and the record ("request trace") of every call.

use crate::policy::{FetchPolicy, MapTarget, Refusal};
use crate::redact::Redactor;
use segfn_sdk::abi::{FetchErrorKind, FetchRequestHead};
use serde::Serialize;
use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Redirects followed before giving up (each one checked against the policy).
const MAX_REDIRECTS: usize = 5;

/// Headers the host sets itself; a guest setting them is refused.
const HOST_OWNED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
];

/// What a function's requests carry as `User-Agent` unless it sets one.
const USER_AGENT: &str = concat!("segfn/", env!("CARGO_PKG_VERSION"));

/// An HTTP client bound to one allow-list and its host mappings. Cheap to share; build
/// one per policy.
#[derive(Debug, Clone)]
pub struct FetchClient {
    client: reqwest::Client,
    /// One client per mapping target, reaching only that target's addresses.
    mapped: Arc<[(Vec<SocketAddr>, reqwest::Client)]>,
    policy: Arc<FetchPolicy>,
}

/// A fetch that produced no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchFailure {
    /// Why.
    pub kind: FetchErrorKind,
    /// A message naming the problem and, where there is one, the fix.
    pub message: String,
}

impl FetchFailure {
    pub(crate) fn new(kind: FetchErrorKind, message: impl Into<String>) -> Self {
        FetchFailure {
            kind,
            message: message.into(),
        }
    }
}

/// The partner's answer.
#[derive(Debug, Clone)]
pub struct FetchResponse {
    /// HTTP status.
    pub status: u16,
    /// Header names (lower case) and values.
    pub headers: Vec<(String, String)>,
    /// The body (at most the response cap).
    pub body: Vec<u8>,
}

/// Resolves names with the system resolver, then refuses addresses the policy forbids:
/// checking the resolved address is what stops a DNS name from pointing at 127.0.0.1
/// or the metadata service.
#[derive(Debug)]
struct CheckedResolver {
    policy: Arc<FetchPolicy>,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refusal = None;
            let allowed: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| match policy.check_address(&host, a.ip()) {
                    Ok(()) => true,
                    Err(r) => {
                        refusal.get_or_insert(r);
                        false
                    }
                })
                .collect();
            match (allowed.is_empty(), refusal) {
                (true, Some(r)) => Err(Box::new(r) as Box<dyn StdError + Send + Sync>),
                _ => Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs),
            }
        })
    }
}

/// Resolves every name to one mapping target's addresses: the client that uses it
/// serves only requests mapped to that target, so the name in their URL (kept for TLS)
/// must lead there and nowhere else.
#[derive(Debug)]
struct TargetResolver {
    addrs: Vec<SocketAddr>,
}

impl reqwest::dns::Resolve for TargetResolver {
    fn resolve(&self, _name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let addrs = self.addrs.clone();
        Box::pin(async move { Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs) })
    }
}

/// The host (and port, when not the default) of a URL, as refusals name it.
fn shown_host(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    }
}

impl FetchClient {
    /// A client that only reaches what `policy` allows, and its mapped hosts' targets.
    pub fn new(policy: FetchPolicy) -> Result<FetchClient, reqwest::Error> {
        let policy = Arc::new(policy);
        let redirect_policy = policy.clone();
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            // Proxies from the environment would bypass the address checks.
            .no_proxy()
            .dns_resolver(Arc::new(CheckedResolver {
                policy: policy.clone(),
            }))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() > MAX_REDIRECTS {
                    return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
                }
                // Followed here, a redirect to a mapped host would reach the real host.
                if redirect_policy.mapping_for(attempt.url()).is_some() {
                    let location = shown_host(attempt.url());
                    return attempt.error(Refusal::MappedRedirect {
                        location,
                        reason: "it is a mapped host (--map-host)",
                    });
                }
                match redirect_policy.check_url(attempt.url()) {
                    Ok(()) => attempt.follow(),
                    Err(refusal) => attempt.error(refusal),
                }
            }))
            .build()?;
        let mut mapped: Vec<(Vec<SocketAddr>, reqwest::Client)> = Vec::new();
        for mapping in policy.map().mappings() {
            let addrs = mapping.target().addrs();
            if !mapped.iter().any(|(a, _)| *a == addrs) {
                let client = mapped_client(addrs.clone())?;
                mapped.push((addrs, client));
            }
        }
        Ok(FetchClient {
            client,
            mapped: mapped.into(),
            policy,
        })
    }

    /// The client for requests mapped to `target` (built for every target in `new`; the
    /// fallback is never taken, and would still reach only the target's address).
    fn client_for(&self, target: &MapTarget) -> &reqwest::Client {
        let addrs = target.addrs();
        self.mapped
            .iter()
            .find(|(a, _)| *a == addrs)
            .map_or(&self.client, |(_, c)| c)
    }

    /// Where a request for `url` is sent when a host mapping applies to it, as the
    /// request trace shows it (`http://127.0.0.1:9000`); `None` when it is not mapped.
    pub fn sent_to(&self, url: &str) -> Option<String> {
        if self.policy.map().is_empty() {
            return None;
        }
        let url: reqwest::Url = url.parse().ok()?;
        let mapping = self.policy.mapping_for(&url)?;
        Some(mapping.target().sent_to(url.scheme()))
    }

    /// Performs one request within `timeout`, reading at most `max_body` response bytes.
    pub async fn send(
        &self,
        head: &FetchRequestHead,
        body: Vec<u8>,
        timeout: Duration,
        max_body: usize,
    ) -> Result<FetchResponse, FetchFailure> {
        let invalid = |m: String| FetchFailure::new(FetchErrorKind::Invalid, m);
        let url: reqwest::Url = head
            .url
            .parse()
            .map_err(|e| invalid(format!("{:?} is not a valid URL: {e}", head.url)))?;
        // Mapped: allowed, and sent to the target with the original `Host`.
        let mapping = self.policy.mapping_for(&url);
        if mapping.is_none() {
            self.policy
                .check_url(&url)
                .map_err(|r| FetchFailure::new(refusal_kind(&r), r.to_string()))?;
        }
        let method = reqwest::Method::from_bytes(head.method.as_bytes())
            .map_err(|_| invalid(format!("{:?} is not an HTTP method", head.method)))?;
        // For a mapped request: the function's URL and where it is sent, to word errors.
        let mut mapped: Option<(reqwest::Url, String)> = None;
        let mut request = match mapping {
            Some(mapping) => {
                let routed = mapping.route(&url);
                let host = reqwest::header::HeaderValue::from_str(&routed.host_header)
                    .map_err(|_| invalid(format!("{url}: the host is not a valid header")))?;
                mapped = Some((url.clone(), mapping.target().sent_to(url.scheme())));
                self.client_for(mapping.target())
                    .request(method, routed.url)
                    .header(reqwest::header::HOST, host)
            }
            None => self.client.request(method, url),
        };
        request = request.timeout(timeout).body(body);
        for (name, value) in &head.headers {
            if HOST_OWNED_HEADERS
                .iter()
                .any(|h| h.eq_ignore_ascii_case(name))
            {
                return Err(invalid(format!(
                    "header {name:?} is set by the host, not the function"
                )));
            }
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| invalid(format!("{name:?} is not a valid header name")))?;
            let value = reqwest::header::HeaderValue::from_str(value)
                .map_err(|_| invalid(format!("the value of header {name} is not valid")))?;
            request = request.header(name, value);
        }
        // Errors of a mapped request name the URL the function asked for (not the
        // rewritten one) and say where it was sent.
        let failed = |e: reqwest::Error| match &mapped {
            None => failure_of(&e, timeout),
            Some((url, sent_to)) => {
                let mut failure = failure_of(&e.with_url(url.clone()), timeout);
                if failure.kind == FetchErrorKind::Network {
                    failure.message = format!("{} (mapped to {sent_to})", failure.message);
                }
                failure
            }
        };
        let mut response = tokio::time::timeout(timeout, request.send())
            .await
            .map_err(|_| timed_out(timeout))?
            .map_err(failed)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        if response
            .content_length()
            .is_some_and(|n| n > max_body as u64)
        {
            return Err(too_large(max_body));
        }
        let mut body = Vec::new();
        loop {
            match tokio::time::timeout(timeout, response.chunk()).await {
                Err(_) => return Err(timed_out(timeout)),
                Ok(Err(e)) => return Err(failed(e)),
                Ok(Ok(None)) => break,
                Ok(Ok(Some(chunk))) => {
                    if body.len() + chunk.len() > max_body {
                        return Err(too_large(max_body));
                    }
                    body.extend_from_slice(&chunk);
                }
            }
        }
        Ok(FetchResponse {
            status,
            headers,
            body,
        })
    }
}

/// The client for requests mapped to one target: it connects only to `addrs` (the
/// name in a TLS URL is resolved to them), speaks HTTP/1.1 so the `Host` header is the
/// one the server reads, and follows redirects only within the target (a relative
/// `Location`); a redirect anywhere else is refused, since it would not be mapped.
fn mapped_client(addrs: Vec<SocketAddr>) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .no_proxy()
        .http1_only()
        .dns_resolver(Arc::new(TargetResolver { addrs }))
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
            }
            let within = attempt.previous().first().is_some_and(|first| {
                first.scheme() == attempt.url().scheme()
                    && first.host() == attempt.url().host()
                    && first.port_or_known_default() == attempt.url().port_or_known_default()
            });
            if within {
                attempt.follow()
            } else {
                let location = shown_host(attempt.url());
                attempt.error(Refusal::MappedRedirect {
                    location,
                    reason: "it leaves the local target of a mapped request",
                })
            }
        }))
        .build()
}

fn refusal_kind(refusal: &Refusal) -> FetchErrorKind {
    match refusal {
        Refusal::BadUrl(_) => FetchErrorKind::Invalid,
        Refusal::NotAllowed { .. }
        | Refusal::PrivateAddress { .. }
        | Refusal::MappedRedirect { .. } => FetchErrorKind::Denied,
    }
}

fn timed_out(timeout: Duration) -> FetchFailure {
    FetchFailure::new(
        FetchErrorKind::Timeout,
        format!(
            "no response within the {} ms left of the invocation's deadline",
            timeout.as_millis()
        ),
    )
}

fn too_large(max: usize) -> FetchFailure {
    FetchFailure::new(
        FetchErrorKind::Limit,
        format!(
            "the response body exceeds the limit of {}",
            crate::limits::bytes(max)
        ),
    )
}

/// Turns a client error into a failure kind, finding a policy refusal in its causes.
fn failure_of(error: &reqwest::Error, timeout: Duration) -> FetchFailure {
    let mut source: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(refusal) = e.downcast_ref::<Refusal>() {
            return FetchFailure::new(refusal_kind(refusal), refusal.to_string());
        }
        source = e.source();
    }
    if error.is_timeout() {
        return timed_out(timeout);
    }
    // The chain carries the useful part ("connection refused", "dns error: ...").
    let mut message = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        cause = c.source();
    }
    FetchFailure::new(FetchErrorKind::Network, message)
}

/// One outbound call as the request trace shows it. Secrets are redacted when the
/// report is built.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TraceEntry {
    /// HTTP method.
    pub method: String,
    /// The URL as requested.
    pub url: String,
    /// Where the request was sent when a host mapping (`--map-host`) applied: the
    /// scheme used and the target, e.g. `http://127.0.0.1:9000`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_to: Option<String>,
    /// The response status, or `None` when there was no response.
    pub status: Option<u16>,
    /// From the call to the end of the response body.
    pub duration_ms: f64,
    /// Request body size.
    pub request_bytes: usize,
    /// Response body size.
    pub response_bytes: usize,
    /// Why there was no response (`denied`, `timeout`, ...), with the message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Request headers (test mode only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_headers: Option<Vec<(String, String)>>,
    /// Request body as text, truncated (test mode only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_body: Option<String>,
    /// Response body as text, truncated (test mode only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_body: Option<String>,
}

/// Bodies shown in test mode are cut here (Segment's tester shows similar excerpts).
const TRACE_BODY_BYTES: usize = 4096;
/// URLs and error messages in the trace are cut here.
const TRACE_URL_BYTES: usize = 2048;
/// Request headers shown per call.
const TRACE_HEADERS: usize = 64;

impl TraceEntry {
    /// Records a call with secrets redacted, then every part cut to a bounded size
    /// (redacting first, so a cut cannot leave part of a secret).
    pub(crate) fn record(
        head: &FetchRequestHead,
        sent_to: Option<&str>,
        request_body: &[u8],
        started: Instant,
        result: &Result<FetchResponse, FetchFailure>,
        redactor: &Redactor,
        capture_bodies: bool,
    ) -> TraceEntry {
        let text =
            |bytes: &[u8], max: usize| cut(&redactor.redact(&String::from_utf8_lossy(bytes)), max);
        TraceEntry {
            method: traced_method(&head.method),
            url: traced_url(&head.url, redactor),
            sent_to: sent_to.map(|s| text(s.as_bytes(), TRACE_URL_BYTES)),
            status: result.as_ref().ok().map(|r| r.status),
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
            request_bytes: request_body.len(),
            response_bytes: result.as_ref().map_or(0, |r| r.body.len()),
            error: result.as_ref().err().map(|f| {
                text(
                    format!("{}: {}", f.kind.as_str(), f.message).as_bytes(),
                    TRACE_URL_BYTES,
                )
            }),
            request_headers: capture_bodies.then(|| {
                head.headers
                    .iter()
                    .take(TRACE_HEADERS)
                    .map(|(n, v)| (cut(n, 256), cut(&redactor.header(n, v), 1024)))
                    .collect()
            }),
            request_body: capture_bodies.then(|| text(request_body, TRACE_BODY_BYTES)),
            response_body: match result {
                Ok(r) if capture_bodies => Some(text(&r.body, TRACE_BODY_BYTES)),
                _ => None,
            },
        }
    }
}

/// A request's URL as traces show it (the report's and a `fetch` span's): redacted,
/// then cut, so a cut cannot leave part of a secret.
pub(crate) fn traced_url(url: &str, redactor: &Redactor) -> String {
    cut(&redactor.redact(url), TRACE_URL_BYTES)
}

/// A request's method as traces show it.
pub(crate) fn traced_method(method: &str) -> String {
    cut(method, 32)
}

/// `text` cut to at most `max` bytes on a character boundary, saying how much was cut.
fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} more bytes)", &text[..end], text.len() - end)
}
