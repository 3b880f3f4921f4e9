//! WATCH on the Redis engine. Redis checks watched keys per connection, so a session that WATCHes
//! borrows a connection of its own from the dedicated pool (`pool.rs`) and keeps it until the watch
//! ends: its WATCHes and the `MULTI ... EXEC` that ends them run there, so Redis decides whether EXEC
//! aborts, exactly as for a Redis client. UNWATCH, DISCARD, EXEC hand the connection back; RESET and a
//! disconnect drop it, closing it (Redis forgets its watches). Everything else the session sends in
//! between still goes on the shared connection, which Redis sees as another client: writes to watched
//! keys abort the EXEC, as a Redis client's own writes do.

use std::sync::{Arc, Mutex};

use herald_protocol::{CommandError, Reply, Request};
use tokio::sync::oneshot;

use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, Slot, SlotAddr};

use super::Remote;
use super::pool::{Lent, Pool, Target};
use super::value;
use crate::dispatch::{Blocked, Outcome};

/// A session's pinned connection (empty while no command holds it, or after it was lost), and its
/// BB.WATCHes (`bb_watch.rs`), checked at EXEC.
#[derive(Clone, Default)]
pub struct Pinned(Arc<Mutex<Option<Lent>>>, Arc<Mutex<Vec<super::bb_watch::Watched>>>);

impl Pinned {
    fn take(&self) -> Option<Lent> {
        self.0.lock().expect("pinned connection").take()
    }

    pub(super) fn put(&self, lent: Lent) {
        *self.0.lock().expect("pinned connection") = Some(lent);
    }

    /// Under Redis Cluster: the slot of the keys watched so far.
    pub fn slot(&self) -> Option<Slot> {
        self.0.lock().expect("pinned connection").as_ref().and_then(|lent| lent.conn.pinned())
    }

    pub(super) fn note_bb(&self, watched: super::bb_watch::Watched) {
        self.1.lock().expect("bb watches").push(watched);
    }

    fn take_bb(&self) -> Vec<super::bb_watch::Watched> {
        std::mem::take(&mut *self.1.lock().expect("bb watches"))
    }
}

/// The session's pinned connection, borrowed from the pool on its first watch; refused (as the reply)
/// when it is on another database than `target`, whose watches it keeps.
pub(super) async fn hold(remote: &Remote, pinned: &Pinned, target: Target) -> Result<Lent, Reply> {
    match pinned.take() {
        Some(lent) if Pool::target_of(&lent) == target => Ok(lent),
        Some(lent) => {
            pinned.put(lent);
            Err(Reply::error("ERR WATCH in another database than the keys already watched is not supported by the redis engine"))
        }
        None => remote.pool.lend(target).await.map_err(|e| value::failed(&e)),
    }
}

use super::abandoned as lost;

/// WATCH key [key ...]: sent on the session's pinned connection (borrowed on the first WATCH). Under
/// Redis Cluster `slot` is the keys' one slot: the connection is pinned to it (a WATCH of another
/// slot answers `CROSSSLOT`), and the WATCH goes to its master.
pub fn watch(remote: &Arc<Remote>, req: &Request, pinned: Pinned, target: Target, slot: Option<Slot>) -> Outcome {
    let (tx, rx) = oneshot::channel();
    let cmd = value::command(req);
    let remote = remote.clone();
    tokio::spawn(async move {
        let mut lent = match hold(&remote, &pinned, target).await {
            Ok(lent) => lent,
            Err(e) => {
                let _ = tx.send(e);
                return;
            }
        };
        let route = slot.map(|slot| RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::with_slot(slot, SlotAddr::Master))));
        if let Some(slot) = slot
            && !lent.conn.pin(slot)
        {
            pinned.put(lent);
            let _ = tx.send(Reply::error(super::cluster::CROSSSLOT));
            return;
        }
        let reply = match lent.conn.send_routed(&cmd, route).await {
            Ok(v) => {
                pinned.put(lent);
                value::reply(v, &Reply::Nil)
            }
            // The connection is gone and its watches with it: the EXEC that follows aborts.
            Err(e) => value::failed(&e),
        };
        let _ = tx.send(reply);
    });
    Outcome::Block(Blocked::elsewhere(rx, lost()))
}

/// UNWATCH (or DISCARD) with a pinned connection: UNWATCH there, then the connection goes back to the
/// pool; `reply` is the command's own reply.
pub fn release(remote: &Arc<Remote>, pinned: Pinned, reply: Reply) -> Outcome {
    let (tx, rx) = oneshot::channel();
    let remote = remote.clone();
    tokio::spawn(async move {
        if let Some(mut lent) = pinned.take()
            && lent.conn.send_packed_command(&redis::cmd("UNWATCH")).await.is_ok()
        {
            remote.pool.give_back(lent);
        }
        let _ = tx.send(reply);
    });
    Outcome::Block(Blocked::elsewhere(rx, lost()))
}

/// EXEC of a watching session: the transaction on the pinned connection (Redis aborts it if a watched
/// key changed); a connection lost since the WATCH aborts it too (nil), never runs it unwatched.
pub fn exec(
    remote: &Arc<Remote>,
    pinned: Pinned,
    queued: Vec<(&'static herald_protocol::command::CommandSpec, Request)>,
    target: Target,
) -> Outcome {
    let (tx, rx) = oneshot::channel();
    let remote = remote.clone();
    tokio::spawn(async move {
        let reply = match pinned.take() {
            None => Reply::NilArray,
            Some(lent) if Pool::target_of(&lent) != target => {
                Reply::Error(CommandError::fixed("ERR EXEC in another database than the watched keys is not supported by the redis engine"))
            }
            Some(mut lent) => {
                let bb = pinned.take_bb();
                if !bb.is_empty() && !super::bb_watch::unchanged(&remote, &mut lent, &bb, target.db).await {
                    // A watched blackboard key changed: aborted, as Redis aborts for a watched key.
                    if lent.conn.send_packed_command(&redis::cmd("UNWATCH")).await.is_ok() {
                        remote.pool.give_back(lent);
                    }
                    let _ = tx.send(Reply::NilArray);
                    return;
                }
                let (reply, healthy) = super::forward::transaction(&mut lent.conn, &queued).await;
                if healthy {
                    remote.pool.give_back(lent);
                }
                reply
            }
        };
        let _ = tx.send(reply);
    });
    Outcome::Block(Blocked::elsewhere(rx, lost()))
}
