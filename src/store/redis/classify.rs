//! Turns a client error into a [`FailureKind`], from its code and I/O cause only (the error's
//! text is never kept: a server reply can echo a command argument).

use redis::{ErrorKind, RedisError, ServerErrorKind};

use crate::store::FailureKind;

/// The kind of a failed call's error.
pub(crate) fn classify(e: &RedisError) -> FailureKind {
    match e.kind() {
        ErrorKind::AuthenticationFailed => return FailureKind::WrongPass,
        ErrorKind::Server(ServerErrorKind::ReadOnly) => return FailureKind::ReadOnly,
        ErrorKind::Server(ServerErrorKind::BusyLoading) => return FailureKind::Loading,
        ErrorKind::Server(ServerErrorKind::MasterDown) => return FailureKind::MasterDown,
        ErrorKind::Server(ServerErrorKind::ClusterDown) => return FailureKind::ClusterDown,
        ErrorKind::Server(ServerErrorKind::NoPerm) => return FailureKind::NoPerm,
        _ => {}
    }
    if let Some(kind) = e.code().and_then(from_code) {
        return kind;
    }
    if e.is_timeout() {
        return FailureKind::Timeout;
    }
    if e.is_connection_refusal() {
        return FailureKind::ConnectionRefused;
    }
    if e.is_io_error() || e.is_connection_dropped() {
        return FailureKind::ConnectionLost;
    }
    // Errors met while connecting (the handshake's AUTH) can reach us wrapped, with the reply's
    // code only in the message; look for the code, keep nothing else.
    let text = e.to_string();
    for code in [
        "WRONGPASS",
        "NOAUTH",
        "NOPERM",
        "READONLY",
        "LOADING",
        "MASTERDOWN",
        "CLUSTERDOWN",
    ] {
        if text.contains(code) {
            return from_code(code).unwrap_or(FailureKind::Server);
        }
    }
    if text.contains("invalid password") || text.contains("invalid username-password") {
        return FailureKind::WrongPass;
    }
    if text.contains("Connection refused") {
        return FailureKind::ConnectionRefused;
    }
    if text.contains("timed out") {
        return FailureKind::Timeout;
    }
    if e.is_cluster_error() {
        return FailureKind::ClusterDown;
    }
    FailureKind::Server
}

fn from_code(code: &str) -> Option<FailureKind> {
    Some(match code {
        "NOAUTH" => FailureKind::NoAuth,
        "WRONGPASS" => FailureKind::WrongPass,
        "NOPERM" => FailureKind::NoPerm,
        "READONLY" => FailureKind::ReadOnly,
        "LOADING" => FailureKind::Loading,
        "MASTERDOWN" => FailureKind::MasterDown,
        "CLUSTERDOWN" => FailureKind::ClusterDown,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(code: &str) -> RedisError {
        redis::parse_redis_value(format!("-{code} some detail\r\n").as_bytes())
            .and_then(redis::Value::extract_error)
            .expect_err("an error reply")
    }

    #[test]
    fn error_replies_are_named_by_code() {
        for (code, kind) in [
            ("NOAUTH", FailureKind::NoAuth),
            ("WRONGPASS", FailureKind::WrongPass),
            ("NOPERM", FailureKind::NoPerm),
            ("READONLY", FailureKind::ReadOnly),
            ("LOADING", FailureKind::Loading),
            ("MASTERDOWN", FailureKind::MasterDown),
            ("CLUSTERDOWN", FailureKind::ClusterDown),
            ("ERR", FailureKind::Server),
        ] {
            assert_eq!(classify(&server(code)), kind, "{code}");
        }
    }

    #[test]
    fn io_errors_are_named_by_cause() {
        let refused = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(classify(&refused), FailureKind::ConnectionRefused);
        let timeout = RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
        assert_eq!(classify(&timeout), FailureKind::Timeout);
        let reset = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert_eq!(classify(&reset), FailureKind::ConnectionLost);
    }
}
