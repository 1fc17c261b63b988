//! `flowgate inspect`.

use std::process::ExitCode;

/// Arguments of `flowgate inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `flowgate inspect`.
pub fn main(_args: Args) -> ExitCode {
    eprintln!("flowgate inspect: not available in this build");
    ExitCode::FAILURE
}
