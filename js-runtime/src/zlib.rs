//! Node's `zlib` one-shot functions, the byte work (flate2, pure Rust): gzip, zlib-wrapped
//! and raw deflate, compressed at a level and decompressed under an output cap, with
//! zlib's error codes so `js/prelude.js` can throw what Node throws.

use flate2::Compression;
use flate2::read::{DeflateDecoder, MultiGzDecoder, ZlibDecoder};
use flate2::write::{DeflateEncoder, ZlibEncoder};
use std::io::{Read, Write};

/// The container around the deflate stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// RFC 1952, as `gzipSync`/`gunzipSync` (concatenated members decompress as one).
    Gzip,
    /// RFC 1950, as `deflateSync`/`inflateSync`.
    Zlib,
    /// RFC 1951 alone, as `deflateRawSync`/`inflateRawSync`.
    Raw,
    /// gzip or zlib, told by the header, as `unzipSync` (decompression only).
    Auto,
}

impl Format {
    pub(crate) fn parse(name: &str) -> Option<Format> {
        Some(match name {
            "gzip" => Format::Gzip,
            "deflate" => Format::Zlib,
            "raw" => Format::Raw,
            "unzip" => Format::Auto,
            _ => return None,
        })
    }
}

/// A failure as zlib reports it: Node's `code` (`Z_DATA_ERROR`, `Z_BUF_ERROR`,
/// `ERR_BUFFER_TOO_LARGE`) and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ZlibError {
    pub code: &'static str,
    pub message: String,
}

impl std::fmt::Display for ZlibError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

fn data_error(message: &str) -> ZlibError {
    ZlibError {
        code: "Z_DATA_ERROR",
        message: message.into(),
    }
}

/// The first two bytes of every gzip member.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The gzip header's operating system byte zlib writes on Unix, as Node's output has.
const OS_UNIX: u8 = 3;

/// Compresses `data` at `level` (0-9; -1 is zlib's default, 6).
pub(crate) fn compress(format: Format, data: &[u8], level: i32) -> Result<Vec<u8>, ZlibError> {
    let level = match u32::try_from(level) {
        Ok(l) if l <= 9 => Compression::new(l),
        _ => Compression::default(),
    };
    // Writing into a Vec cannot fail.
    let written = match format {
        Format::Gzip => {
            let mut encoder = flate2::GzBuilder::new()
                .operating_system(OS_UNIX)
                .write(Vec::new(), level);
            encoder.write_all(data).and_then(|()| encoder.finish())
        }
        Format::Zlib | Format::Auto => {
            let mut encoder = ZlibEncoder::new(Vec::new(), level);
            encoder.write_all(data).and_then(|()| encoder.finish())
        }
        Format::Raw => {
            let mut encoder = DeflateEncoder::new(Vec::new(), level);
            encoder.write_all(data).and_then(|()| encoder.finish())
        }
    };
    written.map_err(|e| data_error(&e.to_string()))
}

/// Decompresses `data`, refusing more than `max_output` bytes of output.
pub(crate) fn decompress(
    format: Format,
    data: &[u8],
    max_output: usize,
) -> Result<Vec<u8>, ZlibError> {
    let format = match format {
        Format::Auto if data.starts_with(&GZIP_MAGIC) => Format::Gzip,
        Format::Auto => Format::Zlib,
        f => f,
    };
    // zlib: "unexpected end of file" for input that stops before the stream's end,
    // empty input included.
    let truncated = || ZlibError {
        code: "Z_BUF_ERROR",
        message: "unexpected end of file".into(),
    };
    if data.is_empty() {
        return Err(truncated());
    }
    if format == Format::Gzip && !data.starts_with(&GZIP_MAGIC) {
        return Err(data_error("incorrect header check"));
    }
    if format == Format::Zlib && !zlib_header_ok(data) {
        return Err(data_error("incorrect header check"));
    }
    let limit = max_output as u64 + 1;
    let mut out = Vec::new();
    let read = match format {
        Format::Gzip => MultiGzDecoder::new(data).take(limit).read_to_end(&mut out),
        Format::Zlib | Format::Auto => ZlibDecoder::new(data).take(limit).read_to_end(&mut out),
        Format::Raw => DeflateDecoder::new(data).take(limit).read_to_end(&mut out),
    };
    match read {
        Ok(_) if out.len() > max_output => Err(ZlibError {
            code: "ERR_BUFFER_TOO_LARGE",
            message: format!("Cannot create a Buffer larger than {max_output} bytes"),
        }),
        Ok(_) => Ok(out),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(truncated()),
        Err(e) => {
            let text = e.to_string();
            Err(data_error(if text.contains("checksum") {
                "incorrect data check"
            } else {
                "invalid compressed data"
            }))
        }
    }
}

/// A zlib header: deflate, a window of at most 32 KiB, and the check bits right.
fn zlib_header_ok(data: &[u8]) -> bool {
    match data {
        [cmf, flg, ..] => {
            cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &[u8] =
        b"{\"type\":\"track\",\"event\":\"Order Completed\",\"properties\":{\"total\":12.5}}";

    #[test]
    fn every_format_round_trips() {
        for format in [Format::Gzip, Format::Zlib, Format::Raw] {
            for level in [-1, 0, 1, 6, 9] {
                let packed = compress(format, TEXT, level).unwrap();
                assert_eq!(decompress(format, &packed, 1 << 20).unwrap(), TEXT);
            }
        }
        let gzip = compress(Format::Gzip, TEXT, -1).unwrap();
        let zlib = compress(Format::Zlib, TEXT, -1).unwrap();
        assert_eq!(decompress(Format::Auto, &gzip, 1 << 20).unwrap(), TEXT);
        assert_eq!(decompress(Format::Auto, &zlib, 1 << 20).unwrap(), TEXT);
    }

    #[test]
    fn the_gzip_header_is_zlibs() {
        let gzip = compress(Format::Gzip, TEXT, -1).unwrap();
        // Magic, deflate, no flags, no mtime, XFL 0 at the default level, Unix.
        assert_eq!(gzip[..10], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
        assert_eq!(compress(Format::Gzip, TEXT, 9).unwrap()[8], 2);
        assert_eq!(compress(Format::Gzip, TEXT, 1).unwrap()[8], 4);
    }

    #[test]
    fn concatenated_gzip_members_decompress_as_one() {
        let mut two = compress(Format::Gzip, b"abc", -1).unwrap();
        two.extend(compress(Format::Gzip, b"def", -1).unwrap());
        assert_eq!(decompress(Format::Gzip, &two, 1 << 20).unwrap(), b"abcdef");
    }

    #[test]
    fn bad_input_fails_as_zlib_says() {
        let code = |format, data: &[u8]| decompress(format, data, 1 << 20).unwrap_err();
        assert_eq!(
            code(Format::Gzip, b"hello").message,
            "incorrect header check"
        );
        assert_eq!(code(Format::Zlib, b"hello").code, "Z_DATA_ERROR");
        assert_eq!(code(Format::Gzip, b"").code, "Z_BUF_ERROR");
        let gzip = compress(Format::Gzip, TEXT, -1).unwrap();
        let cut = code(Format::Gzip, &gzip[..gzip.len() / 2]);
        assert_eq!(
            (cut.code, cut.message.as_str()),
            ("Z_BUF_ERROR", "unexpected end of file")
        );
        let zlib = compress(Format::Zlib, TEXT, -1).unwrap();
        assert_eq!(
            code(Format::Zlib, &zlib[..zlib.len() - 6]).code,
            "Z_BUF_ERROR"
        );
        let mut flipped = gzip.clone();
        let at = flipped.len() - 5;
        flipped[at] ^= 0xff;
        assert_eq!(code(Format::Gzip, &flipped).code, "Z_DATA_ERROR");
    }

    #[test]
    fn output_past_the_cap_is_refused() {
        let bomb = compress(Format::Gzip, &vec![0; 1 << 20], 9).unwrap();
        assert!(bomb.len() < 2048);
        let e = decompress(Format::Gzip, &bomb, 1000).unwrap_err();
        assert_eq!(e.code, "ERR_BUFFER_TOO_LARGE");
        assert_eq!(
            decompress(Format::Gzip, &bomb, 1 << 20).unwrap().len(),
            1 << 20
        );
    }
}
