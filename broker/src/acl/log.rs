//! ACL LOG: recent refusals (failed AUTH, commands, keys and channels a user may not use), grouped
//! as Redis groups them: the same refusal again within 60 seconds counts up the existing entry.

use std::collections::VecDeque;

use herald_protocol::Reply;
use tokio::time::{Duration, Instant};

/// Why something was refused (ACL LOG's `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Auth,
    Command,
    Key,
    Channel,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Reason::Auth => "auth",
            Reason::Command => "command",
            Reason::Key => "key",
            Reason::Channel => "channel",
        }
    }
}

#[derive(Debug)]
struct Entry {
    count: u64,
    reason: Reason,
    /// `toplevel` or `multi`.
    context: &'static str,
    object: String,
    username: String,
    created: Instant,
    client_info: String,
}

/// Entries within this long of each other with the same reason, context, object and user are one.
const GROUP_WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct AclLog {
    entries: VecDeque<Entry>,
    max_len: usize,
}

impl AclLog {
    pub fn new(max_len: usize) -> Self {
        AclLog { entries: VecDeque::new(), max_len }
    }

    pub fn add(&mut self, reason: Reason, context: &'static str, object: String, username: String, client_info: String) {
        let now = Instant::now();
        let same = self.entries.iter().position(|e| {
            e.reason == reason && e.context == context && e.object == object && e.username == username && now - e.created < GROUP_WINDOW
        });
        let entry = match same {
            Some(i) => {
                let mut e = self.entries.remove(i).expect("found");
                e.count += 1;
                e.created = now;
                e.client_info = client_info;
                e
            }
            None => Entry { count: 1, reason, context, object, username, created: now, client_info },
        };
        self.entries.push_front(entry);
        self.entries.truncate(self.max_len);
    }

    pub fn reset(&mut self) {
        self.entries.clear();
    }

    /// ACL LOG [count]: the newest first.
    pub fn render(&self, count: usize) -> Reply {
        let now = Instant::now();
        Reply::Array(
            self.entries
                .iter()
                .take(count)
                .map(|e| {
                    Reply::fields(vec![
                        ("count", Reply::Int(e.count as i64)),
                        ("reason", Reply::text(e.reason.as_str())),
                        ("context", Reply::text(e.context)),
                        ("object", Reply::bulk(e.object.clone())),
                        ("username", Reply::bulk(e.username.clone())),
                        ("age-seconds", Reply::Double((now - e.created).as_secs_f64())),
                        ("client-info", Reply::bulk(e.client_info.clone())),
                    ])
                })
                .collect(),
        )
    }
}
