//! `flowgate check`: validates a configuration file, listing every problem.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::Config;

/// Arguments of `flowgate check`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The configuration file to check.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub(crate) config: PathBuf,
}

/// Runs `flowgate check`: exit 0 and `ok` when valid, else every problem and exit 1.
pub fn main(args: Args) -> ExitCode {
    // The secrets the file names (environment variables, files) are checked too: a file that
    // parses but names a missing secret would still stop `flowgate run`.
    // The certificates too: they are loaded exactly as the HTTPS listener loads them.
    let loaded = Config::load(&args.config)
        .and_then(|config| {
            let mut problems = config.trust.check_secrets();
            if let Err(p) = config.erasure.admin_tokens() {
                problems.0.push(p);
            }
            problems.or(config)
        })
        .and_then(|config| crate::tls::check(&config));
    match loaded {
        Ok(warnings) => {
            for w in &warnings {
                eprintln!("warning: {w}");
            }
            println!("{}: ok", args.config.display());
            ExitCode::SUCCESS
        }
        Err(problems) => {
            let n = problems.0.len();
            eprintln!(
                "{}: {n} problem{}",
                args.config.display(),
                if n == 1 { "" } else { "s" }
            );
            for p in &problems.0 {
                eprintln!("  {p}");
            }
            ExitCode::FAILURE
        }
    }
}
