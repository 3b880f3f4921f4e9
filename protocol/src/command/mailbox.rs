//! Mailboxes (MSG.*): the DBOS send/recv model.

use bytes::Bytes;

use super::conn::spec;
use super::flags::*;
use super::{Command, CommandSpec, Group, WaitMs, keys};
use crate::error::CommandError;
use crate::request::Args;

#[derive(Debug, Clone, PartialEq)]
pub enum MailboxCommand {
    Send { dest: Bytes, topic: Bytes, payload: Bytes, idempotency: Option<Bytes> },
    Recv { dest: Bytes, topic: Bytes, timeout: Option<WaitMs> },
    Len { dest: Bytes, topic: Option<Bytes> },
}

fn mailbox(c: MailboxCommand) -> Result<Command, CommandError> {
    Ok(Command::Mailbox(c))
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
