//! The work in flight of an embedded data directory, written in the Redis engine's layout for
//! `--migrate-to` (`import.rs`): jobs, bulletin boards, mailboxes and held semaphore permits.
//!
//! Each object is written whole, its keys deleted first (so a second run writes the same again), with
//! the ids, sequence numbers and lease tokens the node gave its contents. The node counts ids, seqs and
//! tokens across all objects; Redis counts them per object, so every object's counters start from the
//! node's: a new id, seq or token on Redis never equals a moved one, and fencing tokens keep growing.
//!
//! **Leases are kept, with their ends.** A job a worker holds stays running under its token, a leased
//! item stays leased, a permit stays held. A holder that comes back through any node carries on with its
//! token (heartbeat, chunk, complete, extend, release, remove); one that is gone loses the lease at its
//! end, and Redis then does what the node would have done: the job goes back to its queue with the
//! attempt counted (or to the dead letters after its last attempt), the item back to its board with a
//! failed lease counted, the permit is freed. Ending the leases at the move instead would let a second
//! worker, or a second lock holder, in while the first may still be at work, and would spend an attempt
//! of every job whose worker was only reconnecting.
//!
//! Requests (`MSG.REQUEST`) are not in a data directory (their requesters do not outlive the node), so
//! there are none to move; the messages waiting in mailboxes are.

use std::cell::RefCell;
use std::collections::BTreeMap;

use bytes::Bytes;
use redis::Cmd;

use super::Remote;
use super::import::{Moved, run};
use super::{bulletin, job_store, mailbox, semaphore};
use crate::engine::bulletin::{Item, Overflow};
use crate::engine::jobs::{BackoffKind, Job, JobState};
use crate::engine::listing::ListArgs;
use crate::state::State;

/// Most values one `RPUSH` carries (a long list goes as several, in order).
const PUSH_MAX: usize = 1024;

fn del(keys: &[Vec<u8>]) -> Cmd {
    redis::cmd("DEL").arg(keys).clone()
}

fn rpush(key: &[u8], values: &[Vec<u8>]) -> Cmd {
    redis::cmd("RPUSH").arg(key).arg(values).clone()
}

/// Writes an object: its keys deleted, then its commands with each list's first [`PUSH_MAX`] values
/// (one `RPUSH` per list, so no two of one list race in a batch), then the rest of a longer list, in
/// order, an `RPUSH` at a time.
async fn write(remote: &Remote, dels: Vec<Cmd>, mut cmds: Vec<Cmd>, lists: Vec<(Vec<u8>, Vec<Vec<u8>>)>) -> Result<(), String> {
    run(remote, 0, dels).await?;
    let mut rest = Vec::new();
    for (key, values) in &lists {
        let mut parts = values.chunks(PUSH_MAX);
        cmds.extend(parts.next().map(|first| rpush(key, first)));
        rest.extend(parts.map(|part| rpush(key, part)));
    }
    run(remote, 0, cmds).await?;
    for cmd in rest {
        run(remote, 0, vec![cmd]).await?;
    }
    Ok(())
}

/// Every queue: its jobs (each with its index key and chunks), its ready and deadline sets, its dead
/// letters in order, its settings and counters.
pub(super) async fn jobs(state: &State, remote: &Remote, moved: &mut Moved) -> Result<(), String> {
    let (seq, token) = state.jobs.counters();
    let mut by_queue: BTreeMap<Bytes, Vec<&Job>> = BTreeMap::new();
    let ids = state.jobs.ids();
    for job in ids.iter().filter_map(|id| state.jobs.job(id)) {
        by_queue.entry(job.queue.clone()).or_default().push(job);
    }
    for queue in state.jobs.queues(&ListArgs::all()).entries {
        let [meta, ready, due, dead, all, _gone, _waiting] = job_store::queue_keys(&queue.name);
        let prefix = job_store::prefix(&queue.name);
        let mut dels = vec![del(&[meta.clone(), ready.clone(), due.clone(), dead.clone(), all.clone()])];
        let mut cmds = Vec::new();
        let mut lists = Vec::new();
        let (mut running, mut open) = (0usize, 0usize);
        for job in by_queue.remove(&queue.name).unwrap_or_default() {
            let (jk, ck) = ([prefix.as_slice(), b"job:", &job.id].concat(), [prefix.as_slice(), b"chunks:", &job.id].concat());
            dels.push(del(&[jk.clone(), ck.clone()]));
            running += usize::from(job.state.is_active());
            open += usize::from(!job.state.is_final());
            moved.jobs += 1;
            moved.running_jobs += usize::from(job.state.is_active());
            let deadline = match job.state {
                JobState::Queued => {
                    cmds.push(redis::cmd("ZADD").arg(&ready).arg(-job.priority).arg(ready_member(job)).clone());
                    None
                }
                JobState::Delayed => job.run_at_ms,
                JobState::Running | JobState::Streaming => job.lease.map(|l| l.expires_ms),
                JobState::Dead => None,
                JobState::Done | JobState::Error | JobState::Cancelled => job.finished_ms.map(|f| f + job.result_ttl_ms),
            };
            cmds.push(job_hash(&jk, job, deadline));
            if let Some(at) = deadline {
                cmds.push(redis::cmd("ZADD").arg(&due).arg(at).arg(&job.id[..]).clone());
            }
            cmds.push(redis::cmd("ZADD").arg(&all).arg(job.seq).arg(&job.id[..]).clone());
            cmds.push(redis::cmd("SET").arg(job_store::index_key(&job.id)).arg(&queue.name[..]).clone());
            lists.push((ck, job.chunks.entries().map(|e| e.data.to_vec()).collect()));
        }
        let s = queue.stats;
        cmds.push(
            redis::cmd("HSET")
                .arg(&meta)
                .arg(&[("seq", seq), ("token", token), ("running", running as u64), ("open", open as u64)])
                .arg(&[("concurrency", queue.config.concurrency as u64), ("paused", u64::from(queue.config.paused))])
                .arg(&[("submitted", s.submitted), ("claimed", s.claimed), ("completed", s.completed), ("failed", s.failed)])
                .arg(&[("retried", s.retried), ("dead", s.dead), ("cancelled", s.cancelled), ("lease_expired", s.lease_expired)])
                .clone(),
        );
        lists.push((dead, state.jobs.dead(&queue.name).iter().map(|id| id.to_vec()).collect()));
        write(remote, dels, cmds, lists).await?;
    }
    Ok(())
}

/// A ready job's member in its queue's `ready` set: its seq zero-padded, then its id (FIFO within a
/// priority, as `job_prelude.lua`'s `member`).
fn ready_member(job: &Job) -> Vec<u8> {
    [format!("{:020}", job.seq).as_bytes(), &job.id].concat()
}

/// A job's hash as the job scripts keep it (`job_submit.lua` and the scripts after it).
fn job_hash(key: &[u8], job: &Job, deadline: Option<u64>) -> Cmd {
    let chunks = &job.chunks;
    // A held job with chunks is `streaming` on this engine (its claim script says so for chunks of an
    // earlier attempt too); a job restored from the node's files may still say `running`.
    let state = if job.state == JobState::Running && chunks.next_offset() > 0 { JobState::Streaming } else { job.state };
    let mut h = redis::cmd("HSET");
    h.arg(key)
        .arg("payload")
        .arg(&job.payload[..])
        .arg("priority")
        .arg(job.priority)
        .arg("bkind")
        .arg(if job.backoff.kind == BackoffKind::Exponential { "e" } else { "f" })
        .arg("bjit")
        .arg(u8::from(job.backoff.jitter))
        .arg("state")
        .arg(state.name())
        .arg(&[
            ("max", u64::from(job.max_attempts)),
            ("bbase", job.backoff.base_ms),
            ("lease_ms", job.lease_ms),
            ("ttl", job.result_ttl_ms),
        ])
        .arg(&[("attempt", u64::from(job.attempt)), ("seq", job.seq), ("created", job.created_ms)])
        .arg(&[("epoch", chunks.epoch()), ("cnext", chunks.next_offset()), ("cfirst", chunks.first_offset())])
        .arg("closed")
        .arg(u8::from(chunks.is_closed()));
    let optional = [("started", job.started_ms), ("finished", job.finished_ms), ("run_at", job.run_at_ms), ("timer", deadline)];
    for (field, value) in optional {
        if let Some(v) = value {
            h.arg(field).arg(v);
        }
    }
    if let Some(lease) = job.lease.filter(|_| job.state.is_active()) {
        h.arg("token").arg(lease.token).arg("lexp").arg(lease.expires_ms);
    }
    for (field, value) in [("progress", &job.progress), ("result", &job.result), ("error", &job.last_error)] {
        if let Some(v) = value {
            h.arg(field).arg(&v[..]);
        }
    }
    h
}

/// Every board: its items (free, leased, dead) with their ids, publish order, leases and TTLs, its
/// settings and counters, and its next deadline in the sweep's registry.
pub(super) async fn boards(state: &State, remote: &Remote, moved: &mut Moved) -> Result<(), String> {
    let (seq, token) = state.bulletin.counters();
    for (scope, board) in state.bulletin.board_names() {
        let tag = bulletin::tag(&scope, &board);
        let [order, avail, raw, info, dls, dead, meta, _waiting] = bulletin::keys(&tag);
        let mut cmds = Vec::new();
        let mut dead_ids = Vec::new();
        let mut next: Option<u64> = None;
        let mut deadline = |cmds: &mut Vec<Cmd>, at: u64, member: Vec<u8>| {
            next = Some(next.map_or(at, |n| n.min(at)));
            cmds.push(redis::cmd("ZADD").arg(&dls).arg(at).arg(member).clone());
        };
        let config = state.bulletin.board_image(&scope, &board, |item: &Item, is_dead| {
            moved.items += 1;
            cmds.push(redis::cmd("HSET").arg(&raw).arg(&item.id[..]).arg(&item.raw[..]).clone());
            cmds.push(redis::cmd("HSET").arg(&info).arg(&item.id[..]).arg(item_info(item, is_dead)).clone());
            if is_dead {
                moved.dead_items += 1;
                dead_ids.push(item.id.to_vec());
                return;
            }
            cmds.push(redis::cmd("ZADD").arg(&order).arg(item.seq).arg(&item.id[..]).clone());
            match item.lease {
                Some(lease) => {
                    moved.leased_items += 1;
                    deadline(&mut cmds, lease.expires_ms, [b"L:".as_slice(), &item.id].concat());
                }
                None => cmds.push(redis::cmd("ZADD").arg(&avail).arg(item.seq).arg(&item.id[..]).clone()),
            }
            if let Some(at) = item.expires_ms {
                deadline(&mut cmds, at, [b"T:".as_slice(), &item.id].concat());
            }
        });
        let Some(config) = config else { continue };
        let overflow = if config.overflow == Overflow::DropOldest { "drop-oldest" } else { "reject-new" };
        cmds.push(
            redis::cmd("HSET")
                .arg(&meta)
                .arg(&[("seq", seq), ("token", token), ("maxlen", config.max_len as u64), ("maxleases", u64::from(config.max_leases))])
                .arg("overflow")
                .arg(overflow)
                .clone(),
        );
        if let Some(at) = next {
            cmds.push(redis::cmd("ZADD").arg(bulletin::DUE).arg(at).arg(&tag).clone());
        }
        let dels = vec![del(&[order, avail, raw, info, dls, dead.clone(), meta])];
        write(remote, dels, cmds, vec![(dead, dead_ids)]).await?;
    }
    Ok(())
}

/// An item's state as the board scripts keep it: `seq:published:failed_leases:token:lease_end:ttl:dead`.
fn item_info(item: &Item, dead: bool) -> String {
    let (token, lease) = item.lease.map_or((0, 0), |l| (l.token, l.expires_ms));
    let ttl = item.expires_ms.unwrap_or(0);
    format!("{}:{}:{}:{token}:{lease}:{ttl}:{}", item.seq, item.published_ms, item.failed_leases, u8::from(dead))
}

/// One destination as the node holds it: its messages per topic in order (as the mailbox script
/// keeps them), its own MAXLEN, its idempotency keys in the window's order.
#[derive(Default)]
struct Dest {
    topics: BTreeMap<Bytes, Vec<Vec<u8>>>,
    max_len: usize,
    keys: Vec<(Bytes, u64)>,
}

/// Every destination: its messages per topic with their ids, its bound, its idempotency keys (a
/// repeated key still answers the first send's id), and its id counter.
pub(super) async fn mailboxes(state: &State, remote: &Remote, moved: &mut Moved) -> Result<(), String> {
    // The image's three callbacks each add to the destinations.
    let dests: RefCell<BTreeMap<Bytes, Dest>> = RefCell::default();
    state.mailboxes.image(
        |dest, topic, id, payload| {
            let entry = [format!("{id}:0:").as_bytes(), &payload[..]].concat();
            dests.borrow_mut().entry(dest.clone()).or_default().topics.entry(topic.clone()).or_default().push(entry);
        },
        |dest, max_len| dests.borrow_mut().entry(dest.clone()).or_default().max_len = max_len,
        |dest, key, id| dests.borrow_mut().entry(dest.clone()).or_default().keys.push((key.clone(), id)),
    );
    let counter = state.mailboxes.counter();
    for (name, dest) in dests.into_inner() {
        let [meta, idem, idemq, queues] = [b"meta".as_slice(), b"idem", b"idemq", b"queues"].map(|s| mailbox::key(&name, s));
        let mut dels = vec![del(&[meta.clone(), idem.clone(), idemq.clone(), queues.clone()])];
        let len: usize = dest.topics.values().map(Vec::len).sum();
        moved.messages += len;
        let mut cmds = vec![redis::cmd("HSET").arg(&meta).arg(&[("len", len as u64), ("seq", counter)]).clone()];
        if dest.max_len > 0 {
            cmds.push(redis::cmd("HSET").arg(&meta).arg("maxlen").arg(dest.max_len).clone());
        }
        let mut lists = Vec::new();
        for (topic, entries) in dest.topics {
            let list = mailbox::topic_key(&name, &topic);
            dels.push(del(std::slice::from_ref(&list)));
            cmds.push(redis::cmd("SADD").arg(&queues).arg(&list).clone());
            lists.push((list, entries));
        }
        for (key, id) in &dest.keys {
            cmds.push(redis::cmd("HSET").arg(&idem).arg(&key[..]).arg(id).clone());
        }
        lists.push((idemq, dest.keys.iter().map(|(k, _)| k.to_vec()).collect()));
        write(remote, dels, cmds, lists).await?;
    }
    Ok(())
}

/// Raises `herald:sem:floor` to `ARGV[1]` (never lowers it).
const RAISE: &str =
    "if tonumber(redis.call('GET', KEYS[1]) or '0') < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end return 1";

/// Every held semaphore: its holders' tokens and lease ends, its size, its fence (the node's last
/// token, so the next holder's token is larger than every earlier one), and its next lease end in the
/// sweep's registry. The node's last token also becomes every semaphore's floor (`semaphore.rs`): the
/// node keeps one token counter but forgets a semaphore nobody holds, whose tokens must still grow.
pub(super) async fn semaphores(state: &State, remote: &Remote, moved: &mut Moved) -> Result<(), String> {
    let mut sems: BTreeMap<Bytes, (u32, Vec<(u64, u64)>)> = BTreeMap::new();
    state.semaphores.image(|name, permits, token, end| {
        let sem = sems.entry(name.clone()).or_default();
        sem.0 = permits;
        sem.1.push((token, end));
    });
    let fence = state.semaphores.fence();
    if fence > 0 {
        run(remote, 0, vec![redis::cmd("EVAL").arg(RAISE).arg(1).arg(semaphore::FLOOR).arg(fence).clone()]).await?;
    }
    for (name, (permits, holders)) in sems {
        let (holders_key, meta) = (semaphore::key(&name, b"holders"), semaphore::key(&name, b"meta"));
        moved.permits += holders.len();
        let mut cmds: Vec<Cmd> =
            holders.iter().map(|(token, end)| redis::cmd("ZADD").arg(&holders_key).arg(*end).arg(*token).clone()).collect();
        cmds.push(redis::cmd("HSET").arg(&meta).arg(&[("permits", u64::from(permits)), ("fence", fence)]).clone());
        if let Some(first) = holders.iter().map(|(_, end)| *end).min() {
            cmds.push(redis::cmd("ZADD").arg(semaphore::DUE).arg(first).arg(&name[..]).clone());
        }
        write(remote, vec![del(&[holders_key, meta])], cmds, Vec::new()).await?;
    }
    Ok(())
}
