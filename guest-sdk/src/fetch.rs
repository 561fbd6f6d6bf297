//! `fetch`: outbound HTTP requests, performed by the host under its allow-list and limits.

use crate::abi::{self, FetchErrorKind, FetchRequestHead, FetchResponseHead};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;

/// An outbound HTTP request. Build it, then [`fetch`] it.
///
/// ```
/// use segfn_sdk::Request;
/// let req = Request::post("https://api.example.com/v1/events")
///     .bearer_auth("secret")
///     .json(&serde_json::json!({"event": "Signed Up"}))?;
/// assert_eq!(req.header_value("content-type"), Some("application/json"));
/// # Ok::<(), segfn_sdk::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// HTTP method, upper case.
    pub method: String,
    /// Absolute `http` or `https` URL.
    pub url: String,
    /// Header names and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body, possibly empty.
    pub body: Vec<u8>,
}

impl Request {
    /// A request with any method.
    pub fn new(method: impl Into<String>, url: impl Into<String>) -> Request {
        Request {
            method: method.into().to_ascii_uppercase(),
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
    /// `GET url`.
    pub fn get(url: impl Into<String>) -> Request {
        Request::new("GET", url)
    }
    /// `POST url`.
    pub fn post(url: impl Into<String>) -> Request {
        Request::new("POST", url)
    }
    /// `PUT url`.
    pub fn put(url: impl Into<String>) -> Request {
        Request::new("PUT", url)
    }
    /// `PATCH url`.
    pub fn patch(url: impl Into<String>) -> Request {
        Request::new("PATCH", url)
    }
    /// `DELETE url`.
    pub fn delete(url: impl Into<String>) -> Request {
        Request::new("DELETE", url)
    }

    /// Adds a header (names may repeat).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Request {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// `Authorization: Bearer <token>`.
    pub fn bearer_auth(self, token: &str) -> Request {
        self.header("authorization", format!("Bearer {token}"))
    }

    /// `Authorization: Basic base64(user:password)`.
    pub fn basic_auth(self, user: &str, password: &str) -> Request {
        let encoded = crate::encoding::base64(format!("{user}:{password}").as_bytes());
        self.header("authorization", format!("Basic {encoded}"))
    }

    /// Sets a JSON body and `content-type: application/json`. Fails (a bad request)
    /// only when `body` cannot be JSON: a map with non-string keys, or a `Serialize`
    /// implementation that fails.
    pub fn json<T: Serialize + ?Sized>(self, body: &T) -> Result<Request, crate::Error> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| crate::Error::Other(format!("the request body is not JSON: {e}")))?;
        Ok(self
            .replace_header("content-type", "application/json")
            .body(bytes))
    }

    /// Sets a form body, `pairs` written by [`encoding::form`](crate::encoding::form) (as
    /// `URLSearchParams` writes them), and `content-type:
    /// application/x-www-form-urlencoded`: JavaScript's `.type('form').send(obj)`.
    ///
    /// ```
    /// use segfn_sdk::Request;
    /// let req = Request::post("https://www.google-analytics.com/collect")
    ///     .form([("v", "1"), ("dp", "/a b")]);
    /// assert_eq!(req.header_value("content-type"), Some("application/x-www-form-urlencoded"));
    /// assert_eq!(req.body, b"v=1&dp=%2Fa+b");
    /// ```
    pub fn form<K: AsRef<str>, V: AsRef<str>>(
        self,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Request {
        self.replace_header("content-type", "application/x-www-form-urlencoded")
            .body(crate::encoding::form(pairs))
    }

    /// Sets a text body and `content-type: text/plain; charset=utf-8` unless one is set.
    pub fn text(self, body: impl Into<String>) -> Request {
        let req = if self.header_value("content-type").is_none() {
            self.header("content-type", "text/plain; charset=utf-8")
        } else {
            self
        };
        req.body(body.into().into_bytes())
    }

    /// Sets a raw body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = body.into();
        self
    }

    /// The first value of a header (case-insensitive name).
    pub fn header_value(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    fn replace_header(mut self, name: &str, value: &str) -> Request {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.header(name, value)
    }

    /// Sends the request: the same as [`fetch`]`(self)`.
    pub fn send(self) -> Result<Response, FetchError> {
        fetch(self)
    }

    /// The request as the `fetch` import takes it: a frame of its head and its body.
    pub(crate) fn to_frame(&self) -> Vec<u8> {
        let head = FetchRequestHead {
            method: self.method.clone(),
            url: self.url.clone(),
            headers: self.headers.clone(),
        };
        abi::encode_frame(&head, &self.body)
    }

    /// The request in a frame made by [`Request::to_frame`], as the host reads it.
    #[cfg(not(target_family = "wasm"))]
    pub(crate) fn from_frame(frame: &[u8]) -> Result<Request, String> {
        let (head, body) = abi::decode_frame::<FetchRequestHead>(frame)?;
        Ok(Request {
            method: head.method,
            url: head.url,
            headers: head.headers,
            body: body.to_vec(),
        })
    }
}

/// The partner's answer.
///
/// ```
/// use segfn_sdk::Response;
///
/// // In a test: what the stubbed partner answers.
/// let r = Response::with_json(200, &serde_json::json!({"id": 7})).header("x-request-id", "r-1");
/// assert!(r.ok());
/// assert_eq!(r.header_value("X-Request-Id"), Some("r-1"));
/// assert_eq!(r.json::<serde_json::Value>().unwrap()["id"], 7);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The URL of the request it answers (empty for one built in a test and not fetched).
    pub url: String,
    /// HTTP status code.
    pub status: u16,
    /// Header names (lower case) and values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with a status and empty body (for tests).
    pub fn new(status: u16) -> Response {
        Response {
            url: String::new(),
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
    /// A response with a JSON body (for tests).
    pub fn with_json<T: Serialize + ?Sized>(status: u16, body: &T) -> Response {
        Response {
            url: String::new(),
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: serde_json::to_vec(body).unwrap_or_default(),
        }
    }
    /// A response with a text body and its `content-type` (for tests): an HTML error
    /// page, a CSV export, a plain `OK`.
    ///
    /// ```
    /// use segfn_sdk::Response;
    ///
    /// let page = Response::with_text(502, "text/html", "<html><body>Bad Gateway</body></html>");
    /// assert_eq!(page.header_value("Content-Type"), Some("text/html"));
    /// assert!(page.json::<serde_json::Value>().is_err());
    /// ```
    pub fn with_text(status: u16, content_type: &str, text: impl Into<String>) -> Response {
        Response {
            body: text.into().into_bytes(),
            ..Response::new(status)
        }
        .header("content-type", content_type)
    }

    /// Adds a header (for tests), as [`Request::header`] does.
    pub fn header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// Status 200–299.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The usual reading of a partner's answer: a 2xx response is returned; 408, 423,
    /// 429 and 5xx other than 501 are a `RetryError` (Segment delivers the event again);
    /// any other status rejects the event with a `ValidationError` naming the status and
    /// the start of the body.
    ///
    /// ```
    /// use segfn_sdk::{OutcomeKind, Response};
    ///
    /// assert!(Response::new(201).error_for_status().is_ok());
    /// assert_eq!(Response::new(503).error_for_status().unwrap_err().kind(), OutcomeKind::Retry);
    /// let rejected = Response::with_json(400, &"bad email").error_for_status().unwrap_err();
    /// assert_eq!(rejected.class(), "ValidationError");
    /// assert!(rejected.message().contains("400"));
    /// ```
    pub fn error_for_status(self) -> Result<Response, crate::Error> {
        match self.status {
            200..=299 => Ok(self),
            408 | 423 | 429 | 500 | 502..=599 => Err(crate::Error::RetryError(format!(
                "partner answered {}",
                self.status
            ))),
            status => {
                let text = self.text();
                let mut cut = text.len().min(200);
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                Err(crate::Error::ValidationError(format!(
                    "partner rejected the event ({status}): {}",
                    &text[..cut]
                )))
            }
        }
    }
    /// The first value of a header (case-insensitive name), as [`Request::header_value`].
    pub fn header_value(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The body parsed as JSON (with [`crate::json::from_slice`]). The error names the
    /// URL, the status and what the body begins with, as node-fetch's does: an HTML
    /// error page in place of the partner's JSON is then plain to see.
    ///
    /// ```
    /// use segfn_sdk::{Request, Response, fetch, testing};
    ///
    /// testing::mock_fetch(|_| Ok(Response::with_text(502, "text/html", "<html>Bad Gateway</html>")));
    /// let answer = fetch(Request::get("https://api.partner.example/v1/users/7")).unwrap();
    /// let error = answer.json::<serde_json::Value>().unwrap_err();
    /// assert_eq!(
    ///     error.to_string(),
    ///     "the response from https://api.partner.example/v1/users/7 (502) is not JSON: it begins `<html>Bad Gateway</html>`"
    /// );
    /// ```
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, BodyError> {
        crate::json::from_slice(&self.body).map_err(|source| {
            let text = String::from_utf8_lossy(&self.body);
            let found: String = text.trim_start().chars().take(BodyError::SHOWN).collect();
            BodyError {
                url: self.url.clone(),
                status: self.status,
                found,
                truncated: text.trim_start().chars().nth(BodyError::SHOWN).is_some(),
                source,
            }
        })
    }
    /// The body.
    pub fn bytes(&self) -> &[u8] {
        &self.body
    }
}

/// A response's body is not the JSON expected ([`Response::json`]): names the request's
/// URL, the status and the start of the body; the parser's error is its source. With
/// `?` in a handler it is a bad request carrying all of it.
#[derive(Debug)]
pub struct BodyError {
    /// The request's URL.
    pub url: String,
    /// The response's status.
    pub status: u16,
    /// The start of the body, as text.
    pub found: String,
    truncated: bool,
    source: serde_json::Error,
}

impl BodyError {
    /// Characters of the body an error shows.
    const SHOWN: usize = 60;
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = if self.url.is_empty() {
            "the partner"
        } else {
            &self.url
        };
        let more = if self.truncated { "..." } else { "" };
        if self.found.is_empty() {
            write!(
                f,
                "the response from {url} ({}) is empty, not JSON",
                self.status
            )
        } else if self.source.is_syntax() || self.source.is_eof() {
            write!(
                f,
                "the response from {url} ({}) is not JSON: it begins `{}{more}`",
                self.status, self.found
            )
        } else {
            write!(
                f,
                "the response from {url} ({}) is not the JSON expected: {}",
                self.status, self.source
            )
        }
    }
}

/// `?` in a handler: a bad request carrying the whole message, as for other errors.
impl From<BodyError> for crate::Error {
    fn from(error: BodyError) -> crate::Error {
        crate::Error::Other(format!("{error}: {}", error.source))
    }
}

impl std::error::Error for BodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Why a fetch produced no response. A value the function can act on: for example
/// `Err(e) if e.is_retryable() => Err(Error::retry(...))`. With `?` it converts to a
/// `RetryError` when retryable and to a bad request otherwise.
///
/// ```
/// use segfn_sdk::{Error, FetchError, OutcomeKind};
///
/// let timeout = FetchError::timeout("the partner took too long");
/// assert_eq!(Error::from(timeout).kind(), OutcomeKind::Retry);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchError {
    /// What went wrong.
    pub kind: FetchErrorKind,
    /// Names the problem (and, for `Denied`, the fix).
    pub message: String,
}

impl FetchError {
    /// A fetch error of any kind (for tests that stub `fetch`).
    pub fn new(kind: FetchErrorKind, message: impl Into<String>) -> FetchError {
        FetchError {
            kind,
            message: message.into(),
        }
    }
    /// The deadline or the request's timeout passed.
    pub fn timeout(message: impl Into<String>) -> FetchError {
        FetchError::new(FetchErrorKind::Timeout, message)
    }
    /// The connection failed.
    pub fn network(message: impl Into<String>) -> FetchError {
        FetchError::new(FetchErrorKind::Network, message)
    }
    /// The host refused the request (a host not on the allow-list, or a limit).
    pub fn denied(message: impl Into<String>) -> FetchError {
        FetchError::new(FetchErrorKind::Denied, message)
    }

    /// A timeout or network failure: worth trying again later.
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind, FetchErrorKind::Timeout | FetchErrorKind::Network)
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fetch failed ({}): {}", self.kind.as_str(), self.message)
    }
}

impl std::error::Error for FetchError {}

impl From<FetchError> for crate::Error {
    fn from(e: FetchError) -> crate::Error {
        if e.is_retryable() {
            crate::Error::RetryError(e.to_string())
        } else {
            crate::Error::Other(e.to_string())
        }
    }
}

/// Performs an HTTP request through the host. Blocks the function until the response
/// arrives, the request fails, or the invocation's deadline passes.
///
/// ```
/// use segfn_sdk::{Request, Response, fetch, testing};
///
/// testing::mock_fetch(|_| Ok(Response::new(202)));
/// let response = fetch(Request::get("https://api.partner.example/v1/ping"))?;
/// assert_eq!(response.status, 202);
/// # Ok::<(), segfn_sdk::FetchError>(())
/// ```
pub fn fetch(request: Request) -> Result<Response, FetchError> {
    decode_response(&crate::sys::fetch(&request.to_frame()), &request.url)
}

/// Sends several requests at once and returns their outcomes in the same order: the
/// host runs them concurrently (a few at a time), so a batch handler that calls the
/// partner once per event waits for the slowest request, not for the sum of them.
/// Each request counts as one fetch against the invocation's limit.
///
/// ```no_run
/// # use segfn_sdk::{Request, fetch_all};
/// let responses = fetch_all(["a", "b"].map(|id| Request::get(format!("https://api.partner.example/users/{id}"))));
/// for response in responses {
///     let status = response.map(|r| r.status);
/// }
/// ```
pub fn fetch_all(requests: impl IntoIterator<Item = Request>) -> Vec<Result<Response, FetchError>> {
    let (frames, urls): (Vec<Vec<u8>>, Vec<String>) =
        requests.into_iter().map(|r| (r.to_frame(), r.url)).unzip();
    if frames.is_empty() {
        return Vec::new();
    }
    let count = frames.len();
    let answer = crate::sys::fetch_all(&abi::encode_frames(&frames));
    match abi::decode_frames(&answer) {
        Ok(responses) if responses.len() == count => responses
            .into_iter()
            .zip(&urls)
            .map(|(frame, url)| decode_response(frame, url))
            .collect(),
        Ok(responses) => malformed(
            count,
            &format!("{} responses for {count} requests", responses.len()),
        ),
        Err(e) => malformed(count, &e),
    }
}

fn malformed(count: usize, problem: &str) -> Vec<Result<Response, FetchError>> {
    (0..count)
        .map(|_| {
            Err(FetchError {
                kind: FetchErrorKind::Invalid,
                message: format!("the host's response list is malformed: {problem}"),
            })
        })
        .collect()
}

/// Reads the response frame the `fetch` import returns.
fn decode_response(frame: &[u8], url: &str) -> Result<Response, FetchError> {
    match abi::decode_frame::<FetchResponseHead>(frame) {
        Ok((FetchResponseHead::Ok { status, headers }, body)) => Ok(Response {
            url: url.to_owned(),
            status,
            headers,
            body: body.to_vec(),
        }),
        Ok((FetchResponseHead::Err { kind, message }, _)) => Err(FetchError { kind, message }),
        Err(e) => Err(FetchError {
            kind: FetchErrorKind::Invalid,
            message: format!("the host's response frame is malformed: {e}"),
        }),
    }
}

/// The response frame the host would write for `answer`; native stubs answer with it.
#[cfg(not(target_family = "wasm"))]
pub(crate) fn encode_response(answer: &Result<Response, FetchError>) -> Vec<u8> {
    match answer {
        Ok(response) => {
            let head = FetchResponseHead::Ok {
                status: response.status,
                headers: response.headers.clone(),
            };
            abi::encode_frame(&head, &response.body)
        }
        Err(error) => {
            let head = FetchResponseHead::Err {
                kind: error.kind,
                message: error.message.clone(),
            };
            abi::encode_frame(&head, &[])
        }
    }
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_name_the_url_the_status_and_what_was_found() {
        let at = |r: Response| Response {
            url: "https://api.partner.example/v1/users".into(),
            ..r
        };
        let html = at(Response::with_text(
            503,
            "text/html",
            format!("<html>{}</html>", "x".repeat(100)),
        ));
        let e = html.json::<serde_json::Value>().unwrap_err();
        assert_eq!(e.status, 503);
        assert!(
            e.to_string().starts_with(
                "the response from https://api.partner.example/v1/users (503) is not JSON: it begins `<html>xxx"
            ),
            "{e}"
        );
        assert!(e.to_string().ends_with("...`"), "{e}");
        let handler = crate::Error::from(e);
        assert!(
            handler
                .message()
                .contains("expected value at line 1 column 1"),
            "the parser's own words stay: {handler:?}"
        );
        let empty = at(Response::new(204))
            .json::<serde_json::Value>()
            .unwrap_err();
        assert!(
            empty.to_string().ends_with("(204) is empty, not JSON"),
            "{empty}"
        );
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct User {
            id: u64,
        }
        let wrong = at(Response::with_json(
            200,
            &serde_json::json!({"id": "seven"}),
        ));
        let e = wrong.json::<User>().unwrap_err();
        assert!(
            e.to_string()
                .contains("(200) is not the JSON expected: invalid type: string"),
            "{e}"
        );
    }

    #[test]
    fn builder_sets_headers_once() {
        let r = Request::post("u")
            .header("Content-Type", "text/xml")
            .json(&1)
            .unwrap();
        assert_eq!(
            r.headers,
            vec![("content-type".to_string(), "application/json".to_string())]
        );
        assert_eq!(r.body, b"1");
        let r = Request::post("u").basic_auth("key", "");
        assert_eq!(r.header_value("Authorization"), Some("Basic a2V5Og=="));
        let r = Request::post("u")
            .header("Content-Type", "text/plain")
            .form([("a&b", "c d")]);
        assert_eq!(
            r.headers,
            vec![(
                "content-type".to_string(),
                "application/x-www-form-urlencoded".to_string()
            )]
        );
        assert_eq!(r.body, b"a%26b=c+d");
    }

    #[test]
    fn fetch_errors_convert_by_kind() {
        let timeout = FetchError {
            kind: FetchErrorKind::Timeout,
            message: "t".into(),
        };
        assert_eq!(
            crate::Error::from(timeout).kind(),
            crate::OutcomeKind::Retry
        );
        let denied = FetchError {
            kind: FetchErrorKind::Denied,
            message: "d".into(),
        };
        assert_eq!(
            crate::Error::from(denied).kind(),
            crate::OutcomeKind::BadRequest
        );
    }
}
