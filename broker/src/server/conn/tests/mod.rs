//! The connection core through both wire adapters, over an in-memory stream (`tokio::io::duplex`):
//! no sockets, no listener, just a broker, a connection task and the client's end of the pipe.

mod resp;
mod ws;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::DuplexStream;
use tokio::task::JoinHandle;

use super::{Credentials, Wire};
use crate::broker::Broker;
use crate::clients::Transport;
use crate::config::Config;

/// A broker without listeners; connections are served on the test's runtime.
struct Harness {
    broker: Arc<Broker>,
}

/// The client's end of one connection and the task serving the other end.
struct Pipe<C> {
    client: C,
    task: JoinHandle<()>,
}

impl Harness {
    fn new() -> Self {
        Self::with(Config::for_tests())
    }

    fn with(config: Config) -> Self {
        Harness { broker: Broker::new(config) }
    }

    /// Serves `wire` as a connection from a made-up peer.
    fn serve<W: Wire + 'static>(&self, wire: W, credentials: Option<Credentials>) -> JoinHandle<()> {
        let addr: SocketAddr = "127.0.0.1:1".parse().expect("address");
        tokio::spawn(super::serve(wire, self.broker.clone(), addr, addr, credentials))
    }

    fn stat(&self, counter: &std::sync::atomic::AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Shuts the broker down as `run` does on SIGTERM.
    fn shut_down(&self) {
        crate::server::begin_shutdown(&self.broker);
    }

    /// Kills every client on `transport`, as CLIENT KILL does.
    fn kill(&self, transport: Transport) {
        for client in self.broker.clients.all() {
            if client.transport == transport {
                client.kill();
            }
        }
    }

    /// Waits (in test time) until `done` holds.
    async fn until(&self, what: &str, done: impl Fn(&Broker) -> bool) {
        for _ in 0..500 {
            if done(&self.broker) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("timed out waiting for: {what}");
    }
}

/// A duplex pipe whose buffers hold `capacity` bytes each way.
fn duplex(capacity: usize) -> (DuplexStream, DuplexStream) {
    tokio::io::duplex(capacity)
}
