//! `upstream.balance`: how a request picks one of several upstreams.

use super::table::Table;
use super::{Config, Problems};

/// How a request picks one of several upstreams (`upstream.balance`).
///
/// The default is [`Balance::Session`]: a Socket.IO or long-polling backend keeps a chat
/// session in the memory of the node that opened it, so every request of that session has to
/// reach the same node (what nginx users get from `ip_hash`). With one upstream there is
/// nothing to choose and the setting changes nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Balance {
    /// In turn, each request to the next healthy upstream.
    RoundRobin,
    /// Consistent hashing (Ketama) on the site and session ids of widget routes, else on the
    /// client address: a session stays on its node, and only the sessions of a node that goes
    /// down move.
    #[default]
    Session,
}

impl Balance {
    /// The value as written in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Balance::RoundRobin => "round_robin",
            Balance::Session => "session",
        }
    }
}

/// Reads `balance` of the `upstream:` table `t` into `config`.
pub(super) fn read_balance(config: &mut Config, t: &mut Table<'_>, problems: &mut Problems) {
    let Some(v) = t.field::<String>("balance", "round_robin or session", problems) else {
        return;
    };
    match v.as_str() {
        "round_robin" => config.upstream.balance = Balance::RoundRobin,
        "session" => config.upstream.balance = Balance::Session,
        _ => problems.push(
            t.key_path("balance"),
            format!(
                "{v:?} is not a balance mode; use session (a chat session stays on one upstream) \
                 or round_robin"
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_is_the_default_and_both_modes_read() {
        assert_eq!(Config::default().upstream.balance, Balance::Session);
        for (text, want) in [
            ("upstream:\n  balance: round_robin\n", Balance::RoundRobin),
            ("upstream:\n  balance: session\n", Balance::Session),
            ("upstream:\n  balance: null\n", Balance::Session),
        ] {
            assert_eq!(Config::from_yaml(text).unwrap().upstream.balance, want);
        }
    }

    #[test]
    fn an_unknown_mode_names_the_key_and_the_fix() {
        for text in [
            "upstream:\n  balance: ip_hash\n",
            "upstream:\n  balance: 1\n",
        ] {
            let problems = Config::from_yaml(text).unwrap_err();
            assert_eq!(problems.0.len(), 1, "{problems}");
            assert_eq!(problems.0[0].key, "upstream.balance");
            assert!(problems.0[0].message.contains("round_robin"), "{problems}");
        }
    }
}
