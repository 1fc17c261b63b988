//! The chat backends: round robin over one or more upstreams, health-checked when several.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use pingora::lb::selection::RoundRobin;
use pingora::lb::{LoadBalancer, health_check};
use pingora::prelude::HttpPeer;
use pingora::services::background::{GenBackgroundService, background_service};

use crate::config::{Config, UpstreamAddress, upstream_address};

/// The addresses of the `https://` upstreams and their host names (resolved as the load
/// balancer resolves them; a name that does not resolve is reported by it).
fn tls_names(addresses: &[UpstreamAddress<'_>]) -> HashMap<SocketAddr, String> {
    let mut names = HashMap::new();
    for a in addresses.iter().filter(|a| a.tls) {
        for addr in a.host_port.to_socket_addrs().into_iter().flatten() {
            names.insert(addr, a.host().to_owned());
        }
    }
    names
}

/// How many backends round robin may skip looking for a healthy one.
const MAX_SELECT_ITERATIONS: usize = 256;
/// Pooled upstream connections idle longer than this are closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The upstream pool the proxy picks peers from.
pub struct Upstreams {
    lb: Arc<LoadBalancer<RoundRobin>>,
    connect_timeout: Duration,
    read_timeout: Duration,
    count: usize,
    /// The peer itself when there is exactly one upstream: no selection to do per request.
    single: Option<HttpPeer>,
    /// `https://` upstreams by address: the name sent as SNI and verified.
    tls_names: HashMap<SocketAddr, String>,
}

/// The health-check task to run next to the proxy when there are several upstreams.
pub type HealthCheck = GenBackgroundService<LoadBalancer<RoundRobin>>;

impl Upstreams {
    /// Resolves the configured upstreams; several get a TCP health check every
    /// `upstream.health_check_interval_ms`.
    pub fn build(config: &Config) -> Result<(Upstreams, Option<HealthCheck>), String> {
        let addresses: Vec<_> = config
            .upstreams
            .iter()
            .map(|u| upstream_address(u))
            .collect();
        let tls_names = tls_names(&addresses);
        let mut lb =
            LoadBalancer::<RoundRobin>::try_from_iter(addresses.iter().map(|a| a.host_port))
                .map_err(|e| {
                    format!(
                        "upstreams: cannot resolve {:?} ({e}); check the host names",
                        config.upstreams
                    )
                })?;
        let count = config.upstreams.len();
        let (lb, health) = if count > 1 {
            lb.set_health_check(health_check::TcpHealthCheck::new());
            lb.health_check_frequency = Some(config.upstream.health_check_interval);
            let service = background_service("upstream health check", lb);
            (service.task(), Some(service))
        } else {
            (Arc::new(lb), None)
        };
        let mut upstreams = Upstreams {
            lb,
            connect_timeout: config.upstream.connect_timeout,
            read_timeout: config.upstream.read_timeout,
            count,
            single: None,
            tls_names,
        };
        if count == 1 {
            upstreams.single = upstreams.select().map(|peer| *peer);
        }
        Ok((upstreams, health))
    }

    /// Number of configured upstreams.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// The next healthy upstream as a peer (TLS for `https://` ones), or `None` when none is healthy.
    pub(crate) fn pick(&self) -> Option<Box<HttpPeer>> {
        match &self.single {
            Some(peer) => Some(Box::new(peer.clone())),
            None => self.select(),
        }
    }

    fn select(&self) -> Option<Box<HttpPeer>> {
        let backend = self.lb.select(b"", MAX_SELECT_ITERATIONS)?;
        let addr = *backend.addr.as_inet()?;
        let mut peer = match self.tls_names.get(&addr) {
            // Verification of the chain and the name stays on (Pingora's default).
            Some(name) => HttpPeer::new(addr, true, name.clone()),
            None => HttpPeer::new(addr, false, String::new()),
        };
        peer.options.connection_timeout = Some(self.connect_timeout);
        peer.options.read_timeout = Some(self.read_timeout);
        peer.options.write_timeout = Some(self.read_timeout);
        peer.options.idle_timeout = Some(IDLE_TIMEOUT);
        Some(Box::new(peer))
    }
}
