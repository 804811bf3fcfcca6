//! The ACL command: SETUSER GETUSER DELUSER LIST USERS WHOAMI CAT GENPASS LOG SAVE LOAD
//! DRYRUN HELP, with Redis 7.0's replies and error texts.

use super::categories;
use crate::commands::flags::*;
use crate::commands::{cmd, CmdError, CmdResult, CommandSpec, Ctx, KeySpec};

pub const COMMANDS: &[CommandSpec] = &[cmd("acl", -2, ADMIN | CONTAINER, KeySpec::None, acl)];

/// Subcommand arities as Redis declares them (negative: at least).
const ARITY: &[(&str, i32)] = &[
    ("setuser", -3),
    ("getuser", 3),
    ("deluser", -3),
    ("list", 2),
    ("users", 2),
    ("whoami", 2),
    ("cat", -2),
    ("genpass", -2),
    ("log", -2),
    ("save", 2),
    ("load", 2),
    ("dryrun", -4),
    ("help", 2),
];

const NO_ACLFILE: &str = "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.";

fn acl(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    let Some(&(_, arity)) = ARITY.iter().find(|(n, _)| *n == sub) else {
        return Err(CmdError::msg(format!(
            "ERR unknown subcommand '{}'. Try ACL HELP.",
            String::from_utf8_lossy(&args[1])
        )));
    };
    if !crate::commands::arity_accepts(arity, args.len()) {
        return Err(CmdError::msg(format!(
            "ERR wrong number of arguments for 'acl|{sub}' command"
        )));
    }
    let too_many = || {
        Err(CmdError::msg(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try ACL HELP.",
            String::from_utf8_lossy(&args[1])
        )))
    };
    match sub.as_str() {
        "setuser" => setuser(ctx, args)?,
        "getuser" => getuser(ctx, &args[2]),
        "deluser" => deluser(ctx, args)?,
        "list" => {
            let lines: Vec<String> = ctx
                .shared
                .acl
                .users
                .values()
                .map(|u| u.describe())
                .collect();
            ctx.out.array(lines.len());
            for l in lines {
                ctx.out.bulk(l.as_bytes());
            }
        }
        "users" => {
            let names: Vec<String> = ctx.shared.acl.users.keys().cloned().collect();
            ctx.out.array(names.len());
            for n in names {
                ctx.out.bulk(n.as_bytes());
            }
        }
        "whoami" => ctx.out.bulk(ctx.client.user.clone().as_bytes()),
        "cat" | "genpass" | "log" if args.len() > 3 => return too_many(),
        "cat" => cat(ctx, args.get(2))?,
        "genpass" => genpass(ctx, args.get(2))?,
        "log" => log(ctx, args.get(2))?,
        "save" | "load" => {
            let Some(path) = ctx
                .shared
                .config
                .get("aclfile")
                .filter(|p| !p.is_empty())
                .map(std::path::PathBuf::from)
            else {
                return Err(CmdError::msg(NO_ACLFILE));
            };
            let result = if sub == "save" {
                ctx.shared.acl.save_file(&path)
            } else {
                ctx.shared.acl.load_file(&path)
            };
            match result {
                Ok(()) => ctx.out.ok(),
                Err(e) => return Err(CmdError::msg(format!("ERR {e}"))),
            }
        }
        "dryrun" => dryrun(ctx, args)?,
        _ => help(ctx),
    }
    Ok(())
}

fn setuser(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let name = String::from_utf8_lossy(&args[2]).into_owned();
    if args[2].iter().any(|&c| c == b' ' || c == 0) {
        return Err(CmdError::msg(
            "ERR Usernames can't contain spaces or null characters",
        ));
    }
    match ctx
        .shared
        .acl
        .set_user(&name, args[3..].iter().map(Vec::as_slice))
    {
        Ok(()) => {
            // Like Redis, close the user's clients subscribed to what the new rules refuse.
            let shared = &mut *ctx.shared;
            if let Some(u) = shared.acl.users.get(&name) {
                let ids = shared.pubsub.revoked(&name, |c, p| u.may_use_channel(c, p));
                shared.kill_requests.extend(ids);
            }
            ctx.out.ok()
        }
        Err(e) => return Err(CmdError::msg(format!("ERR {e}"))),
    }
    Ok(())
}

fn getuser(ctx: &mut Ctx, name: &[u8]) {
    let Some(u) = ctx
        .shared
        .acl
        .users
        .get(String::from_utf8_lossy(name).as_ref())
        .cloned()
    else {
        return ctx.out.null();
    };
    ctx.out.map(6);
    ctx.out.bulk(b"flags");
    let flags = u.flags();
    ctx.out.set(flags.len());
    for f in flags {
        ctx.out.bulk(f.as_bytes());
    }
    ctx.out.bulk(b"passwords");
    ctx.out.array(u.passwords.len());
    for p in &u.passwords {
        ctx.out.bulk(p.as_bytes());
    }
    for (field, text) in [
        ("commands", u.describe_commands()),
        ("keys", u.describe_keys()),
        ("channels", u.describe_channels()),
    ] {
        ctx.out.bulk(field.as_bytes());
        ctx.out.bulk(text.as_bytes());
    }
    ctx.out.bulk(b"selectors");
    ctx.out.array(0);
}

fn deluser(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    if args[2..].iter().any(|n| n == b"default") {
        return Err(CmdError::msg("ERR The 'default' user cannot be removed"));
    }
    let mut deleted = 0;
    for n in &args[2..] {
        // Clients logged in as a deleted user are closed on their next command.
        if ctx
            .shared
            .acl
            .users
            .remove(String::from_utf8_lossy(n).as_ref())
            .is_some()
        {
            deleted += 1;
        }
    }
    ctx.out.int(deleted);
    Ok(())
}

fn cat(ctx: &mut Ctx, category: Option<&Vec<u8>>) -> CmdResult {
    let Some(c) = category else {
        ctx.out.array(categories::CATEGORIES.len());
        for c in categories::CATEGORIES {
            ctx.out.bulk(c.as_bytes());
        }
        return Ok(());
    };
    let name = String::from_utf8_lossy(c);
    let Some(cat) = categories::known(&name) else {
        return Err(CmdError::msg(format!("ERR Unknown category '{name}'")));
    };
    let tag = format!("@{cat}");
    let names: Vec<&str> = crate::commands::all()
        .into_iter()
        .filter(|s| categories::of(s, None).contains(&tag.as_str()))
        .map(|s| s.name)
        .collect();
    ctx.out.array(names.len());
    for n in names {
        ctx.out.bulk(n.as_bytes());
    }
    Ok(())
}

fn genpass(ctx: &mut Ctx, bits: Option<&Vec<u8>>) -> CmdResult {
    let bits = match bits.map(|b| crate::util::parse_i64(b)) {
        None => 256,
        Some(None) => return Err(CmdError::NotInt),
        Some(Some(b)) if !(1..=4096).contains(&b) => {
            return Err(CmdError::msg("ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096"));
        }
        Some(Some(b)) => b as usize,
    };
    // One hex character per 4 bits, rounded up; from the OS-seeded CSPRNG.
    let chars = bits.div_ceil(4);
    let mut bytes = vec![0u8; chars.div_ceil(2)];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    let mut hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    hex.truncate(chars);
    ctx.out.bulk(hex.as_bytes());
    Ok(())
}

fn log(ctx: &mut Ctx, arg: Option<&Vec<u8>>) -> CmdResult {
    let count = match arg {
        None => 10,
        Some(a) if a.eq_ignore_ascii_case(b"reset") => {
            ctx.shared.acl.log.entries.clear();
            ctx.out.ok();
            return Ok(());
        }
        Some(a) => match crate::util::parse_i64(a) {
            None => return Err(CmdError::NotInt),
            Some(n) => n.max(0) as usize,
        },
    };
    let now = std::time::Instant::now();
    let entries: Vec<_> = ctx.shared.acl.log.entries.iter().take(count).collect();
    ctx.out.array(entries.len());
    for e in entries {
        ctx.out.map(7);
        ctx.out.bulk(b"count");
        ctx.out.int(e.count as i64);
        for (k, v) in [
            ("reason", e.reason),
            ("context", e.context),
            ("object", e.object.as_str()),
            ("username", e.username.as_str()),
        ] {
            ctx.out.bulk(k.as_bytes());
            ctx.out.bulk(v.as_bytes());
        }
        ctx.out.bulk(b"age-seconds");
        ctx.out.double(now.duration_since(e.at).as_secs_f64());
        ctx.out.bulk(b"client-info");
        ctx.out.bulk(e.client_info.as_bytes());
    }
    Ok(())
}

fn dryrun(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let user = String::from_utf8_lossy(&args[2]).into_owned();
    if !ctx.shared.acl.users.contains_key(&user) {
        return Err(CmdError::msg(format!("ERR User '{user}' not found")));
    }
    let Some(spec) = crate::commands::lookup(&args[3]) else {
        return Err(CmdError::msg(format!(
            "ERR Command '{}' not found",
            String::from_utf8_lossy(&args[3])
        )));
    };
    let rest = &args[3..];
    if !crate::commands::arity_accepts(spec.arity, rest.len()) {
        return Err(CmdError::msg(format!(
            "ERR wrong number of arguments for '{}' command",
            spec.name
        )));
    }
    match ctx.shared.acl.check(&user, spec, rest) {
        Ok(()) => ctx.out.ok(),
        Err(super::Denied::Key(k)) => ctx.out.bulk(
            format!(
                "This user has no permissions to access the '{}' key",
                String::from_utf8_lossy(&k)
            )
            .as_bytes(),
        ),
        Err(super::Denied::Channel(c)) => ctx.out.bulk(
            format!(
                "This user has no permissions to access the '{}' channel",
                String::from_utf8_lossy(&c)
            )
            .as_bytes(),
        ),
        Err(super::Denied::Command(c)) => ctx
            .out
            .bulk(format!("This user has no permissions to run the '{c}' command").as_bytes()),
        Err(super::Denied::NoUser) => {
            return Err(CmdError::msg(format!("ERR User '{user}' not found")))
        }
    }
    Ok(())
}

fn help(ctx: &mut Ctx) {
    const LINES: &[&str] = &[
        "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CAT [<category>]",
        "    List all commands that belong to <category>, or all command categories",
        "    when no category is specified.",
        "DELUSER <username> [<username> ...]",
        "    Delete a list of users.",
        "DRYRUN <username> <command> [<arg> ...]",
        "    Returns whether the user can execute the given command without executing the command.",
        "GETUSER <username>",
        "    Get the user's details.",
        "GENPASS [<bits>]",
        "    Generate a secure 256-bit user password. The optional `bits` argument can",
        "    be used to specify a different size.",
        "LIST",
        "    Show users details in config file format.",
        "LOAD",
        "    Reload users from the ACL file.",
        "LOG [<count> | RESET]",
        "    Show the ACL log entries.",
        "SAVE",
        "    Save the current config to the ACL file.",
        "SETUSER <username> <attribute> [<attribute> ...]",
        "    Create or modify a user with the specified attributes.",
        "USERS",
        "    List all the registered usernames.",
        "WHOAMI",
        "    Return the current connection username.",
        "HELP",
        "    Prints this help.",
    ];
    ctx.out.array(LINES.len());
    for l in LINES {
        ctx.out.simple(l);
    }
}
