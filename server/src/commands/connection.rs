//! Connection commands: PING ECHO QUIT SELECT AUTH HELLO CLIENT RESET.

use super::flags::*;
use super::{cmd, Action, CommandSpec, Ctx, KeySpec};
use super::{CmdError, CmdResult};

const NONE: KeySpec = KeySpec::None;

pub const COMMANDS: &[CommandSpec] = &[
    cmd("ping", -1, FAST | PUBSUB, NONE, ping),
    cmd("echo", 2, FAST, NONE, echo),
    // Not queued inside MULTI: it answers and closes at once, as in Redis.
    cmd("quit", -1, FAST | NO_AUTH | PUBSUB | NO_QUEUE, NONE, quit),
    cmd("select", 2, FAST, NONE, select),
    cmd("auth", -2, FAST | NO_AUTH, NONE, auth),
    cmd("hello", -1, FAST | NO_AUTH, NONE, hello),
    cmd("client", -2, VIEW_CLIENTS | CONTAINER, NONE, client),
    // Runs at once inside MULTI (it ends the transaction), as in Redis.
    cmd("reset", 1, FAST | NO_AUTH | PUBSUB | NO_QUEUE, NONE, reset),
];

fn ping(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    if args.len() > 2 {
        return Err(CmdError::arity(&args[0]));
    }
    // A subscribed RESP2 client gets PING as a pub/sub style array.
    if ctx.client.subscriptions() > 0 && !ctx.out.resp3 {
        ctx.out.array(2);
        ctx.out.bulk(b"pong");
        ctx.out.bulk(args.get(1).map_or(&b""[..], |a| a));
        return Ok(());
    }
    match args.get(1) {
        Some(m) => ctx.out.bulk(m),
        None => ctx.out.simple("PONG"),
    }
    Ok(())
}

fn echo(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    ctx.out.bulk(&args[1]);
    Ok(())
}

fn quit(ctx: &mut Ctx, _args: &[Vec<u8>]) -> CmdResult {
    ctx.out.ok();
    ctx.action = Action::Close;
    Ok(())
}

fn select(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    ctx.client.db = super::args::db_index(&args[1], ctx.engine.databases())?;
    ctx.out.ok();
    Ok(())
}

/// Checks AUTH / HELLO AUTH credentials against the ACL users (`user` absent: `default`); a
/// failure is recorded in the ACL log.
fn check_auth(ctx: &mut Ctx, cmd: &[u8], user: Option<&[u8]>, pass: &[u8]) -> bool {
    let user = user.unwrap_or(b"default");
    if ctx.shared.acl.authenticate(user, pass) {
        ctx.client.authenticated = true;
        ctx.client.user = String::from_utf8_lossy(user).into_owned();
        // A subscribed (RESP3) client that logs in as another user now answers to its rules.
        if ctx.client.subscriptions() > 0 {
            let u = ctx.client.user.clone();
            ctx.shared.pubsub.owners.insert(ctx.client.id, u);
        }
        return true;
    }
    let max = ctx.shared.config.settings().acllog_max_len as usize;
    let context = if ctx.client.multi.is_some() {
        "multi"
    } else {
        "toplevel"
    };
    let name = String::from_utf8_lossy(user).into_owned();
    let info = format!(
        "id={} addr={} laddr={} db={} user={}",
        ctx.client.id, ctx.client.addr, ctx.client.laddr, ctx.client.db, ctx.client.user
    );
    ctx.shared
        .acl
        .log
        // The log names the command as the client typed it, as Redis does.
        .add(
            "auth",
            context,
            &String::from_utf8_lossy(cmd),
            &name,
            info,
            max,
        );
    false
}

fn auth(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    if args.len() == 2 && ctx.shared.acl.default_nopass() {
        return Err(CmdError::msg("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"));
    }
    let (user, pass) = match args.len() {
        2 => (None, &args[1]),
        _ => (Some(args[1].as_slice()), &args[2]),
    };
    if check_auth(ctx, &args[0], user, pass) {
        ctx.out.ok();
    } else {
        return Err(CmdError::msg(
            "WRONGPASS invalid username-password pair or user is disabled.",
        ));
    }
    Ok(())
}

fn hello(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let mut proto = None;
    let mut i = 1;
    if let Some(v) = args.get(1) {
        match crate::util::parse_i64(v) {
            Some(p @ 2..=3) => proto = Some(p),
            Some(_) => return Err(CmdError::msg("NOPROTO unsupported protocol version")),
            None => {
                return Err(CmdError::msg(
                    "ERR Protocol version is not an integer or out of range",
                ))
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
                if !check_auth(ctx, &args[0], Some(&u), &p) {
                    return Err(CmdError::msg(
                        "WRONGPASS invalid username-password pair or user is disabled.",
                    ));
                }
                i += 3;
            }
            b"setname" if i + 1 < args.len() => {
                name = Some(args[i + 1].clone());
                i += 2;
            }
            _ => {
                return Err(CmdError::msg(format!(
                    "ERR Syntax error in HELLO option '{}'",
                    String::from_utf8_lossy(&args[i])
                )))
            }
        }
    }
    if !ctx.client.authenticated {
        return Err(CmdError::msg("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"));
    }
    if let Some(n) = name {
        if n.iter().any(|&c| c <= b' ' || c > b'~') {
            return Err(CmdError::msg(
                "ERR Client names cannot contain spaces, newlines or special characters.",
            ));
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
    Ok(())
}

fn client(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    if super::tracking::client_subcommand(ctx, args)? {
        return Ok(());
    }
    let sub = args[1].to_ascii_lowercase();
    match (sub.as_slice(), args.len()) {
        (b"id", 2) => ctx.out.int(ctx.client.id as i64),
        (b"pause", 3 | 4) => super::pause::pause(ctx, args)?,
        (b"unpause", 2) => super::pause::unpause(ctx),
        (b"unblock", 3 | 4) => {
            let Some(id) = crate::util::parse_i64(&args[2]) else {
                return Err(CmdError::NotInt);
            };
            let error = match args.get(3).map(|a| a.to_ascii_lowercase()) {
                None => false,
                Some(m) if m == b"timeout" => false,
                Some(m) if m == b"error" => true,
                Some(_) => {
                    return Err(CmdError::msg(
                        "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
                    ))
                }
            };
            // Only a client blocked in a blocking command (flag b) can be unblocked.
            let prefix = format!("id={id} ");
            let blocked = ctx.shared.client_list.iter().any(|l| {
                l.starts_with(&prefix) && (l.contains(" flags=b ") || l.contains(" flags=Pb "))
            });
            if blocked {
                ctx.shared.unblock_requests.push((id as u64, error));
            }
            ctx.out.int(blocked as i64)
        }
        (b"no-evict", 3) => {
            ctx.client.no_evict = match args[2].to_ascii_lowercase().as_slice() {
                b"on" => true,
                b"off" => false,
                _ => return Err(CmdError::Syntax),
            };
            ctx.out.ok()
        }
        (b"reply", 3) => match args[2].to_ascii_lowercase().as_slice() {
            b"on" => {
                ctx.client.reply_mode = ReplyMode::On;
                ctx.out.ok()
            }
            b"off" => ctx.client.reply_mode = ReplyMode::Off,
            b"skip" => ctx.client.reply_mode = ReplyMode::SkipThis,
            _ => return Err(CmdError::Syntax),
        },
        (b"getname", 2) => match ctx.client.name.clone() {
            Some(n) => ctx.out.bulk(&n),
            None => ctx.out.null(),
        },
        (b"setname", 3) => {
            let n = &args[2];
            if n.iter().any(|&c| c <= b' ' || c > b'~') {
                return Err(CmdError::msg(
                    "ERR Client names cannot contain spaces, newlines or special characters.",
                ));
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
        (b"kill", 3) => {
            // The old form: CLIENT KILL ip:port.
            let addr = format!(" addr={} ", String::from_utf8_lossy(&args[2]));
            match client_ids(ctx, |l| l.contains(&addr)).first() {
                Some(&id) => {
                    ctx.shared.kill_requests.push(id);
                    ctx.out.ok()
                }
                None => return Err(CmdError::msg("ERR No such client")),
            }
        }
        (b"kill", n) if n >= 4 && n % 2 == 0 => {
            let mut f = KillFilter {
                skipme: true,
                ..KillFilter::default()
            };
            for pair in args[2..].chunks(2) {
                let v = String::from_utf8_lossy(&pair[1]).into_owned();
                match pair[0].to_ascii_lowercase().as_slice() {
                    b"id" => match crate::util::parse_i64(&pair[1]) {
                        Some(id) if id > 0 => f.id = Some(format!("id={id} ")),
                        _ => return Err(CmdError::msg("ERR client-id should be greater than 0")),
                    },
                    b"addr" => f.addr = Some(format!(" addr={v} ")),
                    b"laddr" => f.laddr = Some(format!(" laddr={v} ")),
                    b"user" if !ctx.shared.acl.users.contains_key(&v) => {
                        return Err(CmdError::msg(format!("ERR No such user '{v}'")))
                    }
                    // CLIENT LIST lines end with the ACL user.
                    b"user" => f.user = Some(format!(" user={v}")),
                    b"type" => match v.to_ascii_lowercase().as_str() {
                        "normal" => f.pubsub = Some(false),
                        "pubsub" => f.pubsub = Some(true),
                        // kvtier has no replication links.
                        "master" | "replica" | "slave" => f.none = true,
                        _ => return Err(CmdError::msg(format!("ERR Unknown client type '{v}'"))),
                    },
                    b"skipme" => match v.to_ascii_lowercase().as_str() {
                        "yes" => f.skipme = true,
                        "no" => f.skipme = false,
                        _ => return Err(CmdError::Syntax),
                    },
                    _ => return Err(CmdError::Syntax),
                }
            }
            let me = format!("id={} ", ctx.client.id);
            let ids = client_ids(ctx, |l| f.keeps(l, &me));
            ctx.shared.kill_requests.extend(&ids);
            ctx.out.int(ids.len() as i64)
        }
        // Options Redis parses but that are not `CLIENT KILL id 1 …` pairs.
        (b"kill", _) => return Err(CmdError::Syntax),
        // CLIENT LIST with anything but its filters (TYPE t, ID id…).
        (b"list", n) if n == 4 && args[2].eq_ignore_ascii_case(b"type") => {
            // kvtier has no master or replica links: those types list nobody.
            let pubsub = match args[3].to_ascii_lowercase().as_slice() {
                b"normal" => Some(false),
                b"pubsub" => Some(true),
                b"master" | b"replica" | b"slave" => None,
                _ => {
                    return Err(CmdError::msg(format!(
                        "ERR Unknown client type '{}'",
                        String::from_utf8_lossy(&args[3])
                    )))
                }
            };
            let lines = ctx.shared.client_list.iter().filter(|l| {
                let subscribed = field(l, "flags").is_some_and(|f| f.starts_with('P'));
                pubsub == Some(subscribed)
            });
            reply_lines(ctx.out, lines);
        }
        (b"list", n) if n > 3 && args[2].eq_ignore_ascii_case(b"id") => {
            let ids = args[3..]
                .iter()
                .map(|a| crate::util::parse_i64(a))
                .collect::<Option<Vec<i64>>>()
                .ok_or_else(|| CmdError::msg("ERR Invalid client ID"))?;
            let lines = ctx.shared.client_list.iter().filter(|l| {
                field(l, "id")
                    .and_then(|id| id.parse::<i64>().ok())
                    .is_some_and(|id| ids.contains(&id))
            });
            reply_lines(ctx.out, lines);
        }
        (b"list", _) => return Err(CmdError::Syntax),
        // Arities are checked before the handler (subcommands.rs): what is left is what
        // Redis's own handler refuses so (CLIENT UNBLOCK 1 x y, CLIENT PAUSE 1 x y), and what
        // kvtier does not have (CLIENT HELP).
        _ => return Err(crate::subcommands::syntax_error(args)),
    }
    Ok(())
}

/// The value of `name=` in a CLIENT LIST line.
fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    line.split(' ')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

/// CLIENT LIST's reply: each line ended by a newline (none at all for no client).
fn reply_lines<'a>(out: &mut crate::reply::Reply, lines: impl Iterator<Item = &'a String>) {
    let mut text = String::new();
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    out.verbatim(&text);
}

fn reset(ctx: &mut Ctx, _args: &[Vec<u8>]) -> CmdResult {
    ctx.shared.pubsub.forget_client(ctx.client);
    ctx.client.db = 0;
    ctx.client.multi = None;
    ctx.client.multi_error = false;
    ctx.client.watched.clear();
    ctx.client.watch_expires_at = None;
    ctx.client.tracking.disable();
    super::monitor::stop(ctx);
    ctx.client.name = None;
    // Back to the default user, authenticated only if it needs no password (as in Redis).
    ctx.client.user = "default".into();
    ctx.client.authenticated = ctx.shared.acl.default_nopass();
    ctx.out.resp3 = false;
    ctx.out.simple("RESET");
    Ok(())
}

/// Ids of the clients whose CLIENT LIST line satisfies `keep`.
fn client_ids(ctx: &Ctx, keep: impl Fn(&str) -> bool) -> Vec<u64> {
    ctx.shared
        .client_list
        .iter()
        .filter(|l| keep(l))
        .filter_map(|l| l.strip_prefix("id=")?.split(' ').next()?.parse().ok())
        .collect()
}

/// CLIENT KILL's filters, matched against CLIENT LIST lines.
#[derive(Default)]
struct KillFilter {
    id: Option<String>,
    addr: Option<String>,
    laddr: Option<String>,
    pubsub: Option<bool>,
    user: Option<String>,
    skipme: bool,
    none: bool,
}

impl KillFilter {
    fn keeps(&self, line: &str, me: &str) -> bool {
        let subscribed =
            !(line.contains(" sub=0 ") && line.contains(" psub=0 ") && line.contains(" ssub=0 "));
        !self.none
            && self
                .id
                .as_ref()
                .is_none_or(|id| line.starts_with(id.as_str()))
            && self.addr.as_ref().is_none_or(|a| line.contains(a.as_str()))
            && self
                .laddr
                .as_ref()
                .is_none_or(|a| line.contains(a.as_str()))
            && self.pubsub.is_none_or(|p| p == subscribed)
            && self
                .user
                .as_ref()
                .is_none_or(|u| line.ends_with(u.as_str()))
            && !(self.skipme && line.starts_with(me))
    }
}

/// CLIENT REPLY: whether a client's replies are sent.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub enum ReplyMode {
    #[default]
    On,
    Off,
    /// CLIENT REPLY SKIP itself: no reply now, nor for the next command.
    SkipThis,
    SkipNext,
}

/// Drops the reply a command wrote from `before` on when the client silenced its replies
/// (called by the server loop after each command). Subscription confirmations are pushes and
/// always go out, as in Redis 7.0.
pub fn apply_reply_mode(
    state: &mut crate::client::ClientState,
    out: &mut crate::reply::Reply,
    before: usize,
    cmd: &str,
) {
    if state.reply_mode == ReplyMode::On
        || matches!(
            cmd,
            "subscribe"
                | "unsubscribe"
                | "psubscribe"
                | "punsubscribe"
                | "ssubscribe"
                | "sunsubscribe"
        )
    {
        return;
    }
    out.buf.truncate(before);
    state.reply_mode = match state.reply_mode {
        ReplyMode::SkipThis => ReplyMode::SkipNext,
        ReplyMode::SkipNext => ReplyMode::On,
        m => m,
    };
}
