//! What the proxy runs with: one immutable value, built from a [`Config`] and its resolved
//! secrets, replaced whole.
//!
//! Each request takes the current [`Runtime`] once, when its context is made, and every phase
//! of that request uses that one; a [`RuntimeHandle::swap`] changes what *new* requests see,
//! while requests in flight finish on the runtime they started with. The session store and the
//! metrics are not part of it: they outlive a swap.
//!
//! A reload (SIGHUP, `server::reload`) builds a new runtime from the new, validated
//! configuration — `crate::server::runtime_replacing` reads its secrets and upstreams — and
//! calls `swap`. The signing gauge (`flowgate_signing_enabled`) is set from the runtime
//! `Flowgate::new` starts with, and again by every reload (`Metrics::signing_enabled`).

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use super::identity::ClientIp;
use super::limits::Limits;
use super::route::Routes;
use super::timeouts::RouteTimeouts;
use super::trusted::TrustedNames;
use super::upstreams::Upstreams;
use crate::config::{Config, ParamNames, SessionBind};
use crate::headers::signature::Signer;
use crate::headers::spoof::SpoofMatcher;
use crate::trust::TrustPolicy;

/// Everything a request is handled with, decided from the configuration.
pub struct Runtime {
    pub(super) routes: Routes,
    pub(super) params: ParamNames,
    pub(super) spoof: SpoofMatcher,
    pub(super) names: TrustedNames,
    pub(super) client_ip: ClientIp,
    pub(super) trust: TrustPolicy,
    pub(super) signer: Option<Signer>,
    pub(super) access_log: bool,
    pub(super) store_deadline: Duration,
    pub(super) upstreams: Upstreams,
    pub(super) timeouts: RouteTimeouts,
    pub(super) limits: Limits,
    pub(super) bind: SessionBind,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("routes", &self.routes)
            .field("params", &self.params)
            .field("signer", &self.signer.as_ref().map(|s| s.versions()))
            .field("access_log", &self.access_log)
            .field("store_deadline", &self.store_deadline)
            .field("upstreams", &self.upstreams.len())
            .field("timeouts", &self.timeouts)
            .field("limits", &self.limits)
            .field("bind", &self.bind)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Builds the runtime from a validated configuration, its upstream pool, the per-site
    /// signed-context policy and the header signer (`None`: requests go out unsigned).
    pub fn new(
        config: &Config,
        upstreams: Upstreams,
        trust: TrustPolicy,
        signer: Option<Signer>,
    ) -> Runtime {
        Runtime {
            routes: Routes::new(&config.routes),
            params: config.params.clone(),
            spoof: SpoofMatcher::new(&config.headers.prefix),
            names: TrustedNames::new(&config.headers.prefix),
            client_ip: ClientIp::new(&config.client_ip),
            trust,
            signer,
            access_log: config.log.access,
            store_deadline: config.store.deadline,
            upstreams,
            timeouts: RouteTimeouts::new(config),
            limits: Limits::new(&config.limits),
            bind: config.sessions.bind,
        }
    }
}

impl Runtime {
    /// Whether requests are signed (a header-signing secret is configured).
    pub(crate) fn signs(&self) -> bool {
        self.signer.is_some()
    }

    /// The upstream pool (a reload keeps it when the upstream settings are unchanged).
    pub(crate) fn upstreams(&self) -> &Upstreams {
        &self.upstreams
    }
}

/// The runtime currently in force, shared by the proxy and whoever may replace it.
#[derive(Clone)]
pub struct RuntimeHandle(Arc<ArcSwap<Runtime>>);

impl std::fmt::Debug for RuntimeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RuntimeHandle").field(&self.load()).finish()
    }
}

impl RuntimeHandle {
    /// A handle whose current runtime is `runtime`.
    pub fn new(runtime: Runtime) -> RuntimeHandle {
        RuntimeHandle(Arc::new(ArcSwap::from_pointee(runtime)))
    }

    /// The current runtime, as a new request takes it (a couple of atomic operations).
    pub fn load(&self) -> Arc<Runtime> {
        self.0.load_full()
    }

    /// Makes `runtime` the one new requests take; returns the one it replaces. Requests that
    /// already hold the old one keep it until they end.
    pub fn swap(&self, runtime: Runtime) -> Arc<Runtime> {
        self.0.swap(Arc::new(runtime))
    }
}
