//! `flowgate reload`: asks a running flowgate to re-read its configuration file, by sending
//! SIGHUP to the process named in its pid file (`server.pid_file`).
//!
//! With `-c FILE` the file is checked first and nothing is sent when it has problems: the
//! running process would refuse it anyway, and the operator sees every problem here at once.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::Config;

/// Arguments of `flowgate reload`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The configuration file the running process was started with: checked before the signal
    /// is sent, and its `server.pid_file` names the process.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Pid file to read instead of the configuration's `server.pid_file`.
    #[arg(long, value_name = "FILE")]
    pid_file: Option<PathBuf>,
}

/// Why no signal was sent.
#[derive(Debug)]
enum ReloadError {
    /// The configuration file has problems (each listed).
    Config(String),
    /// The pid file cannot be read or does not hold a pid.
    PidFile(PathBuf, String),
    /// `kill(2)` failed (no such process, not allowed).
    Signal(i32, std::io::Error),
}

impl std::fmt::Display for ReloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReloadError::Config(problems) => write!(
                f,
                "the configuration has problems; nothing was sent:\n{problems}"
            ),
            ReloadError::PidFile(path, why) => write!(
                f,
                "{}: {why}; is flowgate running with this server.pid_file (or pass --pid-file)?",
                path.display()
            ),
            ReloadError::Signal(pid, e) => {
                write!(
                    f,
                    "cannot signal pid {pid} ({e}); is flowgate still running?"
                )
            }
        }
    }
}

/// Runs `flowgate reload`.
pub fn main(args: Args) -> ExitCode {
    match send(&args) {
        Ok(pid) => {
            println!(
                "flowgate reload: SIGHUP sent to pid {pid}; its log and \
                 flowgate_config_reloads_total{{result}} say whether the file was taken"
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("flowgate reload: {e}");
            match e {
                ReloadError::Config(_) => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

fn send(args: &Args) -> Result<i32, ReloadError> {
    let config = match &args.config {
        Some(path) => Config::load(path).map_err(|p| ReloadError::Config(p.to_string()))?,
        None => Config::default(),
    };
    let pid_file = args
        .pid_file
        .clone()
        .unwrap_or_else(|| PathBuf::from(&config.server.pid_file));
    let text = std::fs::read_to_string(&pid_file)
        .map_err(|e| ReloadError::PidFile(pid_file.clone(), e.to_string()))?;
    let pid: i32 = text
        .trim()
        .parse()
        .ok()
        .filter(|pid| *pid > 0)
        .ok_or_else(|| ReloadError::PidFile(pid_file.clone(), "no process id in it".into()))?;
    // SAFETY: kill(2) takes plain integers and shares no memory with the target; a positive
    // pid addresses exactly one process (never a process group).
    let rc = unsafe { libc::kill(pid, libc::SIGHUP) };
    if rc != 0 {
        return Err(ReloadError::Signal(pid, std::io::Error::last_os_error()));
    }
    Ok(pid)
}
