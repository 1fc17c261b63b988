//! `flowgate check`.

use std::process::ExitCode;

/// Arguments of `flowgate check`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `flowgate check`.
pub fn main(_args: Args) -> ExitCode {
    eprintln!("flowgate check: not available in this build");
    ExitCode::FAILURE
}
