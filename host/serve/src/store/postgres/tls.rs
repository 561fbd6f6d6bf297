//! TLS to PostgreSQL, as libpq's `sslmode` means it: `disable` and `prefer` (the
//! default) connect without TLS; `require` encrypts without authenticating the server
//! (libpq's meaning when no root certificate is given); `verify-ca` also checks that the
//! server's certificate chains to a trusted CA; `verify-full` also that it names the
//! host connected to. The trusted CAs are `sslrootcert=PATH` (PEM) from the connection
//! string, or the system's bundle. tokio-postgres reads neither `verify-*` nor
//! `sslrootcert`, so they are taken out of the string here and the rest handed on.

use std::path::PathBuf;
use std::sync::Arc;
use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

/// Where Debian (and most Linux systems) keep the trusted CAs.
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// How a connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No TLS (`disable`, `prefer`, or no `sslmode`).
    Plain,
    /// Encrypted; the server is not authenticated.
    Require,
    /// Encrypted; the server's certificate chains to a trusted CA.
    VerifyCa,
    /// As `VerifyCa`, and the certificate names the host.
    VerifyFull,
}

/// A connection string's TLS: the mode, and the trusted CAs' file if given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// The mode, from `sslmode`.
    pub mode: Mode,
    /// `sslrootcert`.
    pub root_cert: Option<PathBuf>,
}

/// Splits the parameters tokio-postgres does not read (`sslmode=verify-ca|verify-full`,
/// `sslrootcert`) out of a connection string, URL (`?sslmode=...&sslrootcert=...`) or
/// `key=value` form; `require` stays for tokio-postgres to see too.
pub fn split(conn: &str) -> (String, Tls) {
    let mut tls = Tls {
        mode: Mode::Plain,
        root_cert: None,
    };
    let mut take = |key: &str, value: &str| -> bool {
        match (key, value) {
            ("sslmode", "verify-ca") => tls.mode = Mode::VerifyCa,
            ("sslmode", "verify-full") => tls.mode = Mode::VerifyFull,
            ("sslmode", "require") => {
                tls.mode = Mode::Require;
                return false;
            }
            ("sslrootcert", path) => tls.root_cert = Some(PathBuf::from(path)),
            _ => return false,
        }
        true
    };
    let trimmed = conn.trim_start();
    let rest = split_params(conn, trimmed, &mut take);
    // As libpq: `require` with a root certificate checks the chain (`verify-ca`).
    if tls.mode == Mode::Require && tls.root_cert.is_some() {
        tls.mode = Mode::VerifyCa;
    }
    (rest, tls)
}

/// `conn` without the parameters `take` takes.
fn split_params(conn: &str, trimmed: &str, take: &mut impl FnMut(&str, &str) -> bool) -> String {
    if trimmed.contains("://") {
        match conn.split_once('?') {
            None => conn.to_owned(),
            Some((base, query)) => {
                let kept: Vec<&str> = query
                    .split('&')
                    .filter(|pair| {
                        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                        let v = percent_encoding::percent_decode_str(v).decode_utf8_lossy();
                        !take(k, &v)
                    })
                    .collect();
                if kept.is_empty() {
                    base.to_owned()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
        }
    } else {
        conn.split_whitespace()
            .filter(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                !take(k, v.trim_matches('\''))
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The rustls client configuration for `tls`, or `None` for a plain connection.
pub fn client_config(tls: &Tls) -> Result<Option<rustls::ClientConfig>, String> {
    if tls.mode == Mode::Plain {
        return Ok(None);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    if tls.mode == Mode::Require {
        let verifier = Arc::new(Lenient {
            chain: None,
            provider,
        });
        return Ok(Some(
            builder
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth(),
        ));
    }
    let roots = Arc::new(roots(tls.root_cert.as_ref())?);
    let webpki =
        rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|e| e.to_string())?;
    let config = match tls.mode {
        Mode::VerifyCa => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Lenient {
                chain: Some(webpki),
                provider,
            }))
            .with_no_client_auth(),
        _ => builder.with_webpki_verifier(webpki).with_no_client_auth(),
    };
    Ok(Some(config))
}

/// The trusted CAs: the file given, or the system's bundle.
fn roots(file: Option<&PathBuf>) -> Result<rustls::RootCertStore, String> {
    let path = match file {
        Some(path) => path.clone(),
        None if std::path::Path::new(SYSTEM_BUNDLE).exists() => SYSTEM_BUNDLE.into(),
        None => {
            return Err(
                "sslmode=verify-ca/verify-full needs the server's CA: add sslrootcert=PATH (a PEM file) to the connection string"
                    .into(),
            );
        }
    };
    let mut store = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(&path)
        .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
        store
            .add(cert)
            .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
    }
    if store.is_empty() {
        return Err(format!(
            "sslrootcert {}: no certificate in it (a PEM file is expected)",
            path.display()
        ));
    }
    Ok(store)
}

/// `verify-ca` (a chain to check, not the name) and `require` (no chain): the
/// certificate is checked as far as the mode says; the handshake's signatures always
/// are, with the provider's algorithms (as webpki's own verifier checks them).
#[derive(Debug)]
struct Lenient {
    chain: Option<Arc<rustls::client::WebPkiServerVerifier>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_modes_and_the_root_cert_are_taken_out_of_either_form() {
        let (rest, tls) = split(
            "postgres://u@db:5432/segfn?sslmode=verify-full&application_name=x&sslrootcert=%2Fetc%2Fca.pem",
        );
        assert_eq!(rest, "postgres://u@db:5432/segfn?application_name=x");
        assert_eq!(tls.mode, Mode::VerifyFull);
        assert_eq!(tls.root_cert, Some(PathBuf::from("/etc/ca.pem")));
        let (rest, tls) = split("host=db dbname=segfn sslmode=verify-ca sslrootcert=/ca.pem");
        assert_eq!(rest, "host=db dbname=segfn");
        assert_eq!(tls.mode, Mode::VerifyCa);
        let (rest, tls) = split("postgres://u@db/segfn?sslmode=require");
        assert_eq!(
            (rest.as_str(), tls.mode),
            ("postgres://u@db/segfn?sslmode=require", Mode::Require)
        );
        let (rest, tls) = split("postgres://u@db/segfn");
        assert_eq!(
            (rest.as_str(), tls.mode),
            ("postgres://u@db/segfn", Mode::Plain)
        );
    }

    #[test]
    fn a_missing_or_empty_root_cert_is_said() {
        let tls = Tls {
            mode: Mode::VerifyFull,
            root_cert: Some("/nonexistent/ca.pem".into()),
        };
        assert!(
            client_config(&tls)
                .unwrap_err()
                .contains("/nonexistent/ca.pem")
        );
        let empty = tempfile::NamedTempFile::new().unwrap();
        let tls = Tls {
            mode: Mode::VerifyFull,
            root_cert: Some(empty.path().to_owned()),
        };
        assert!(client_config(&tls).unwrap_err().contains("no certificate"));
    }
}
