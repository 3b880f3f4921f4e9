//! Users and permissions, as Redis 7.0's ACLs: who may connect (AUTH / HELLO AUTH), which commands
//! they may run, which keys (and Herald resources, `resources.rs`) and channels they may touch.
//!
//! The registry is shared by every connection; a session keeps an `Arc` of its user and refreshes it
//! only when the registry's epoch moves (any ACL change), so the per-command check reads no lock.
//! The check itself ([`check_command`], [`check_resources`]) is called from one place, dispatch.

mod file;
pub mod log;
pub mod resources;
pub mod table;
mod throttle;
pub mod token;
pub mod user;
mod verdict;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, RwLock};

use bytes::Bytes;
use herald_protocol::command::{self, CommandSpec, Found, KeyPositions, flags};
use herald_protocol::{CommandError, Request};
use serde::Deserialize;
use tokio::time::{Duration, Instant};

pub use log::{AclLog, Reason};
pub use throttle::ThrottleSettings;
pub use user::User;

use throttle::Throttle;
use user::{READ, WRITE};

/// `[acl]` in the configuration.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AclSettings {
    /// Users as `name rule rule ...` (ACL SETUSER's arguments), e.g. `"alice on >pw ~tenant-a:* +@all"`.
    pub users: Vec<String>,
    /// The ACL file ACL SAVE writes and ACL LOAD (and startup) reads; empty: none.
    pub aclfile: String,
    pub log_max_len: usize,
    pub auth_free_failures: u32,
    pub auth_delay_ms: u64,
    pub auth_delay_max_ms: u64,
    pub auth_failure_window_ms: u64,
    pub auth_throttle_addresses: usize,
}

/// One refusal: what ACL LOG records and what NOPERM says.
#[derive(Debug, Clone)]
pub struct Denied {
    pub reason: Reason,
    /// The command's name, or the key or channel refused.
    pub object: String,
}

impl Denied {
    /// The error a refused command gets (Redis 7.0's words).
    pub fn error(&self) -> CommandError {
        match self.reason {
            Reason::Command => CommandError::new(format!("NOPERM this user has no permissions to run the '{}' command", self.object)),
            Reason::Key => CommandError::fixed("NOPERM this user has no permissions to access one of the keys used as arguments"),
            Reason::Channel => CommandError::fixed("NOPERM this user has no permissions to access one of the channels used as arguments"),
            Reason::Auth => WRONGPASS,
        }
    }

    /// ACL DRYRUN's answer for a refusal.
    pub fn dry_run_text(&self) -> String {
        match self.reason {
            Reason::Command => format!("This user has no permissions to run the '{}' command", self.object),
            Reason::Key => format!("This user has no permissions to access the '{}' key", self.object),
            Reason::Channel => format!("This user has no permissions to access the '{}' channel", self.object),
            Reason::Auth => WRONGPASS.message().to_owned(),
        }
    }
}

pub const WRONGPASS: CommandError = CommandError::fixed("WRONGPASS invalid username-password pair or user is disabled.");

pub struct Acl {
    users: RwLock<BTreeMap<String, Arc<User>>>,
    /// Moves on every change, so sessions know to look their user up again.
    epoch: AtomicU64,
    pub log: Mutex<AclLog>,
    throttle: Mutex<Throttle>,
    pub aclfile: Option<std::path::PathBuf>,
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Acl {
    /// The registry from the configuration: the default user (with `requirepass` as its password, as
    /// Redis does), the configured users, then the ACL file if one is named and exists.
    pub fn new(settings: &AclSettings, requirepass: &str) -> Result<Self, String> {
        let throttle = ThrottleSettings {
            free_failures: settings.auth_free_failures,
            delay: Duration::from_millis(settings.auth_delay_ms),
            max_delay: Duration::from_millis(settings.auth_delay_max_ms),
            window: Duration::from_millis(settings.auth_failure_window_ms),
            max_addresses: settings.auth_throttle_addresses.max(1),
        };
        let acl = Acl {
            users: RwLock::new(BTreeMap::new()),
            epoch: AtomicU64::new(0),
            log: Mutex::new(AclLog::new(settings.log_max_len)),
            throttle: Mutex::new(Throttle::new(throttle)),
            aclfile: (!settings.aclfile.is_empty()).then(|| settings.aclfile.clone().into()),
        };
        let mut users = BTreeMap::new();
        users.insert("default".to_owned(), Arc::new(User::default_user()));
        for line in &settings.users {
            let mut words = line.split_whitespace();
            let name = words.next().ok_or("acl.users: an empty entry")?;
            if users.contains_key(name) && name != "default" {
                return Err(format!("acl.users: user '{name}': Duplicate user found. A user can only be defined once in config files"));
            }
            let mut user = users.get(name).map(|u| (**u).clone()).unwrap_or_else(|| User::new(name));
            for rule in words {
                user.apply(rule.as_bytes()).map_err(|e| format!("acl.users: user '{name}', rule '{rule}': {e}"))?;
            }
            users.insert(name.to_owned(), Arc::new(user));
        }
        *acl.users.write().expect("acl") = users;
        if !requirepass.is_empty() {
            acl.set_requirepass(requirepass);
        }
        if let Some(path) = &acl.aclfile
            && path.exists()
        {
            if !settings.users.is_empty() {
                return Err("acl: users are defined both in acl.users and in acl.aclfile; keep them in one place".into());
            }
            acl.load()?;
        }
        Ok(acl)
    }

    #[inline]
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    fn changed(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    pub fn get(&self, name: &str) -> Option<Arc<User>> {
        self.users.read().expect("acl").get(name).cloned()
    }

    pub fn default_user(&self) -> Arc<User> {
        self.get("default").expect("the default user cannot be deleted")
    }

    /// Whether connections start unauthenticated: the default user needs a password or is off.
    pub fn requires_auth(&self) -> bool {
        let d = self.default_user();
        !(d.enabled && d.nopass)
    }

    /// `requirepass` (config or CONFIG SET): the default user's only password; empty: `nopass`.
    pub fn set_requirepass(&self, password: &str) {
        let mut d = (*self.default_user()).clone();
        d.apply(b"resetpass").expect("valid");
        let rule = if password.is_empty() { "nopass".to_owned() } else { format!(">{password}") };
        d.apply(rule.as_bytes()).expect("valid");
        self.put(d);
    }

    fn put(&self, user: User) {
        self.users.write().expect("acl").insert(user.name.clone(), Arc::new(user));
        self.changed();
    }

    pub fn names(&self) -> Vec<String> {
        self.users.read().expect("acl").keys().cloned().collect()
    }

    pub fn all(&self) -> Vec<Arc<User>> {
        self.users.read().expect("acl").values().cloned().collect()
    }

    /// ACL SETUSER: every rule applies or none does.
    pub fn set_user(&self, name: &[u8], rules: &[Bytes]) -> Result<(), CommandError> {
        if name.iter().any(|c| *c == b' ' || *c == 0) {
            return Err(CommandError::fixed("ERR Usernames can't contain spaces or null characters"));
        }
        let name = lossy(name);
        let mut user = self.get(&name).map(|u| (*u).clone()).unwrap_or_else(|| User::new(&name));
        for rule in rules {
            user.apply(rule).map_err(|e| CommandError::new(format!("ERR Error in ACL SETUSER modifier '{}': {e}", lossy(rule))))?;
        }
        self.put(user);
        Ok(())
    }

    /// ACL DELUSER: how many existed. The caller ends their connections.
    pub fn delete(&self, names: &[Bytes]) -> Result<usize, CommandError> {
        if names.iter().any(|n| &n[..] == b"default") {
            return Err(CommandError::fixed("ERR The 'default' user cannot be removed"));
        }
        let mut users = self.users.write().expect("acl");
        let n = names.iter().filter(|n| users.remove(&lossy(n)).is_some()).count();
        drop(users);
        self.changed();
        Ok(n)
    }

    /// Checks a user name and password. `Err` is always the one WRONGPASS, whatever failed.
    pub fn authenticate(&self, name: &[u8], password: &[u8]) -> Result<Arc<User>, CommandError> {
        let user = std::str::from_utf8(name).ok().and_then(|n| self.get(n));
        // The password is hashed and compared whether or not the user exists, so a missing user
        // takes as long as a wrong password.
        let matches = match &user {
            Some(u) => u.password_matches(password),
            None => User::new("").password_matches(password),
        };
        match user {
            Some(u) if u.enabled && (u.nopass || matches) => Ok(u),
            _ => Err(WRONGPASS),
        }
    }

    /// When an AUTH from `addr` may be answered (`None`: now), taking its slot.
    pub fn auth_slot(&self, addr: IpAddr, failed: bool) -> Option<Instant> {
        self.throttle.lock().expect("throttle").answer_at(addr, Instant::now(), failed)
    }

    pub fn auth_failed(&self, addr: IpAddr) {
        self.throttle.lock().expect("throttle").failed(addr, Instant::now());
    }

    pub fn record(&self, denied: &Denied, context: &'static str, username: &str, client_info: String) {
        self.log.lock().expect("acl log").add(denied.reason, context, denied.object.clone(), username.to_owned(), client_info);
    }

    /// The users as ACL file lines.
    pub fn lines(&self) -> Vec<String> {
        self.all().iter().map(|u| u.describe()).collect()
    }

    /// ACL LOAD: replaces every user with the file's (all or nothing).
    pub fn load(&self) -> Result<(), String> {
        let Some(path) = &self.aclfile else { return Err(NO_ACLFILE.into()) };
        let users = file::read(path)?;
        *self.users.write().expect("acl") = users;
        self.changed();
        Ok(())
    }

    /// ACL SAVE: writes the users to the ACL file (a new file renamed over the old).
    pub fn save(&self) -> Result<(), String> {
        let Some(path) = &self.aclfile else { return Err(NO_ACLFILE.into()) };
        file::write(path, &self.lines())
    }
}

pub const NO_ACLFILE: &str = "This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.";

/// What the per-request check needs to know of a command, worked out once from its spec (its name,
/// flags and group) instead of on every request: the check is then a bit test and the key and
/// channel walks this says to make. Indexed by the command table's dense index ([`Found::index`]).
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// The command's number in [`table::TABLE`] (its bit in a user's command bitmap).
    id: usize,
    /// Allowed before authentication (AUTH, HELLO, QUIT...): allowed to every user, as in Redis.
    no_auth: bool,
    /// The access its positional keys need; `None` when its resources come from the parsed command
    /// (Herald's named resources, [`resources::named_by_parse`]).
    keys: Option<u8>,
    /// Its keys are only at fixed positions (`spec.keys`: no `numkeys`, not SORT's STORE): walked
    /// here in place rather than through `CommandSpec::visit_keys`.
    fixed_keys: bool,
    /// XREAD / XREADGROUP: keys after `STREAMS`.
    keyword_keys: bool,
    channels: Channels,
}

/// Which arguments of a command are channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channels {
    None,
    /// Every argument after the name (SUBSCRIBE, SSUBSCRIBE); `true`: patterns (PSUBSCRIBE).
    All(bool),
    /// The first argument (PUBLISH, SPUBLISH).
    First,
}

static SHAPES: LazyLock<Vec<Shape>> = LazyLock::new(|| {
    command::indexed_specs()
        .iter()
        .map(|spec| Shape {
            id: table::TABLE.id(spec),
            no_auth: spec.has(flags::NO_AUTH),
            // Shard channels sit in the key positions (for cluster slots) but are channels to the ACL,
            // as Redis's `NOT_KEY` key specs say.
            keys: (!resources::named_by_parse(spec) && !matches!(spec.name, "spublish" | "ssubscribe" | "sunsubscribe"))
                .then(|| key_access(spec)),
            fixed_keys: !spec.has(flags::MOVABLE_KEYS) && spec.name != "sort",
            keyword_keys: matches!(spec.name, "xread" | "xreadgroup"),
            channels: match spec.name {
                "subscribe" | "ssubscribe" => Channels::All(false),
                "psubscribe" => Channels::All(true),
                "publish" | "spublish" => Channels::First,
                _ => Channels::None,
            },
        })
        .collect()
});

/// The shape of a command found by `lookup` (one index into a table).
#[inline]
pub fn shape(found: Found) -> &'static Shape {
    &SHAPES[found.index]
}

/// The shape of a spec held without its index (ACL DRYRUN, EXEC's re-check): one hash of its name.
pub fn shape_of(spec: &'static CommandSpec) -> &'static Shape {
    &SHAPES[command::spec_index(spec)]
}

/// Whether `user` may run the command at all.
#[inline]
pub fn check_command(user: &User, spec: &'static CommandSpec, shape: &Shape) -> Result<(), Denied> {
    if shape.no_auth || user.can_run(shape.id) { Ok(()) } else { Err(Denied { reason: Reason::Command, object: spec.name.to_owned() }) }
}

/// Redis 7.0's write commands that also read the key (their key specs say `RW ACCESS`), so `%W~`
/// alone does not allow them. A `match` (by length, then bytes) rather than a list searched per request.
fn reads_too(name: &str) -> bool {
    matches!(
        name,
        "incr"
            | "decr"
            | "incrby"
            | "decrby"
            | "incrbyfloat"
            | "getset"
            | "getdel"
            | "getex"
            | "lpop"
            | "rpop"
            | "lmove"
            | "rpoplpush"
            | "blpop"
            | "brpop"
            | "blmove"
            | "brpoplpush"
            | "lmpop"
            | "blmpop"
            | "spop"
            | "smove"
            | "zpopmin"
            | "zpopmax"
            | "bzpopmin"
            | "bzpopmax"
            | "zmpop"
            | "bzmpop"
            | "hincrby"
            | "hincrbyfloat"
            | "xreadgroup"
            | "xclaim"
            | "xautoclaim"
            | "sort"
            | "rename"
            | "renamenx"
            | "move"
            | "copy"
    )
}

/// The access a Redis-style command needs on its positional keys.
fn key_access(spec: &CommandSpec) -> u8 {
    if spec.has(flags::READONLY) {
        READ
    } else if reads_too(spec.name) {
        READ | WRITE
    } else if spec.has(flags::WRITE) {
        WRITE
    } else {
        0
    }
}

/// Keys that follow a keyword rather than a position: XREAD / XREADGROUP's `STREAMS key [key ...] id
/// [id ...]`.
fn keyword_keys(req: &Request) -> &[Bytes] {
    let parts = req.parts();
    let Some(at) = parts.iter().position(|p| p.eq_ignore_ascii_case(b"STREAMS")) else { return &[] };
    let rest = &parts[at + 1..];
    &rest[..rest.len() / 2]
}

/// The channels a request names, and whether they are patterns.
fn channels<'r>(shape: &Shape, req: &'r Request) -> (&'r [Bytes], bool) {
    let parts = req.parts();
    match shape.channels {
        Channels::All(pattern) => (&parts[1..], pattern),
        Channels::First => (&parts[1..2.min(parts.len())], false),
        Channels::None => (&[], false),
    }
}

/// The first key at a command's fixed positions that `user` may not use for `access`
/// (`CommandSpec::visit_keys` without its `numkeys` and SORT cases): a plain loop, as this runs on
/// every request of a restricted user.
#[inline]
fn fixed_key_denied<'r>(user: &User, k: KeyPositions, parts: &'r [Bytes], access: u8) -> Option<&'r [u8]> {
    if k.first <= 0 || k.step <= 0 {
        return None;
    }
    let argc = parts.len() as i32;
    let last = if k.last < 0 { argc + k.last } else { k.last.min(argc - 1) };
    let mut i = k.first;
    while i <= last {
        let Some(key) = parts.get(i as usize) else { break };
        if !user.may_access_key(key, access) {
            return Some(key);
        }
        i += k.step;
    }
    None
}

/// [`check_command`] and [`check_request`] for the usual request, as one test with no error to build:
/// `true` when the command is allowed and its keys (at fixed positions) and channels (none) too.
/// `false` says only "check in full" (keywords, movable keys, channels, or a refusal).
#[inline]
pub fn plainly_allowed(user: &User, spec: &'static CommandSpec, shape: &Shape, req: &Request) -> bool {
    if !(shape.no_auth || user.can_run(shape.id)) {
        return false;
    }
    if !user.all_keys
        && let Some(access) = shape.keys
        && (!shape.fixed_keys || shape.keyword_keys || fixed_key_denied(user, spec.keys, req.parts(), access).is_some())
    {
        return false;
    }
    user.all_channels || shape.channels == Channels::None
}

/// The positional keys and the channels of a request (the Redis commands' resources and `STREAM.*`'s).
pub fn check_request(user: &User, spec: &'static CommandSpec, shape: &Shape, req: &Request) -> Result<(), Denied> {
    if !user.all_keys
        && let Some(access) = shape.keys
    {
        let mut denied = None;
        if shape.fixed_keys {
            denied = fixed_key_denied(user, spec.keys, req.parts(), access);
        } else {
            spec.visit_keys(req, &mut |key| {
                let allowed = user.may_access_key(key, access);
                if !allowed {
                    denied = Some(key);
                }
                allowed
            });
        }
        if shape.keyword_keys && denied.is_none() {
            denied = keyword_keys(req).iter().find(|k| !user.may_access_key(k, access)).map(|k| &k[..]);
        }
        if let Some(key) = denied {
            return Err(Denied { reason: Reason::Key, object: lossy(key) });
        }
    }
    if !user.all_channels && shape.channels != Channels::None {
        let (names, pattern) = channels(shape, req);
        if let Some(ch) = names.iter().find(|c| !user.may_use_channel(c, pattern)) {
            return Err(Denied { reason: Reason::Channel, object: lossy(ch) });
        }
    }
    Ok(())
}

/// Herald's named resources (already extracted from the parsed command).
pub fn check_resources(user: &User, resources: &[resources::Resource]) -> Result<(), Denied> {
    match resources.iter().find(|(name, access)| !user.may_access_key(name, *access)) {
        Some((name, _)) => Err(Denied { reason: Reason::Key, object: lossy(name) }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::user::test_user as user;

    fn check(u: &User, parts: &[&str]) -> Result<(), Denied> {
        let req = Request::from_strs(parts);
        let found = herald_protocol::command::lookup(&req).unwrap();
        check_command(u, found.spec, shape(found))?;
        check_request(u, found.spec, shape(found), &req)
    }

    #[test]
    fn commands_keys_channels() {
        let u = user("on ~a:* %R~shared:* &news.* +@read +set +incr +subscribe +psubscribe +publish");
        assert!(check(&u, &["GET", "a:1"]).is_ok());
        assert_eq!(check(&u, &["GET", "b:1"]).unwrap_err().object, "b:1");
        assert!(check(&u, &["GET", "shared:1"]).is_ok());
        assert!(matches!(check(&u, &["SET", "shared:1", "v"]), Err(Denied { reason: Reason::Key, .. })));
        assert!(matches!(check(&u, &["DEL", "a:1"]), Err(Denied { reason: Reason::Command, .. })));
        assert!(check(&u, &["MGET", "a:1", "a:2"]).is_ok() && check(&u, &["MGET", "a:1", "b:2"]).is_err());
        assert!(check(&u, &["SUBSCRIBE", "news.x"]).is_ok());
        assert!(check(&u, &["SUBSCRIBE", "news.x", "sport"]).is_err());
        assert!(check(&u, &["PSUBSCRIBE", "news.*"]).is_ok() && check(&u, &["PSUBSCRIBE", "*"]).is_err());
        assert!(check(&u, &["PUBLISH", "sport", "m"]).is_err());
        let w = user("on %W~w:* +@all");
        assert!(check(&w, &["SET", "w:1", "v"]).is_ok());
        assert!(check(&w, &["INCR", "w:1"]).is_err(), "INCR reads too");
    }

    #[test]
    fn authenticate_is_one_error() {
        let settings = AclSettings {
            users: vec!["alice on >pw ~a:* +@all".into(), "bob off >pw".into()],
            aclfile: String::new(),
            log_max_len: 4,
            auth_free_failures: 1,
            auth_delay_ms: 1,
            auth_delay_max_ms: 2,
            auth_failure_window_ms: 1000,
            auth_throttle_addresses: 4,
        };
        let acl = Acl::new(&settings, "").unwrap();
        assert!(!acl.requires_auth());
        assert!(acl.authenticate(b"alice", b"pw").is_ok());
        for (u, p) in [("alice", "no"), ("bob", "pw"), ("carol", "pw")] {
            assert_eq!(acl.authenticate(u.as_bytes(), p.as_bytes()).unwrap_err(), WRONGPASS);
        }
        acl.set_requirepass("s3cret");
        assert!(acl.requires_auth());
        assert!(acl.authenticate(b"default", b"s3cret").is_ok());
    }
}

/// A session's user: its name, and the user as of the registry's epoch the session last looked.
#[derive(Debug, Clone)]
pub struct SessionUser {
    pub name: Arc<str>,
    user: Option<Arc<User>>,
    epoch: u64,
    /// The user may do anything: the per-command check is skipped.
    open: bool,
    /// The user came from a token's own permissions (`token.rs`): it is not in the registry, so it is
    /// never looked up again.
    detached: bool,
    /// The user's per-command answers as of `epoch` (`verdict.rs`), for the usual request.
    verdicts: verdict::Verdicts,
}

impl Default for SessionUser {
    fn default() -> Self {
        SessionUser { name: Arc::from("default"), user: None, epoch: u64::MAX, open: false, detached: false, verdicts: Default::default() }
    }
}

impl SessionUser {
    /// The user as it is now; `None` once it has been deleted.
    #[inline]
    pub fn current(&mut self, acl: &Acl) -> Option<&Arc<User>> {
        let epoch = acl.epoch();
        if epoch != self.epoch && !self.detached {
            self.refresh(acl, epoch);
        }
        self.user.as_ref()
    }

    #[cold]
    fn refresh(&mut self, acl: &Acl, epoch: u64) {
        // The epoch is read before the user, so a change in between is seen next time.
        self.user = acl.get(&self.name);
        self.open = self.user.as_ref().is_some_and(|u| u.unrestricted());
        self.verdicts = self.user.as_ref().filter(|_| !self.open).map(|u| verdict::Verdicts::of(u)).unwrap_or_default();
        self.epoch = epoch;
    }

    /// Whether the user may do anything (one atomic load when nothing changed).
    #[inline]
    pub fn is_open(&mut self, acl: &Acl) -> bool {
        self.current(acl);
        self.open
    }

    /// The user as of the last [`Self::current`] / [`Self::is_open`]: a borrow, not a clone, for
    /// the per-request check that follows them.
    pub fn cached(&self) -> Option<&Arc<User>> {
        self.user.as_ref()
    }

    pub fn set(&mut self, user: Arc<User>) {
        self.name = Arc::from(user.name.as_str());
        self.epoch = u64::MAX;
        self.user = None;
        self.verdicts = Default::default();
        self.detached = false;
    }

    /// A user that exists only for this session (a token's `acl` claim): its permissions never change.
    pub fn set_detached(&mut self, user: Arc<User>) {
        self.name = Arc::from(user.name.as_str());
        self.open = user.unrestricted();
        self.verdicts = if self.open { Default::default() } else { verdict::Verdicts::of(&user) };
        self.user = Some(user);
        self.detached = true;
    }

    /// The usual request, allowed by the user's per-epoch verdicts (`verdict.rs`) without the full
    /// check; `false` says only "check in full". Asked after [`Self::is_open`], which refreshed them.
    #[inline(always)]
    pub fn plainly_allows(&self, index: usize, req: &Request) -> bool {
        self.verdicts.allows(index, req)
    }

    pub fn is_detached(&self) -> bool {
        self.detached
    }
}
