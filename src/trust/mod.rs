//! Signed visitor context: per-site JWT verification of what the host site's server signed.

pub mod secret;

pub use secret::Secret;
