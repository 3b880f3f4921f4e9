//! Mailboxes (MSG.*): send, and receive with an optional wait.

use herald_protocol::Reply;
use herald_protocol::command::MailboxCommand;

use super::{Cx, Outcome};
use crate::engine::mailbox;
use crate::state::State;

pub fn execute(cmd: MailboxCommand, cx: &mut Cx<'_>) -> Outcome {
    let result = match cmd {
        MailboxCommand::Send { dest, topic, payload, idempotency } => {
            cx.state().mailboxes.send(&dest, &topic, &payload, idempotency.as_ref()).map(|(id, _)| Reply::Int(id as i64))
        }
        MailboxCommand::Recv { dest, topic, timeout } => {
            let keys = vec![mailbox::wait_key(&dest, &topic)];
            let recv = move |state: &mut State, _now| Ok(state.mailboxes.recv(&dest, &topic).map(Reply::Bulk));
            return match timeout {
                Some(wait) => cx.now_or_block(keys, wait.duration(), Reply::Nil, recv),
                None => {
                    let now = cx.now();
                    recv(cx.state(), now).map(|r| r.unwrap_or(Reply::Nil)).into()
                }
            };
        }
        MailboxCommand::Len { dest, topic } => Ok(Reply::Int(cx.state().mailboxes.len(&dest, topic.as_deref()) as i64)),
    };
    result.into()
}
