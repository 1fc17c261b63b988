//! What a connection is for each topology, and how one is made: a `ConnectionManager` for
//! standalone Redis, the cluster client's connection for Cluster, a multiplexed connection to
//! the master the sentinels name for Sentinel. No I/O until [`Connector::connect`].

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::io::tcp::TcpSettings;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Client, Cmd, ConnectionAddr, ConnectionInfo, FromRedisValue,
    IntoConnectionInfo, RedisConnectionInfo, RedisError, RedisResult, ServerErrorKind, TlsMode,
};

use super::link::{LinkTimeouts, MasterAddr};
use super::url::{Node, RedisUrl, Topology};

/// A connection of any topology; cheap to clone, all clones share the multiplexed socket(s).
#[derive(Clone)]
pub(crate) enum Conn {
    /// Standalone.
    Manager(ConnectionManager),
    /// Cluster.
    Cluster(ClusterConnection),
    /// The current Sentinel master.
    Direct(MultiplexedConnection),
}

impl Conn {
    /// Sends one command and reads its reply.
    pub(crate) async fn query<T: FromRedisValue>(&mut self, cmd: &Cmd) -> RedisResult<T> {
        match self {
            Conn::Manager(c) => cmd.query_async(c).await,
            Conn::Cluster(c) => cmd.query_async(c).await,
            Conn::Direct(c) => cmd.query_async(c).await,
        }
    }
}

/// What builds a [`Conn`]; no I/O until [`Connector::connect`].
pub(super) enum Connector {
    Standalone {
        client: Client,
        config: ConnectionManagerConfig,
    },
    Cluster {
        client: ClusterClient,
    },
    Sentinel {
        client: tokio::sync::Mutex<SentinelClient>,
        config: AsyncConnectionConfig,
        /// One client per sentinel, for the master check.
        sentinels: Vec<Client>,
        master: String,
        timeouts: LinkTimeouts,
    },
}

impl Connector {
    pub(super) fn new(
        url: &RedisUrl,
        root_cert: Option<&[u8]>,
        t: LinkTimeouts,
    ) -> RedisResult<Self> {
        let tcp = || TcpSettings::default().set_nodelay(true);
        let certs = || redis::TlsCertificates {
            client_tls: None,
            root_cert: root_cert.map(<[u8]>::to_vec),
        };
        let mut redis_info = RedisConnectionInfo::default().set_db(url.db);
        if let Some(user) = &url.username {
            redis_info = redis_info.set_username(user);
        }
        if let Some(pass) = &url.password {
            redis_info = redis_info.set_password(pass);
        }
        let node_info = |node: &Node| -> RedisResult<ConnectionInfo> {
            let addr = if url.tls {
                ConnectionAddr::TcpTls {
                    host: node.host.clone(),
                    port: node.port,
                    insecure: false,
                    tls_params: None,
                }
            } else {
                ConnectionAddr::Tcp(node.host.clone(), node.port)
            };
            Ok(addr
                .into_connection_info()?
                .set_redis_settings(redis_info.clone())
                .set_tcp_settings(tcp()))
        };
        Ok(match &url.topology {
            Topology::Standalone(node) => {
                let info = node_info(node)?;
                let client = match (url.tls, root_cert) {
                    (true, Some(_)) => Client::build_with_tls(info, certs())?,
                    _ => Client::open(info)?,
                };
                // A short retry cycle: the breaker, not the client, paces attempts to a dead
                // Redis, and a restarted Redis is found by the next attempt.
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(t.connect))
                    .set_response_timeout(Some(t.response))
                    .set_number_of_retries(2)
                    .set_min_delay(Duration::from_millis(10))
                    .set_max_delay(Duration::from_millis(100));
                Connector::Standalone { client, config }
            }
            Topology::Cluster(nodes) => {
                let infos = nodes
                    .iter()
                    .map(node_info)
                    .collect::<RedisResult<Vec<_>>>()?;
                let mut builder = ClusterClient::builder(infos)
                    .connection_timeout(t.connect)
                    .response_timeout(t.response)
                    .retries(2)
                    .min_retry_wait(10)
                    .max_retry_wait(100)
                    .tcp_settings(tcp());
                if url.tls {
                    builder = builder.tls(TlsMode::Secure);
                    if root_cert.is_some() {
                        builder = builder.certs(certs());
                    }
                }
                Connector::Cluster {
                    client: builder.build()?,
                }
            }
            Topology::Sentinel { sentinels, master } => {
                // `rediss+sentinel://`: TLS to the sentinels as well as to the data nodes.
                let addr = |n: &Node| {
                    if url.tls {
                        ConnectionAddr::TcpTls {
                            host: n.host.clone(),
                            port: n.port,
                            insecure: false,
                            tls_params: None,
                        }
                    } else {
                        ConnectionAddr::Tcp(n.host.clone(), n.port)
                    }
                };
                let addrs = sentinels.iter().map(addr);
                let mut builder =
                    SentinelClientBuilder::new(addrs, master, SentinelServerType::Master)?
                        .set_client_to_redis_db(url.db)
                        .set_client_to_redis_tcp_settings(tcp())
                        .set_client_to_sentinel_tcp_settings(tcp());
                if let Some(user) = &url.username {
                    builder = builder.set_client_to_redis_username(user);
                }
                if let Some(pass) = &url.password {
                    builder = builder.set_client_to_redis_password(pass);
                }
                if url.tls {
                    builder = builder
                        .set_client_to_redis_tls_mode(TlsMode::Secure)
                        .set_client_to_sentinel_tls_mode(TlsMode::Secure);
                    if root_cert.is_some() {
                        builder = builder
                            .set_client_to_redis_certificates(certs())
                            .set_client_to_sentinel_certificates(certs());
                    }
                }
                let sentinel_clients = sentinels
                    .iter()
                    .map(|n| {
                        let info = addr(n).into_connection_info()?.set_tcp_settings(tcp());
                        match (url.tls, root_cert) {
                            (true, Some(_)) => Client::build_with_tls(info, certs()),
                            _ => Client::open(info),
                        }
                    })
                    .collect::<RedisResult<Vec<_>>>()?;
                Connector::Sentinel {
                    client: tokio::sync::Mutex::new(builder.build()?),
                    config: AsyncConnectionConfig::new()
                        .set_connection_timeout(Some(t.connect))
                        .set_response_timeout(Some(t.response)),
                    sentinels: sentinel_clients,
                    master: master.clone(),
                    timeouts: t,
                }
            }
        })
    }

    /// Makes a connection; for Sentinel also returns the master's address.
    pub(super) async fn connect(&self) -> RedisResult<(Conn, Option<MasterAddr>)> {
        match self {
            Connector::Standalone { client, config } => Ok((
                Conn::Manager(ConnectionManager::new_lazy_with_config(
                    client.clone(),
                    config.clone(),
                )?),
                None,
            )),
            Connector::Cluster { client } => {
                Ok((Conn::Cluster(client.get_async_connection().await?), None))
            }
            Connector::Sentinel { client, config, .. } => {
                let master = client.lock().await.async_get_client().await?;
                let addr = match master.get_connection_info().addr() {
                    ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => {
                        Some((host.clone(), *port))
                    }
                    _ => None,
                };
                let conn = master
                    .get_multiplexed_async_connection_with_config(config)
                    .await?;
                Ok((Conn::Direct(conn), addr))
            }
        }
    }

    /// Whether an error means the connection should be dropped and made anew.
    pub(super) fn must_reconnect(&self, e: &RedisError) -> bool {
        match self {
            // Both reconnect internally.
            Connector::Standalone { .. } | Connector::Cluster { .. } => false,
            Connector::Sentinel { .. } => {
                e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_unrecoverable_error()
                    || e.kind() == redis::ErrorKind::Server(ServerErrorKind::ReadOnly)
            }
        }
    }
}
