//! The HMAC-only crypto provider flowgate installs into `jsonwebtoken`.
//!
//! `jsonwebtoken` parses and validates tokens; it leaves the primitives to a provider. Its
//! bundled RustCrypto provider also builds RSA, ECDSA and EdDSA code (with an older `hmac`/`sha2`
//! than ours) that signed visitor context never uses: flowgate accepts HS256, HS384 and HS512
//! only. This provider answers those three with the `hmac` + `sha2` crates the header signature
//! already uses (MACs checked in constant time by `Mac::verify_slice`) and refuses every other
//! algorithm, so an RSA or `none` token cannot be verified here even by mistake.

use std::sync::Once;

use hmac::{Hmac, KeyInit, Mac};
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::signature::{Error as SignatureError, Signer, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey};
use sha2::{Sha256, Sha384, Sha512};

/// The algorithms signed visitor context accepts.
pub(crate) const ALGORITHMS: [Algorithm; 3] =
    [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];

static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: signer,
    verifier_factory: verifier,
    key_utils: KeyUtils::new_unimplemented(),
};

/// Installs the provider once per process; every `jsonwebtoken` call in flowgate runs after it.
///
/// If another provider was installed first (an embedding application's), that one is kept:
/// `jsonwebtoken` providers all implement the same HMAC algorithms.
pub(crate) fn ensure_installed() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = PROVIDER.install_default();
    });
}

enum Keyed {
    Hs256(Hmac<Sha256>),
    Hs384(Hmac<Sha384>),
    Hs512(Hmac<Sha512>),
}

impl Keyed {
    fn new(alg: Algorithm, key: &[u8]) -> Result<Self> {
        let bad = |_| jsonwebtoken::errors::Error::from(ErrorKind::InvalidKeyFormat);
        Ok(match alg {
            Algorithm::HS256 => Keyed::Hs256(Hmac::new_from_slice(key).map_err(bad)?),
            Algorithm::HS384 => Keyed::Hs384(Hmac::new_from_slice(key).map_err(bad)?),
            Algorithm::HS512 => Keyed::Hs512(Hmac::new_from_slice(key).map_err(bad)?),
            _ => return Err(ErrorKind::UnsupportedAlgorithm.into()),
        })
    }

    fn algorithm(&self) -> Algorithm {
        match self {
            Keyed::Hs256(_) => Algorithm::HS256,
            Keyed::Hs384(_) => Algorithm::HS384,
            Keyed::Hs512(_) => Algorithm::HS512,
        }
    }

    fn mac(&self, msg: &[u8]) -> Vec<u8> {
        match self {
            Keyed::Hs256(m) => m.clone().chain_update(msg).finalize().into_bytes().to_vec(),
            Keyed::Hs384(m) => m.clone().chain_update(msg).finalize().into_bytes().to_vec(),
            Keyed::Hs512(m) => m.clone().chain_update(msg).finalize().into_bytes().to_vec(),
        }
    }

    fn check(&self, msg: &[u8], tag: &[u8]) -> bool {
        match self {
            Keyed::Hs256(m) => m.clone().chain_update(msg).verify_slice(tag).is_ok(),
            Keyed::Hs384(m) => m.clone().chain_update(msg).verify_slice(tag).is_ok(),
            Keyed::Hs512(m) => m.clone().chain_update(msg).verify_slice(tag).is_ok(),
        }
    }
}

struct HmacSigner(Keyed);
struct HmacVerifier(Keyed);

impl Signer<Vec<u8>> for HmacSigner {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, SignatureError> {
        Ok(self.0.mac(msg))
    }
}

impl JwtSigner for HmacSigner {
    fn algorithm(&self) -> Algorithm {
        self.0.algorithm()
    }
}

impl Verifier<Vec<u8>> for HmacVerifier {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> std::result::Result<(), SignatureError> {
        if self.0.check(msg, signature) {
            Ok(())
        } else {
            Err(SignatureError::new())
        }
    }
}

impl JwtVerifier for HmacVerifier {
    fn algorithm(&self) -> Algorithm {
        self.0.algorithm()
    }
}

fn signer(alg: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    if key.family() != AlgorithmFamily::Hmac {
        return Err(ErrorKind::InvalidKeyFormat.into());
    }
    Ok(Box::new(HmacSigner(Keyed::new(*alg, key.as_bytes())?)))
}

fn verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    if key.family() != AlgorithmFamily::Hmac {
        return Err(ErrorKind::InvalidKeyFormat.into());
    }
    Ok(Box::new(HmacVerifier(Keyed::new(
        *alg,
        key.try_get_as_bytes()?,
    )?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4231_vectors_through_the_provider() {
        // RFC 4231 test case 2 (key "Jefe").
        let msg = b"what do ya want for nothing?";
        let key = EncodingKey::from_secret(b"Jefe");
        let hex = |v: Vec<u8>| v.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let sign = |alg| signer(&alg, &key).unwrap().try_sign(msg).unwrap();
        assert_eq!(
            hex(sign(Algorithm::HS256)),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(hex(sign(Algorithm::HS384)).starts_with("af45d2e376484031617f78d2b58a6b1b"));
        assert!(hex(sign(Algorithm::HS512)).starts_with("164b7a7bfcf819e2e395fbe73b56e0a3"));
        let dkey = DecodingKey::from_secret(b"Jefe");
        let v = verifier(&Algorithm::HS256, &dkey).unwrap();
        assert!(v.verify(msg, &sign(Algorithm::HS256)).is_ok());
        assert!(v.verify(b"other", &sign(Algorithm::HS256)).is_err());
        assert!(v.verify(msg, &sign(Algorithm::HS512)).is_err());
    }

    #[test]
    fn other_algorithms_are_refused() {
        let key = DecodingKey::from_secret(b"k");
        for alg in [
            Algorithm::RS256,
            Algorithm::ES256,
            Algorithm::EdDSA,
            Algorithm::PS256,
        ] {
            assert!(verifier(&alg, &key).is_err());
        }
    }
}
