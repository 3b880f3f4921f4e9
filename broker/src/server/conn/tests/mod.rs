//! The connection core through its wire adapters, over an in-memory stream (`tokio::io::duplex`):
//! no sockets, no listener, just a broker, a connection task and the client's end of the pipe.

mod http;
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
        Harness { broker: Broker::new(config).expect("broker") }
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

    /// Publishes 16 KiB messages on `channel` until the connection served by `task` ends, and checks
    /// that it ended because its outbox overflowed (see [`small_outbox`]).
    async fn flood_until_closed(&self, channel: &[u8], task: JoinHandle<()>) {
        let payload = vec![b'p'; 16 * 1024];
        for _ in 0..100 {
            if task.is_finished() {
                break;
            }
            self.broker.hub.publish(channel, &payload);
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::timeout(Duration::from_secs(5), task).await.expect("the overflow closed the connection").expect("task");
        assert_eq!(self.stat(&self.broker.stats.output_limit_disconnects), 1);
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

/// Settings under which a subscriber that stops reading overflows soon: a 64 KiB hard limit.
fn small_outbox() -> Config {
    let mut config = Config::for_tests();
    config.pubsub.hard_limit = 64 * 1024;
    config.pubsub.soft_limit = 0;
    config
}

/// Settings under which pushes that pile up are dropped, oldest first, past 4 KiB.
fn drop_oldest() -> Config {
    let mut config = Config::for_tests();
    config.pubsub.hard_limit = 4096;
    config.pubsub.soft_limit = 0;
    config.pubsub.overflow = "drop-oldest".into();
    config
}

/// A duplex pipe whose buffers hold `capacity` bytes each way.
fn duplex(capacity: usize) -> (DuplexStream, DuplexStream) {
    tokio::io::duplex(capacity)
}
