//! Workflow streams (STREAM.*): the DBOS write/read/close model.

use bytes::Bytes;

use super::conn::spec;
use super::flags::*;
use super::{Command, CommandSpec, Group, ListArgs, NO_KEYS, WaitMs, keys, parse_list};
use crate::error::CommandError;
use crate::request::{Args, is_word};

#[derive(Debug, Clone, PartialEq)]
pub enum StreamCommand {
    Write {
        key: Bytes,
        data: Bytes,
    },
    Read {
        key: Bytes,
        from: u64,
        count: usize,
        block: Option<WaitMs>,
        epoch: Option<u64>,
    },
    Close(Bytes),
    Info(Bytes),
    Config {
        key: Bytes,
        max_len: Option<usize>,
        max_age_ms: Option<u64>,
    },
    Del(Vec<Bytes>),
    /// STREAM.LIST cursor [MATCH pattern] [COUNT n].
    List(ListArgs),
}

/// Default and largest COUNT of one STREAM.READ.
pub const DEFAULT_READ_COUNT: usize = 100;

fn stream(c: StreamCommand) -> Result<Command, CommandError> {
    Ok(Command::Streams(c))
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
        "stream.list",
        -2,
        READONLY,
        NO_KEYS,
        Stream,
        "0.1.0",
        "Lists streams by pattern with a cursor, each with its length, first and last offsets and whether it is closed; replies [next-cursor, [stream ...]]. STREAM.LIST cursor [MATCH pattern] [COUNT n]",
        |a| stream(StreamCommand::List(parse_list(a, false)?))
    ),
];
