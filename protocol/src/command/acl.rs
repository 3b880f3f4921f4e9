//! ACL: users and their permissions, with Redis 7.0's syntax (`ACL SETUSER alice on >pw ~k* +@read`).
//!
//! Parsing stops at the shape of the arguments; what a rule means is the broker's (`broker/src/acl`).

use bytes::Bytes;

use super::conn::{container, spec};
use super::flags::*;
use super::{Command, CommandSpec, Group, NO_KEYS};
use crate::error::CommandError;
use crate::number::parse_i64;
use crate::request::{Args, is_word};

#[derive(Debug, Clone, PartialEq)]
pub enum AclCommand {
    /// `ACL CAT [category]`.
    Cat(Option<Bytes>),
    DelUser(Vec<Bytes>),
    /// `ACL DRYRUN user command [arg ...]`: would `user` be allowed to run the command?
    DryRun {
        user: Bytes,
        command: Vec<Bytes>,
    },
    /// `ACL GENPASS [bits]`, bits 1..=4096 (default 256).
    GenPass(u32),
    GetUser(Bytes),
    List,
    Load,
    /// `ACL LOG [count]`; `None` for the default of 10.
    Log(Option<usize>),
    LogReset,
    Save,
    SetUser {
        user: Bytes,
        rules: Vec<Bytes>,
    },
    Users,
    WhoAmI,
    Help,
}

fn ok(c: AclCommand) -> Result<Command, CommandError> {
    Ok(Command::Acl(c))
}

fn parse_genpass(a: Args) -> Result<Command, CommandError> {
    let bits = match &a.rest()[..] {
        [] => 256,
        [b] => match parse_i64(b) {
            Some(n @ 1..=4096) => n as u32,
            None => return Err(CommandError::fixed("ERR value is not an integer or out of range")),
            _ => {
                return Err(CommandError::fixed(
                    "ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096",
                ));
            }
        },
        _ => return Err(CommandError::syntax()),
    };
    ok(AclCommand::GenPass(bits))
}

fn parse_log(a: Args) -> Result<Command, CommandError> {
    match &a.rest()[..] {
        [] => ok(AclCommand::Log(None)),
        [w] if is_word(w, "RESET") => ok(AclCommand::LogReset),
        // A negative count lists nothing, as in Redis.
        [n] => match parse_i64(n) {
            Some(n) => ok(AclCommand::Log(Some(n.max(0) as usize))),
            None => Err(CommandError::fixed("ERR value is not an integer or out of range")),
        },
        _ => Err(CommandError::syntax()),
    }
}

const ADMIN_FLAGS: u32 = ADMIN | NOSCRIPT | LOADING | STALE;
const OPEN_FLAGS: u32 = NOSCRIPT | LOADING | STALE;

const ACL_SUBS: &[CommandSpec] = &[
    spec!("acl|cat", -2, OPEN_FLAGS, NO_KEYS, Server, "6.0.0", "Lists the ACL categories, or the commands inside a category.", |a| {
        let mut rest = a.rest();
        if rest.len() > 1 {
            return Err(CommandError::fixed("ERR unknown subcommand or wrong number of arguments for 'CAT'. Try ACL HELP."));
        }
        ok(AclCommand::Cat(rest.pop()))
    }),
    spec!("acl|deluser", -3, ADMIN_FLAGS, NO_KEYS, Server, "6.0.0", "Deletes ACL users, and terminates their connections.", |a| ok(
        AclCommand::DelUser(a.rest())
    )),
    spec!(
        "acl|dryrun",
        -4,
        ADMIN_FLAGS,
        NO_KEYS,
        Server,
        "7.0.0",
        "Simulates the execution of a command by a user, without executing the command.",
        |mut a| ok(AclCommand::DryRun { user: a.next_bytes()?, command: a.rest() })
    ),
    spec!(
        "acl|genpass",
        -2,
        OPEN_FLAGS,
        NO_KEYS,
        Server,
        "6.0.0",
        "Generates a pseudorandom, secure password that can be used to identify ACL users.",
        parse_genpass
    ),
    spec!("acl|getuser", 3, ADMIN_FLAGS, NO_KEYS, Server, "6.0.0", "Lists the ACL rules of a user.", |mut a| ok(AclCommand::GetUser(
        a.next_bytes()?
    ))),
    spec!("acl|list", 2, ADMIN_FLAGS, NO_KEYS, Server, "6.0.0", "Dumps the effective rules in ACL file format.", |_| ok(AclCommand::List)),
    spec!("acl|load", 2, ADMIN_FLAGS, NO_KEYS, Server, "6.0.0", "Reloads the rules from the configured ACL file.", |_| ok(
        AclCommand::Load
    )),
    spec!(
        "acl|log",
        -2,
        ADMIN_FLAGS,
        NO_KEYS,
        Server,
        "6.0.0",
        "Lists recent security events generated due to commands rejected by ACL rules.",
        parse_log
    ),
    spec!("acl|save", 2, ADMIN_FLAGS, NO_KEYS, Server, "6.0.0", "Saves the effective ACL rules in the configured ACL file.", |_| ok(
        AclCommand::Save
    )),
    spec!("acl|setuser", -3, ADMIN_FLAGS, NO_KEYS, Server, "6.0.0", "Creates and modifies an ACL user and its rules.", |mut a| ok(
        AclCommand::SetUser { user: a.next_bytes()?, rules: a.rest() }
    )),
    spec!("acl|users", 2, ADMIN_FLAGS, NO_KEYS, Server, "6.0.0", "Lists all ACL users.", |_| ok(AclCommand::Users)),
    spec!("acl|whoami", 2, OPEN_FLAGS, NO_KEYS, Server, "6.0.0", "Returns the authenticated username of the current connection.", |_| ok(
        AclCommand::WhoAmI
    )),
    spec!("acl|help", 2, LOADING | STALE, NO_KEYS, Server, "6.0.0", "Returns helpful text about the different subcommands.", |_| ok(
        AclCommand::Help
    )),
];

pub(crate) const SPECS: &[CommandSpec] = &[CommandSpec {
    subcommands: ACL_SUBS,
    ..spec!("acl", -2, 0, NO_KEYS, Server, "6.0.0", "A container for Access List Control commands.", container)
}];
