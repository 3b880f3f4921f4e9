//! A reply that comes later, in order, while the connection goes on with the requests behind it: a plain
//! command forwarded to the backing Redis (`remote/forward.rs`). Unlike a blocked command
//! ([`Blocked`](super::Blocked)), which holds every reply after it, a client's pipeline of such commands is
//! sent on as it arrives and its replies come back one round trip later, together.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use herald_protocol::Reply;

/// The reply to come. Its first poll sends the request (onto the shared connection's queue), so the
/// connection polls these in request order (`server/conn/in_flight.rs`): that is the order Redis runs them.
pub struct Later(Pin<Box<dyn Future<Output = Reply> + Send>>);

impl Later {
    pub fn new(reply: impl Future<Output = Reply> + Send + 'static) -> Later {
        Later(Box::pin(reply))
    }

    pub fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Reply> {
        self.0.as_mut().poll(cx)
    }
}

impl fmt::Debug for Later {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Later")
    }
}

/// The Redis engine's quota check of a request at a tenant's bound (`remote/quota.rs`), which must ask
/// Redis first: `Ok` when the request may go (with whether it creates what the tenant's count must take
/// in; the connection hands it to `handle` again, cleared), else the reply that refuses it.
pub struct Recheck(Pin<Box<dyn Future<Output = Result<bool, Reply>> + Send>>);

impl Recheck {
    pub fn new(check: impl Future<Output = Result<bool, Reply>> + Send + 'static) -> Recheck {
        Recheck(Box::pin(check))
    }
}

impl Future for Recheck {
    type Output = Result<bool, Reply>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<bool, Reply>> {
        self.0.as_mut().poll(cx)
    }
}

impl fmt::Debug for Recheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Recheck")
    }
}
