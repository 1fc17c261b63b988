//! A Redis Cluster on free ports: three masters, or six nodes with one replica each.

use std::process::{Command, Stdio};

use super::redis::{Options, RedisServer, SETTLE_DEADLINE, TlsFiles};
use super::wait_for;

/// A Redis Cluster: three masters, with or without one replica each.
pub struct RedisCluster {
    /// Every node (masters first as created; roles change on failover).
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts three cluster-enabled servers, creates the cluster and waits for `cluster_state:ok`.
    pub fn start() -> RedisCluster {
        RedisCluster::start_with(None)
    }

    /// [`RedisCluster::start`], with TLS on client and bus connections when `tls` is given.
    pub fn start_with(tls: Option<TlsFiles>) -> RedisCluster {
        RedisCluster::start_shape(0, tls, Vec::new())
    }

    /// Six nodes: three masters with one replica each (`--cluster-replicas 1`), a 1 s node
    /// timeout so a dead master's replica is promoted within seconds, and
    /// `cluster-require-full-coverage no` so the other masters keep serving their slots while
    /// one is uncovered (with `yes`, Redis itself answers CLUSTERDOWN for every key until the
    /// promotion); waits until every replica is in sync.
    pub fn start_with_replicas() -> RedisCluster {
        RedisCluster::start_shape(
            1,
            None,
            vec![
                "cluster-node-timeout 1000".to_string(),
                "cluster-require-full-coverage no".to_string(),
            ],
        )
    }

    fn start_shape(replicas: usize, tls: Option<TlsFiles>, extra: Vec<String>) -> RedisCluster {
        let mut config = if tls.is_some() {
            vec!["tls-cluster yes".to_string()]
        } else {
            Vec::new()
        };
        config.extend(extra);
        let options = Options {
            cluster: true,
            config,
            tls: tls.clone(),
            ..Options::default()
        };
        let count = 3 * (1 + replicas);
        let nodes: Vec<RedisServer> = (0..count)
            .map(|_| RedisServer::start_with(options.clone()))
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        let mut cli = Command::new("redis-cli");
        if let Some(tls) = &tls {
            cli.arg("--tls").arg("--cacert").arg(&tls.ca);
        }
        let out = cli
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("run redis-cli (Debian package `redis-tools`)");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = RedisCluster { nodes };
        let known = format!("cluster_known_nodes:{count}");
        wait_for(SETTLE_DEADLINE, "cluster_state:ok on every node", || {
            cluster
                .nodes
                .iter()
                .all(|n| {
                    n.query::<String>(redis::cmd("CLUSTER").arg("INFO"))
                        .is_ok_and(|info| {
                            info.contains("cluster_state:ok") && info.contains(&known)
                        })
                })
                .then_some(())
        });
        if replicas > 0 {
            wait_for(SETTLE_DEADLINE, "every replica in sync", || {
                let synced = cluster
                    .nodes
                    .iter()
                    .filter(|n| {
                        let info = n.info("replication");
                        info.contains("role:slave") && info.contains("master_link_status:up")
                    })
                    .count();
                (synced == 3 * replicas).then_some(())
            });
        }
        cluster
    }

    /// A running node, to ask about the cluster.
    fn any_live(&self) -> &RedisServer {
        self.nodes
            .iter()
            .find(|n| n.is_running())
            .expect("a running node")
    }

    /// The port of the master serving `key`, as a live node sees it now.
    pub fn master_port_of(&self, key: &str) -> Option<u16> {
        let node = self.any_live();
        let slot: i64 = node
            .query(redis::cmd("CLUSTER").arg("KEYSLOT").arg(key))
            .ok()?;
        let slots: Vec<(i64, i64, (String, i64))> = node
            .query::<Vec<redis::Value>>(redis::cmd("CLUSTER").arg("SLOTS"))
            .ok()?
            .into_iter()
            .filter_map(|range| {
                let redis::Value::Array(fields) = range else {
                    return None;
                };
                let int = |v: &redis::Value| match v {
                    redis::Value::Int(n) => Some(*n),
                    _ => None,
                };
                let redis::Value::Array(master) = fields.get(2)? else {
                    return None;
                };
                let host = match master.first()? {
                    redis::Value::BulkString(b) => String::from_utf8(b.clone()).ok()?,
                    _ => return None,
                };
                Some((
                    int(fields.first()?)?,
                    int(fields.get(1)?)?,
                    (host, int(master.get(1)?)?),
                ))
            })
            .collect();
        slots
            .into_iter()
            .find(|(start, end, _)| (*start..=*end).contains(&slot))
            .and_then(|(_, _, (_, port))| u16::try_from(port).ok())
    }

    /// The node listening on `port`.
    pub fn node_on(&mut self, port: u16) -> &mut RedisServer {
        self.nodes
            .iter_mut()
            .find(|n| n.port() == port)
            .expect("a node on that port")
    }

    /// The store URL: `redis+cluster://` (or `rediss+cluster://`) with every node.
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        let tls = self.nodes.iter().any(|n| n.is_tls());
        let scheme = if tls { "rediss" } else { "redis" };
        format!("{scheme}+cluster://{}", nodes.join(","))
    }
}
