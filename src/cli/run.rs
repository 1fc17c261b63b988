//! `flowgate run`.

use std::process::ExitCode;

/// Arguments of `flowgate run`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `flowgate run`.
pub fn main(_args: Args) -> ExitCode {
    eprintln!("flowgate run: not available in this build");
    ExitCode::FAILURE
}
