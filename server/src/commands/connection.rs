//! Connection commands: PING ECHO QUIT SELECT AUTH HELLO CLIENT RESET.

use super::flags::*;
use super::{cmd, Action, CommandSpec, Ctx, KeySpec};

const NONE: KeySpec = KeySpec::None;

pub const COMMANDS: &[CommandSpec] = &[
    cmd("ping", -1, FAST | PUBSUB, NONE, ping),
    cmd("echo", 2, FAST, NONE, echo),
    cmd("quit", -1, FAST | NO_AUTH | PUBSUB, NONE, quit),
    cmd("select", 2, FAST, NONE, select),
    cmd("auth", -2, FAST | NO_AUTH, NONE, auth),
    cmd("hello", -1, FAST | NO_AUTH, NONE, hello),
    cmd("client", -2, 0, NONE, client),
    cmd("reset", 1, FAST | NO_AUTH | PUBSUB, NONE, reset),
];

fn ping(ctx: &mut Ctx, args: &[Vec<u8>]) {
    if args.len() > 2 {
        return super::err_arity(ctx.out, &args[0]);
    }
    // A subscribed RESP2 client gets PING as a pub/sub style array.
    if ctx.client.subscriptions() > 0 && !ctx.out.resp3 {
        ctx.out.array(2);
        ctx.out.bulk(b"pong");
        return ctx.out.bulk(args.get(1).map_or(&b""[..], |a| a));
    }
    match args.get(1) {
        Some(m) => ctx.out.bulk(m),
        None => ctx.out.simple("PONG"),
    }
}

fn echo(ctx: &mut Ctx, args: &[Vec<u8>]) {
    ctx.out.bulk(&args[1]);
}

fn quit(ctx: &mut Ctx, _args: &[Vec<u8>]) {
    ctx.out.ok();
    ctx.action = Action::Close;
}

fn select(ctx: &mut Ctx, args: &[Vec<u8>]) {
    match crate::util::parse_i64(&args[1]) {
        None => ctx.out.err_not_int(),
        Some(n) if n < 0 || n >= ctx.engine.ks.databases() as i64 => {
            ctx.out.error("ERR DB index is out of range")
        }
        Some(n) => {
            ctx.client.db = n as u32;
            ctx.out.ok()
        }
    }
}

/// Checks AUTH credentials; `user` is "default" or absent.
fn check_auth(ctx: &mut Ctx, user: Option<&[u8]>, pass: &[u8]) -> bool {
    let required = ctx
        .shared
        .config
        .get("requirepass")
        .unwrap_or("")
        .to_string();
    let user_ok = user.is_none_or(|u| u == b"default");
    if user_ok && (required.is_empty() || required.as_bytes() == pass) {
        ctx.client.authenticated = true;
        true
    } else {
        false
    }
}

fn auth(ctx: &mut Ctx, args: &[Vec<u8>]) {
    if args.len() > 3 {
        return ctx.out.err_syntax();
    }
    let required = ctx
        .shared
        .config
        .get("requirepass")
        .unwrap_or("")
        .is_empty();
    if args.len() == 2 && required {
        return ctx.out.error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?");
    }
    let (user, pass) = match args.len() {
        2 => (None, &args[1]),
        _ => (Some(args[1].as_slice()), &args[2]),
    };
    if check_auth(ctx, user, pass) {
        ctx.out.ok();
    } else {
        ctx.out
            .error("WRONGPASS invalid username-password pair or user is disabled.");
    }
}

fn hello(ctx: &mut Ctx, args: &[Vec<u8>]) {
    let mut proto = None;
    let mut i = 1;
    if let Some(v) = args.get(1) {
        match crate::util::parse_i64(v) {
            Some(p @ 2..=3) => proto = Some(p),
            Some(_) => return ctx.out.error("NOPROTO unsupported protocol version"),
            None => {
                return ctx
                    .out
                    .error("ERR Protocol version is not an integer or out of range")
            }
        }
        i = 2;
    }
    let mut name = None;
    while i < args.len() {
        let opt = args[i].to_ascii_lowercase();
        match opt.as_slice() {
            b"auth" if i + 2 < args.len() => {
                let (u, p) = (args[i + 1].clone(), args[i + 2].clone());
                if !check_auth(ctx, Some(&u), &p) {
                    return ctx
                        .out
                        .error("WRONGPASS invalid username-password pair or user is disabled.");
                }
                i += 3;
            }
            b"setname" if i + 1 < args.len() => {
                name = Some(args[i + 1].clone());
                i += 2;
            }
            _ => {
                return ctx.out.error(&format!(
                    "ERR Syntax error in HELLO option '{}'",
                    String::from_utf8_lossy(&args[i])
                ))
            }
        }
    }
    if !ctx.client.authenticated {
        return ctx.out.error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
    }
    if let Some(n) = name {
        if n.iter().any(|&c| c <= b' ' || c > b'~') {
            return ctx
                .out
                .error("ERR Client names cannot contain spaces, newlines or special characters.");
        }
        ctx.client.name = Some(n);
    }
    if let Some(p) = proto {
        ctx.out.resp3 = p == 3;
    }
    ctx.out.map(7);
    ctx.out.bulk(b"server");
    ctx.out.bulk(b"redis");
    ctx.out.bulk(b"version");
    ctx.out.bulk(crate::REDIS_VERSION.as_bytes());
    ctx.out.bulk(b"proto");
    ctx.out.int(if ctx.out.resp3 { 3 } else { 2 });
    ctx.out.bulk(b"id");
    ctx.out.int(ctx.client.id as i64);
    ctx.out.bulk(b"mode");
    ctx.out.bulk(b"standalone");
    ctx.out.bulk(b"role");
    ctx.out.bulk(b"master");
    ctx.out.bulk(b"modules");
    ctx.out.array(0);
}

fn client(ctx: &mut Ctx, args: &[Vec<u8>]) {
    let sub = args[1].to_ascii_lowercase();
    match (sub.as_slice(), args.len()) {
        (b"id", 2) => ctx.out.int(ctx.client.id as i64),
        (b"getname", 2) => match ctx.client.name.clone() {
            Some(n) => ctx.out.bulk(&n),
            None => ctx.out.null(),
        },
        (b"setname", 3) => {
            let n = &args[2];
            if n.iter().any(|&c| c <= b' ' || c > b'~') {
                return ctx.out.error(
                    "ERR Client names cannot contain spaces, newlines or special characters.",
                );
            }
            ctx.client.name = if n.is_empty() { None } else { Some(n.clone()) };
            ctx.out.ok()
        }
        (b"list", 2) | (b"info", 2) => {
            let text = if sub == b"info" {
                ctx.shared
                    .client_list
                    .iter()
                    .find(|l| l.starts_with(&format!("id={} ", ctx.client.id)))
                    .cloned()
                    .unwrap_or_default()
            } else {
                ctx.shared.client_list.join("\n")
            };
            ctx.out.verbatim(&format!("{text}\n"));
        }
        (b"kill", _) => {
            // CLIENT KILL ID <id> (the new form) is what tools use.
            if args.len() == 4 && args[2].eq_ignore_ascii_case(b"id") {
                match crate::util::parse_i64(&args[3]) {
                    Some(id)
                        if ctx
                            .shared
                            .client_list
                            .iter()
                            .any(|l| l.starts_with(&format!("id={id} "))) =>
                    {
                        ctx.shared.kill_requests.push(id as u64);
                        ctx.out.int(1)
                    }
                    Some(_) => ctx.out.int(0),
                    None => ctx.out.err_not_int(),
                }
            } else {
                ctx.out.err_syntax()
            }
        }
        _ => ctx.out.error(&format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
            String::from_utf8_lossy(&args[1])
        )),
    }
}

fn reset(ctx: &mut Ctx, _args: &[Vec<u8>]) {
    let channels: Vec<Vec<u8>> = ctx.client.channels.drain().collect();
    let patterns: Vec<Vec<u8>> = ctx.client.patterns.drain().collect();
    ctx.shared
        .pubsub
        .forget(ctx.client.id, &channels, &patterns);
    ctx.client.db = 0;
    ctx.client.multi = None;
    ctx.client.multi_error = false;
    ctx.client.watched.clear();
    ctx.client.name = None;
    ctx.out.resp3 = false;
    ctx.out.simple("RESET");
}
