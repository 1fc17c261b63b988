//! The command line: `run`, `inspect`, `check` and `demo`.

pub mod check;
pub mod demo;
mod demo_tls;
pub mod inspect;
pub(crate) mod logging;
pub mod run;
mod withhold;
