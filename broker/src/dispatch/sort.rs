//! SORT and SORT_RO.

use herald_protocol::command::{SortArgs, SortCommand};
use herald_protocol::{CommandError, Reply};

use super::Cx;
use super::keys::int;
use crate::engine::keyspace::sort::{SortSpec, Sorted};

pub fn execute(cmd: SortCommand, cx: &mut Cx<'_>) -> Result<Reply, CommandError> {
    let SortCommand::Sort(SortArgs { key, by, limit, get, desc, alpha, store }) = cmd;
    let db = cx.db();
    let now = cx.now();
    let spec = SortSpec { by: by.as_deref(), limit, get: &get, desc, alpha, store: store.as_deref() };
    Ok(match cx.state().keyspace.sort(db, &key, &spec, now)? {
        Sorted::Values(values) => Reply::Array(values.into_iter().map(Reply::bulk_or_nil).collect()),
        Sorted::Stored(n) => int(n),
    })
}
