//! How a host site's server signs a visitor context for flowgate (signed visitor context).
//!
//! ```sh
//! FLOWGATE_SITE_KEY='…at least 32 characters…' \
//!   cargo run --example sign_context -- YOUR_SITEID key-2026-11 account_id=USR-1 ims_email=jane@example.com
//! ```
//!
//! Prints the token and the widget embed line that carries it. The secret comes from the
//! environment (never from the command line, where `ps` and shell history would keep it).

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use flowgate::trust::sign::{HostKey, sign_context};
use jsonwebtoken::Algorithm;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(site), Some(kid)) = (args.next(), args.next()) else {
        eprintln!("usage: sign_context SITEID KID [key=value]...  (secret in FLOWGATE_SITE_KEY)");
        return ExitCode::FAILURE;
    };
    let pairs: Vec<(String, String)> = args
        .filter_map(|a| a.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    let Ok(secret) = std::env::var("FLOWGATE_SITE_KEY") else {
        eprintln!("set FLOWGATE_SITE_KEY to the secret shared with flowgate for this kid");
        return ExitCode::FAILURE;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let context: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let key = HostKey {
        kid: &kid,
        secret: secret.as_bytes(),
        alg: Algorithm::HS256,
    };
    // Five minutes is plenty: the page only needs the token until the chat starts.
    match sign_context(&context, &site, &key, now, 300) {
        Ok(token) => {
            println!("{token}");
            eprintln!(
                "\n<script src=\".../flowwidget.js\" data-siteid=\"{site}\" \
                 data-visitor-context-token=\"{token}\"></script>"
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sign_context: {e}");
            ExitCode::FAILURE
        }
    }
}
