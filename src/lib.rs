//! flowgate — an edge proxy, built on Pingora, that stands in front of a live-chat backend.
//!
//! The chat widget's init request carries a base64 JSON *visitor context* built in the
//! visitor's browser. flowgate validates and sanitises it at the edge, keeps the result per chat
//! session, and hands the backend trusted headers its workflow engine uses to pre-fill identity
//! questions — headers nobody can forge from the browser.
//!
//! # Layout
//! Imports only go down this list; nothing imports upwards, and the core imports nothing but
//! itself.
//!
//! 1. Core, pure and I/O-free:
//!    - [`context`] — the visitor-context pipeline (base64 → JSON → pairs), PHP-exact;
//!    - [`prefill`] — `ims_*` keys → the workflow's pre-fill slots.
//! 2. Values:
//!    - [`headers`] — trusted header names, `Status`, value encoding, anti-spoof matching, and
//!      the header signature ([`headers::signature`]);
//!    - `secret` — the [`trust::Secret`] type and its loaders (environment, files).
//! 3. [`trust`] — signed visitor context (JWT) per site: the site policy, token verification,
//!    the pure per-init [`trust::evaluate`], and [`trust::sign`] for host sites.
//! 4. [`store`] — the [`store::SessionStore`] trait, the in-process and Redis backends, the
//!    circuit breaker; built from its own [`store::StoreSettings`].
//! 5. [`metrics`] — Prometheus counters by outcome and reason, and their label values.
//! 6. [`config`] — the configuration as plain data: defaults, the one YAML walker, the checks,
//!    the secrets it names, one [`config::Problem`] type.
//! 7. [`tls`] — HTTPS: certificates chosen by SNI, reloaded without a restart, checked for
//!    `flowgate check`;
//!    [`front`] — the connection front: every client connection before Pingora's HTTP code
//!    (idle and head deadlines, h2c preface, PROXY protocol, TLS handshakes, `414`, drain on
//!    shutdown).
//! 8. [`proxy`] — the thin Pingora `ProxyHttp` and its small pieces: the swappable
//!    [`proxy::Runtime`], route matching, query parameters, the pure plan, the store calls, the
//!    one place that counts, failure handling, the access log.
//! 9. `admin` — the `/metrics` and `/healthz` listener, and erasure (`DELETE /sessions/…`).
//! 10. [`server`] — the Pingora `Server` assembled from a [`config::Config`], and its signals.
//! 11. [`upstream`] — the verification kit a chat backend uses on flowgate's headers;
//!     [`workflow`] — the reference workflow engine; [`sample_backend`] — the demo's chat
//!     backend (echo, demo page, chat protocol).
//! 12. [`cli`] — the `run`, `inspect`, `check` and `demo` commands, and logging.

#![deny(missing_docs)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod admin;
pub mod cli;
pub mod config;
pub mod context;
pub mod front;
pub mod headers;
pub mod metrics;
pub mod prefill;
pub mod proxy;
pub mod sample_backend;
mod secret;
pub mod server;
pub mod store;
pub mod tls;
pub mod trust;
pub mod upstream;
pub mod workflow;
