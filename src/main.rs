//! The `flowgate` binary: parses the command line and hands over to [`flowgate::cli`].

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use flowgate::cli;

/// mimalloc instead of the system allocator: a proxy allocates and frees small buffers on
/// every request (Pingora's header maps, the trusted header values), and glibc's malloc was
/// the largest single cost in flowgate's request profile (see README, "Load benchmark").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Edge proxy for live-chat widgets: validates the visitor context, hands the backend trusted headers.
#[derive(Debug, Parser)]
#[command(name = "flowgate", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the proxy.
    Run(cli::run::Args),
    /// Make a running proxy re-read its configuration file (SIGHUP via its pid file).
    Reload(cli::reload::Args),
    /// Show what the edge does with one visitor-context payload.
    Inspect(cli::inspect::Args),
    /// Validate a configuration file, listing every problem.
    Check(cli::check::Args),
    /// Run the proxy with a built-in sample chat backend and the in-process store.
    Demo(cli::demo::Args),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Run(args) => cli::run::main(args),
        Command::Reload(args) => cli::reload::main(args),
        Command::Inspect(args) => cli::inspect::main(args),
        Command::Check(args) => cli::check::main(args),
        Command::Demo(args) => cli::demo::main(args),
    }
}
