//! Connection and transaction commands: they act on the session more than on the data.

use herald_protocol::command::{ClientKillFilter, ConnCommand, HelloArgs, Timeout};
use herald_protocol::{CommandError, Protocol, Reply};

use super::{Blocked, Cx, Outcome, server};

use super::acl::authenticate;

fn valid_name(name: &[u8]) -> bool {
    name.iter().all(|c| (b'!'..=b'~').contains(c))
}

fn set_name(name: &bytes::Bytes, cx: &mut Cx<'_>) -> Result<(), CommandError> {
    if !valid_name(name) {
        return Err(CommandError::fixed("ERR Client names cannot contain spaces, newlines or special characters."));
    }
    cx.session.client.activity().name = if name.is_empty() { None } else { Some(name.clone()) };
    Ok(())
}

fn hello(args: HelloArgs, cx: &mut Cx<'_>) -> Result<Reply, CommandError> {
    let protocol = match args.protover {
        None => None,
        Some(2) => Some(Protocol::Resp2),
        Some(3) => Some(Protocol::Resp3),
        Some(_) => return Err(CommandError::fixed("NOPROTO unsupported protocol version")),
    };
    if let Some((user, pass)) = &args.auth {
        authenticate(Some(user), pass, cx)?;
    }
    if let Some(name) = &args.setname {
        set_name(name, cx)?;
    }
    if !cx.session.authenticated && cx.broker.requires_auth() {
        return Err(CommandError::fixed(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
        ));
    }
    if let Some(p) = protocol {
        cx.session.set_protocol(p);
    }
    Ok(Reply::fields(vec![
        ("server", Reply::text("redis")),
        ("version", Reply::text(server::REDIS_VERSION)),
        ("proto", Reply::Int(cx.session.protocol_version())),
        ("id", Reply::Int(cx.session.id() as i64)),
        ("mode", Reply::text("standalone")),
        ("role", Reply::text("master")),
        ("modules", Reply::Array(Vec::new())),
    ]))
}

fn exec(cx: &mut Cx<'_>) -> Outcome {
    let Some(multi) = cx.session.take_multi() else {
        return CommandError::fixed("ERR EXEC without MULTI").into();
    };
    let watch = cx.session.watch.clone();
    let now = cx.now();
    cx.state().keyspace.expire_watched(&watch, now);
    let aborted = multi.failed || watch.is_dirty();
    cx.state().keyspace.unwatch(&watch);
    if multi.failed {
        return CommandError::fixed("EXECABORT Transaction discarded because of previous errors.").into();
    }
    if aborted {
        return Reply::NilArray.into();
    }
    let mut replies = Vec::with_capacity(multi.queue.len());
    cx.in_exec = true;
    let recheck = multi.acl_epoch != cx.broker.acl.epoch();
    for (found, req, parsed) in multi.queue {
        if recheck && let Err(e) = super::acl::recheck_queued(found.spec, &req, &parsed, cx) {
            replies.push(Reply::Error(e));
            continue;
        }
        match super::run(found, &req, parsed, cx) {
            Outcome::Reply(r) | Outcome::Close(r) => replies.push(r),
            Outcome::Replies(rs) => replies.extend(rs),
            Outcome::Block(_) | Outcome::RepliesAfter(..) | Outcome::Later(_) | Outcome::Paused(_) => {
                unreachable!("nothing blocks or pauses inside EXEC")
            }
        }
    }
    cx.in_exec = false;
    Reply::Array(replies).into()
}

fn reset(cx: &mut Cx<'_>) -> Reply {
    super::pubsub::unsubscribe_all(cx.session, cx.broker);
    let watch = cx.session.watch.clone();
    cx.state().keyspace.unwatch(&watch);
    cx.session.take_multi();
    cx.broker.monitors.remove(cx.session.id());
    cx.session.pinned = None;
    cx.session.set_db(0);
    cx.session.set_protocol(Protocol::Resp2);
    cx.session.authenticated = !cx.broker.requires_auth();
    cx.session.user = crate::acl::SessionUser::default();
    cx.session.token_expiry = None;
    cx.session.client.activity().user = std::sync::Arc::from("default");
    cx.session.client.activity().detached_user = false;
    cx.session.client.activity().name = None;
    Reply::status("RESET")
}

/// One line per client CLIENT KILL closes, naming who closed it.
fn log_kill(victim: &crate::clients::ClientHandle, by: u64) {
    let user = victim.activity().user.clone();
    tracing::info!(target: "herald::clients", id = victim.id, addr = %victim.addr, transport = victim.transport.name(), user = &*user, by, "client killed by CLIENT KILL");
}

fn client_kill(filter: ClientKillFilter, cx: &mut Cx<'_>) -> Result<Reply, CommandError> {
    let me = cx.session.id();
    if let Some(addr) = &filter.legacy_addr {
        let target = cx.broker.clients.all().into_iter().find(|c| c.addr.to_string().as_bytes() == &addr[..]);
        return match target {
            Some(c) => {
                log_kill(&c, me);
                c.kill();
                cx.broker.stats.killed_clients.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Ok(Reply::ok())
            }
            None => Err(CommandError::fixed("ERR No such client")),
        };
    }
    if let Some(kind) = &filter.kind {
        server::check_client_type(kind)?;
    }
    let mut killed = 0;
    for c in cx.broker.clients.all() {
        let matches = filter.id.is_none_or(|id| id == c.id)
            && filter.kind.as_ref().is_none_or(|k| server::client_type_matches(k, c.kind()))
            && filter.addr.as_ref().is_none_or(|a| c.addr.to_string().as_bytes() == &a[..])
            && filter.laddr.as_ref().is_none_or(|a| c.local_addr.to_string().as_bytes() == &a[..])
            && filter.user.as_ref().is_none_or(|u| u[..] == *c.activity().user.as_bytes())
            && filter.max_age_secs.is_none_or(|age| c.created.elapsed().as_secs() >= age)
            && !(filter.skip_me && c.id == me);
        if matches {
            log_kill(&c, me);
            c.kill();
            killed += 1;
        }
    }
    cx.broker.stats.killed_clients.fetch_add(killed, std::sync::atomic::Ordering::Relaxed);
    Ok(Reply::Int(killed as i64))
}

fn client_setinfo(attr: &[u8], value: &bytes::Bytes, cx: &mut Cx<'_>) -> Result<Reply, CommandError> {
    let name = if attr.eq_ignore_ascii_case(b"lib-name") {
        "lib-name"
    } else if attr.eq_ignore_ascii_case(b"lib-ver") {
        "lib-ver"
    } else {
        return Err(CommandError::new(format!("ERR Unrecognized option '{}'", String::from_utf8_lossy(attr))));
    };
    if !valid_name(value) {
        return Err(CommandError::new(format!("ERR {name} cannot contain spaces, newlines or special characters.")));
    }
    let stored = if value.is_empty() { None } else { Some(value.clone()) };
    let mut a = cx.session.client.activity();
    if name == "lib-name" {
        a.lib_name = stored;
    } else {
        a.lib_ver = stored;
    }
    Ok(Reply::ok())
}

/// WAIT: on the Redis engine, Redis's replicas answer (`remote::Remote::wait`). The embedded engine has
/// no replicas: as a Redis primary without any, an immediate 0 when none are asked for or inside
/// MULTI, otherwise 0 once the timeout passes (never, for 0, until the client goes away).
fn wait(replicas: i64, timeout: Timeout, cx: &mut Cx<'_>) -> Outcome {
    if let Some(remote) = &cx.broker.remote {
        return remote.wait(replicas, timeout.0, &mut *cx.session);
    }
    if replicas <= 0 || cx.in_exec {
        return Reply::Int(0).into();
    }
    match timeout.duration() {
        Some(d) => Outcome::Block(Blocked::delayed(Reply::Int(0), tokio::time::Instant::now() + d)),
        None => {
            let (mut tx, rx) = tokio::sync::oneshot::channel();
            tokio::spawn(async move { tx.closed().await });
            Outcome::Block(Blocked::elsewhere(rx, Reply::Int(0)))
        }
    }
}

pub fn execute(cmd: ConnCommand, cx: &mut Cx<'_>) -> Outcome {
    let result: Result<Reply, CommandError> = match cmd {
        ConnCommand::Wait { replicas, timeout } => return wait(replicas, timeout, cx),
        ConnCommand::Ping(arg) if cx.session.in_subscribed_mode() => {
            Ok(Reply::Array(vec![Reply::text("pong"), Reply::Bulk(arg.unwrap_or_default())]))
        }
        ConnCommand::Ping(Some(arg)) => Ok(Reply::Bulk(arg)),
        ConnCommand::Ping(None) => Ok(Reply::status("PONG")),
        ConnCommand::Echo(arg) => Ok(Reply::Bulk(arg)),
        ConnCommand::Hello(args) => {
            let authenticating = args.auth.is_some();
            let reply = hello(args, cx).into();
            return if authenticating { super::acl::throttled(reply, cx) } else { reply.into() };
        }
        ConnCommand::Auth { user, password } => {
            let reply = authenticate(user.as_deref(), &password, cx).map(|_| Reply::ok()).into();
            return super::acl::throttled(reply, cx);
        }
        ConnCommand::AuthToken(token) => {
            let reply = super::acl::authenticate_token(&token, cx).map(|_| Reply::ok()).into();
            return super::acl::throttled(reply, cx);
        }
        ConnCommand::Select(index) => match cx.state().keyspace.db_index(index) {
            Ok(db) => {
                cx.session.set_db(db);
                Ok(Reply::ok())
            }
            Err(e) => Err(e.into()),
        },
        ConnCommand::Quit => return Outcome::Close(Reply::ok()),
        ConnCommand::Reset => Ok(reset(cx)),
        ConnCommand::ClientId => Ok(Reply::Int(cx.session.id() as i64)),
        ConnCommand::ClientSetName(name) => set_name(&name, cx).map(|_| Reply::ok()),
        ConnCommand::ClientGetName => Ok(Reply::bulk_or_nil(cx.session.client.activity().name.clone())),
        ConnCommand::ClientList { kind, ids } => server::client_list(kind, ids, cx.broker),
        ConnCommand::ClientInfo => Ok(Reply::Verbatim(format!("{}\n", cx.session.client.describe()).into())),
        ConnCommand::ClientKill(filter) => client_kill(filter, cx),
        ConnCommand::ClientSetInfo { attr, value } => client_setinfo(&attr, &value, cx),
        ConnCommand::ClientNoEvict(on) => {
            cx.session.client.activity().no_evict = on;
            Ok(Reply::ok())
        }
        ConnCommand::ClientReply(mode) => {
            cx.session.set_reply_mode(mode);
            Ok(Reply::ok())
        }
        ConnCommand::ClientUnblock { id, error } => {
            let reply = error.then(|| Reply::Error(CommandError::fixed(crate::unblock::UNBLOCKED)));
            // The state's blocking registry, else a wait computed elsewhere (the Redis engine's, `unblock.rs`).
            let unblocked = u64::try_from(id)
                .is_ok_and(|id| cx.state().blocking.unblock(id, reply) || cx.broker.clients.get(id).is_some_and(|c| c.unblock(error)));
            Ok(Reply::Int(i64::from(unblocked)))
        }
        ConnCommand::ClientPause { ms, all } => {
            cx.broker.pause.pause(tokio::time::Instant::now() + std::time::Duration::from_millis(ms), all);
            Ok(Reply::ok())
        }
        ConnCommand::ClientUnpause => {
            cx.broker.pause.unpause();
            Ok(Reply::ok())
        }
        ConnCommand::ClientNoTouch(on) => {
            cx.session.no_touch = on;
            Ok(Reply::ok())
        }
        ConnCommand::ClientHelp => Ok(server::help(
            "CLIENT",
            &[
                "GETNAME",
                "    Return the name of the current connection.",
                "ID",
                "    Return the ID of the current connection.",
                "INFO",
                "    Return information about the current client connection.",
                "KILL <ip:port>",
                "    Kill connection made from <ip:port>.",
                "KILL <option> <value> [<option> <value> [...]]",
                "    Kill connections. Options are: ID, TYPE, USER, ADDR, LADDR, SKIPME, MAXAGE.",
                "LIST [options ...]",
                "    Return information about client connections. Options: TYPE, ID.",
                "NO-EVICT (ON|OFF)",
                "    Protect current client connection from eviction.",
                "NO-TOUCH (ON|OFF)",
                "    Will not touch LRU/LFU stats when this mode is on.",
                "PAUSE <timeout> [WRITE|ALL]",
                "    Suspend all, or just write, clients for <timeout> milliseconds.",
                "REPLY (ON|OFF|SKIP)",
                "    Control the replies sent to the current connection.",
                "SETINFO <option> <value>",
                "    Set client meta attr. Options are: LIB-NAME, LIB-VER.",
                "SETNAME <name>",
                "    Assign the name <name> to the current connection.",
                "UNBLOCK <clientid> [TIMEOUT|ERROR]",
                "    Unblock the specified blocked client.",
                "UNPAUSE",
                "    Stop the current client pause, resuming traffic.",
            ],
        )),
        ConnCommand::CommandAll => Ok(server::command_info_all()),
        ConnCommand::CommandCount => Ok(Reply::Int(herald_protocol::command::all_specs().count() as i64)),
        ConnCommand::CommandList => Ok(Reply::bulks(herald_protocol::command::all_specs().map(|s| s.name))),
        ConnCommand::CommandInfo(names) => Ok(server::command_info(&names)),
        ConnCommand::CommandDocs(names) => Ok(server::command_docs(&names)),
        ConnCommand::CommandGetKeys(parts) => server::command_getkeys(parts),
        ConnCommand::CommandHelp => Ok(server::help(
            "COMMAND",
            &[
                "(no subcommand)",
                "    Return details about all Redis commands.",
                "COUNT",
                "    Return the total number of commands in this Redis server.",
                "LIST",
                "    Return a list of all commands in this Redis server.",
                "INFO [<command-name> ...]",
                "    Return details about multiple Redis commands.",
                "DOCS [<command-name> ...]",
                "    Return documentation details about multiple Redis commands.",
                "GETKEYS <full-command>",
                "    Return the keys from a full Redis command.",
            ],
        )),
        ConnCommand::Info(sections) => Ok(super::info::info(&sections, cx)),
        ConnCommand::ConfigGet(patterns) => Ok(server::config_get(&patterns, cx)),
        ConnCommand::ConfigSet(pairs) => server::config_set(pairs, cx),
        ConnCommand::ConfigResetStat => {
            server::reset_stats(cx);
            Ok(Reply::ok())
        }
        ConnCommand::ConfigRewrite => Err(CommandError::fixed("ERR The server is running without a config file")),
        ConnCommand::ConfigHelp => Ok(server::help(
            "CONFIG",
            &[
                "GET <pattern>",
                "    Return parameters matching the glob-like <pattern> and their values.",
                "SET <directive> <value>",
                "    Set the configuration <directive> to <value>.",
                "RESETSTAT",
                "    Reset statistics reported by the INFO command.",
                "REWRITE",
                "    Rewrite the configuration file.",
            ],
        )),
        ConnCommand::DbSize => {
            let db = cx.db();
            Ok(Reply::Int(cx.state().keyspace.dbsize(db) as i64))
        }
        ConnCommand::FlushDb => {
            let db = cx.db();
            cx.state().keyspace.flush_db(db);
            Ok(Reply::ok())
        }
        ConnCommand::FlushAll => {
            cx.state().keyspace.flush_all();
            Ok(Reply::ok())
        }
        ConnCommand::Time => {
            let us = cx.broker.clock.now_us();
            Ok(Reply::bulks([(us / 1_000_000).to_string(), (us % 1_000_000).to_string()]))
        }
        ConnCommand::SwapDb(a, b) => {
            let ks = &mut cx.state().keyspace;
            match (ks.db_index(a), ks.db_index(b)) {
                (Ok(a), Ok(b)) => {
                    ks.swap_db(a, b);
                    Ok(Reply::ok())
                }
                (Err(e), _) | (_, Err(e)) => Err(e.into()),
            }
        }
        ConnCommand::Multi => {
            if cx.session.in_multi() {
                Err(CommandError::fixed("ERR MULTI calls can not be nested"))
            } else {
                cx.session.begin_multi(cx.broker.acl.epoch());
                Ok(Reply::ok())
            }
        }
        ConnCommand::Exec => return exec(cx),
        ConnCommand::Discard => match cx.session.take_multi() {
            None => Err(CommandError::fixed("ERR DISCARD without MULTI")),
            Some(_) => {
                let watch = cx.session.watch.clone();
                cx.state().keyspace.unwatch(&watch);
                Ok(Reply::ok())
            }
        },
        ConnCommand::Watch(keys) => {
            if cx.session.in_multi() {
                Err(CommandError::fixed("ERR WATCH inside MULTI is not allowed"))
            } else {
                let db = cx.db();
                let watch = cx.session.watch.clone();
                let ks = &mut cx.state().keyspace;
                for key in keys {
                    ks.watch(db, key, &watch);
                }
                Ok(Reply::ok())
            }
        }
        ConnCommand::Unwatch => {
            let watch = cx.session.watch.clone();
            cx.state().keyspace.unwatch(&watch);
            Ok(Reply::ok())
        }
    };
    result.into()
}
