//! Persistence commands: SAVE, BGSAVE, BGREWRITEAOF, LASTSAVE and SHUTDOWN, with Redis's syntax.

use super::conn::spec;
use super::flags::*;
use super::{Command, CommandSpec, Group, NO_KEYS};
use crate::error::CommandError;
use crate::request::{Args, is_word};

#[derive(Debug, Clone, PartialEq)]
pub enum PersistCommand {
    Save,
    BgSave {
        schedule: bool,
    },
    BgRewriteAof,
    LastSave,
    /// `SHUTDOWN [NOSAVE | SAVE] [NOW] [FORCE] [ABORT]`: `save` is `Some(true)` for SAVE, `Some(false)`
    /// for NOSAVE.
    Shutdown {
        save: Option<bool>,
        abort: bool,
    },
}

fn ok(c: PersistCommand) -> Result<Command, CommandError> {
    Ok(Command::Persist(c))
}

fn parse_bgsave(mut a: Args) -> Result<Command, CommandError> {
    let schedule = match a.next_opt() {
        None => false,
        Some(w) if is_word(&w, "SCHEDULE") => true,
        Some(_) => return Err(CommandError::syntax()),
    };
    a.finish()?;
    ok(PersistCommand::BgSave { schedule })
}

fn parse_shutdown(mut a: Args) -> Result<Command, CommandError> {
    let (mut save, mut abort, mut other) = (None, false, false);
    while let Some(w) = a.next_opt() {
        if is_word(&w, "NOSAVE") && save.is_none() {
            save = Some(false);
        } else if is_word(&w, "SAVE") && save.is_none() {
            save = Some(true);
        } else if is_word(&w, "NOW") || is_word(&w, "FORCE") {
            other = true;
        } else if is_word(&w, "ABORT") {
            abort = true;
        } else {
            return Err(CommandError::syntax());
        }
    }
    if abort && (save.is_some() || other) {
        return Err(CommandError::syntax());
    }
    ok(PersistCommand::Shutdown { save, abort })
}

const ADMIN_CMD: u32 = ADMIN | NOSCRIPT;

pub(crate) const SPECS: &[CommandSpec] = &[
    spec!(
        "save",
        1,
        ADMIN_CMD | NO_MULTI,
        NO_KEYS,
        Server,
        "1.0.0",
        "Writes a snapshot of everything and compacts the log; returns when done.",
        |_| ok(PersistCommand::Save)
    ),
    spec!(
        "bgsave",
        -1,
        ADMIN_CMD,
        NO_KEYS,
        Server,
        "1.0.0",
        "Writes a snapshot of everything (and compacts the log) in the background. BGSAVE [SCHEDULE]",
        parse_bgsave
    ),
    spec!(
        "bgrewriteaof",
        1,
        ADMIN_CMD,
        NO_KEYS,
        Server,
        "1.0.0",
        "Compacts the append-only log (a snapshot and a fresh log) in the background.",
        |_| ok(PersistCommand::BgRewriteAof)
    ),
    spec!(
        "lastsave",
        1,
        LOADING | STALE | FAST,
        NO_KEYS,
        Server,
        "1.0.0",
        "Returns the Unix time of the last successful snapshot.",
        |_| ok(PersistCommand::LastSave)
    ),
    spec!(
        "shutdown",
        -1,
        ADMIN_CMD | NO_MULTI | LOADING | STALE | ALLOW_BUSY,
        NO_KEYS,
        Server,
        "1.0.0",
        "Stops the server after writing and fsyncing the log (SAVE: and a snapshot). SHUTDOWN [NOSAVE | SAVE] [NOW] [FORCE] [ABORT]",
        parse_shutdown
    ),
];
