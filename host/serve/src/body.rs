//! Reading a delivery's body: refused by its declared length before a byte is read,
//! read within a time limit and a size cap, and decompressed (gzip or deflate, as
//! Segment's client libraries send with compression on) under the same cap.

use super::refusal::Refusal;
use axum::body::Body;
use axum::body::Bytes;
use axum::http::{HeaderMap, header};
use std::io::Read as _;
use std::time::Duration;

/// Compressed bodies larger than this are decompressed off the async workers.
const INLINE_DECOMPRESS: usize = 64 << 10;

/// How the body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Identity,
    Gzip,
    Deflate,
}

/// The `Content-Encoding`, or a 415 naming the ones accepted.
pub(crate) fn encoding(headers: &HeaderMap) -> Result<Encoding, Refusal> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(Encoding::Identity);
    };
    match value
        .to_str()
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        Ok("" | "identity") => Ok(Encoding::Identity),
        Ok("gzip" | "x-gzip") => Ok(Encoding::Gzip),
        Ok("deflate") => Ok(Encoding::Deflate),
        _ => Err(Refusal::MediaType(
            "Content-Encoding must be gzip, deflate or identity",
        )),
    }
}

/// A 413 when the declared length already exceeds the cap.
pub(crate) fn check_declared_length(headers: &HeaderMap, max: usize) -> Result<(), Refusal> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(n) if n > max as u64 => Err(too_large(max, "")),
        _ => Ok(()),
    }
}

fn too_large(max: usize, what: &str) -> Refusal {
    Refusal::TooLarge(format!(
        "the {what}body exceeds the limit of {}",
        segfn_engine::limits::bytes(max)
    ))
}

/// Reads the body (at most `max` bytes, within `timeout`) and decodes it (at most
/// `max` bytes decompressed).
pub(crate) async fn read(
    body: Body,
    encoding: Encoding,
    max: usize,
    timeout: Duration,
) -> Result<Bytes, Refusal> {
    let raw = match tokio::time::timeout(timeout, axum::body::to_bytes(body, max)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) if is_length_limit(&e) => return Err(too_large(max, "")),
        Ok(Err(_)) => {
            return Err(Refusal::BadRequest("the body could not be read".into()));
        }
        Err(_) => {
            return Err(Refusal::SlowBody(format!(
                "the body did not arrive within {} ms",
                timeout.as_millis()
            )));
        }
    };
    if encoding == Encoding::Identity {
        return Ok(raw);
    }
    if raw.len() <= INLINE_DECOMPRESS {
        decompress(&raw, encoding, max)
    } else {
        tokio::task::spawn_blocking(move || decompress(&raw, encoding, max))
            .await
            .map_err(|_| Refusal::Unavailable("decompressing the body failed; retry".into()))?
    }
}

/// Decompresses `raw`, refusing output beyond `max` bytes (a small gzip bomb is
/// stopped after `max + 1` bytes, not expanded).
fn decompress(raw: &[u8], encoding: Encoding, max: usize) -> Result<Bytes, Refusal> {
    let mut out = Vec::new();
    let limit = max as u64 + 1;
    let read = match encoding {
        Encoding::Gzip => flate2::read::MultiGzDecoder::new(raw)
            .take(limit)
            .read_to_end(&mut out),
        // HTTP's "deflate" is zlib-wrapped; some senders send it raw.
        Encoding::Deflate if raw.first().is_some_and(|b| b & 0x0f == 8) => {
            flate2::read::ZlibDecoder::new(raw)
                .take(limit)
                .read_to_end(&mut out)
        }
        Encoding::Deflate => flate2::read::DeflateDecoder::new(raw)
            .take(limit)
            .read_to_end(&mut out),
        Encoding::Identity => return Ok(Bytes::copy_from_slice(raw)),
    };
    match read {
        Ok(_) if out.len() > max => Err(too_large(max, "decompressed ")),
        Ok(_) => Ok(out.into()),
        Err(_) => Err(Refusal::BadRequest(
            "the body is not valid for its Content-Encoding".into(),
        )),
    }
}

/// Whether a body error is the size limit (and not a broken connection).
fn is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_and_both_deflates_decode() {
        let data = br#"{"type":"track","event":"E"}"#;
        assert_eq!(
            &decompress(&gzip(data), Encoding::Gzip, 1000).unwrap()[..],
            data
        );
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(data).unwrap();
        assert_eq!(
            &decompress(&z.finish().unwrap(), Encoding::Deflate, 1000).unwrap()[..],
            data
        );
        let mut d = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        d.write_all(data).unwrap();
        assert_eq!(
            &decompress(&d.finish().unwrap(), Encoding::Deflate, 1000).unwrap()[..],
            data
        );
    }

    #[test]
    fn a_bomb_stops_at_the_cap() {
        let bomb = gzip(&vec![b' '; 50 << 20]);
        assert!(bomb.len() < 100 << 10, "{}", bomb.len());
        let refusal = decompress(&bomb, Encoding::Gzip, 1 << 20).unwrap_err();
        assert_eq!(refusal.status(), axum::http::StatusCode::PAYLOAD_TOO_LARGE);
        assert!(
            refusal
                .message()
                .contains("decompressed body exceeds the limit of 1 MiB"),
            "{refusal:?}"
        );
        let refusal = decompress(b"not gzip", Encoding::Gzip, 1000).unwrap_err();
        assert_eq!(refusal.status(), axum::http::StatusCode::BAD_REQUEST);
    }
}
