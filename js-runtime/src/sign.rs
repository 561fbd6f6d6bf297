//! `crypto.createSign`/`createVerify`'s native half: RSA signatures (PKCS#1 v1.5, what
//! Node's `RSA-SHA256` is) with SHA-1, SHA-256, SHA-384 or SHA-512, and ECDSA over P-256
//! with SHA-256 (what an ES256 JWT is), keys in PEM (PKCS#8, PKCS#1 or SEC1 private keys,
//! SPKI or PKCS#1 public keys). Both are deterministic (ECDSA by RFC 6979), so no
//! randomness is needed; RSA signatures are the same bytes as Node's, ECDSA ones differ
//! from Node's randomised ones but verify the same way.

use p256::ecdsa::{
    Signature as EcSignature, SigningKey as EcSigningKey, VerifyingKey as EcVerifyingKey,
};
use p256::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _};
use rsa::pkcs1::{DecodeRsaPrivateKey as _, DecodeRsaPublicKey as _};
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::signature::{SignatureEncoding as _, Signer as _, Verifier as _};
use rsa::{RsaPrivateKey, RsaPublicKey};

/// Why a signature could not be made or checked, in Node's words where it has them.
#[derive(Debug, PartialEq, Eq)]
pub enum SignError {
    /// Not one of the digests this supports.
    Digest(String),
    /// The key is not a PEM key of a kind this reads.
    Key(&'static str),
    /// The key cannot sign this (too small for the digest, an EC key with another digest).
    Sign(String),
}

impl std::fmt::Display for SignError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignError::Digest(name) => write!(
                f,
                "Invalid digest: {name} (RSA-SHA1, RSA-SHA256, RSA-SHA384, RSA-SHA512 and, for EC keys, SHA256 are supported)"
            ),
            SignError::Key(what) => {
                write!(f, "error:1E08010C:DECODER routines::unsupported ({what})")
            }
            SignError::Sign(why) => write!(f, "signing failed: {why}"),
        }
    }
}

/// How an ECDSA signature is written: DER (Node's default) or `r || s`
/// (`dsaEncoding: 'ieee-p1363'`, what JWTs carry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DsaEncoding {
    /// ASN.1 DER, Node's default.
    Der,
    /// The two 32-byte halves, concatenated.
    IeeeP1363,
}

impl DsaEncoding {
    /// Node's option value (`der`, `ieee-p1363`; absent is DER).
    pub fn parse(name: Option<&str>) -> Result<DsaEncoding, SignError> {
        match name {
            None | Some("der") => Ok(DsaEncoding::Der),
            Some("ieee-p1363") => Ok(DsaEncoding::IeeeP1363),
            Some(other) => Err(SignError::Sign(format!(
                "invalid dsaEncoding {other:?}: 'der' or 'ieee-p1363'"
            ))),
        }
    }
}

/// The digest of a Node signature algorithm name: `RSA-SHA256`, `SHA256`,
/// `sha256WithRSAEncryption`, `ecdsa-with-SHA256`, ... (any case).
fn digest(algorithm: &str) -> Result<&'static str, SignError> {
    let name = algorithm.to_ascii_lowercase().replace('-', "");
    let name = name.strip_prefix("rsa").unwrap_or(&name);
    let name = name.strip_prefix("ecdsawith").unwrap_or(name);
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

// RSA keys are several times an EC key's size: boxed.
enum PrivateKey {
    Rsa(Box<RsaPrivateKey>),
    Ec(EcSigningKey),
}

enum PublicKey {
    Rsa(Box<RsaPublicKey>),
    Ec(EcVerifyingKey),
}

const PRIVATE_KEYS: &str = "a PEM private key, RSA or EC P-256: BEGIN PRIVATE KEY, BEGIN RSA PRIVATE KEY or BEGIN EC PRIVATE KEY";

fn private_key(pem: &str) -> Result<PrivateKey, SignError> {
    if let Ok(key) =
        RsaPrivateKey::from_pkcs8_pem(pem).or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem))
    {
        return Ok(PrivateKey::Rsa(Box::new(key)));
    }
    EcSigningKey::from_pkcs8_pem(pem)
        .ok()
        .or_else(|| {
            p256::SecretKey::from_sec1_pem(pem)
                .ok()
                .map(EcSigningKey::from)
        })
        .map(PrivateKey::Ec)
        .ok_or(SignError::Key(PRIVATE_KEYS))
}

fn public_key(pem: &str) -> Result<PublicKey, SignError> {
    if let Ok(key) =
        RsaPublicKey::from_public_key_pem(pem).or_else(|_| RsaPublicKey::from_pkcs1_pem(pem))
    {
        return Ok(PublicKey::Rsa(Box::new(key)));
    }
    if let Ok(key) = EcVerifyingKey::from_public_key_pem(pem) {
        return Ok(PublicKey::Ec(key));
    }
    match private_key(pem) {
        Ok(PrivateKey::Rsa(key)) => Ok(PublicKey::Rsa(Box::new(RsaPublicKey::from(&*key)))),
        Ok(PrivateKey::Ec(key)) => Ok(PublicKey::Ec(*key.verifying_key())),
        Err(_) => Err(SignError::Key(
            "a PEM key, RSA or EC P-256: BEGIN PUBLIC KEY, BEGIN RSA PUBLIC KEY or a private key",
        )),
    }
}

/// ECDSA over P-256 is offered with SHA-256 only.
fn ec_digest(digest: &str) -> Result<(), SignError> {
    if digest == "sha256" {
        Ok(())
    } else {
        Err(SignError::Sign(format!(
            "an EC P-256 key signs with SHA256 here, not {}",
            digest.to_ascii_uppercase()
        )))
    }
}

/// Signs `data` with the PEM private key `pem`; an ECDSA signature is written in
/// `encoding`.
pub fn sign(
    algorithm: &str,
    pem: &str,
    data: &[u8],
    encoding: DsaEncoding,
) -> Result<Vec<u8>, SignError> {
    let digest = digest(algorithm)?;
    let key = match private_key(pem)? {
        PrivateKey::Rsa(key) => *key,
        PrivateKey::Ec(key) => {
            ec_digest(digest)?;
            let signature: EcSignature = key
                .try_sign(data)
                .map_err(|e| SignError::Sign(e.to_string()))?;
            return Ok(match encoding {
                DsaEncoding::Der => signature.to_der().as_bytes().to_vec(),
                DsaEncoding::IeeeP1363 => signature.to_bytes().to_vec(),
            });
        }
    };
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

/// Whether `signature` is `data`'s with the PEM key `pem` (public, or private); an
/// ECDSA signature is read in `encoding`.
pub fn verify(
    algorithm: &str,
    pem: &str,
    data: &[u8],
    signature: &[u8],
    encoding: DsaEncoding,
) -> Result<bool, SignError> {
    let digest = digest(algorithm)?;
    let key = match public_key(pem)? {
        PublicKey::Rsa(key) => *key,
        PublicKey::Ec(key) => {
            ec_digest(digest)?;
            let signature = match encoding {
                DsaEncoding::Der => EcSignature::from_der(signature),
                DsaEncoding::IeeeP1363 => EcSignature::from_slice(signature),
            };
            return Ok(signature.is_ok_and(|s| key.verify(data, &s).is_ok()));
        }
    };
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
            "ecdsa-with-SHA256",
        ] {
            assert_eq!(digest(name), Ok("sha256"), "{name}");
        }
        assert!(matches!(digest("RSA-MD4"), Err(SignError::Digest(_))));
    }

    const EC_PKCS8: &str = include_str!("testdata/ec-p256-pkcs8.pem");
    const EC_SEC1: &str = include_str!("testdata/ec-p256-sec1.pem");
    const EC_SPKI: &str = include_str!("testdata/ec-p256-spki.pub");

    #[test]
    fn ecdsa_p256_signs_and_verifies_as_node_does() {
        use base64::Engine as _;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.decode(s).unwrap();
        // Made with Node 20 (testdata/README.md): DER, and ieee-p1363, over "header.payload".
        let node_der = b64(
            "MEUCIQC1GpuTrZqkz4IN0MgZQwiHygJG9qFK+PXQL5hC8uzUpQIgMIQGfs+Rrz85P1VP+dUMY/s4Jji6J/4nvmEKgV/36JE=",
        );
        let node_p1363 = b64(
            "ud6w+goZKkL0WKEcTmpSVpT+AYYFNP3UducLD+pSD+8IfyZhMhsFjpfFPcC6bxg+4h0CPj1jVQApsvPKaDWBxg==",
        );
        let data = b"header.payload";
        for key in [EC_SPKI, EC_PKCS8, EC_SEC1] {
            assert_eq!(
                verify("SHA256", key, data, &node_der, DsaEncoding::Der),
                Ok(true)
            );
            assert_eq!(
                verify(
                    "ecdsa-with-SHA256",
                    key,
                    data,
                    &node_p1363,
                    DsaEncoding::IeeeP1363
                ),
                Ok(true)
            );
            assert_eq!(
                verify(
                    "SHA256",
                    key,
                    b"header.payloaD",
                    &node_der,
                    DsaEncoding::Der
                ),
                Ok(false)
            );
            // A signature in the other encoding does not verify.
            assert_eq!(
                verify("SHA256", key, data, &node_der, DsaEncoding::IeeeP1363),
                Ok(false)
            );
        }
        for key in [EC_PKCS8, EC_SEC1] {
            let der = sign("SHA256", key, data, DsaEncoding::Der).unwrap();
            assert_eq!(der[0], 0x30, "a DER sequence");
            assert_eq!(
                verify("SHA256", EC_SPKI, data, &der, DsaEncoding::Der),
                Ok(true)
            );
            let p1363 = sign("SHA256", key, data, DsaEncoding::IeeeP1363).unwrap();
            assert_eq!(p1363.len(), 64);
            assert_eq!(
                verify("SHA256", EC_SPKI, data, &p1363, DsaEncoding::IeeeP1363),
                Ok(true)
            );
        }
        assert!(matches!(
            sign("SHA384", EC_PKCS8, data, DsaEncoding::Der),
            Err(SignError::Sign(m)) if m.contains("SHA256")
        ));
        assert!(matches!(
            sign("SHA256", "nope", data, DsaEncoding::Der),
            Err(SignError::Key(m)) if m.contains("EC P-256")
        ));
    }
}
