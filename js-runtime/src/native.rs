//! The Rust half of the globals: the host's imports (log, fetch, clock, randomness) and
//! the byte work that crates do exactly (digests, HMAC, base64, UTF-8, WHATWG URLs, form
//! encoding), as functions on the hidden `__segfn_native` object that `js/prelude.js`
//! wraps. Bytes cross as "binary strings" (one char per byte, 0-255): QuickJS strings
//! of that kind are Latin-1 inside, and this keeps the interface to plain strings.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use rquickjs::convert::List;
use rquickjs::{Array, Ctx, Exception, Function, Object, Result};
use segfn_sdk::abi::LogLevel;
use sha2::Digest;

/// Defines `__segfn_native` on the global object.
pub(crate) fn install(ctx: &Ctx<'_>) -> Result<()> {
    let native = Object::new(ctx.clone())?;
    native.set(
        "log",
        Function::new(ctx.clone(), |level: i32, message: String| {
            segfn_sdk::log::write(LogLevel::from_i32(level), &message)
        })?,
    )?;
    native.set(
        "now",
        Function::new(ctx.clone(), || segfn_sdk::now_millis() as f64)?,
    )?;
    native.set(
        "random",
        Function::new(ctx.clone(), |len: usize| {
            let mut bytes = vec![0; len.min(1 << 20)];
            segfn_sdk::random_bytes(&mut bytes);
            to_binary(&bytes)
        })?,
    )?;
    native.set(
        "seed",
        // Math.random's state for one invocation: two 32-bit words, not both zero.
        Function::new(ctx.clone(), || {
            let mut bytes = [0; 8];
            segfn_sdk::random_bytes(&mut bytes);
            let word = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            let (s0, s1) = (word(&bytes[..4]), word(&bytes[4..]));
            List((s0, if s0 == 0 && s1 == 0 { 1 } else { s1 }))
        })?,
    )?;
    native.set("fetch", Function::new(ctx.clone(), fetch)?)?;
    native.set("fetchAll", Function::new(ctx.clone(), fetch_all)?)?;
    native.set("digest", Function::new(ctx.clone(), digest)?)?;
    native.set(
        "signCheck",
        Function::new(ctx.clone(), |ctx: Ctx<'_>, algorithm: String| {
            crate::sign::check(&algorithm)
                .map_err(|e| Exception::throw_message(&ctx, &e.to_string()))
        })?,
    )?;
    native.set(
        "sign",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'_>,
             algorithm: String,
             key: String,
             data: String,
             encoding: Option<String>| {
                crate::sign::DsaEncoding::parse(encoding.as_deref())
                    .and_then(|encoding| {
                        crate::sign::sign(&algorithm, &key, &from_binary(&data), encoding)
                    })
                    .map(|signature| to_binary(&signature))
                    .map_err(|e| Exception::throw_message(&ctx, &e.to_string()))
            },
        )?,
    )?;
    native.set(
        "verify",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'_>,
             algorithm: String,
             key: String,
             data: String,
             signature: String,
             encoding: Option<String>| {
                crate::sign::DsaEncoding::parse(encoding.as_deref())
                    .and_then(|encoding| {
                        crate::sign::verify(
                            &algorithm,
                            &key,
                            &from_binary(&data),
                            &from_binary(&signature),
                            encoding,
                        )
                    })
                    .map_err(|e| Exception::throw_message(&ctx, &e.to_string()))
            },
        )?,
    )?;
    native.set("hmac", Function::new(ctx.clone(), hmac)?)?;
    native.set(
        "base64Encode",
        Function::new(ctx.clone(), |bytes: String, url: bool| {
            let bytes = from_binary(&bytes);
            if url {
                URL_SAFE_NO_PAD.encode(bytes)
            } else {
                STANDARD.encode(bytes)
            }
        })?,
    )?;
    native.set("base64Decode", Function::new(ctx.clone(), base64_decode)?)?;
    native.set(
        "utf8Encode",
        Function::new(ctx.clone(), |text: String| to_binary(text.as_bytes()))?,
    )?;
    native.set(
        "utf8Decode",
        Function::new(ctx.clone(), |bytes: String| {
            String::from_utf8_lossy(&from_binary(&bytes)).into_owned()
        })?,
    )?;
    native.set("headerName", Function::new(ctx.clone(), header_name)?)?;
    native.set("urlParse", Function::new(ctx.clone(), url_parse)?)?;
    native.set("urlHref", Function::new(ctx.clone(), url_href)?)?;
    native.set("urlSet", Function::new(ctx.clone(), url_set)?)?;
    native.set(
        "formParse",
        Function::new(ctx.clone(), |query: String| {
            let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".into())
        })?,
    )?;
    native.set(
        "formSerialize",
        Function::new(ctx.clone(), |pairs: String| {
            let pairs: Vec<(String, String)> = serde_json::from_str(&pairs).unwrap_or_default();
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish()
        })?,
    )?;
    native.set("deflate", Function::new(ctx.clone(), deflate)?)?;
    native.set("inflate", Function::new(ctx.clone(), inflate)?)?;
    ctx.globals().set("__segfn_native", native)?;
    Ok(())
}

/// `deflate(format, data, level)`: zlib's compression (`crate::zlib`); a failure throws
/// `CODE: message`, which the prelude turns into Node's error.
fn deflate(ctx: Ctx<'_>, format: String, data: String, level: i32) -> Result<String> {
    let format = zlib_format(&ctx, &format)?;
    crate::zlib::compress(format, &from_binary(&data), level)
        .map(|out| to_binary(&out))
        .map_err(|e| Exception::throw_message(&ctx, &e.to_string()))
}

/// `inflate(format, data, maxOutput)`: zlib's decompression, as [`deflate`].
fn inflate(ctx: Ctx<'_>, format: String, data: String, max_output: f64) -> Result<String> {
    let format = zlib_format(&ctx, &format)?;
    crate::zlib::decompress(format, &from_binary(&data), max_output as usize)
        .map(|out| to_binary(&out))
        .map_err(|e| Exception::throw_message(&ctx, &e.to_string()))
}

fn zlib_format(ctx: &Ctx<'_>, name: &str) -> Result<crate::zlib::Format> {
    crate::zlib::Format::parse(name)
        .ok_or_else(|| Exception::throw_message(ctx, &format!("no zlib format {name:?}")))
}

/// Bytes as a binary string.
fn to_binary(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

/// A binary string as bytes; characters above 255 keep their low byte, as Node's
/// `latin1` encoding does.
fn from_binary(text: &str) -> Vec<u8> {
    text.chars().map(|c| c as u32 as u8).collect()
}

/// `fetch(method, url, names, values, body)`: performs one request through the host.
/// Answers `[status, [[name, value], ...], body]`, or `[0, kind, message]` when it
/// failed (`FetchError`'s kind). Plain arguments and an array answer, not JSON: every
/// `JSON.stringify`/`JSON.parse` costs thousands of interpreted instructions.
fn fetch<'js>(
    ctx: Ctx<'js>,
    method: String,
    url: String,
    names: Vec<String>,
    values: Vec<String>,
    body: String,
) -> Result<Array<'js>> {
    let mut request = segfn_sdk::Request::new(method, url).body(from_binary(&body));
    request.headers = names.into_iter().zip(values).collect();
    answer(&ctx, segfn_sdk::fetch(request))
}

/// `fetchAll([[method, url, names, values, body], ...])`: the requests fetch made in one
/// turn of the event loop, sent together through the host's `fetch_all` (concurrently,
/// as Node sends them); one answer per request, each as [`fetch`] answers.
fn fetch_all<'js>(ctx: Ctx<'js>, sent: Vec<Array<'js>>) -> Result<Array<'js>> {
    let mut requests = Vec::with_capacity(sent.len());
    for one in sent {
        let names: Vec<String> = one.get(2)?;
        let values: Vec<String> = one.get(3)?;
        let body: String = one.get(4)?;
        let mut request = segfn_sdk::Request::new(one.get::<String>(0)?, one.get::<String>(1)?)
            .body(from_binary(&body));
        request.headers = names.into_iter().zip(values).collect();
        requests.push(request);
    }
    let answers = Array::new(ctx.clone())?;
    for (i, outcome) in segfn_sdk::fetch_all(requests).into_iter().enumerate() {
        answers.set(i, answer(&ctx, outcome)?)?;
    }
    Ok(answers)
}

/// A fetch's outcome as the prelude reads it.
fn answer<'js>(
    ctx: &Ctx<'js>,
    outcome: std::result::Result<segfn_sdk::Response, segfn_sdk::FetchError>,
) -> Result<Array<'js>> {
    let answer = Array::new(ctx.clone())?;
    match outcome {
        Ok(response) => {
            answer.set(0, response.status)?;
            let headers = Array::new(ctx.clone())?;
            for (i, pair) in response.headers.into_iter().enumerate() {
                headers.set(i, List(pair))?;
            }
            answer.set(1, headers)?;
            answer.set(2, to_binary(&response.body))?;
        }
        Err(error) => {
            answer.set(0, 0)?;
            answer.set(1, error.kind.as_str())?;
            answer.set(2, error.message)?;
        }
    }
    Ok(answer)
}

/// `digest(algorithm, data)`: md5, sha1, sha256, sha512 (also sha224, sha384).
fn digest(ctx: Ctx<'_>, algorithm: String, data: String) -> Result<String> {
    let data = from_binary(&data);
    let out = match algorithm.to_ascii_lowercase().as_str() {
        "md5" => md5::Md5::digest(&data).to_vec(),
        "sha1" => sha1::Sha1::digest(&data).to_vec(),
        "sha224" => sha2::Sha224::digest(&data).to_vec(),
        "sha256" => sha2::Sha256::digest(&data).to_vec(),
        "sha384" => sha2::Sha384::digest(&data).to_vec(),
        "sha512" => sha2::Sha512::digest(&data).to_vec(),
        other => return Err(unsupported(&ctx, other)),
    };
    Ok(to_binary(&out))
}

/// `hmac(algorithm, key, data)`.
fn hmac(ctx: Ctx<'_>, algorithm: String, key: String, data: String) -> Result<String> {
    fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
        // HMAC takes keys of any length: this never fails.
        let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key).ok()?;
        mac.update(data);
        Some(mac.finalize().into_bytes().to_vec())
    }
    let (key, data) = (from_binary(&key), from_binary(&data));
    let out = match algorithm.to_ascii_lowercase().as_str() {
        "md5" => run::<Hmac<md5::Md5>>(&key, &data),
        "sha1" => run::<Hmac<sha1::Sha1>>(&key, &data),
        "sha224" => run::<Hmac<sha2::Sha224>>(&key, &data),
        "sha256" => run::<Hmac<sha2::Sha256>>(&key, &data),
        "sha384" => run::<Hmac<sha2::Sha384>>(&key, &data),
        "sha512" => run::<Hmac<sha2::Sha512>>(&key, &data),
        other => return Err(unsupported(&ctx, other)),
    };
    out.map(|bytes| to_binary(&bytes))
        .ok_or_else(|| Exception::throw_message(&ctx, "Invalid key for HMAC"))
}

fn unsupported(ctx: &Ctx<'_>, algorithm: &str) -> rquickjs::Error {
    Exception::throw_message(
        ctx,
        &format!(
            "Digest method not supported: {algorithm} (md5, sha1, sha224, sha256, sha384, sha512 are)"
        ),
    )
}

/// `base64Decode(text, strict)`: standard or URL-safe alphabet, padding optional.
/// Lenient (Node's `Buffer.from(s, "base64")`) skips characters outside the alphabet;
/// strict (`atob`) throws on them.
fn base64_decode(ctx: Ctx<'_>, text: String, strict: bool) -> Result<String> {
    let mut clean: String = text
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .map(|c| match c {
            '-' if !strict => '+',
            '_' if !strict => '/',
            c => c,
        })
        .collect();
    if strict
        && clean
            .chars()
            .any(|c| !(c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '='))
    {
        return Err(Exception::throw_message(
            &ctx,
            "The string to be decoded is not correctly encoded.",
        ));
    }
    clean.retain(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/');
    // Leftover bits of a truncated last group are dropped, as Node does.
    if clean.len() % 4 == 1 {
        clean.pop();
    }
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone)
            .with_decode_allow_trailing_bits(true),
    );
    match engine.decode(clean.as_bytes()) {
        Ok(bytes) => Ok(to_binary(&bytes)),
        Err(e) => Err(Exception::throw_message(
            &ctx,
            &format!("The string to be decoded is not correctly encoded: {e}"),
        )),
    }
}

/// The parts of a URL as WHATWG's `URL` exposes them, as JSON.
fn url_json(url: &url::Url) -> String {
    let port = url.port().map(|p| p.to_string()).unwrap_or_default();
    let hostname = url.host_str().unwrap_or_default();
    let host = if port.is_empty() {
        hostname.to_owned()
    } else {
        format!("{hostname}:{port}")
    };
    // WHATWG's `search` and `hash` are empty for an empty query or fragment.
    let part = |prefix: char, value: Option<&str>| {
        value
            .filter(|v| !v.is_empty())
            .map(|v| format!("{prefix}{v}"))
            .unwrap_or_default()
    };
    serde_json::json!({
        "href": url.as_str(),
        "origin": url.origin().ascii_serialization(),
        "protocol": format!("{}:", url.scheme()),
        "username": url.username(),
        "password": url.password().unwrap_or_default(),
        "host": host,
        "hostname": hostname,
        "port": port,
        "pathname": url.path(),
        "search": part('?', url.query()),
        "hash": part('#', url.fragment()),
    })
    .to_string()
}

/// `new URL(input, base)`'s parse, or the `TypeError` it throws.
fn parse_url(ctx: &Ctx<'_>, input: &str, base: Option<&str>) -> Result<url::Url> {
    match base {
        Some(base) => url::Url::parse(base).and_then(|b| b.join(input)),
        None => url::Url::parse(input),
    }
    .map_err(|e| Exception::throw_type(ctx, &format!("Invalid URL: {input} ({e})")))
}

/// `urlParse(input, base)`: the parts, or a `TypeError` as `new URL` throws.
fn url_parse(ctx: Ctx<'_>, input: String, base: Option<String>) -> Result<String> {
    parse_url(&ctx, &input, base.as_deref()).map(|u| url_json(&u))
}

/// `urlHref(input)`: `new URL(input).href` without the other parts (a request's URL).
fn url_href(ctx: Ctx<'_>, input: String) -> Result<String> {
    parse_url(&ctx, &input, None).map(String::from)
}

/// `headerName(name)`: the name lower-cased, or `undefined` when it is not an HTTP token
/// (RFC 9110's `tchar`s; a string Rust cannot hold, with a lone surrogate, is not one
/// either). The prelude throws node-fetch's `TypeError`.
fn header_name(name: rquickjs::String<'_>) -> Option<String> {
    let name = name.to_string().ok()?;
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    (!name.is_empty() && name.bytes().all(token)).then(|| name.to_ascii_lowercase())
}

/// `urlSet(href, part, value)`: the parts after a setter; invalid values are ignored, as
/// WHATWG's setters do.
fn url_set(ctx: Ctx<'_>, href: String, part: String, value: String) -> Result<String> {
    let mut url =
        url::Url::parse(&href).map_err(|e| Exception::throw_type(&ctx, &e.to_string()))?;
    let strip = |v: &str, p: char| v.strip_prefix(p).unwrap_or(v).to_owned();
    match part.as_str() {
        "href" => {
            url = url::Url::parse(&value)
                .map_err(|e| Exception::throw_type(&ctx, &format!("Invalid URL: {value} ({e})")))?
        }
        "protocol" => {
            let _ = url.set_scheme(value.trim_end_matches(':'));
        }
        "username" => {
            let _ = url.set_username(&value);
        }
        "password" => {
            let _ = url.set_password(Some(&value).filter(|v| !v.is_empty()).map(|v| v.as_str()));
        }
        "host" => {
            let (host, port) = match value.rsplit_once(':') {
                Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => (h, p.parse().ok()),
                _ => (value.as_str(), None),
            };
            if url.set_host(Some(host)).is_ok() {
                let _ = url.set_port(port);
            }
        }
        "hostname" => {
            let _ = url.set_host(Some(&value));
        }
        "port" => {
            let _ = url.set_port(if value.is_empty() {
                None
            } else {
                value.parse().ok()
            });
        }
        "pathname" => url.set_path(&value),
        "search" => {
            let v = strip(&value, '?');
            url.set_query(if v.is_empty() { None } else { Some(&v) });
        }
        "hash" => {
            let v = strip(&value, '#');
            url.set_fragment(if v.is_empty() { None } else { Some(&v) });
        }
        _ => {}
    }
    Ok(url_json(&url))
}
