//! Mailboxes (MSG.*): the DBOS send/recv model.

use bytes::Bytes;

use super::conn::spec;
use super::flags::*;
use super::{Command, CommandSpec, Group, ListArgs, NO_KEYS, WaitMs, keys, parse_list};
use crate::error::CommandError;
use crate::request::{Args, is_word};

#[derive(Debug, Clone, PartialEq)]
pub enum MailboxCommand {
    /// MSG.DESTS cursor [MATCH pattern] [COUNT n].
    Dests(ListArgs),
    Send {
        dest: Bytes,
        topic: Bytes,
        payload: Bytes,
        idempotency: Option<Bytes>,
        block: Option<WaitMs>,
    },
    Recv {
        dest: Bytes,
        topic: Bytes,
        timeout: Option<WaitMs>,
    },
    Len {
        dest: Bytes,
        topic: Option<Bytes>,
    },
    Config {
        dest: Bytes,
        max_len: usize,
    },
    /// MSG.REQUEST: `timeout_ms` is at least 1 (a request cannot wait forever).
    Request {
        dest: Bytes,
        topic: Bytes,
        payload: Bytes,
        timeout_ms: u64,
    },
    Reply {
        reply_to: u64,
        payload: Bytes,
    },
}

fn mailbox(c: MailboxCommand) -> Result<Command, CommandError> {
    Ok(Command::Mailbox(c))
}

fn parse_send(mut a: Args) -> Result<Command, CommandError> {
    let (dest, topic, payload) = (a.next_bytes()?, a.next_bytes()?, a.next_bytes()?);
    let (mut idempotency, mut block) = (None, None);
    while let Some(opt) = a.next_opt() {
        if is_word(&opt, "IDEMPOTENCY") && idempotency.is_none() {
            idempotency = Some(a.next_bytes()?);
        } else if is_word(&opt, "BLOCK") && block.is_none() {
            block = Some(WaitMs(a.next_u64()?));
        } else {
            return Err(CommandError::syntax());
        }
    }
    mailbox(MailboxCommand::Send { dest, topic, payload, idempotency, block })
}

fn parse_request(mut a: Args) -> Result<Command, CommandError> {
    let (dest, topic, payload) = (a.next_bytes()?, a.next_bytes()?, a.next_bytes()?);
    if !a.eat("TIMEOUT") {
        return Err(CommandError::fixed("ERR MSG.REQUEST needs TIMEOUT ms"));
    }
    let timeout_ms = a.next_i64_at_least(1, CommandError::fixed("ERR TIMEOUT must be a positive number of milliseconds"))? as u64;
    a.finish()?;
    mailbox(MailboxCommand::Request { dest, topic, payload, timeout_ms })
}

fn parse_recv(mut a: Args) -> Result<Command, CommandError> {
    let (dest, topic) = (a.next_bytes()?, a.next_bytes()?);
    let timeout = if a.eat("TIMEOUT") { Some(WaitMs(a.next_u64()?)) } else { None };
    a.finish()?;
    mailbox(MailboxCommand::Recv { dest, topic, timeout })
}

pub(crate) const SPECS: &[CommandSpec] = &[
    spec!(
        "msg.send",
        -4,
        WRITE | DENYOOM | BLOCKING,
        keys(1, 1, 1),
        Mailbox,
        "0.1.0",
        "Sends a message to a destination on a topic (empty topic: none), optionally waiting for room. MSG.SEND dest topic payload [IDEMPOTENCY key] [BLOCK ms]",
        parse_send
    ),
    spec!(
        "msg.recv",
        -3,
        WRITE | BLOCKING,
        keys(1, 1, 1),
        Mailbox,
        "0.1.0",
        "Receives the oldest message for a destination and topic, optionally waiting. MSG.RECV dest topic [TIMEOUT ms]",
        parse_recv
    ),
    spec!(
        "msg.len",
        -2,
        READONLY | FAST,
        keys(1, 1, 1),
        Mailbox,
        "0.1.0",
        "Counts waiting messages of a destination, on one topic or all. MSG.LEN dest [topic]",
        |mut a| {
            let dest = a.next_bytes()?;
            let topic = a.next_opt();
            a.finish()?;
            mailbox(MailboxCommand::Len { dest, topic })
        }
    ),
    spec!(
        "msg.config",
        4,
        WRITE,
        keys(1, 1, 1),
        Mailbox,
        "0.1.0",
        "Bounds a mailbox (0: the configured default). MSG.CONFIG dest MAXLEN n",
        |mut a| {
            let dest = a.next_bytes()?;
            if !a.eat("MAXLEN") {
                return Err(CommandError::syntax());
            }
            mailbox(MailboxCommand::Config { dest, max_len: a.next_u64()? as usize })
        }
    ),
    spec!(
        "msg.request",
        6,
        WRITE | DENYOOM | BLOCKING | NO_MULTI,
        keys(1, 1, 1),
        Mailbox,
        "0.1.0",
        "Sends a request carrying a reply address and waits for the reply; nil on timeout. MSG.REQUEST dest topic payload TIMEOUT ms",
        parse_request
    ),
    spec!(
        "msg.reply",
        3,
        WRITE | FAST,
        NO_KEYS,
        Mailbox,
        "0.1.0",
        "Answers a request received with MSG.RECV; 1 if its requester still waits, 0 if late (dropped). MSG.REPLY reply_to payload",
        |mut a| {
            let reply_to = a.next_u64().map_err(|_| CommandError::fixed("ERR invalid reply address"))?;
            mailbox(MailboxCommand::Reply { reply_to, payload: a.next_bytes()? })
        }
    ),
    spec!(
        "msg.dests",
        -2,
        READONLY,
        NO_KEYS,
        Mailbox,
        "0.1.0",
        "Lists mailbox destinations by pattern with a cursor, each with its waiting messages per topic and its bound; replies [next-cursor, [destination ...]]. MSG.DESTS cursor [MATCH pattern] [COUNT n]",
        |a| mailbox(MailboxCommand::Dests(parse_list(a, false)?))
    ),
];
