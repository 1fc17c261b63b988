//! `flowgate demo`.

use std::process::ExitCode;

/// Arguments of `flowgate demo`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `flowgate demo`.
pub fn main(_args: Args) -> ExitCode {
    eprintln!("flowgate demo: not available in this build");
    ExitCode::FAILURE
}
