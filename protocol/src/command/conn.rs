//! Connection, server and transaction commands: the ones that act on the session or the server itself.

use bytes::Bytes;

use super::flags::*;
use super::{Command, CommandSpec, Group, NO_KEYS, keys};
use crate::error::CommandError;
use crate::number::parse_i64;
use crate::request::{Args, is_word};

#[derive(Debug, Clone, PartialEq)]
pub enum ConnCommand {
    Ping(Option<Bytes>),
    Echo(Bytes),
    Hello(HelloArgs),
    Auth {
        user: Option<Bytes>,
        password: Bytes,
    },
    /// `AUTH.TOKEN <jwt>`: authenticates (or re-authenticates, before expiry) with a signed token.
    AuthToken(Bytes),
    Select(i64),
    Quit,
    Reset,
    ClientId,
    ClientSetName(Bytes),
    ClientGetName,
    ClientList {
        kind: Option<Bytes>,
        ids: Vec<u64>,
    },
    ClientInfo,
    ClientKill(ClientKillFilter),
    ClientSetInfo {
        attr: Bytes,
        value: Bytes,
    },
    ClientNoEvict(bool),
    ClientReply(ReplyMode),
    ClientUnblock {
        id: i64,
        error: bool,
    },
    ClientPause {
        ms: u64,
        all: bool,
    },
    ClientUnpause,
    ClientNoTouch(bool),
    ClientHelp,
    CommandAll,
    CommandCount,
    CommandList,
    CommandInfo(Vec<Bytes>),
    CommandDocs(Vec<Bytes>),
    CommandGetKeys(Vec<Bytes>),
    CommandHelp,
    Info(Vec<Bytes>),
    ConfigGet(Vec<Bytes>),
    ConfigSet(Vec<(Bytes, Bytes)>),
    ConfigResetStat,
    ConfigRewrite,
    ConfigHelp,
    DbSize,
    /// `WAIT numreplicas timeout`: how many replicas acknowledged this connection's writes.
    Wait {
        replicas: i64,
        timeout: super::lists::Timeout,
    },
    FlushDb,
    FlushAll,
    Time,
    SwapDb(i64, i64),
    Multi,
    Exec,
    Discard,
    Watch(Vec<Bytes>),
    Unwatch,
}

/// `CLIENT REPLY ON|OFF|SKIP`: whether the connection's replies are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplyMode {
    #[default]
    On,
    Off,
    /// The next command's reply is not sent, then replies are on again.
    Skip,
}

/// `HELLO [protover [AUTH user pass] [SETNAME name]]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HelloArgs {
    pub protover: Option<i64>,
    pub auth: Option<(Bytes, Bytes)>,
    pub setname: Option<Bytes>,
}

/// Which clients `CLIENT KILL` targets.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClientKillFilter {
    /// The old `CLIENT KILL addr:port` form: replies OK or "No such client" instead of a count.
    pub legacy_addr: Option<Bytes>,
    pub id: Option<u64>,
    pub kind: Option<Bytes>,
    pub addr: Option<Bytes>,
    pub laddr: Option<Bytes>,
    pub user: Option<Bytes>,
    pub max_age_secs: Option<u64>,
    /// Whether the calling client may kill itself (`SKIPME no`); defaults to skipping it.
    pub skip_me: bool,
}

fn ok(c: ConnCommand) -> Result<Command, CommandError> {
    Ok(Command::Conn(c))
}

fn rest(args: Args) -> Vec<Bytes> {
    args.rest()
}

fn parse_ping(mut a: Args) -> Result<Command, CommandError> {
    if a.remaining() > 1 {
        return Err(CommandError::arity("ping"));
    }
    ok(ConnCommand::Ping(a.next_opt()))
}

fn parse_hello(mut a: Args) -> Result<Command, CommandError> {
    let mut hello = HelloArgs::default();
    if let Some(v) = a.next_opt() {
        let ver = parse_i64(&v).ok_or(CommandError::fixed("ERR Protocol version is not an integer or out of range"))?;
        hello.protover = Some(ver);
        while let Some(opt) = a.next_opt() {
            if is_word(&opt, "AUTH") && a.remaining() >= 2 {
                hello.auth = Some((a.next_bytes()?, a.next_bytes()?));
            } else if is_word(&opt, "SETNAME") && a.remaining() >= 1 {
                hello.setname = Some(a.next_bytes()?);
            } else {
                return Err(CommandError::new(format!("ERR Syntax error in HELLO option '{}'", String::from_utf8_lossy(&opt))));
            }
        }
    }
    ok(ConnCommand::Hello(hello))
}

fn parse_auth(mut a: Args) -> Result<Command, CommandError> {
    match a.remaining() {
        1 => ok(ConnCommand::Auth { user: None, password: a.next_bytes()? }),
        2 => ok(ConnCommand::Auth { user: Some(a.next_bytes()?), password: a.next_bytes()? }),
        _ => Err(CommandError::syntax()),
    }
}

fn parse_select(mut a: Args) -> Result<Command, CommandError> {
    ok(ConnCommand::Select(a.next_i64()?))
}

fn parse_swapdb(mut a: Args) -> Result<Command, CommandError> {
    let first = parse_i64(&a.next_bytes()?).ok_or(CommandError::fixed("ERR invalid first DB index"))?;
    let second = parse_i64(&a.next_bytes()?).ok_or(CommandError::fixed("ERR invalid second DB index"))?;
    ok(ConnCommand::SwapDb(first, second))
}

fn parse_client_list(mut a: Args) -> Result<Command, CommandError> {
    let mut kind = None;
    let mut ids = Vec::new();
    while let Some(opt) = a.next_opt() {
        if is_word(&opt, "TYPE") && a.remaining() >= 1 {
            kind = Some(a.next_bytes()?);
        } else if is_word(&opt, "ID") && a.remaining() >= 1 {
            while let Some(id) = a.next_opt() {
                let id = parse_i64(&id).filter(|v| *v > 0).ok_or(CommandError::fixed("ERR Invalid client ID"))?;
                ids.push(id as u64);
            }
        } else {
            return Err(CommandError::syntax());
        }
    }
    ok(ConnCommand::ClientList { kind, ids })
}

fn parse_client_kill(mut a: Args) -> Result<Command, CommandError> {
    let mut f = ClientKillFilter { skip_me: true, ..Default::default() };
    if a.remaining() == 1 {
        f.legacy_addr = Some(a.next_bytes()?);
        return ok(ConnCommand::ClientKill(f));
    }
    if !a.remaining().is_multiple_of(2) {
        return Err(CommandError::syntax());
    }
    while let Some(opt) = a.next_opt() {
        let value = a.next_bytes()?;
        if is_word(&opt, "ID") {
            let id = parse_i64(&value).filter(|v| *v > 0).ok_or(CommandError::fixed("ERR client-id should be greater than 0"))?;
            f.id = Some(id as u64);
        } else if is_word(&opt, "TYPE") {
            f.kind = Some(value);
        } else if is_word(&opt, "ADDR") {
            f.addr = Some(value);
        } else if is_word(&opt, "LADDR") {
            f.laddr = Some(value);
        } else if is_word(&opt, "USER") {
            f.user = Some(value);
        } else if is_word(&opt, "MAXAGE") {
            f.max_age_secs = Some(parse_i64(&value).filter(|v| *v >= 0).ok_or(CommandError::not_integer())? as u64);
        } else if is_word(&opt, "SKIPME") {
            f.skip_me = if is_word(&value, "yes") {
                true
            } else if is_word(&value, "no") {
                false
            } else {
                return Err(CommandError::syntax());
            };
        } else {
            return Err(CommandError::syntax());
        }
    }
    ok(ConnCommand::ClientKill(f))
}

fn parse_on_off(mut a: Args) -> Result<bool, CommandError> {
    let v = a.next_bytes()?;
    if is_word(&v, "on") {
        Ok(true)
    } else if is_word(&v, "off") {
        Ok(false)
    } else {
        Err(CommandError::syntax())
    }
}

fn parse_client_reply(mut a: Args) -> Result<Command, CommandError> {
    let v = a.next_bytes()?;
    let mode = if is_word(&v, "ON") {
        ReplyMode::On
    } else if is_word(&v, "OFF") {
        ReplyMode::Off
    } else if is_word(&v, "SKIP") {
        ReplyMode::Skip
    } else {
        return Err(CommandError::syntax());
    };
    ok(ConnCommand::ClientReply(mode))
}

/// Redis's answer to a CLIENT subcommand given more arguments than its forms take.
fn too_many(sub: &str) -> CommandError {
    CommandError::new(format!("ERR unknown subcommand or wrong number of arguments for '{sub}'. Try CLIENT HELP."))
}

/// `CLIENT UNBLOCK client-id [TIMEOUT|ERROR]`.
fn parse_client_unblock(mut a: Args) -> Result<Command, CommandError> {
    if a.remaining() > 2 {
        return Err(too_many("UNBLOCK"));
    }
    let id = a.next_i64()?;
    let error = match a.next_opt() {
        None => false,
        Some(r) if is_word(&r, "TIMEOUT") && a.remaining() == 0 => false,
        Some(r) if is_word(&r, "ERROR") && a.remaining() == 0 => true,
        Some(_) => return Err(CommandError::fixed("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")),
    };
    ok(ConnCommand::ClientUnblock { id, error })
}

/// `WAIT numreplicas timeout` (milliseconds; 0 waits for ever).
fn parse_wait(mut a: Args) -> Result<Command, CommandError> {
    let replicas = parse_i64(&a.next_bytes()?).ok_or(CommandError::fixed("ERR value is not an integer or out of range"))?;
    let ms = parse_i64(&a.next_bytes()?).ok_or(CommandError::fixed("ERR timeout is not an integer or out of range"))?;
    if ms < 0 {
        return Err(CommandError::fixed("ERR timeout is negative"));
    }
    ok(ConnCommand::Wait { replicas, timeout: super::lists::Timeout(ms as u64) })
}

/// `CLIENT PAUSE timeout [WRITE|ALL]`.
fn parse_client_pause(mut a: Args) -> Result<Command, CommandError> {
    if a.remaining() > 2 {
        return Err(too_many("PAUSE"));
    }
    let ms = parse_i64(&a.next_bytes()?).ok_or(CommandError::fixed("ERR timeout is not an integer or out of range"))?;
    if ms < 0 {
        return Err(CommandError::fixed("ERR timeout is negative"));
    }
    let all = match a.next_opt() {
        None => true,
        Some(m) if is_word(&m, "ALL") && a.remaining() == 0 => true,
        Some(m) if is_word(&m, "WRITE") && a.remaining() == 0 => false,
        Some(_) => return Err(CommandError::fixed("ERR CLIENT PAUSE mode must be WRITE or ALL")),
    };
    ok(ConnCommand::ClientPause { ms: ms as u64, all })
}

fn parse_config_set(mut a: Args) -> Result<Command, CommandError> {
    if !a.remaining().is_multiple_of(2) {
        return Err(CommandError::arity("config|set"));
    }
    let mut pairs = Vec::new();
    while let Some(name) = a.next_opt() {
        pairs.push((name, a.next_bytes()?));
    }
    ok(ConnCommand::ConfigSet(pairs))
}

fn parse_flush(a: Args, make: ConnCommand) -> Result<Command, CommandError> {
    match &a.rest()[..] {
        [] => ok(make),
        [mode] if is_word(mode, "ASYNC") || is_word(mode, "SYNC") => ok(make),
        _ => Err(CommandError::syntax()),
    }
}

const CONN: u32 = LOADING | STALE | FAST;
const TX: u32 = NOSCRIPT | LOADING | STALE | FAST | TX_CONTROL | ALLOW_BUSY;

macro_rules! spec {
    ($name:literal, $arity:expr, $flags:expr, $keys:expr, $group:ident, $since:literal, $summary:literal, $parse:expr) => {
        CommandSpec {
            name: $name,
            arity: $arity,
            flags: $flags,
            keys: $keys,
            group: Group::$group,
            summary: $summary,
            since: $since,
            parse: $parse,
            subcommands: &[],
        }
    };
}
pub(crate) use spec;

pub(crate) fn container(_: Args) -> Result<Command, CommandError> {
    unreachable!("containers without their own form are rejected by arity before parsing")
}

const CLIENT_SUBS: &[CommandSpec] = &[
    spec!(
        "client|id",
        2,
        NOSCRIPT | LOADING | STALE,
        NO_KEYS,
        Connection,
        "5.0.0",
        "Returns the unique client ID of the connection.",
        |_| ok(ConnCommand::ClientId)
    ),
    spec!("client|setname", 3, NOSCRIPT | LOADING | STALE, NO_KEYS, Connection, "2.6.9", "Sets the connection name.", |mut a| ok(
        ConnCommand::ClientSetName(a.next_bytes()?)
    )),
    spec!("client|getname", 2, NOSCRIPT | LOADING | STALE, NO_KEYS, Connection, "2.6.9", "Returns the name of the connection.", |_| ok(
        ConnCommand::ClientGetName
    )),
    spec!(
        "client|list",
        -2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        NO_KEYS,
        Connection,
        "2.4.0",
        "Lists open connections.",
        parse_client_list
    ),
    spec!("client|info", 2, NOSCRIPT | LOADING | STALE, NO_KEYS, Connection, "6.2.0", "Returns information about the connection.", |_| ok(
        ConnCommand::ClientInfo
    )),
    spec!(
        "client|kill",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        NO_KEYS,
        Connection,
        "2.4.0",
        "Terminates open connections.",
        parse_client_kill
    ),
    spec!(
        "client|setinfo",
        4,
        NOSCRIPT | LOADING | STALE,
        NO_KEYS,
        Connection,
        "7.2.0",
        "Sets information specific to the client or connection.",
        |mut a| ok(ConnCommand::ClientSetInfo { attr: a.next_bytes()?, value: a.next_bytes()? })
    ),
    spec!(
        "client|no-evict",
        3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        NO_KEYS,
        Connection,
        "7.0.0",
        "Sets the client eviction mode of the connection.",
        |a| ok(ConnCommand::ClientNoEvict(parse_on_off(a)?))
    ),
    spec!(
        "client|reply",
        3,
        NOSCRIPT | LOADING | STALE,
        NO_KEYS,
        Connection,
        "3.2.0",
        "Instructs the server whether to reply to commands.",
        parse_client_reply
    ),
    spec!(
        "client|unblock",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        NO_KEYS,
        Connection,
        "5.0.0",
        "Unblocks a client blocked by a blocking command from a different connection.",
        parse_client_unblock
    ),
    spec!(
        "client|pause",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        NO_KEYS,
        Connection,
        "3.0.0",
        "Suspends commands processing.",
        parse_client_pause
    ),
    spec!(
        "client|unpause",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        NO_KEYS,
        Connection,
        "6.2.0",
        "Resumes processing commands from paused clients.",
        |_| ok(ConnCommand::ClientUnpause)
    ),
    spec!(
        "client|no-touch",
        3,
        NOSCRIPT | LOADING | STALE,
        NO_KEYS,
        Connection,
        "7.2.0",
        "Controls whether commands sent by the client affect the LRU/LFU of accessed keys.",
        |a| ok(ConnCommand::ClientNoTouch(parse_on_off(a)?))
    ),
    spec!(
        "client|help",
        2,
        LOADING | STALE,
        NO_KEYS,
        Connection,
        "5.0.0",
        "Returns helpful text about the different subcommands.",
        |_| ok(ConnCommand::ClientHelp)
    ),
];

const COMMAND_SUBS: &[CommandSpec] = &[
    spec!("command|count", 2, LOADING | STALE, NO_KEYS, Server, "2.8.13", "Returns a count of commands.", |_| ok(
        ConnCommand::CommandCount
    )),
    spec!("command|list", -2, LOADING | STALE, NO_KEYS, Server, "7.0.0", "Returns a list of command names.", |_| ok(
        ConnCommand::CommandList
    )),
    spec!(
        "command|info",
        -2,
        LOADING | STALE,
        NO_KEYS,
        Server,
        "2.8.13",
        "Returns information about one, multiple or all commands.",
        |a| ok(ConnCommand::CommandInfo(rest(a)))
    ),
    spec!(
        "command|docs",
        -2,
        LOADING | STALE,
        NO_KEYS,
        Server,
        "7.0.0",
        "Returns documentary information about one, multiple or all commands.",
        |a| ok(ConnCommand::CommandDocs(rest(a)))
    ),
    spec!("command|getkeys", -4, LOADING | STALE, NO_KEYS, Server, "2.8.13", "Extracts the key names from an arbitrary command.", |a| ok(
        ConnCommand::CommandGetKeys(rest(a))
    )),
    spec!("command|help", 2, LOADING | STALE, NO_KEYS, Server, "5.0.0", "Returns helpful text about the different subcommands.", |_| ok(
        ConnCommand::CommandHelp
    )),
];

const CONFIG_SUBS: &[CommandSpec] = &[
    spec!(
        "config|get",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        NO_KEYS,
        Server,
        "2.0.0",
        "Returns the effective values of configuration parameters.",
        |a| ok(ConnCommand::ConfigGet(rest(a)))
    ),
    spec!(
        "config|set",
        -4,
        ADMIN | NOSCRIPT | LOADING | STALE,
        NO_KEYS,
        Server,
        "2.0.0",
        "Sets configuration parameters in-flight.",
        parse_config_set
    ),
    spec!("config|resetstat", 2, ADMIN | NOSCRIPT | LOADING | STALE, NO_KEYS, Server, "2.0.0", "Resets the server's statistics.", |_| ok(
        ConnCommand::ConfigResetStat
    )),
    spec!(
        "config|rewrite",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        NO_KEYS,
        Server,
        "2.8.0",
        "Persists the effective configuration to file.",
        |_| ok(ConnCommand::ConfigRewrite)
    ),
    spec!("config|help", 2, LOADING | STALE, NO_KEYS, Server, "5.0.0", "Returns helpful text about the different subcommands.", |_| ok(
        ConnCommand::ConfigHelp
    )),
];

pub(crate) const SPECS: &[CommandSpec] = &[
    spec!("ping", -1, FAST | SUBSCRIBED_OK, NO_KEYS, Connection, "1.0.0", "Returns the server's liveliness response.", parse_ping),
    spec!("echo", 2, CONN, NO_KEYS, Connection, "1.0.0", "Returns the given string.", |mut a| ok(ConnCommand::Echo(a.next_bytes()?))),
    spec!(
        "hello",
        -1,
        NOSCRIPT | CONN | NO_AUTH | ALLOW_BUSY,
        NO_KEYS,
        Connection,
        "6.0.0",
        "Handshakes with the server: protocol version, authentication, name.",
        parse_hello
    ),
    spec!("auth", -2, NOSCRIPT | CONN | NO_AUTH | ALLOW_BUSY, NO_KEYS, Connection, "1.0.0", "Authenticates the connection.", parse_auth),
    spec!(
        "auth.token",
        2,
        NOSCRIPT | CONN | NO_AUTH | ALLOW_BUSY,
        NO_KEYS,
        Connection,
        "0.1.0",
        "Authenticates the connection with a signed token (JWT), or refreshes it before it expires. AUTH.TOKEN jwt",
        |mut a| ok(ConnCommand::AuthToken(a.next_bytes()?))
    ),
    spec!("select", 2, CONN, NO_KEYS, Connection, "1.0.0", "Changes the selected database.", parse_select),
    spec!(
        "quit",
        -1,
        NOSCRIPT | CONN | NO_AUTH | TX_CONTROL | SUBSCRIBED_OK | ALLOW_BUSY,
        NO_KEYS,
        Connection,
        "1.0.0",
        "Closes the connection.",
        |_| ok(ConnCommand::Quit)
    ),
    spec!(
        "reset",
        1,
        NOSCRIPT | CONN | NO_AUTH | TX_CONTROL | SUBSCRIBED_OK | ALLOW_BUSY,
        NO_KEYS,
        Connection,
        "6.2.0",
        "Resets the connection.",
        |_| ok(ConnCommand::Reset)
    ),
    CommandSpec {
        subcommands: CLIENT_SUBS,
        ..spec!("client", -2, 0, NO_KEYS, Connection, "2.4.0", "A container for client connection commands.", container)
    },
    CommandSpec {
        subcommands: COMMAND_SUBS,
        ..spec!("command", -1, LOADING | STALE, NO_KEYS, Server, "2.8.13", "Returns detailed information about all commands.", |_| ok(
            ConnCommand::CommandAll
        ))
    },
    spec!("info", -1, LOADING | STALE, NO_KEYS, Server, "1.0.0", "Returns information and statistics about the server.", |a| ok(
        ConnCommand::Info(rest(a))
    )),
    CommandSpec {
        subcommands: CONFIG_SUBS,
        ..spec!("config", -2, 0, NO_KEYS, Server, "2.0.0", "A container for server configuration commands.", container)
    },
    spec!("dbsize", 1, READONLY | FAST, NO_KEYS, Server, "1.0.0", "Returns the number of keys in the database.", |_| ok(
        ConnCommand::DbSize
    )),
    spec!("flushdb", -1, WRITE | DANGEROUS, NO_KEYS, Server, "1.0.0", "Removes all keys from the current database.", |a| parse_flush(
        a,
        ConnCommand::FlushDb
    )),
    spec!("flushall", -1, WRITE | DANGEROUS, NO_KEYS, Server, "1.0.0", "Removes all keys from all databases.", |a| parse_flush(
        a,
        ConnCommand::FlushAll
    )),
    spec!("time", 1, CONN, NO_KEYS, Server, "2.6.0", "Returns the server time.", |_| ok(ConnCommand::Time)),
    spec!(
        "wait",
        3,
        NOSCRIPT,
        NO_KEYS,
        Connection,
        "3.0.0",
        "Blocks until the asynchronous replication of all preceding write commands sent by the connection is completed.",
        parse_wait
    ),
    spec!("swapdb", 3, WRITE | FAST | DANGEROUS, NO_KEYS, Server, "4.0.0", "Swaps two databases.", parse_swapdb),
    spec!("multi", 1, TX, NO_KEYS, Transactions, "1.2.0", "Starts a transaction.", |_| ok(ConnCommand::Multi)),
    spec!(
        "exec",
        1,
        NOSCRIPT | LOADING | STALE | TX_CONTROL,
        NO_KEYS,
        Transactions,
        "1.2.0",
        "Executes all commands in a transaction.",
        |_| ok(ConnCommand::Exec)
    ),
    spec!("discard", 1, TX, NO_KEYS, Transactions, "2.0.0", "Discards a transaction.", |_| ok(ConnCommand::Discard)),
    spec!(
        "watch",
        -2,
        TX,
        keys(1, -1, 1),
        Transactions,
        "2.2.0",
        "Monitors changes to keys to determine the execution of a transaction.",
        |a| ok(ConnCommand::Watch(rest(a)))
    ),
    spec!(
        "unwatch",
        1,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
        NO_KEYS,
        Transactions,
        "2.2.0",
        "Forgets about watched keys of a transaction.",
        |_| ok(ConnCommand::Unwatch)
    ),
];
