//! The framework's floor: a bare Pingora reverse proxy with no logic at all, for
//! `benches/load.sh` to compare flowgate against (same Pingora, same server settings).
//!
//! ```text
//! cargo run --release --example passthrough -- 127.0.0.1:8091 127.0.0.1:8090 [threads] [work_stealing]
//! ```

use async_trait::async_trait;
use pingora::prelude::*;
use pingora::proxy::{ProxyHttp, Session, http_proxy_service};
use pingora::server::configuration::ServerConf;

/// The same allocator as the `flowgate` binary, so the comparison measures the proxy logic.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Passthrough {
    upstream: std::net::SocketAddr,
}

#[async_trait]
impl ProxyHttp for Passthrough {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(listen), Some(upstream)) = (args.first(), args.get(1)) else {
        eprintln!("usage: passthrough LISTEN UPSTREAM [THREADS] [WORK_STEALING]");
        std::process::exit(2);
    };
    let Ok(upstream) = upstream.parse() else {
        eprintln!("passthrough: UPSTREAM must be ip:port");
        std::process::exit(2);
    };
    let threads = args.get(2).and_then(|t| t.parse().ok()).unwrap_or(1);
    let conf = ServerConf {
        threads,
        // As flowgate does: no stealing with one thread (its single-threaded runtime is cheaper).
        work_stealing: threads > 1 && args.get(3).is_none_or(|w| w != "false"),
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        pid_file: format!("/tmp/flowgate-passthrough-{}.pid", std::process::id()),
        upgrade_sock: format!("/tmp/flowgate-passthrough-{}.sock", std::process::id()),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut service = http_proxy_service(&server.configuration, Passthrough { upstream });
    service.add_tcp(listen);
    server.add_service(service);
    server.run_forever();
}
