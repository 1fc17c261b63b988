//! The command line: `run`, `reload`, `inspect`, `check` and `demo`.

pub mod check;
pub mod demo;
pub mod inspect;
pub(crate) mod logging;
pub mod reload;
pub mod run;
mod withhold;
