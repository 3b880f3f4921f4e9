//! Persistence commands: SAVE, BGSAVE, BGREWRITEAOF, LASTSAVE, SHUTDOWN; and CONFIG's view of them.

use std::sync::atomic::Ordering;

use herald_protocol::command::PersistCommand;
use herald_protocol::{CommandError, Reply};

use super::{Cx, Outcome};
use crate::persist::Rewrite;

fn off() -> CommandError {
    CommandError::fixed("ERR persistence is off: start herald with --data-dir DIR (docs/durability.md)")
}

pub fn execute(cmd: PersistCommand, cx: &mut Cx<'_>) -> Outcome {
    let broker = cx.broker;
    let result: Result<Reply, CommandError> = match cmd {
        PersistCommand::Save => match &broker.persist {
            None => Err(off()),
            Some(p) if !p.begin_rewrite() => Err(CommandError::fixed("ERR Background save already in progress")),
            // SAVE blocks its caller, as in Redis; the rewrite itself releases the state lock between
            // steps, so everyone else goes on.
            Some(p) => match p.rewrite(Rewrite::Save, &|| broker.lock()) {
                Ok(()) => Ok(Reply::ok()),
                Err(e) => Err(CommandError::new(format!("ERR {e}"))),
            },
        },
        PersistCommand::BgSave { schedule } => match broker.persist.as_ref().map(|p| p.rewrite_in_progress()) {
            None => Err(off()),
            Some(true) if schedule => Ok(Reply::status("Background saving scheduled")),
            Some(true) => Err(CommandError::fixed("ERR Background save already in progress")),
            Some(false) => match broker.start_rewrite(Rewrite::Background) {
                Ok(()) => Ok(Reply::status("Background saving started")),
                Err(e) => Err(CommandError::fixed(e)),
            },
        },
        PersistCommand::BgRewriteAof => match broker.start_rewrite(Rewrite::Background) {
            Ok(()) => Ok(Reply::status("Background append only file rewriting started")),
            Err(e) => Err(CommandError::fixed(e)),
        },
        PersistCommand::LastSave => {
            let at = broker.persist.as_ref().map_or(broker.clock.started_ms() / 1000, |p| p.stats.last_save_unix.load(Ordering::Relaxed));
            Ok(Reply::Int(at as i64))
        }
        PersistCommand::Shutdown { abort: true, .. } => Err(CommandError::fixed("ERR No shutdown in progress.")),
        PersistCommand::Shutdown { save, .. } => {
            tracing::info!("SHUTDOWN asked by client {}", cx.session.id());
            broker.shutdown_save.store(save == Some(true), Ordering::Release);
            broker.shutdown.cancel();
            // No reply: the connection closes with the server, as Redis's does.
            return Outcome::Replies(Vec::new());
        }
    };
    result.into()
}
