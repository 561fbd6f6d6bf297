//! `crypto.createSign`/`createVerify`'s native half: RSA signatures (PKCS#1 v1.5, what
//! Node's `RSA-SHA256` is) with SHA-1, SHA-256, SHA-384 or SHA-512, keys in PEM (PKCS#8
//! or PKCS#1 private keys, SPKI or PKCS#1 public keys). Deterministic, so no randomness
//! is needed, and the same bytes as Node's.

use rsa::pkcs1::{DecodeRsaPrivateKey as _, DecodeRsaPublicKey as _};
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _};
use rsa::signature::{SignatureEncoding as _, Signer as _, Verifier as _};
use rsa::{RsaPrivateKey, RsaPublicKey};

/// Why a signature could not be made or checked, in Node's words where it has them.
#[derive(Debug, PartialEq, Eq)]
pub enum SignError {
    /// Not one of the digests this supports.
    Digest(String),
    /// The key is not a PEM RSA key of a kind this reads.
    Key(&'static str),
    /// The key cannot sign this (too small for the digest).
    Sign(String),
}

impl std::fmt::Display for SignError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignError::Digest(name) => write!(
                f,
                "Invalid digest: {name} (RSA-SHA1, RSA-SHA256, RSA-SHA384 and RSA-SHA512 are supported)"
            ),
            SignError::Key(what) => {
                write!(f, "error:1E08010C:DECODER routines::unsupported ({what})")
            }
            SignError::Sign(why) => write!(f, "signing failed: {why}"),
        }
    }
}

/// The digest of a Node signature algorithm name: `RSA-SHA256`, `SHA256`,
/// `sha256WithRSAEncryption`, ... (any case).
fn digest(algorithm: &str) -> Result<&'static str, SignError> {
    let name = algorithm.to_ascii_lowercase().replace('-', "");
    let name = name.strip_prefix("rsa").unwrap_or(&name);
    let name = name.strip_suffix("withrsaencryption").unwrap_or(name);
    match name {
        "sha1" => Ok("sha1"),
        "sha256" => Ok("sha256"),
        "sha384" => Ok("sha384"),
        "sha512" => Ok("sha512"),
        _ => Err(SignError::Digest(algorithm.to_owned())),
    }
}

/// Checks a signature algorithm's name (`createSign` throws for an unknown one at once,
/// as Node does).
pub fn check(algorithm: &str) -> Result<(), SignError> {
    digest(algorithm).map(drop)
}

fn private_key(pem: &str) -> Result<RsaPrivateKey, SignError> {
    RsaPrivateKey::from_pkcs8_pem(pem)
        .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem))
        .map_err(|_| {
            SignError::Key("a PEM RSA private key: BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY")
        })
}

fn public_key(pem: &str) -> Result<RsaPublicKey, SignError> {
    RsaPublicKey::from_public_key_pem(pem)
        .or_else(|_| RsaPublicKey::from_pkcs1_pem(pem))
        .or_else(|_| private_key(pem).map(|k| RsaPublicKey::from(&k)))
        .map_err(|_| {
            SignError::Key("a PEM RSA key: BEGIN PUBLIC KEY, BEGIN RSA PUBLIC KEY or a private key")
        })
}

/// Signs `data` with the PEM private key `pem`.
pub fn sign(algorithm: &str, pem: &str, data: &[u8]) -> Result<Vec<u8>, SignError> {
    let digest = digest(algorithm)?;
    let key = private_key(pem)?;
    let signed = match digest {
        "sha1" => SigningKey::<sha1::Sha1>::new(key).try_sign(data),
        "sha384" => SigningKey::<sha2::Sha384>::new(key).try_sign(data),
        "sha512" => SigningKey::<sha2::Sha512>::new(key).try_sign(data),
        _ => SigningKey::<sha2::Sha256>::new(key).try_sign(data),
    };
    signed
        .map(|s| s.to_vec())
        .map_err(|e| SignError::Sign(e.to_string()))
}

/// Whether `signature` is `data`'s with the PEM key `pem` (public, or private).
pub fn verify(
    algorithm: &str,
    pem: &str,
    data: &[u8],
    signature: &[u8],
) -> Result<bool, SignError> {
    let digest = digest(algorithm)?;
    let key = public_key(pem)?;
    let Ok(signature) = Signature::try_from(signature) else {
        return Ok(false);
    };
    Ok(match digest {
        "sha1" => VerifyingKey::<sha1::Sha1>::new(key).verify(data, &signature),
        "sha384" => VerifyingKey::<sha2::Sha384>::new(key).verify(data, &signature),
        "sha512" => VerifyingKey::<sha2::Sha512>::new(key).verify(data, &signature),
        _ => VerifyingKey::<sha2::Sha256>::new(key).verify(data, &signature),
    }
    .is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_names_are_read_as_node_reads_them() {
        for name in [
            "RSA-SHA256",
            "SHA256",
            "sha256WithRSAEncryption",
            "rsa-sha256",
        ] {
            assert_eq!(digest(name), Ok("sha256"), "{name}");
        }
        assert!(matches!(digest("RSA-MD4"), Err(SignError::Digest(_))));
    }
}
