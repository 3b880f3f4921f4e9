//! Workflow streams (STREAM.*) and mailboxes (MSG.*): the DBOS write/read/close and send/recv model.

use bytes::Bytes;

use super::conn::spec;
use super::flags::*;
use super::{Command, CommandSpec, Group, keys};
use crate::error::CommandError;
use crate::request::{Args, is_word};

/// How long a blocking Herald command waits: `BLOCK ms` / `TIMEOUT ms`, 0 meaning forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitMs(pub u64);

impl WaitMs {
    /// `None` for "wait forever".
    pub fn duration(self) -> Option<std::time::Duration> {
        if self.0 == 0 { None } else { Some(std::time::Duration::from_millis(self.0)) }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum StreamCommand {
    Write { key: Bytes, data: Bytes },
    Read { key: Bytes, from: u64, count: usize, block: Option<WaitMs>, epoch: Option<u64> },
    Close(Bytes),
    Info(Bytes),
    Config { key: Bytes, max_len: Option<usize>, max_age_ms: Option<u64> },
    Del(Vec<Bytes>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum MailboxCommand {
    Send { dest: Bytes, topic: Bytes, payload: Bytes, idempotency: Option<Bytes> },
    Recv { dest: Bytes, topic: Bytes, timeout: Option<WaitMs> },
    Len { dest: Bytes, topic: Option<Bytes> },
}

/// Default and largest COUNT of one STREAM.READ.
pub const DEFAULT_READ_COUNT: usize = 100;

fn stream(c: StreamCommand) -> Result<Command, CommandError> {
    Ok(Command::Streams(c))
}

fn mailbox(c: MailboxCommand) -> Result<Command, CommandError> {
    Ok(Command::Mailbox(c))
}

fn parse_read(mut a: Args) -> Result<Command, CommandError> {
    let key = a.next_bytes()?;
    let (mut from, mut count, mut block, mut epoch) = (0, DEFAULT_READ_COUNT, None, None);
    while let Some(opt) = a.next_opt() {
        if is_word(&opt, "FROM") {
            from = a.next_u64()?;
        } else if is_word(&opt, "COUNT") {
            count = a.next_u64()?.max(1) as usize;
        } else if is_word(&opt, "BLOCK") {
            block = Some(WaitMs(a.next_u64()?));
        } else if is_word(&opt, "EPOCH") {
            epoch = Some(a.next_u64()?);
        } else {
            return Err(CommandError::syntax());
        }
    }
    stream(StreamCommand::Read { key, from, count, block, epoch })
}

fn parse_config(mut a: Args) -> Result<Command, CommandError> {
    let key = a.next_bytes()?;
    let (mut max_len, mut max_age_ms) = (None, None);
    while let Some(opt) = a.next_opt() {
        if is_word(&opt, "MAXLEN") {
            max_len = Some(a.next_u64()? as usize);
        } else if is_word(&opt, "MAXAGE") {
            max_age_ms = Some(a.next_u64()?);
        } else {
            return Err(CommandError::syntax());
        }
    }
    stream(StreamCommand::Config { key, max_len, max_age_ms })
}

fn parse_send(mut a: Args) -> Result<Command, CommandError> {
    let (dest, topic, payload) = (a.next_bytes()?, a.next_bytes()?, a.next_bytes()?);
    let idempotency = if a.eat("IDEMPOTENCY") { Some(a.next_bytes()?) } else { None };
    a.finish()?;
    mailbox(MailboxCommand::Send { dest, topic, payload, idempotency })
}

fn parse_recv(mut a: Args) -> Result<Command, CommandError> {
    let (dest, topic) = (a.next_bytes()?, a.next_bytes()?);
    let timeout = if a.eat("TIMEOUT") { Some(WaitMs(a.next_u64()?)) } else { None };
    a.finish()?;
    mailbox(MailboxCommand::Recv { dest, topic, timeout })
}

pub(crate) const SPECS: &[CommandSpec] = &[
    spec!(
        "stream.write",
        3,
        WRITE | DENYOOM | FAST,
        keys(1, 1, 1),
        Stream,
        "0.1.0",
        "Appends an entry to a stream and returns its offset. STREAM.WRITE key data",
        |mut a| stream(StreamCommand::Write { key: a.next_bytes()?, data: a.next_bytes()? })
    ),
    spec!(
        "stream.read",
        -2,
        READONLY | BLOCKING,
        keys(1, 1, 1),
        Stream,
        "0.1.0",
        "Reads entries from an offset, optionally waiting for them. STREAM.READ key [FROM offset] [COUNT n] [BLOCK ms] [EPOCH e]",
        parse_read
    ),
    spec!(
        "stream.close",
        2,
        WRITE | FAST,
        keys(1, 1, 1),
        Stream,
        "0.1.0",
        "Marks the end of a stream: readers see it closed, writes are refused. STREAM.CLOSE key",
        |mut a| stream(StreamCommand::Close(a.next_bytes()?))
    ),
    spec!(
        "stream.info",
        2,
        READONLY | FAST,
        keys(1, 1, 1),
        Stream,
        "0.1.0",
        "Length, offsets, state and retention of a stream. STREAM.INFO key",
        |mut a| stream(StreamCommand::Info(a.next_bytes()?))
    ),
    spec!(
        "stream.config",
        -2,
        WRITE,
        keys(1, 1, 1),
        Stream,
        "0.1.0",
        "Sets a stream's retention. STREAM.CONFIG key [MAXLEN n] [MAXAGE ms]",
        parse_config
    ),
    spec!("stream.del", -2, WRITE, keys(1, -1, 1), Stream, "0.1.0", "Deletes streams. STREAM.DEL key [key ...]", |a| stream(
        StreamCommand::Del(a.rest())
    )),
    spec!(
        "msg.send",
        -4,
        WRITE | DENYOOM | FAST,
        keys(1, 1, 1),
        Mailbox,
        "0.1.0",
        "Sends a message to a destination on a topic (empty topic: none). MSG.SEND dest topic payload [IDEMPOTENCY key]",
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
];
