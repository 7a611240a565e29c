//! A fault-injecting TCP proxy: forwards every connection to a target, delaying each chunk by
//! a one-way delay in each direction, stalling (holding all traffic) on demand, and cutting
//! every open connection on demand. The kernel here has no `tc netem`, so the federation tests
//! and benchmarks put this between two nodes (`trilink bench proxy` runs it alone).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
struct Faults {
    delay: Duration,
    stalled: bool,
}

#[derive(Debug, Default)]
struct Shared {
    faults: Mutex<Faults>,
    changed: Condvar,
    /// Both ends of every open connection, to cut them.
    open: Mutex<Vec<TcpStream>>,
    stop: AtomicBool,
}

/// A running proxy; stops (and cuts everything) when dropped.
#[derive(Debug)]
pub struct Proxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Proxy {
    /// Listens on `listen` (port 0: any) and forwards each connection to `target`.
    pub fn start(listen: SocketAddr, target: SocketAddr, delay: Duration) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind(listen)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        shared.faults.lock().map_err(|_| std::io::Error::other("poisoned"))?.delay = delay;
        let s = shared.clone();
        std::thread::Builder::new().name("proxy-accept".into()).spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(client) = conn else { continue };
                let Ok(server) = TcpStream::connect_timeout(&target, Duration::from_secs(5)) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                if let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) {
                    if let Ok(mut open) = s.open.lock() {
                        open.push(c2);
                        open.push(s2);
                    }
                }
                pump(&s, &client, &server);
                pump(&s, &server, &client);
            }
        })?;
        Ok(Proxy { addr, shared })
    }

    /// Holds all traffic (connections stay open, nothing moves) until `stall(false)`.
    pub fn stall(&self, on: bool) {
        if let Ok(mut f) = self.shared.faults.lock() {
            f.stalled = on;
        }
        self.shared.changed.notify_all();
    }

    /// Closes every open connection at once, both ends (new ones are still accepted).
    pub fn cut(&self) {
        if let Ok(mut open) = self.shared.open.lock() {
            for s in open.drain(..) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.stall(false);
        self.cut();
        // Wake the accept loop so it sees the stop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

/// Copies `from` to `to`: a reader thread stamps each chunk, a writer thread sends it once its
/// delay has passed and no stall holds it, in order.
fn pump(shared: &Arc<Shared>, from: &TcpStream, to: &TcpStream) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else { return };
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let _ = std::thread::Builder::new().name("proxy-read".into()).spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tx.send((Instant::now(), buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let s = shared.clone();
    let _ = std::thread::Builder::new().name("proxy-write".into()).spawn(move || {
        while let Ok((at, chunk)) = rx.recv() {
            let delay = {
                let Ok(mut f) = s.faults.lock() else { return };
                while f.stalled && !s.stop.load(Ordering::Relaxed) {
                    f = match s.changed.wait_timeout(f, Duration::from_millis(100)) {
                        Ok((g, _)) => g,
                        Err(_) => return,
                    };
                }
                f.delay
            };
            if let Some(wait) = (at + delay).checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            if to.write_all(&chunk).is_err() {
                return;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}
