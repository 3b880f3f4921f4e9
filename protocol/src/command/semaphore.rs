//! Semaphores (SEM.*): permits under leases with fencing tokens; a one-permit semaphore is a lock.

use bytes::Bytes;

use super::WaitMs;
use super::conn::spec;
use super::flags::*;
use super::{Command, CommandSpec, Group, keys};
use crate::error::CommandError;
use crate::request::{Args, is_word};

#[derive(Debug, Clone, PartialEq)]
pub enum SemCommand {
    Acquire { name: Bytes, permits: u32, lease_ms: Option<u64>, block: Option<WaitMs> },
    Extend { name: Bytes, token: u64, ms: u64 },
    Release { name: Bytes, token: u64 },
    Info(Bytes),
}

fn ok(c: SemCommand) -> Result<Command, CommandError> {
    Ok(Command::Sem(c))
}

fn token(a: &mut Args) -> Result<u64, CommandError> {
    a.next_u64().map_err(|_| CommandError::fixed("ERR invalid fencing token"))
}

fn parse_acquire(mut a: Args) -> Result<Command, CommandError> {
    let name = a.next_bytes()?;
    let permits = a.next_i64_at_least(1, CommandError::fixed("ERR permits must be a positive integer"))?;
    let permits = u32::try_from(permits).map_err(|_| CommandError::fixed("ERR permits must be a positive integer"))?;
    let (mut lease_ms, mut block) = (None, None);
    while let Some(opt) = a.next_opt() {
        if is_word(&opt, "LEASE") && lease_ms.is_none() {
            lease_ms = Some(a.next_i64_at_least(1, CommandError::fixed("ERR LEASE must be a positive number of milliseconds"))? as u64);
        } else if is_word(&opt, "BLOCK") && block.is_none() {
            block = Some(WaitMs(a.next_u64()?));
        } else {
            return Err(CommandError::syntax());
        }
    }
    ok(SemCommand::Acquire { name, permits, lease_ms, block })
}

pub(crate) const SPECS: &[CommandSpec] = &[
    spec!(
        "sem.acquire",
        -3,
        WRITE | BLOCKING,
        keys(1, 1, 1),
        Semaphore,
        "0.1.0",
        "Takes one of a semaphore's permits under a lease; replies its fencing token (nil if none is free). SEM.ACQUIRE name permits [LEASE ms] [BLOCK ms]",
        parse_acquire
    ),
    spec!(
        "sem.extend",
        4,
        WRITE | FAST,
        keys(1, 1, 1),
        Semaphore,
        "0.1.0",
        "Extends a held permit's lease; replies its new end (unix ms). SEM.EXTEND name token ms",
        |mut a| {
            let (name, token) = (a.next_bytes()?, token(&mut a)?);
            let ms = a.next_i64_at_least(1, CommandError::fixed("ERR the lease must be a positive number of milliseconds"))? as u64;
            ok(SemCommand::Extend { name, token, ms })
        }
    ),
    spec!(
        "sem.release",
        3,
        WRITE | FAST,
        keys(1, 1, 1),
        Semaphore,
        "0.1.0",
        "Gives a held permit back. SEM.RELEASE name token",
        |mut a| {
            let (name, token) = (a.next_bytes()?, token(&mut a)?);
            ok(SemCommand::Release { name, token })
        }
    ),
    spec!(
        "sem.info",
        2,
        READONLY | FAST,
        keys(1, 1, 1),
        Semaphore,
        "0.1.0",
        "A semaphore's size, holders (token, lease end) and the last token handed out. SEM.INFO name",
        |mut a| ok(SemCommand::Info(a.next_bytes()?))
    ),
];
