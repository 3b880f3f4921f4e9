//! Server introspection and configuration: HELP texts, CLIENT LIST, COMMAND INFO / DOCS, CONFIG.

use bytes::Bytes;
use herald_protocol::command::{self, CommandSpec, flags};
use herald_protocol::{CommandError, Reply, Request};

use super::Cx;
use crate::broker::Broker;
use crate::config::parse_overflow;
use crate::engine::glob::glob_match_nocase;
use crate::engine::keyspace::notify;
use crate::persist::Fsync;
use crate::pubsub::OverflowPolicy;

/// The Redis version Herald's command set corresponds to (HELLO, INFO `redis_version`).
pub const REDIS_VERSION: &str = "7.0.15";

/// A HELP reply in Redis's shape: a header, the lines, then HELP itself, all as status lines.
pub fn help(command: &str, lines: &[&str]) -> Reply {
    let mut out = vec![Reply::Status(format!("{command} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:").into())];
    out.extend(lines.iter().map(|l| Reply::Status(l.to_string().into())));
    out.push(Reply::status("HELP"));
    out.push(Reply::status("    Prints this help."));
    Reply::Array(out)
}

pub fn check_client_type(kind: &[u8]) -> Result<(), CommandError> {
    const TYPES: [&[u8]; 5] = [b"normal", b"master", b"replica", b"slave", b"pubsub"];
    if TYPES.iter().any(|t| t.eq_ignore_ascii_case(kind)) {
        Ok(())
    } else {
        Err(CommandError::new(format!("ERR Unknown client type '{}'", String::from_utf8_lossy(kind))))
    }
}

pub fn client_type_matches(wanted: &[u8], actual: &str) -> bool {
    wanted.eq_ignore_ascii_case(actual.as_bytes())
}

pub fn client_list(kind: Option<Bytes>, ids: Vec<u64>, broker: &Broker) -> Result<Reply, CommandError> {
    if let Some(k) = &kind {
        check_client_type(k)?;
    }
    let mut text = String::new();
    for c in broker.clients.all() {
        if kind.as_ref().is_some_and(|k| !client_type_matches(k, c.kind())) {
            continue;
        }
        if !ids.is_empty() && !ids.contains(&c.id) {
            continue;
        }
        text.push_str(&c.describe());
        text.push('\n');
    }
    Ok(Reply::Verbatim(text.into()))
}

fn flag_names(spec: &CommandSpec) -> Reply {
    Reply::Set(flags::NAMES.iter().filter(|(f, _)| spec.has(*f)).map(|(_, name)| Reply::Status((*name).into())).collect())
}

fn acl_categories(spec: &CommandSpec) -> Reply {
    let mut cats: Vec<String> = Vec::new();
    if spec.has(flags::WRITE) {
        cats.push("@write".into());
    }
    if spec.has(flags::READONLY) {
        cats.push("@read".into());
    }
    cats.push(match spec.group.as_str() {
        "generic" => "@keyspace".into(),
        "transactions" => "@transaction".into(),
        "server" => "@admin".into(),
        "sorted-set" => "@sortedset".into(),
        other => format!("@{other}"),
    });
    cats.push(if spec.has(flags::FAST) { "@fast" } else { "@slow" }.into());
    if spec.has(flags::BLOCKING) {
        cats.push("@blocking".into());
    }
    if spec.has(flags::DANGEROUS) {
        cats.push("@dangerous".into());
    }
    Reply::Set(cats.into_iter().map(|c| Reply::Status(c.into())).collect())
}

/// One COMMAND INFO entry: Redis 7's ten fields.
fn info_entry(spec: &CommandSpec) -> Reply {
    Reply::Array(vec![
        Reply::text(spec.name),
        Reply::Int(i64::from(spec.arity)),
        flag_names(spec),
        Reply::Int(i64::from(spec.keys.first)),
        Reply::Int(i64::from(spec.keys.last)),
        Reply::Int(i64::from(spec.keys.step)),
        acl_categories(spec),
        Reply::Set(Vec::new()),
        Reply::Array(Vec::new()),
        Reply::Array(spec.subcommands.iter().map(info_entry).collect()),
    ])
}

pub fn command_info_all() -> Reply {
    Reply::Array(command::all_specs().map(info_entry).collect())
}

pub fn command_info(names: &[Bytes]) -> Reply {
    if names.is_empty() {
        return command_info_all();
    }
    Reply::Array(names.iter().map(|n| command::find(n).map(info_entry).unwrap_or(Reply::Nil)).collect())
}

fn docs_entry(spec: &CommandSpec) -> Reply {
    let mut fields =
        vec![("summary", Reply::text(spec.summary)), ("since", Reply::text(spec.since)), ("group", Reply::text(spec.group.as_str()))];
    if !spec.subcommands.is_empty() {
        fields.push(("subcommands", Reply::Map(spec.subcommands.iter().map(|s| (Reply::text(s.name), docs_entry(s))).collect())));
    }
    Reply::fields(fields)
}

pub fn command_docs(names: &[Bytes]) -> Reply {
    let specs: Vec<&CommandSpec> =
        if names.is_empty() { command::all_specs().collect() } else { names.iter().filter_map(|n| command::find(n)).collect() };
    Reply::Map(specs.into_iter().map(|s| (Reply::text(s.name), docs_entry(s))).collect())
}

pub fn command_getkeys(parts: Vec<Bytes>) -> Result<Reply, CommandError> {
    let req = Request::new(parts);
    let found = command::lookup(&req).map_err(|e| {
        if e.0.starts_with("ERR wrong number") {
            CommandError::fixed("ERR Invalid arguments specified for command")
        } else {
            CommandError::fixed("ERR Invalid command specified")
        }
    })?;
    let keys = found.key_args(&req);
    if keys.is_empty() {
        return Err(CommandError::fixed("ERR The command has no key arguments"));
    }
    Ok(Reply::bulks(keys.into_iter().map(Bytes::copy_from_slice)))
}

/// The parameters CONFIG GET / SET know, with Redis's names.
const PARAMS: &[&str] = &[
    "maxclients",
    "timeout",
    "requirepass",
    "notify-keyspace-events",
    "client-output-buffer-limit",
    "herald-pubsub-overflow",
    "proto-max-bulk-len",
    "client-query-buffer-limit",
    "databases",
    "port",
    "bind",
    "save",
    "appendonly",
    "appendfsync",
    "dir",
    "maxmemory",
    "busy-reply-threshold",
    "lua-time-limit",
    "maxmemory-policy",
    "slowlog-log-slower-than",
    "slowlog-max-len",
    "latency-monitor-threshold",
    "tls-port",
    "tls-cert-file",
    "tls-key-file",
    "tls-ca-cert-file",
    "tls-auth-clients",
];

fn param_value(name: &str, cx: &mut Cx<'_>) -> String {
    let s = cx.broker.settings();
    match name {
        "maxclients" => s.maxclients.to_string(),
        "timeout" => s.timeout_secs.to_string(),
        "requirepass" => s.requirepass,
        "notify-keyspace-events" => notify::format_flags(cx.broker.events.notify_flags()),
        "client-output-buffer-limit" => format!(
            "normal 0 0 0 slave 268435456 67108864 60 pubsub {} {} {}",
            s.outbox.hard_bytes, s.outbox.soft_bytes, s.outbox.soft_seconds
        ),
        "herald-pubsub-overflow" => match s.outbox.policy {
            OverflowPolicy::Disconnect => "disconnect".into(),
            OverflowPolicy::DropOldest => "drop-oldest".into(),
        },
        "proto-max-bulk-len" => s.proto_max_bulk_len.to_string(),
        "client-query-buffer-limit" => s.client_query_buffer_limit.to_string(),
        "databases" => cx.broker.config.databases.to_string(),
        "port" => cx.broker.resp_port.load(std::sync::atomic::Ordering::Relaxed).to_string(),
        "bind" => cx.broker.config.bind.clone(),
        "save" => String::new(),
        "appendonly" => if cx.broker.persist.is_some() { "yes" } else { "no" }.into(),
        "appendfsync" => cx.broker.persist.as_ref().map_or(cx.broker.config.persistence.appendfsync.clone(), |p| p.policy().name().into()),
        "dir" => cx.broker.persist.as_ref().map_or_else(
            || std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default(),
            |p| p.dir().display().to_string(),
        ),
        "maxmemory" => cx.broker.maxmemory().to_string(),
        "maxmemory-policy" => "noeviction".into(),
        "tls-port" => cx.broker.tls_ports.0.load(std::sync::atomic::Ordering::Relaxed).to_string(),
        "tls-cert-file" | "tls-key-file" | "tls-ca-cert-file" | "tls-auth-clients" => {
            cx.broker.tls.as_ref().map_or_else(String::new, |t| {
                let files = t.files();
                match name {
                    "tls-cert-file" => files.cert_file,
                    "tls-key-file" => files.key_file,
                    "tls-ca-cert-file" => files.ca_cert_file,
                    _ => files.auth_clients.name().into(),
                }
            })
        }
        "busy-reply-threshold" | "lua-time-limit" => cx.broker.scripting.monitor.threshold_ms().to_string(),
        "slowlog-log-slower-than" => cx.broker.slowlog.threshold_us().to_string(),
        "slowlog-max-len" => cx.broker.slowlog.max_len().to_string(),
        "latency-monitor-threshold" => cx.broker.latency_events.threshold_ms().to_string(),
        _ => String::new(),
    }
}

pub fn config_get(patterns: &[Bytes], cx: &mut Cx<'_>) -> Reply {
    let mut pairs = Vec::new();
    for name in PARAMS {
        if patterns.iter().any(|p| glob_match_nocase(p, name.as_bytes())) {
            let value = param_value(name, cx);
            pairs.push((Reply::text(name), Reply::bulk(value)));
        }
    }
    Reply::Map(pairs)
}

/// Parses a Redis memory amount: bytes, or with a k/kb/m/mb/g/gb suffix.
fn parse_memory(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    let (digits, unit) = match lower.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => lower.split_at(i),
        None => (lower.as_str(), ""),
    };
    let n: usize = digits.parse().ok()?;
    let mult = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1_000_000,
        "mb" => 1024 * 1024,
        "g" => 1_000_000_000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// One validated change, applied only once every pair of the CONFIG SET validated.
enum Change {
    AppendFsync(Fsync),
    MaxClients(usize),
    Timeout(u64),
    RequirePass(String),
    Notify(u32),
    PubSubLimits(usize, usize, u64),
    Overflow(OverflowPolicy),
    ProtoMaxBulk(usize),
    QueryBuffer(usize),
    BusyThreshold(u64),
    MaxMemory(usize),
    SlowlogThreshold(i64),
    SlowlogMaxLen(usize),
    LatencyThreshold(u64),
    /// `maxmemory-policy noeviction`, the one policy Herald has.
    NoEviction,
    /// A TLS file or the client-certificate rule: applied together, before anything else (`tls_changes`).
    Tls(&'static str, String),
}

fn set_failed(name: &str, why: &str) -> CommandError {
    CommandError::new(format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"))
}

fn parse_change(name: &str, value: &str) -> Result<Change, CommandError> {
    let integer = || set_failed(name, "argument couldn't be parsed into an integer");
    let memory = || parse_memory(value).ok_or_else(|| set_failed(name, "argument must be a memory value"));
    match name {
        "maxclients" => value.parse().ok().filter(|n| *n > 0).map(Change::MaxClients).ok_or_else(integer),
        "timeout" => value.parse().map(Change::Timeout).map_err(|_| integer()),
        "requirepass" => Ok(Change::RequirePass(value.to_owned())),
        "notify-keyspace-events" => notify::parse_flags(value.as_bytes())
            .map(Change::Notify)
            .ok_or_else(|| set_failed(name, "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")),
        "client-output-buffer-limit" => {
            let words: Vec<&str> = value.split_whitespace().collect();
            if !words.len().is_multiple_of(4) || words.is_empty() {
                return Err(set_failed(name, "Wrong number of arguments in buffer limit configuration."));
            }
            let mut limits = None;
            for class in words.chunks(4) {
                let hard = parse_memory(class[1]);
                let soft = parse_memory(class[2]);
                let secs = class[3].parse::<u64>().ok();
                let (Some(hard), Some(soft), Some(secs)) = (hard, soft, secs) else {
                    return Err(set_failed(name, "Error in hard, soft or soft_seconds setting in buffer limit configuration."));
                };
                match class[0].to_ascii_lowercase().as_str() {
                    "pubsub" => limits = Some(Change::PubSubLimits(hard, soft, secs)),
                    "normal" | "slave" | "replica" => {}
                    _ => return Err(set_failed(name, "Invalid client class specified in buffer limit configuration.")),
                }
            }
            limits.ok_or_else(|| set_failed(name, "only the pubsub class applies to Herald"))
        }
        "herald-pubsub-overflow" => {
            parse_overflow(value).map(Change::Overflow).ok_or_else(|| set_failed(name, "argument must be 'disconnect' or 'drop-oldest'"))
        }
        "proto-max-bulk-len" => memory().map(Change::ProtoMaxBulk),
        "busy-reply-threshold" | "lua-time-limit" => value.parse().map(Change::BusyThreshold).map_err(|_| integer()),
        "client-query-buffer-limit" => memory().map(Change::QueryBuffer),
        "slowlog-log-slower-than" => value.parse::<i64>().map_err(|_| integer()).and_then(|n| match n >= -1 {
            true => Ok(Change::SlowlogThreshold(n)),
            false => Err(set_failed(name, "argument must be between -1 and 9223372036854775807 inclusive")),
        }),
        "slowlog-max-len" => value.parse::<i64>().map_err(|_| integer()).and_then(|n| {
            usize::try_from(n)
                .map(Change::SlowlogMaxLen)
                .map_err(|_| set_failed(name, "argument must be between 0 and 9223372036854775807 inclusive"))
        }),
        "latency-monitor-threshold" => value.parse::<i64>().map_err(|_| integer()).and_then(|n| {
            u64::try_from(n)
                .map(Change::LatencyThreshold)
                .map_err(|_| set_failed(name, "argument must be between 0 and 9223372036854775807 inclusive"))
        }),
        "appendfsync" => Fsync::parse(value)
            .map(Change::AppendFsync)
            .ok_or_else(|| set_failed(name, "argument(s) must be one of the following: always, everysec, no")),
        "maxmemory" => memory().map(Change::MaxMemory),
        "maxmemory-policy" => match value.to_ascii_lowercase().as_str() {
            "noeviction" => Ok(Change::NoEviction),
            _ => Err(set_failed(name, "Herald has only the noeviction policy: it refuses writes past maxmemory and never deletes data")),
        },
        "tls-cert-file" => Ok(Change::Tls("tls-cert-file", value.to_owned())),
        "tls-key-file" => Ok(Change::Tls("tls-key-file", value.to_owned())),
        "tls-ca-cert-file" => Ok(Change::Tls("tls-ca-cert-file", value.to_owned())),
        "tls-auth-clients" => crate::tls::ClientAuth::parse(value)
            .map(|_| Change::Tls("tls-auth-clients", value.to_owned()))
            .ok_or_else(|| set_failed(name, "argument(s) must be one of the following: no, yes, optional")),
        "databases" | "port" | "bind" | "save" | "appendonly" | "dir" | "tls-port" => Err(set_failed(name, "can't set immutable config")),
        _ => Err(CommandError::new(format!("ERR Unknown option or number of arguments for CONFIG SET - '{name}'"))),
    }
}

pub fn config_set(pairs: Vec<(Bytes, Bytes)>, cx: &mut Cx<'_>) -> Result<Reply, CommandError> {
    let mut changes = Vec::with_capacity(pairs.len());
    for (name, value) in &pairs {
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        let value = String::from_utf8_lossy(value);
        changes.push(parse_change(&name, &value)?);
    }
    tls_changes(&changes, cx.broker)?;
    for change in changes {
        match change {
            Change::Notify(flags) => cx.broker.events.set_notify_flags(flags),
            Change::AppendFsync(policy) => {
                if let Some(p) = &cx.broker.persist {
                    p.set_policy(policy);
                }
            }
            Change::ProtoMaxBulk(n) => {
                cx.state().keyspace.set_max_string_len(n);
                cx.broker.update_settings(|s| s.proto_max_bulk_len = n);
            }
            Change::MaxClients(n) => cx.broker.update_settings(|s| s.maxclients = n),
            Change::Timeout(n) => cx.broker.update_settings(|s| s.timeout_secs = n),
            Change::RequirePass(p) => {
                cx.broker.acl.set_requirepass(&p);
                cx.broker.update_settings(|s| s.requirepass = p)
            }
            Change::QueryBuffer(n) => cx.broker.update_settings(|s| s.client_query_buffer_limit = n),
            Change::BusyThreshold(ms) => cx.broker.scripting.monitor.set_threshold_ms(ms),
            Change::MaxMemory(n) => cx.broker.set_maxmemory(n as u64),
            Change::SlowlogThreshold(us) => cx.broker.slowlog.set_threshold_us(us),
            Change::SlowlogMaxLen(n) => cx.broker.slowlog.set_max_len(n),
            Change::LatencyThreshold(ms) => cx.broker.latency_events.set_threshold_ms(ms),
            Change::NoEviction | Change::Tls(..) => {}
            Change::PubSubLimits(hard, soft, secs) => {
                cx.broker.update_settings(|s| {
                    s.outbox.hard_bytes = hard;
                    s.outbox.soft_bytes = soft;
                    s.outbox.soft_seconds = secs;
                });
                apply_outbox_limits(cx.broker);
            }
            Change::Overflow(policy) => {
                cx.broker.update_settings(|s| s.outbox.policy = policy);
                apply_outbox_limits(cx.broker);
            }
        }
    }
    Ok(Reply::ok())
}

/// The TLS changes of one CONFIG SET, as one new configuration: built from the new files (the
/// certificate and key must go together) and swapped in, or refused whole with nothing changed. New
/// connections use it; open ones keep theirs.
fn tls_changes(changes: &[Change], broker: &Broker) -> Result<(), CommandError> {
    let mut first = None;
    let Some(tls) = &broker.tls else {
        return match changes.iter().find_map(|c| if let Change::Tls(name, _) = c { Some(*name) } else { None }) {
            Some(name) => Err(set_failed(name, "TLS is not enabled on this broker (tls.enabled in the configuration)")),
            None => Ok(()),
        };
    };
    let mut files = tls.files();
    for change in changes {
        let Change::Tls(name, value) = change else { continue };
        first.get_or_insert(*name);
        match *name {
            "tls-cert-file" => files.cert_file = value.clone(),
            "tls-key-file" => files.key_file = value.clone(),
            "tls-ca-cert-file" => files.ca_cert_file = value.clone(),
            _ => files.auth_clients = crate::tls::ClientAuth::parse(value).expect("validated"),
        }
    }
    let Some(name) = first else { return Ok(()) };
    tls.replace(files).map_err(|why| {
        tracing::error!("CONFIG SET: TLS configuration not updated: {why}");
        set_failed(name, &format!("Unable to update TLS configuration: {why}"))
    })
}

/// Output limits apply to every connected client at once, as in Redis.
fn apply_outbox_limits(broker: &Broker) {
    let limits = broker.settings().outbox;
    for c in broker.clients.all() {
        c.outbox.set_limits(limits);
    }
}

pub fn reset_stats(cx: &mut Cx<'_>) {
    cx.broker.stats.reset();
    cx.broker.latency.reset();
    cx.broker.commands.reset();
    cx.broker.rates.reset();
    cx.state().keyspace.stats = Default::default();
}
