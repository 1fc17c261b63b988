//! A real Pingora `Server` built by the library entry, running on a plain OS thread (not
//! inside a tokio runtime), stopped through its shutdown-signal hook on drop.

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use flowgate::config::Config;
use flowgate::metrics::Metrics;
use pingora::server::{RunArgs, ShutdownSignal, ShutdownSignalWatch};
use tokio::sync::Notify;

use super::ports::{accepts, free_addr};

/// A flowgate server running in this process.
pub struct InProcess {
    /// Proxy address.
    pub addr: SocketAddr,
    /// The server's metrics.
    pub metrics: Arc<Metrics>,
    stop: Arc<Notify>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct StopOnNotify(Arc<Notify>);

#[async_trait]
impl ShutdownSignalWatch for StopOnNotify {
    async fn recv(&self) -> ShutdownSignal {
        self.0.notified().await;
        ShutdownSignal::FastShutdown
    }
}

impl InProcess {
    /// Starts `config` (listen address replaced by a free port, admin off) and waits until
    /// it accepts connections.
    pub fn start(mut config: Config) -> InProcess {
        let addr = free_addr();
        config.listen = Some(addr);
        config.admin = None;
        let dir = super::flowgate::TempDir::new("flowgate-inprocess");
        config.server.pid_file = dir.path().join("pid").display().to_string();
        config.server.upgrade_sock = dir.path().join("upgrade.sock").display().to_string();
        let built = flowgate::server::build(&config, None).unwrap();
        let metrics = built.metrics.clone();
        let stop = Arc::new(Notify::new());
        let signal = StopOnNotify(stop.clone());
        let thread = std::thread::spawn(move || {
            let _dir = dir;
            built.server.run(RunArgs {
                shutdown_signal: Box::new(signal),
            });
        });
        super::wait_until("the in-process server to listen", || accepts(addr));
        InProcess {
            addr,
            metrics,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://<addr><path_and_query>`.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{}", self.addr, path_and_query)
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        // notify_one stores a permit, so a stop before the server listens is not lost.
        self.stop.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
