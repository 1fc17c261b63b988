//! flowgate — an edge proxy, built on Pingora, that stands in front of a live-chat backend.
//!
//! The chat widget's init request carries a base64 JSON *visitor context* built in the
//! visitor's browser. flowgate validates and sanitises it at the edge, keeps the result per chat
//! session, and hands the backend trusted headers its workflow engine uses to pre-fill identity
//! questions — headers nobody can forge from the browser.
//!
//! # Layout
//! - [`context`] — the pure, I/O-free visitor-context pipeline (base64 → JSON → pairs).
//! - [`prefill`] — `ims_*` keys → the workflow's pre-fill slots.
//! - [`headers`] — trusted header names and values, anti-spoof matching, the header signature.
//! - [`store`] — the [`store::SessionStore`] trait with the in-process and Redis backends.
//! - [`proxy`] — the thin Pingora `ProxyHttp`: per-request state and route matching.
//! - [`metrics`] — Prometheus counters by outcome and reason; the admin service.
//! - [`config`] — configuration file → validated [`config::Config`], every problem with its key.
//! - [`cli`] — the `run`, `inspect`, `check` and `demo` commands.
//! - [`trust`] — signed visitor context (JWT) per site.
//! - [`upstream`] — the verification kit a chat backend uses on flowgate's headers.
//! - [`workflow`] — the reference workflow engine behind the demo's sample backend.
//! - [`sample_backend`] — the demo's chat backend: echoes the trusted headers, serves the demo page.

#![deny(missing_docs)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod admin;
pub mod cli;
pub mod config;
pub mod context;
pub mod headers;
pub mod metrics;
pub mod prefill;
pub mod proxy;
pub mod sample_backend;
mod secret;
pub mod server;
pub mod store;
pub mod trust;
pub mod upstream;
pub mod workflow;
