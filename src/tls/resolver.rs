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
