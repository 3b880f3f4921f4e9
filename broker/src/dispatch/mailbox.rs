//! Mailboxes (MSG.*): send (optionally waiting for room), receive with an optional wait, request and
//! reply.

use herald_protocol::Reply;
use herald_protocol::command::MailboxCommand;

use super::{Cx, Outcome, listing};
use crate::engine::mailbox::{self, Received};
use crate::engine::schema::SchemaKind;
use crate::state::State;

pub(crate) fn received_reply(r: Received) -> Reply {
    match r {
        Received::Message(payload) => Reply::Bulk(payload),
        Received::Request { payload, reply_to } => {
            Reply::fields(vec![("payload", Reply::Bulk(payload)), ("reply_to", Reply::bulk(bytes::Bytes::from(reply_to.to_string())))])
        }
    }
}

pub fn execute(cmd: MailboxCommand, cx: &mut Cx<'_>) -> Outcome {
    // The Redis engine runs the mailboxes on Redis (`remote/mailbox.rs`).
    if let Some(remote) = &cx.broker.remote {
        if let MailboxCommand::Send { topic, payload, .. } | MailboxCommand::Request { topic, payload, .. } = &cmd
            && let Err(e) = remote.schemas.check(SchemaKind::Topic, b"", topic, payload)
        {
            return e.into();
        }
        return crate::remote::mailbox::execute(remote, cmd, crate::remote::in_order(remote, cx.session));
    }
    let result = match cmd {
        MailboxCommand::Send { dest, topic, payload, idempotency, block } => {
            let keys = vec![mailbox::room_wait_key(&dest)];
            let send = move |state: &mut State, _now| {
                state.schemas.check(SchemaKind::Topic, b"", &topic, &payload)?;
                let boxes = &mut state.mailboxes;
                if block.is_some() && !boxes.has_room(&dest) && idempotency.as_ref().is_none_or(|k| !boxes.remembers(&dest, k)) {
                    return Ok(None);
                }
                Ok(Some(Reply::Int(boxes.send(&dest, &topic, &payload, idempotency.as_ref())?.0 as i64)))
            };
            return match block {
                Some(wait) => cx.now_or_block(keys, wait.duration(), Reply::Nil, send),
                None => super::jobs::run_once(cx, send, Reply::Nil),
            };
        }
        MailboxCommand::Recv { dest, topic, timeout } => {
            let keys = vec![mailbox::wait_key(&dest, &topic)];
            let recv = move |state: &mut State, _now| Ok(state.mailboxes.recv(&dest, &topic).map(received_reply));
            return match timeout {
                Some(wait) => cx.now_or_block(keys, wait.duration(), Reply::Nil, recv),
                None => super::jobs::run_once(cx, recv, Reply::Nil),
            };
        }
        MailboxCommand::Dests(list) => Ok(listing::reply(cx.state().mailboxes.dests(&listing::args(&list)), dest_summary)),
        MailboxCommand::Len { dest, topic } => Ok(Reply::Int(cx.state().mailboxes.len(&dest, topic.as_deref()) as i64)),
        MailboxCommand::Config { dest, max_len } => cx.state().mailboxes.configure(&dest, max_len).map(|_| Reply::ok()),
        MailboxCommand::Request { dest, topic, payload, timeout_ms } => {
            // The broker's deadline, run by its timer, decides: the wait itself has none, so a reply
            // is either handed over before the deadline or counted late after it, never both.
            let now = cx.now();
            if let Err(e) = cx.state().schemas.check(SchemaKind::Topic, b"", &topic, &payload) {
                return e.into();
            }
            let id = match cx.state().mailboxes.request(&dest, &topic, &payload, now.saturating_add(timeout_ms)) {
                Ok(id) => id,
                Err(e) => return e.into(),
            };
            let keys = vec![mailbox::reply_wait_key(id)];
            let answer = move |state: &mut State, _now| {
                Ok(match state.mailboxes.outcome(id) {
                    mailbox::Outcome::Waiting => None,
                    mailbox::Outcome::Replied(reply) => Some(Reply::Bulk(reply)),
                    mailbox::Outcome::TimedOut => Some(Reply::Nil),
                })
            };
            return cx.now_or_block(keys, None, Reply::Nil, answer);
        }
        MailboxCommand::Reply { reply_to, payload } => Ok(Reply::Int(i64::from(cx.state().mailboxes.reply(reply_to, &payload)))),
    };
    result.into()
}

/// One MSG.DESTS entry (both engines).
pub fn dest_summary(d: crate::engine::mailbox::DestSummary) -> Reply {
    let topics = d.topics.into_iter().map(|(t, n)| (Reply::Bulk(t), listing::int(n))).collect();
    Reply::fields(vec![
        ("dest", Reply::Bulk(d.dest)),
        ("length", listing::int(d.length)),
        ("maxlen", listing::int(d.max_len)),
        ("topics", Reply::Map(topics)),
    ])
}
