//! DUMP and RESTORE: RESTORE's checks in Redis's order (options when parsed, then the key's
//! existence, the TTL, the payload's version and checksum, its contents).

use herald_protocol::command::{DumpCommand, RestoreArgs};
use herald_protocol::{CommandError, Reply};

use super::Cx;
use crate::engine::dump;
use crate::engine::keyspace::serialized::{RestoreSpec, refusal};

pub fn execute(cmd: DumpCommand, cx: &mut Cx<'_>) -> Result<Reply, CommandError> {
    let db = cx.db();
    let now = cx.now();
    let ks = &mut cx.state().keyspace;
    match cmd {
        DumpCommand::Dump(key) => Ok(Reply::bulk_or_nil(ks.dump(db, &key, now)?)),
        DumpCommand::Restore(RestoreArgs { key, ttl, payload, replace, abs_ttl, idle_secs, freq: _ }) => {
            if !replace && ks.restore_busy(db, &key, now) {
                return Err(CommandError::fixed("BUSYKEY Target key name already exists."));
            }
            let ttl = ttl?;
            let value = dump::restore(&payload).map_err(refusal)?;
            let expire_at = match ttl {
                0 => None,
                t if abs_ttl => Some(t as u64),
                t => Some((t as u64).saturating_add(now)),
            };
            ks.restore_value(db, &key, value, RestoreSpec { expire_at, replace, idle_secs }, now);
            Ok(Reply::ok())
        }
    }
}
