//! What a connection sends: pushes drained from the outbox, and the one write per batch.

use std::sync::atomic::Ordering;

use super::connection::Conn;
use super::{End, Wire};
use crate::doorbell::Doorbell;

impl<W: Wire> Conn<W> {
    /// Moves every queued push into the output. When drop-oldest discarded some, the client is told
    /// how many before the ones that survived.
    pub(super) fn drain_pushes(&mut self) {
        let start = self.out.len();
        let (wire, out) = (&mut self.wire, &mut self.out);
        let drained = self.client.outbox.drain(|frame| wire.encode_push(&frame, out));
        if drained.lagged > 0 {
            let frames = self.out.split_off(start);
            self.wire.encode_lagged(drained.lagged, self.session.encoding(), &mut self.out);
            self.out.unsplit(frames);
        }
    }

    /// Writes everything gathered. Most output fits the socket's buffer at once: check the kill and
    /// the overflow on the doorbell, then write without a `select!`, which would register (and unlink)
    /// two waits per flush. Only a write that cannot finish now waits, still watching both, so a reader that stopped
    /// reading cannot hold the connection (or a kill) up.
    pub(super) async fn flush(&mut self) -> Result<(), End> {
        if self.out.is_empty() && !self.wire.must_flush() {
            return Ok(());
        }
        // Nothing is acknowledged before the log holds it as the fsync policy promises.
        if let Some(p) = &self.broker.persist
            && let Err(e) = p.commit(self.session.commit_lsn).await
        {
            return Err(End::Persist(e));
        }
        let rung = self.client.outbox.doorbell().rung();
        if rung & Doorbell::KILL != 0 {
            return Err(self.killed());
        }
        if rung & Doorbell::OVERFLOW != 0 {
            return Err(self.overflowed());
        }
        let len = self.out.len();
        let sent = self.wire.try_write(&self.out).map_err(End::io)?;
        if sent < len || self.wire.must_flush() {
            let (wire, out, client) = (&mut self.wire, &self.out, &self.client);
            let written = tokio::select! {
                biased;
                _ = client.kill_requested() => return Err(self.killed()),
                _ = client.outbox.overflowed() => return Err(self.overflowed()),
                written = wire.write_all(&out[sent..]) => written,
            };
            written.map_err(End::io)?;
        }
        self.broker.stats.net_output_bytes.fetch_add(len as u64, Ordering::Relaxed);
        self.out.clear();
        if self.out.capacity() > 4 * self.profile.flush_at {
            self.out = bytes::BytesMut::new();
        }
        Ok(())
    }

    /// CLIENT KILL, unless the outbox overflowed first (then that is the reason).
    pub(super) fn killed(&self) -> End {
        if self.client.outbox.has_overflowed() { self.overflowed() } else { End::Killed }
    }

    pub(super) fn overflowed(&self) -> End {
        End::Overflow(self.client.outbox.closed().map_or("output buffer limit reached (slow consumer)", |r| r.describe()))
    }
}
