//! Connection threads: each runs a single-threaded tokio runtime, and accepted connections are dealt
//! to them in turn.
//!
//! Why not tokio's multi-threaded runtime: on this kind of workload (tiny requests, one task per
//! connection) its work-stealing costs measurably more CPU per request than a current-thread runtime
//! per core (see docs/benchmarks.md). Engines are shared behind one lock either way.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use tokio::runtime::{Builder, Handle};
use tokio_util::sync::CancellationToken;

struct Worker {
    handle: Handle,
    thread: JoinHandle<()>,
}

pub struct Workers {
    workers: Vec<Worker>,
    next: AtomicUsize,
    stop: CancellationToken,
}

impl Workers {
    /// Starts `count` threads; with 0, work runs on the caller's runtime.
    pub fn start(count: usize) -> std::io::Result<Self> {
        let stop = CancellationToken::new();
        let mut workers = Vec::with_capacity(count);
        for i in 0..count {
            let (tx, rx) = std::sync::mpsc::channel();
            let stop = stop.clone();
            let thread = std::thread::Builder::new().name(format!("herald-io-{i}")).spawn(move || {
                let runtime = Builder::new_current_thread().enable_all().build().expect("worker runtime");
                tx.send(runtime.handle().clone()).expect("handle sent back");
                runtime.block_on(stop.cancelled());
            })?;
            let handle = rx.recv().map_err(|_| std::io::Error::other("io thread failed to start"))?;
            workers.push(Worker { handle, thread });
        }
        Ok(Workers { workers, next: AtomicUsize::new(0), stop })
    }

    /// Runs `task` on the next thread. Sockets must be registered inside the task (`from_std`), so they
    /// belong to the reactor of the thread that serves them.
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        if self.workers.is_empty() {
            tokio::spawn(task);
            return;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.workers.len();
        self.workers[i].handle.spawn(task);
    }

    /// Stops the threads (dropping whatever still runs on them) and waits for them to exit.
    pub fn stop(self) {
        self.stop.cancel();
        for w in self.workers {
            let _ = w.thread.join();
        }
    }
}
