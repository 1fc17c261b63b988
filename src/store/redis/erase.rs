//! A site purge in Redis: `SCAN` for `<prefix>{<site>:*` on every node that owns keys, and
//! `UNLINK` each batch the scan returns.
//!
//! - standalone and Sentinel: the one (master) node;
//! - Cluster: every master named by `CLUSTER NODES`, each scanned on its own (`SCAN` walks one
//!   node's keyspace only); `UNLINK` of a batch is split by slot by the cluster client.
//!
//! Batches are bounded (`COUNT` [`SCAN_COUNT`]) so the purge never blocks Redis, and each
//! command has its own deadline ([`PURGE_CALL_TIMEOUT`], longer than a request's store deadline:
//! an operator is waiting, not a visitor). The purge does not go through the breaker: it is
//! rare, and its failures must not take stored context away from requests.

use std::time::Duration;

use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, FromRedisValue, RedisError, Value};

use super::RedisStore;
use super::link::Conn;
use crate::store::{PurgeCounts, PurgeProgress, StoreError};

/// `COUNT` hint of each `SCAN` call: keys looked at per batch.
pub(crate) const SCAN_COUNT: u32 = 500;

/// Deadline of each command of a purge.
const PURGE_CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The `SCAN MATCH` pattern of a site's contexts, glob characters of the prefix escaped (site
/// ids have none).
pub(crate) fn site_pattern(prefix: &str, site: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + site.len() + 4);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('{');
    out.push_str(site);
    out.push_str(":*");
    out
}

/// `host:port` of every master in a `CLUSTER NODES` reply that is not marked failed.
pub(crate) fn masters(cluster_nodes: &str) -> Vec<(String, u16)> {
    cluster_nodes
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let flags = fields.get(2)?;
            let is_master = flags.split(',').any(|f| f == "master");
            let failed = flags.split(',').any(|f| f == "fail" || f == "noaddr");
            if !is_master || failed {
                return None;
            }
            // `ip:port@cport[,hostname]`
            let addr = fields.get(1)?.split('@').next()?;
            let (host, port) = addr.rsplit_once(':')?;
            Some((host.to_owned(), port.parse().ok()?))
        })
        .collect()
}

fn unavailable(e: &RedisError) -> StoreError {
    StoreError::Unavailable(e.category().to_owned())
}

async fn bounded<T>(
    call: impl std::future::Future<Output = Result<T, RedisError>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(PURGE_CALL_TIMEOUT, call).await {
        Ok(reply) => reply.map_err(|e| unavailable(&e)),
        Err(_) => Err(StoreError::Timeout),
    }
}

/// One node to scan: the connection's own node, or a Cluster master by address.
enum Node {
    Own,
    Master(String, u16),
}

async fn on_node<T: FromRedisValue>(
    conn: &mut Conn,
    node: &Node,
    cmd: Cmd,
) -> Result<T, StoreError> {
    match (conn, node) {
        (Conn::Cluster(c), Node::Master(host, port)) => {
            let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                host: host.clone(),
                port: *port,
            });
            let value: Value = bounded(c.route_command(cmd, routing)).await?;
            T::from_redis_value(value).map_err(|e| StoreError::Unavailable(e.to_string()))
        }
        (conn, _) => bounded(conn.query(&cmd)).await,
    }
}

impl RedisStore {
    /// Removes every context of `site`, reporting after each batch.
    pub(super) async fn purge(
        &self,
        site: &str,
        progress: &PurgeProgress,
    ) -> Result<PurgeCounts, StoreError> {
        let (mut conn, _) = bounded(self.core.link.get()).await?;
        let nodes = match &mut conn {
            Conn::Cluster(c) => {
                let mut cmd = redis::cmd("CLUSTER");
                cmd.arg("NODES");
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random);
                let value = bounded(c.route_command(cmd, routing)).await?;
                let text = String::from_redis_value(value)
                    .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                let masters = masters(&text);
                if masters.is_empty() {
                    return Err(StoreError::Unavailable("no cluster master found".into()));
                }
                masters
                    .into_iter()
                    .map(|(h, p)| Node::Master(h, p))
                    .collect()
            }
            _ => vec![Node::Own],
        };
        let pattern = site_pattern(&self.core.prefix, site);
        let mut counts = PurgeCounts::default();
        for node in &nodes {
            let mut cursor: u64 = 0;
            loop {
                let mut scan = redis::cmd("SCAN");
                scan.arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(SCAN_COUNT);
                let (next, keys): (u64, Vec<Vec<u8>>) = on_node(&mut conn, node, scan).await?;
                counts.scanned += keys.len() as u64;
                if !keys.is_empty() {
                    let mut unlink = redis::cmd("UNLINK");
                    unlink.arg(&keys);
                    let removed: u64 = bounded(conn.query(&unlink)).await?;
                    counts.removed += removed;
                }
                counts.batches += 1;
                progress(&counts);
                cursor = next;
                if cursor == 0 {
                    break;
                }
            }
            counts.nodes += 1;
        }
        progress(&counts);
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pattern_matches_one_site_and_escapes_the_prefix() {
        assert_eq!(site_pattern("flowgate:", "s1"), "flowgate:{s1:*");
        assert_eq!(site_pattern("a*b?[c]\\", "s"), "a\\*b\\?\\[c\\]\\\\{s:*");
    }

    #[test]
    fn masters_are_read_from_cluster_nodes() {
        let text = "\
07c3 127.0.0.1:30004@40004 slave e7d1 0 1 4 connected
e7d1 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460
67ed 127.0.0.1:30002@40002,host-b master - 0 1 2 connected 5461-10922
292f 127.0.0.1:30003@40003 master,fail - 0 1 3 disconnected
";
        assert_eq!(
            masters(text),
            vec![("127.0.0.1".into(), 30001), ("127.0.0.1".into(), 30002)]
        );
    }
}
