//! Why a store backend failed, named the way an operator can act on it.
//!
//! The kind is what `flowgate_redis_errors_total{kind}`, the breaker-open warning, `/healthz` and
//! the access log's `store_error` field show. It never carries the backend's error text, which
//! could echo a command argument.

/// One reason a store call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// No answer within the deadline (or the connection attempt's bound).
    Timeout,
    /// Nothing listens at the address.
    ConnectionRefused,
    /// The connection was lost, reset or could not be made for another network reason.
    ConnectionLost,
    /// The server wants a password and none was given (`NOAUTH`).
    NoAuth,
    /// The user name or password is wrong (`WRONGPASS`, or a refused `AUTH`).
    WrongPass,
    /// The ACL user may not run the store's commands or touch its keys (`NOPERM`).
    NoPerm,
    /// The node is a replica: writes are refused (`READONLY`).
    ReadOnly,
    /// The node is loading its data set into memory (`LOADING`).
    Loading,
    /// A replica lost its master and is configured to refuse reads (`MASTERDOWN`).
    MasterDown,
    /// The cluster is down or the slot is not served (`CLUSTERDOWN`).
    ClusterDown,
    /// Any other error reply.
    Server,
    /// A stored value could not be decoded.
    Corrupt,
}

impl FailureKind {
    /// Every kind, for metrics initialisation and tests.
    pub const ALL: [FailureKind; 12] = [
        FailureKind::Timeout,
        FailureKind::ConnectionRefused,
        FailureKind::ConnectionLost,
        FailureKind::NoAuth,
        FailureKind::WrongPass,
        FailureKind::NoPerm,
        FailureKind::ReadOnly,
        FailureKind::Loading,
        FailureKind::MasterDown,
        FailureKind::ClusterDown,
        FailureKind::Server,
        FailureKind::Corrupt,
    ];

    /// The metric label and access-log value.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Timeout => "timeout",
            FailureKind::ConnectionRefused => "connection_refused",
            FailureKind::ConnectionLost => "connection_lost",
            FailureKind::NoAuth => "noauth",
            FailureKind::WrongPass => "wrongpass",
            FailureKind::NoPerm => "noperm",
            FailureKind::ReadOnly => "readonly",
            FailureKind::Loading => "loading",
            FailureKind::MasterDown => "masterdown",
            FailureKind::ClusterDown => "clusterdown",
            FailureKind::Server => "server_error",
            FailureKind::Corrupt => "corrupt",
        }
    }

    /// What the backend does, in words, with the code it answered when it answered one:
    /// `refuses the credentials (WRONGPASS)`.
    pub fn describe(self) -> &'static str {
        match self {
            FailureKind::Timeout => "is not answering (timeout)",
            FailureKind::ConnectionRefused => "refuses connections (connection refused)",
            FailureKind::ConnectionLost => "drops connections (connection lost)",
            FailureKind::NoAuth => "requires a password that is not configured (NOAUTH)",
            FailureKind::WrongPass => "refuses the credentials (WRONGPASS)",
            FailureKind::NoPerm => "denies the user the store's commands or keys (NOPERM)",
            FailureKind::ReadOnly => "is a read-only replica, not a master (READONLY)",
            FailureKind::Loading => "is loading its data set (LOADING)",
            FailureKind::MasterDown => "lost its master (MASTERDOWN)",
            FailureKind::ClusterDown => "reports the cluster down (CLUSTERDOWN)",
            FailureKind::Server => "answers with errors (server error)",
            FailureKind::Corrupt => "holds undecodable values (corrupt)",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_distinct() {
        let mut seen: Vec<&str> = FailureKind::ALL.iter().map(|k| k.as_str()).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), FailureKind::ALL.len());
    }
}
