//! Certificate choice by SNI, behind an `ArcSwap` so a reload replaces every certificate at
//! once while handshakes in progress keep the set they started with.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::certs::LoadedCert;

/// The certificates in force: exact names, `*.` wildcards, and the default.
#[derive(Debug)]
pub(crate) struct CertSet {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// Keyed by the part after `*.` (`example.com` for `*.example.com`).
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
}

impl CertSet {
    /// A set from loaded certificates (at least one); where two claim a name, the first wins,
    /// and the first is the default.
    pub(crate) fn new(certs: &[LoadedCert]) -> Option<CertSet> {
        let default = certs.first()?.key.clone();
        let mut exact = HashMap::new();
        let mut wildcard = HashMap::new();
        for cert in certs {
            for name in &cert.names {
                let map = match name.strip_prefix("*.") {
                    Some(parent) => wildcard.entry(parent.to_owned()),
                    None => exact.entry(name.clone()),
                };
                map.or_insert_with(|| cert.key.clone());
            }
        }
        Some(CertSet {
            exact,
            wildcard,
            default,
        })
    }

    /// The certificate for `sni` (any case), else the default.
    pub(crate) fn choose(&self, sni: Option<&str>) -> Arc<CertifiedKey> {
        let Some(name) = sni.map(str::to_ascii_lowercase) else {
            return self.default.clone();
        };
        if let Some(key) = self.exact.get(&name) {
            return key.clone();
        }
        name.split_once('.')
            .and_then(|(_, parent)| self.wildcard.get(parent))
            .unwrap_or(&self.default)
            .clone()
    }
}

/// The rustls certificate resolver of the HTTPS listener.
#[derive(Debug)]
pub(crate) struct SniResolver {
    current: ArcSwap<CertSet>,
}

impl SniResolver {
    /// A resolver serving `set`.
    pub(crate) fn new(set: CertSet) -> SniResolver {
        SniResolver {
            current: ArcSwap::from_pointee(set),
        }
    }

    /// Serves `set` from the next handshake on.
    pub(crate) fn replace(&self, set: CertSet) {
        self.current.store(Arc::new(set));
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load().choose(hello.server_name()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::PrivateKeyDer;

    /// A certificate for `name` (only its identity matters here).
    fn cert(name: &str, names: &[&str]) -> LoadedCert {
        let key = rcgen::KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
        let params =
            rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap_or_else(|e| panic!("{e}"));
        let der = params
            .self_signed(&key)
            .unwrap_or_else(|e| panic!("{e}"))
            .der()
            .clone();
        let provider = rustls::crypto::ring::default_provider();
        let pkey = PrivateKeyDer::try_from(key.serialize_der()).unwrap_or_else(|e| panic!("{e}"));
        let key =
            CertifiedKey::from_der(vec![der], pkey, &provider).unwrap_or_else(|e| panic!("{e}"));
        LoadedCert {
            key: Arc::new(key),
            names: names.iter().map(|n| (*n).to_owned()).collect(),
            not_after: i64::MAX,
        }
    }

    #[test]
    fn chooses_by_exact_name_then_wildcard_then_the_first() {
        let a = cert("a.test", &["a.test"]);
        let b = cert("b.test", &["b.test", "*.b.test", "a.test"]);
        let set = CertSet::new(&[a.clone(), b.clone()]).unwrap_or_else(|| panic!("empty"));
        let is = |sni: Option<&str>, want: &LoadedCert| Arc::ptr_eq(&set.choose(sni), &want.key);
        assert!(is(Some("a.test"), &a), "the first claim of a name wins");
        assert!(is(Some("B.Test"), &b), "names compare without case");
        assert!(is(Some("chat.b.test"), &b));
        assert!(is(Some("x.chat.b.test"), &a), "a wildcard covers one label");
        assert!(is(Some("other.test"), &a));
        assert!(is(None, &a));
        assert!(CertSet::new(&[]).is_none());
    }
}
