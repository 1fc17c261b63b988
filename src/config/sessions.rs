//! The `sessions:` section → [`SessionsConfig`]: whether a stored context is bound to the key
//! the widget made for its session (`bind: key`) or to the session id alone (`bind: off`, the
//! default).

use super::table::Table;
use super::{Problems, SessionBind, SessionsConfig};

/// Reads `sessions:` into `out`.
pub(super) fn read_sessions(
    out: &mut SessionsConfig,
    top: &mut Table<'_>,
    problems: &mut Problems,
) {
    let mut t = top.table("sessions", problems);
    if let Some(v) = t.field::<String>("bind", "off or key", problems) {
        match v.as_str() {
            "off" => out.bind = SessionBind::Off,
            "key" => out.bind = SessionBind::Key,
            other => problems.push(
                t.key_path("bind"),
                format!(
                    "{other:?} is not a binding; write off (the session id alone finds the stored \
                     context) or key (the widget's Flowgate-Session-Key must match too)"
                ),
            ),
        }
    }
    t.finish(problems);
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, SessionBind};

    #[test]
    fn off_by_default_key_when_asked_and_mistakes_named() {
        assert_eq!(Config::default().sessions.bind, SessionBind::Off);
        let c = Config::from_yaml("sessions:\n  bind: key\n").unwrap();
        assert_eq!(c.sessions.bind, SessionBind::Key);
        let c = Config::from_yaml("sessions: {bind: off}\n").unwrap();
        assert_eq!(c.sessions.bind, SessionBind::Off);
        let err = Config::from_yaml("sessions:\n  bind: cookie\n  bnid: key\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("sessions.bind"), "{err}");
        assert!(err.contains("sessions.bnid"), "{err}");
    }
}
