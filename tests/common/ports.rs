//! Ports for the servers a test starts: never the same port twice in one test process, each
//! checked free by binding it.
//!
//! Picking a port by binding `:0` and closing the socket is not enough on its own: two calls
//! can get the same port back (a flowgate once got one port for both `listen` and `admin`), and
//! concurrent tests race for the kernel's next ports. So:
//! - under nextest, `NEXTEST_TEST_GLOBAL_SLOT` is unique among the tests running at the same
//!   time. Each slot owns a block of [`BLOCK`] ports below the kernel's ephemeral range (where
//!   nothing is handed out unasked), shifted by the run's id so two runs on one machine rarely
//!   share blocks; the process hands the block's ports out in turn, skipping any it cannot bind
//!   (a leftover process, another run). Redis Cluster's bus ports (port + [`BUS_OFFSET`]) fall
//!   in a range of their own above the blocks;
//! - otherwise (`cargo test`, whose tests share one process), the kernel picks: every port of one
//!   call is bound on `:0` and held until all of them are chosen, and a port this process has
//!   handed out before is never handed out again.
//!
//! A port can still be taken between the check and the child binding it (another program on the
//! machine); the harnesses retry with fresh ports when a child says "Address already in use".

#![allow(dead_code)]

use std::collections::HashSet;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

/// Redis Cluster's bus port is the client port plus this.
pub const BUS_OFFSET: u16 = 10_000;
/// Ports per nextest slot.
pub const BLOCK: u16 = 100;
/// First port of slot blocks; blocks and their bus twins stay below the ephemeral range.
const FIRST: u16 = 10_000;
/// Number of blocks: `FIRST..FIRST + SLOTS * BLOCK` for ports, the same + `BUS_OFFSET` for buses.
const SLOTS: u16 = 100;

/// Every port this process has handed out.
fn handed_out() -> std::sync::MutexGuard<'static, HashSet<u16>> {
    static SET: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    SET.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// The first port of this test's block, when running under nextest and the blocks fit below
/// the ephemeral range.
fn block_start() -> Option<u16> {
    static START: OnceLock<Option<u16>> = OnceLock::new();
    *START.get_or_init(|| {
        let slot: u32 = std::env::var("NEXTEST_TEST_GLOBAL_SLOT")
            .ok()?
            .parse()
            .ok()?;
        // Concurrent runs (several checkouts on one machine) start from different blocks.
        let run = std::env::var("NEXTEST_RUN_ID").unwrap_or_default();
        let lane = run
            .bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
        let index = (slot.wrapping_add(lane) % u32::from(SLOTS)) as u16;
        let start = FIRST + index * BLOCK;
        let top = u32::from(FIRST) + u32::from(SLOTS * BLOCK) + u32::from(BUS_OFFSET);
        (top <= ephemeral_start()).then_some(start)
    })
}

/// The kernel's first ephemeral port (32768 when it cannot be read).
fn ephemeral_start() -> u32 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

/// Ports Chromium refuses to load (`ERR_UNSAFE_PORT`) that fall in the ranges handed out here;
/// a browser test given one would never reach its server.
const BROWSER_BLOCKED: [u16; 9] = [6000, 6566, 6665, 6666, 6667, 6668, 6669, 6697, 10080];

fn bindable(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// The next unused port of this test's block (with its bus twin free too when `bus`), or
/// `None` once the block is used up.
fn from_block(start: u16, bus: bool, taken: &mut HashSet<u16>) -> Option<u16> {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    // Tests that run one after another in one slot begin at different ports.
    static OFFSET: OnceLock<u16> = OnceLock::new();
    let offset = *OFFSET.get_or_init(|| (std::process::id() % u32::from(BLOCK)) as u16);
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        if n >= BLOCK {
            return None;
        }
        let port = start + (offset + n) % BLOCK;
        let free = !taken.contains(&port)
            && !BROWSER_BLOCKED.contains(&port)
            && !BROWSER_BLOCKED.contains(&(port + BUS_OFFSET))
            && bindable(port)
            && (!bus || (!taken.contains(&(port + BUS_OFFSET)) && bindable(port + BUS_OFFSET)));
        if free {
            taken.insert(port);
            if bus {
                taken.insert(port + BUS_OFFSET);
            }
            return Some(port);
        }
    }
}

/// `N` ports from the kernel, all probe sockets held until every one is chosen.
fn from_kernel<const N: usize>(bus: bool, taken: &mut HashSet<u16>) -> [u16; N] {
    let mut held = Vec::new();
    let mut chosen = Vec::with_capacity(N);
    while chosen.len() < N {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        held.push(listener);
        if taken.contains(&port) {
            continue;
        }
        if bus {
            let Some(twin) = port.checked_add(BUS_OFFSET) else {
                continue;
            };
            if taken.contains(&twin) {
                continue;
            }
            match TcpListener::bind(("127.0.0.1", twin)) {
                Ok(l) => held.push(l),
                Err(_) => continue,
            }
        }
        chosen.push(port);
    }
    for &port in &chosen {
        taken.insert(port);
        if bus {
            taken.insert(port + BUS_OFFSET);
        }
    }
    chosen.try_into().unwrap_or_else(|_| unreachable!())
}

fn pick<const N: usize>(bus: bool) -> [u16; N] {
    let mut taken = handed_out();
    if let Some(start) = block_start() {
        let mut ports = [0u16; N];
        let mut filled = 0;
        while filled < N {
            match from_block(start, bus, &mut taken) {
                Some(port) => {
                    ports[filled] = port;
                    filled += 1;
                }
                None => break,
            }
        }
        if filled == N {
            return ports;
        }
        // The block is used up: the rest come from the kernel, still distinct.
        let rest = from_kernel::<N>(bus, &mut taken);
        ports[filled..].copy_from_slice(&rest[..N - filled]);
        return ports;
    }
    from_kernel::<N>(bus, &mut taken)
}

/// `N` distinct free ports, for one process that needs several (e.g. `listen` and `admin`).
pub fn free_ports<const N: usize>() -> [u16; N] {
    pick::<N>(false)
}

/// One free port, never handed out before in this process.
pub fn free_port() -> u16 {
    let [port] = pick::<1>(false);
    port
}

/// A free port whose Redis Cluster bus port (`port + BUS_OFFSET`) is free too.
pub fn free_cluster_port() -> u16 {
    let [port] = pick::<1>(true);
    port
}

/// `N` distinct `127.0.0.1:<free port>` addresses.
pub fn free_addrs<const N: usize>() -> [SocketAddr; N] {
    free_ports::<N>().map(|port| SocketAddr::from(([127, 0, 0, 1], port)))
}

/// `127.0.0.1:<free port>`.
pub fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// Whether something accepts TCP connections on `addr`.
pub fn accepts(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}
