//! The chat backends: one upstream, or several health-checked ones balanced by session
//! (Ketama consistent hashing, `upstream.balance: session`) or in turn (`round_robin`).
//!
//! Under `session`, a request's key (see `affinity`) lands on a point of the ring; an unhealthy
//! upstream is skipped by walking on along the ring, so only the sessions of that upstream move,
//! and they move back once it is healthy again. A connection refused by an upstream is retried
//! on the next one along the ring (or in turn), never on one this request already failed on.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::lb::selection::{Consistent, RoundRobin};
use pingora::lb::{Backend, LoadBalancer, health_check};
use pingora::prelude::HttpPeer;
use pingora::server::ShutdownWatch;
use pingora::services::ServiceReadyNotifier;
use pingora::services::background::{BackgroundService, GenBackgroundService, background_service};

use super::affinity;
use crate::config::{Balance, Config, ParamNames, UpstreamAddress, upstream_address};
use crate::metrics::{RouteKind, UpstreamPick};

/// An upstream address as Pingora names it (what a failed peer is remembered by).
pub(crate) type PeerAddr = pingora::protocols::l4::socket::SocketAddr;

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

/// How many ring points (or backends, in turn) a pick may pass looking for a healthy one.
const MAX_SELECT_ITERATIONS: usize = 256;
/// Pooled upstream connections idle longer than this are closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The load balancer of one balance mode.
#[derive(Clone)]
enum Pool {
    RoundRobin(Arc<LoadBalancer<RoundRobin>>),
    Session(Arc<LoadBalancer<Consistent>>),
}

impl Pool {
    /// The first healthy backend for `key` that is not in `failed`.
    fn select(&self, key: &[u8], failed: &[PeerAddr]) -> Option<Backend> {
        let accept = |b: &Backend, healthy: bool| healthy && !failed.contains(&b.addr);
        match self {
            Pool::RoundRobin(lb) => lb.select_with(key, MAX_SELECT_ITERATIONS, accept),
            Pool::Session(lb) => lb.select_with(key, MAX_SELECT_ITERATIONS, accept),
        }
    }
}

/// The upstream pool the proxy picks peers from.
#[derive(Clone)]
pub struct Upstreams {
    pool: Pool,
    /// The list, health-check interval and balance mode the pool was built from (a reload
    /// compares them).
    built_from: (Vec<String>, Duration, Balance),
    /// The query parameter names the session key is read from.
    names: ParamNames,
    connect_timeout: Duration,
    read_timeout: Duration,
    count: usize,
    /// The peer itself when there is exactly one upstream: no selection to do per request.
    single: Option<HttpPeer>,
    /// `https://` upstreams by address: the name sent as SNI and verified.
    tls_names: HashMap<SocketAddr, String>,
}

/// The TCP health checks of a pool with several upstreams, run next to the proxy.
pub struct PoolHealth(Pool);

#[async_trait]
impl BackgroundService for PoolHealth {
    async fn start_with_ready_notifier(
        &self,
        shutdown: ShutdownWatch,
        ready: ServiceReadyNotifier,
    ) {
        match &self.0 {
            Pool::RoundRobin(lb) => lb.start_with_ready_notifier(shutdown, ready).await,
            Pool::Session(lb) => lb.start_with_ready_notifier(shutdown, ready).await,
        }
    }

    async fn start(&self, shutdown: ShutdownWatch) {
        match &self.0 {
            Pool::RoundRobin(lb) => lb.start(shutdown).await,
            Pool::Session(lb) => lb.start(shutdown).await,
        }
    }
}

/// The health-check task to run next to the proxy when there are several upstreams.
pub type HealthCheck = GenBackgroundService<PoolHealth>;

/// Builds the load balancer of one mode; several upstreams get a TCP health check.
fn balancer<S>(
    addresses: &[UpstreamAddress<'_>],
    config: &Config,
) -> Result<LoadBalancer<S>, String>
where
    S: pingora::lb::selection::BackendSelection + Send + Sync + 'static,
    S::Iter: pingora::lb::selection::BackendIter,
{
    let mut lb =
        LoadBalancer::<S>::try_from_iter(addresses.iter().map(|a| a.host_port)).map_err(|e| {
            format!(
                "upstreams: cannot resolve {:?} ({e}); check the host names",
                config.upstreams
            )
        })?;
    if addresses.len() > 1 {
        lb.set_health_check(health_check::TcpHealthCheck::new());
        lb.health_check_frequency = Some(config.upstream.health_check_interval);
    }
    Ok(lb)
}

impl Upstreams {
    /// Resolves the configured upstreams; several get a TCP health check every
    /// `upstream.health_check_interval_ms` and are balanced by `upstream.balance`.
    pub fn build(config: &Config) -> Result<(Upstreams, Option<HealthCheck>), String> {
        let addresses: Vec<_> = config
            .upstreams
            .iter()
            .map(|u| upstream_address(u))
            .collect();
        let tls_names = tls_names(&addresses);
        let count = config.upstreams.len();
        let pool = match config.upstream.balance {
            Balance::RoundRobin => Pool::RoundRobin(Arc::new(balancer(&addresses, config)?)),
            Balance::Session => Pool::Session(Arc::new(balancer(&addresses, config)?)),
        };
        let health = (count > 1)
            .then(|| background_service("upstream health check", PoolHealth(pool.clone())));
        let mut upstreams = Upstreams {
            pool,
            built_from: (
                config.upstreams.clone(),
                config.upstream.health_check_interval,
                config.upstream.balance,
            ),
            names: config.params.clone(),
            connect_timeout: config.upstream.connect_timeout,
            read_timeout: config.upstream.read_timeout,
            count,
            single: None,
            tls_names,
        };
        if count == 1 {
            upstreams.single = upstreams.peer_for(b"", &[]).map(|peer| *peer);
        }
        Ok((upstreams, health))
    }

    /// The pool for a reloaded `config`: `previous` itself, health state included, when the
    /// upstream list, health-check interval and balance mode are unchanged (only its timeouts
    /// and parameter names are replaced); a new pool, with its health check to run, otherwise.
    pub(crate) fn rebuild(
        config: &Config,
        previous: &Upstreams,
    ) -> Result<(Upstreams, Option<HealthCheck>), String> {
        let (list, interval, balance) = &previous.built_from;
        if *list != config.upstreams
            || *interval != config.upstream.health_check_interval
            || *balance != config.upstream.balance
        {
            return Upstreams::build(config);
        }
        let mut same = previous.clone();
        same.names = config.params.clone();
        same.connect_timeout = config.upstream.connect_timeout;
        same.read_timeout = config.upstream.read_timeout;
        if let Some(peer) = same.single.as_mut() {
            peer.options.connection_timeout = Some(same.connect_timeout);
            peer.options.read_timeout = Some(same.read_timeout);
            peer.options.write_timeout = Some(same.read_timeout);
        }
        Ok((same, None))
    }

    /// Number of configured upstreams.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// The upstream for a request on `route` with `query` from `client`, as a peer (TLS for
    /// `https://` ones), skipping the upstreams this request `failed` to connect to; `None`
    /// when none is healthy. Says how it was chosen.
    pub(crate) fn pick(
        &self,
        route: RouteKind,
        query: Option<&str>,
        client: Option<IpAddr>,
        failed: &[PeerAddr],
    ) -> (Option<Box<HttpPeer>>, UpstreamPick) {
        if let Some(peer) = &self.single {
            return (Some(Box::new(peer.clone())), UpstreamPick::Single);
        }
        match self.pool {
            Pool::RoundRobin(_) => (self.peer_for(b"", failed), UpstreamPick::RoundRobin),
            Pool::Session(_) => {
                let (key, how) = affinity::key(route, query, &self.names, client);
                (self.peer_for(key.bytes(), failed), how)
            }
        }
    }

    fn peer_for(&self, key: &[u8], failed: &[PeerAddr]) -> Option<Box<HttpPeer>> {
        // Every upstream failed this request: try the healthy ones again rather than none, so
        // the answer is the connection's own failure.
        let backend = self
            .pool
            .select(key, failed)
            .or_else(|| self.pool.select(key, &[]))?;
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

/// The address a failed peer is remembered by (see [`Upstreams::pick`]).
pub(crate) fn failed_address(peer: &HttpPeer) -> PeerAddr {
    peer._address.clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::UpstreamConfig;

    fn three(balance: Balance) -> Config {
        let defaults = Config::default();
        Config {
            upstreams: (1..=3).map(|p| format!("127.0.0.1:{p}")).collect(),
            upstream: UpstreamConfig {
                balance,
                ..defaults.upstream.clone()
            },
            ..defaults
        }
    }

    fn addr(peer: Option<Box<HttpPeer>>) -> PeerAddr {
        failed_address(&peer.expect("a peer"))
    }

    fn session(u: &Upstreams, id: usize, failed: &[PeerAddr]) -> PeerAddr {
        let query = format!("siteid=s&jsSessionId=v{id}");
        let (peer, how) = u.pick(RouteKind::Session, Some(&query), None, failed);
        assert_eq!(how, UpstreamPick::Session);
        addr(peer)
    }

    #[test]
    fn a_session_keeps_its_upstream_and_only_a_failed_ones_sessions_move() {
        let (u, health) = Upstreams::build(&three(Balance::Session)).unwrap();
        assert!(health.is_some());
        let home: Vec<PeerAddr> = (0..60).map(|i| session(&u, i, &[])).collect();
        for (i, h) in home.iter().enumerate() {
            assert_eq!(session(&u, i, &[]), *h);
        }
        let mut used = home.clone();
        used.sort();
        used.dedup();
        assert_eq!(used.len(), 3, "every upstream gets sessions");
        let down = home[0].clone();
        for (i, h) in home.iter().enumerate() {
            let now = session(&u, i, std::slice::from_ref(&down));
            if *h == down {
                assert_ne!(now, down);
            } else {
                assert_eq!(now, *h, "session {i} moved though its upstream is up");
            }
        }
        // Every upstream failed: the healthy ones are tried again rather than none.
        assert!(u.pick(RouteKind::Other, None, None, &used).0.is_some());
        let (_, how) = u.pick(RouteKind::Other, None, Some([192, 0, 2, 1].into()), &[]);
        assert_eq!(how, UpstreamPick::ClientAddress);
    }

    #[test]
    fn round_robin_takes_each_upstream_in_turn() {
        let (u, _) = Upstreams::build(&three(Balance::RoundRobin)).unwrap();
        let query = Some("siteid=s&jsSessionId=v");
        let picks: Vec<PeerAddr> = (0..3)
            .map(|_| {
                let (peer, how) = u.pick(RouteKind::Session, query, None, &[]);
                assert_eq!(how, UpstreamPick::RoundRobin);
                addr(peer)
            })
            .collect();
        assert!(picks[0] != picks[1] && picks[1] != picks[2] && picks[0] != picks[2]);
    }

    #[test]
    fn one_upstream_needs_no_choice_and_a_reload_rebuilds_only_on_a_pool_change() {
        let mut one = three(Balance::Session);
        one.upstreams.truncate(1);
        let (u, health) = Upstreams::build(&one).unwrap();
        assert!(health.is_none());
        assert_eq!(
            u.pick(RouteKind::Init, None, None, &[]).1,
            UpstreamPick::Single
        );

        let config = three(Balance::Session);
        let (u, _) = Upstreams::build(&config).unwrap();
        let mut timeouts = config.clone();
        timeouts.upstream.read_timeout = Duration::from_secs(1);
        assert!(Upstreams::rebuild(&timeouts, &u).unwrap().1.is_none());
        let switched = three(Balance::RoundRobin);
        let (rr, health) = Upstreams::rebuild(&switched, &u).unwrap();
        assert!(health.is_some());
        assert_eq!(
            rr.pick(RouteKind::Other, None, None, &[]).1,
            UpstreamPick::RoundRobin
        );
    }
}
