//! Semaphore commands: acquire (optionally waiting), extend, release, info.

use herald_protocol::Reply;
use herald_protocol::command::SemCommand;

use super::{Cx, Outcome};
use crate::engine::semaphore::{self, SemInfo};
use crate::state::State;

pub fn info_reply(i: SemInfo) -> Reply {
    let holders = i
        .holders
        .into_iter()
        .map(|(token, end)| Reply::fields(vec![("token", Reply::Int(token as i64)), ("lease_expires", Reply::Int(end as i64))]));
    Reply::fields(vec![
        ("permits", Reply::Int(i64::from(i.permits))),
        ("held", Reply::Int(holders.len() as i64)),
        ("holders", Reply::Array(holders.collect())),
        ("fence", Reply::Int(i.fence as i64)),
    ])
}

pub fn execute(cmd: SemCommand, cx: &mut Cx<'_>) -> Outcome {
    // The Redis engine runs the semaphores on Redis (`remote/semaphore.rs`).
    if let Some(remote) = &cx.broker.remote {
        return crate::remote::semaphore::execute(remote, cmd, crate::remote::in_order(remote, cx.session));
    }
    let now = cx.now();
    match cmd {
        SemCommand::Acquire { name, permits, lease_ms, block } => {
            let keys = vec![semaphore::wait_key(&name)];
            let acquire = move |state: &mut State, now| {
                let permit = state.semaphores.acquire(&name, permits, lease_ms, now)?;
                Ok(permit.map(|p| Reply::Int(p.token as i64)))
            };
            match block {
                Some(wait) => cx.now_or_block(keys, wait.duration(), Reply::Nil, acquire),
                None => super::jobs::run_once(cx, acquire, Reply::Nil),
            }
        }
        SemCommand::Extend { name, token, ms } => {
            cx.state().semaphores.extend(&name, token, ms, now).map(|at| Reply::Int(at as i64)).into()
        }
        SemCommand::Release { name, token } => cx.state().semaphores.release(&name, token).map(|_| Reply::ok()).into(),
        SemCommand::Info(name) => info_reply(cx.state().semaphores.info(&name)).into(),
    }
}
