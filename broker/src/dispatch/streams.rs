//! Workflow streams (STREAM.*), and the reply shape of every read of a log by offset (job chunks too).

use herald_protocol::command::StreamCommand;
use herald_protocol::{CommandError, Reply};

use super::{Cx, Outcome};
use crate::engine::stream::{self, Read, StreamInfo};
use crate::state::State;

/// A read as the client sees it: `{entries: [[offset, data], ...], next, closed, epoch}`; `None`
/// when there is nothing yet and the stream is still open (a blocking read waits then).
pub(crate) fn read_reply(read: Read, epoch: Option<u64>, from: u64) -> Result<Option<Reply>, CommandError> {
    match read {
        Read::Trimmed { first } => {
            Err(CommandError::new(format!("TRIMMED offset {from} is no longer retained; the oldest retained offset is {first}")))
        }
        Read::Entries { entries, .. } if entries.is_empty() && !matches!(read, Read::Entries { ended: true, .. }) => Ok(None),
        Read::Entries { entries, next, ended } => Ok(Some(Reply::fields(vec![
            (
                "entries",
                Reply::Array(entries.into_iter().map(|e| Reply::Array(vec![Reply::Int(e.offset as i64), Reply::Bulk(e.data)])).collect()),
            ),
            ("next", Reply::Int(next as i64)),
            ("closed", Reply::Bool(ended)),
            ("epoch", epoch.map_or(Reply::Nil, |e| Reply::Int(e as i64))),
        ]))),
    }
}

fn info_reply(info: StreamInfo) -> Reply {
    Reply::fields(info_fields(info))
}

/// STREAM.LIST's entry: the name, STREAM.INFO's fields and the last offset written (nil when empty).
pub(crate) fn list_entry((name, info): (bytes::Bytes, StreamInfo)) -> Reply {
    let last = if info.length == 0 { Reply::Nil } else { Reply::Int(info.next as i64 - 1) };
    let mut fields = vec![("stream", Reply::Bulk(name)), ("last", last)];
    fields.extend(info_fields(info));
    Reply::fields(fields)
}

pub(crate) fn info_fields(info: StreamInfo) -> Vec<(&'static str, Reply)> {
    vec![
        ("length", Reply::Int(info.length as i64)),
        ("first", Reply::Int(info.first as i64)),
        ("next", Reply::Int(info.next as i64)),
        ("bytes", Reply::Int(info.bytes as i64)),
        ("closed", Reply::Bool(info.closed)),
        ("epoch", Reply::Int(info.epoch as i64)),
        ("maxlen", Reply::Int(info.retention.max_len as i64)),
        ("maxage", Reply::Int(info.retention.max_age_ms as i64)),
    ]
}

pub fn execute(cmd: StreamCommand, cx: &mut Cx<'_>) -> Outcome {
    // The Redis engine runs the streams on Redis (`remote/stream.rs`).
    if let Some(remote) = &cx.broker.remote {
        return crate::remote::stream::execute(remote, cmd, crate::remote::in_order(remote, cx.session));
    }
    let now = cx.now();
    let result = match cmd {
        StreamCommand::Write { key, data } => cx.state().streams.write(&key, &data, now).map(|o| Reply::Int(o as i64)).map_err(Into::into),
        StreamCommand::Read { key, from, count, block, epoch } => {
            let keys = vec![stream::wait_key(&key)];
            let read = move |state: &mut State, now| {
                let (read, epoch) = state.streams.read(&key, from, count, epoch, now)?;
                read_reply(read, epoch, from)
            };
            match block {
                Some(wait) => return cx.now_or_block(keys, wait.duration(), Reply::Nil, read),
                None => read(cx.state(), now).map(|r| r.unwrap_or_else(|| empty_read(from))),
            }
        }
        StreamCommand::Close(key) => cx.state().streams.close(&key).map(|closed| Reply::Int(i64::from(closed))).map_err(Into::into),
        StreamCommand::Info(key) => Ok(cx.state().streams.info(&key).map_or(Reply::Nil, info_reply)),
        StreamCommand::Config { key, max_len, max_age_ms } => {
            cx.state().streams.configure(&key, max_len, max_age_ms, now).map(|_| Reply::ok()).map_err(Into::into)
        }
        StreamCommand::List(list) => Ok(super::listing::reply(cx.state().streams.list(&super::listing::args(&list)), list_entry)),
        StreamCommand::Del(keys) => Ok(Reply::Int(keys.iter().filter(|k| cx.state().streams.delete(k)).count() as i64)),
    };
    result.into()
}

pub(crate) fn empty_read(from: u64) -> Reply {
    Reply::fields(vec![
        ("entries", Reply::Array(Vec::new())),
        ("next", Reply::Int(from as i64)),
        ("closed", Reply::Bool(false)),
        ("epoch", Reply::Nil),
    ])
}
