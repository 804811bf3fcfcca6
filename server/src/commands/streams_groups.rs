//! Consumer-group commands: XGROUP, XREADGROUP (blocking like XREAD), XACK, XPENDING, XCLAIM
//! and XAUTOCLAIM. Replies and errors as Redis 7.0.15.

use super::flags::*;
use super::notify::{notify, notify_new};
use super::stream_access::{read_stream, write_stream};
use super::streams::{
    interval_id, may_block, parse_read_args, reply_entry, reply_id, strict_id, CLASS,
};
use super::{cmd, Action, CommandSpec, Ctx, KeySpec, KEY1};
use super::{CmdError, CmdResult};
use crate::stream::group::{Group, ENTRIES_READ_UNKNOWN};
use crate::stream::{EntriesRead, EntriesWrite, Fields, Stream, StreamId};

pub const COMMANDS: &[CommandSpec] = &[
    cmd(
        "xgroup",
        -2,
        WRITE | CONTAINER,
        KeySpec::Range(2, 2, 1),
        xgroup,
    ),
    cmd("xreadgroup", -7, WRITE, KeySpec::Streams, xreadgroup),
    cmd("xack", -4, WRITE | FAST, KEY1, xack),
    cmd("xpending", -3, READONLY, KEY1, xpending),
    cmd("xclaim", -6, WRITE | FAST, KEY1, xclaim),
    cmd("xautoclaim", -6, WRITE | FAST, KEY1, xautoclaim),
];

fn s(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

/// Where a group-command's key stands: missing, or a stream with or without the group.
enum Lookup {
    NoKey,
    NoGroup,
    Found,
}

/// Looks up `key` and `group`; `Err(())` after a WRONGTYPE reply.
fn lookup(ctx: &mut Ctx, key: &[u8], group: &[u8]) -> Result<Lookup, CmdError> {
    Ok(
        match read_stream(ctx, key, |st, _, _| Ok(st.groups.contains_key(group)))? {
            None => Lookup::NoKey,
            Some(true) => Lookup::Found,
            Some(false) => Lookup::NoGroup,
        },
    )
}

fn no_key_or_group(key: &[u8], group: &[u8]) -> CmdError {
    CmdError::msg(format!(
        "NOGROUP No such key '{}' or consumer group '{}'",
        s(key),
        s(group)
    ))
}

/// Runs `f` on group `name` of the stream at `key` (both checked to exist), the key dirty.
fn with_group<T>(
    ctx: &mut Ctx,
    key: &[u8],
    name: &[u8],
    f: impl FnOnce(&mut Group) -> T,
) -> Result<T, CmdError> {
    let w = write_stream(ctx, key, false, |st, _, _| {
        let g = st
            .groups
            .get_mut(name)
            .ok_or(CmdError::msg("ERR no such group"))?;
        Ok(f(g))
    })?;
    w.map(|w| w.result).ok_or(CmdError::NoSuchKey)
}

/// Finds or creates a consumer, refreshing its seen time; whether it was created.
fn touch(g: &mut Group, consumer: &[u8], now: i64) -> bool {
    let (c, created) = g.consumer(consumer, now);
    c.seen_time = now;
    created
}

fn subcommand_syntax(args: &[Vec<u8>]) -> CmdError {
    CmdError::msg(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        s(&args[1]),
        s(&args[0]).to_uppercase()
    ))
}

const XGROUP_HELP: &[&str] = &[
    "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
    "HELP",
    "    Prints this help.",
];

fn xgroup(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let sub = args[1].to_ascii_lowercase();
    let arity_ok = match sub.as_slice() {
        b"help" => args.len() == 2,
        b"create" | b"setid" => args.len() >= 5,
        b"destroy" => args.len() == 4,
        b"createconsumer" | b"delconsumer" => args.len() == 5,
        _ => {
            return Err(CmdError::msg(format!(
                "ERR unknown subcommand '{}'. Try XGROUP HELP.",
                s(&args[1])
            )))
        }
    };
    if !arity_ok {
        return Err(CmdError::msg(format!(
            "ERR wrong number of arguments for 'xgroup|{}' command",
            s(&sub)
        )));
    }
    if sub == b"help" {
        super::object::help(ctx, XGROUP_HELP);
        return Ok(());
    }
    let key = &args[1 + 1];
    let gname = &args[3];
    let mut mkstream = false;
    let mut entries_read = ENTRIES_READ_UNKNOWN;
    if sub == b"create" || sub == b"setid" {
        let mut i = 5;
        while i < args.len() {
            if sub == b"create" && args[i].eq_ignore_ascii_case(b"mkstream") {
                mkstream = true;
            } else if args[i].eq_ignore_ascii_case(b"entriesread") && i + 1 < args.len() {
                let Some(n) = crate::util::parse_i64(&args[i + 1]) else {
                    return Err(CmdError::NotInt);
                };
                if n < 0 && n != ENTRIES_READ_UNKNOWN {
                    return Err(CmdError::msg(
                        "ERR value for ENTRIESREAD must be positive or -1",
                    ));
                }
                entries_read = n;
                i += 1;
            } else {
                return Err(subcommand_syntax(args));
            }
            i += 1;
        }
    }
    let look = lookup(ctx, key, gname)?;
    if !mkstream {
        match look {
            Lookup::NoKey => {
                return Err(CmdError::msg(
                    "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE \
                     you may want to use the MKSTREAM option to create an empty stream \
                     automatically.",
                ))
            }
            Lookup::NoGroup if sub != b"create" && sub != b"destroy" => {
                return Err(CmdError::msg(format!(
                    "NOGROUP No such consumer group '{}' for key name '{}'",
                    s(gname),
                    s(key)
                )))
            }
            _ => {}
        }
    }
    let last_id = read_stream(ctx, key, |st, _, _| Ok(st.last_id))?.unwrap_or(StreamId::MIN);
    let now = ctx.now_ms;
    match sub.as_slice() {
        b"create" if args.len() <= 8 => {
            let id = if args[4] == b"$" {
                last_id
            } else {
                strict_id(&args[4])?
            };
            if matches!(look, Lookup::Found) {
                return Err(CmdError::msg(
                    "BUSYGROUP Consumer Group name already exists",
                ));
            }
            let existed = !matches!(look, Lookup::NoKey);
            write_stream(ctx, key, true, |st, _, _| {
                st.groups
                    .insert(gname.clone(), Group::new(id, entries_read));
                Ok(())
            })?;
            ctx.out.ok();
            notify_new(ctx, existed, key);
            notify(ctx, CLASS, "xgroup-create", key);
        }
        b"setid" if args.len() == 5 || args.len() == 7 => {
            let id = if args[4] == b"$" {
                last_id
            } else {
                strict_id(&args[4])?
            };
            with_group(ctx, key, gname, |g| {
                g.last_id = id;
                g.entries_read = entries_read;
            })?;
            ctx.out.ok();
            notify(ctx, CLASS, "xgroup-setid", key);
        }
        b"destroy" => {
            if !matches!(look, Lookup::Found) {
                ctx.out.int(0);
                return Ok(());
            }
            write_stream(ctx, key, false, |st, _, _| {
                st.groups.remove(gname.as_slice());
                Ok(())
            })?;
            ctx.out.int(1);
            notify(ctx, CLASS, "xgroup-destroy", key);
        }
        b"createconsumer" => {
            let created = with_group(ctx, key, gname, |g| g.consumer(&args[4], now).1)?;
            ctx.out.int(i64::from(created));
            if created {
                notify(ctx, CLASS, "xgroup-createconsumer", key);
            }
        }
        b"delconsumer" => match with_group(ctx, key, gname, |g| g.delete_consumer(&args[4]))? {
            Some(n) => {
                ctx.out.int(n as i64);
                notify(ctx, CLASS, "xgroup-delconsumer", key);
            }
            None => ctx.out.int(0),
        },
        _ => return Err(subcommand_syntax(args)),
    }
    Ok(())
}

/// What XREADGROUP serves for one stream.
enum Served {
    /// New entries (`>`).
    New(Vec<(StreamId, Fields)>),
    /// The consumer's pending entries after an ID (`None` fields: deleted since).
    History(Vec<(StreamId, Option<Fields>)>),
}

fn xreadgroup(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let r = parse_read_args(args, true)?;
    let (gname, cname) = r.group.clone().expect("checked");
    let keys = &args[r.streams_at..r.streams_at + r.nstreams];
    let id_args = &args[r.streams_at + r.nstreams..];
    // `None`: `>` (new entries).
    let mut ids: Vec<Option<StreamId>> = Vec::with_capacity(keys.len());
    for (key, a) in keys.iter().zip(id_args) {
        // Woken because the key changed: Redis ends the block with these errors when the
        // stream or the group is gone.
        if ctx.client.woken {
            let has = read_stream(ctx, key, |st, _, _| Ok(st.groups.contains_key(&gname)));
            match has {
                Ok(Some(true)) => {}
                Ok(Some(false)) => {
                    return Err(CmdError::msg(
                        "NOGROUP the consumer group this client was blocked on no longer exists",
                    ))
                }
                _ => return Err(CmdError::msg("UNBLOCKED the stream key no longer exists")),
            }
        }
        match lookup(ctx, key, &gname)? {
            Lookup::Found => {}
            _ => {
                return Err(CmdError::msg(format!(
                "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                s(key),
                s(&gname)
            )))
            }
        }
        if a.as_slice() == b"$" {
            return Err(CmdError::msg(
                "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the \
                 history of this consumer by specifying a proper ID, or use the > ID to get new \
                 messages. The $ ID would just return an empty result set.",
            ));
        }
        if a.as_slice() == b">" {
            ids.push(None);
            continue;
        }
        let id = strict_id(a)?;
        ids.push(Some(id));
    }
    let now = ctx.now_ms;
    let mut served: Vec<(usize, Served)> = Vec::new();
    for (k, key) in keys.iter().enumerate() {
        let want = ids[k];
        let has_new = |st: &Stream, es: &mut dyn EntriesRead| -> Result<bool, CmdError> {
            let g = &st.groups[&gname];
            Ok(es.last_id()?.is_some_and(|last| last > g.last_id))
        };
        if want.is_none() && read_stream(ctx, key, |st, es, _| has_new(st, es))? != Some(true) {
            continue;
        }
        let (count, noack) = (r.count, r.noack);
        let w = write_stream(ctx, key, false, |st, es, _| {
            Ok(match want {
                None => {
                    let got = read_new(st, es, &gname, &cname, count, noack, now)?;
                    (Served::New(got.0), got.1)
                }
                Some(after) => {
                    let got = read_history(st, es, &gname, &cname, after, count, now)?;
                    (Served::History(got.0), got.1)
                }
            })
        })?;
        let Some(w) = w else { continue };
        let (what, created) = w.result;
        if created {
            notify(ctx, CLASS, "xgroup-createconsumer", key);
        }
        served.push((k, what));
    }
    if served.is_empty() {
        match r.block {
            Some(ms) if may_block(ctx) => ctx.action = Action::Block { timeout_ms: ms },
            _ => ctx.out.null_array(),
        }
        return Ok(());
    }
    let out = &mut *ctx.out;
    if out.resp3 {
        out.map(served.len());
    } else {
        out.array(served.len());
    }
    for (k, what) in served {
        if !out.resp3 {
            out.array(2);
        }
        out.bulk(&keys[k]);
        match what {
            Served::New(entries) => {
                out.array(entries.len());
                for (id, f) in &entries {
                    reply_entry(out, *id, f);
                }
            }
            Served::History(entries) => {
                out.array(entries.len());
                for (id, f) in &entries {
                    match f {
                        Some(f) => reply_entry(out, *id, f),
                        None => {
                            out.array(2);
                            reply_id(out, *id);
                            out.null_array();
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// Delivers entries after the group's last ID to `consumer`: advances the group, adds them to
/// the PEL. Also whether the consumer was created.
fn read_new(
    st: &mut Stream,
    es: &mut dyn EntriesWrite,
    gname: &[u8],
    consumer: &[u8],
    count: usize,
    noack: bool,
    now: i64,
) -> Result<(Vec<(StreamId, Fields)>, bool), CmdError> {
    let from = st.groups[gname].last_id;
    let got = match from.incr() {
        Some(start) => es.range(start, StreamId::MAX, false, count)?,
        None => Vec::new(),
    };
    let len = es.count();
    let created = touch(
        st.groups.get_mut(gname).expect("group checked"),
        consumer,
        now,
    );
    for (id, _) in &got {
        let tombstones = st.has_tombstones_from(len, *id);
        let estimate = st.entries_before(len, *id);
        let added = st.entries_added;
        let g = st.groups.get_mut(gname).expect("group checked");
        if *id > g.last_id {
            if g.entries_read != ENTRIES_READ_UNKNOWN && !tombstones {
                g.entries_read = g.entries_read.wrapping_add(1);
            } else if added > 0 {
                g.entries_read = estimate.unwrap_or(ENTRIES_READ_UNKNOWN);
            }
            g.last_id = *id;
        }
        if !noack {
            g.assign(*id, consumer, now, 1);
        }
    }
    Ok((got, created))
}

/// The consumer's pending entries after `after`, redelivered (time and count updated). Also
/// whether the consumer was created.
#[allow(clippy::type_complexity)]
fn read_history(
    st: &mut Stream,
    es: &mut dyn EntriesWrite,
    gname: &[u8],
    consumer: &[u8],
    after: StreamId,
    count: usize,
    now: i64,
) -> Result<(Vec<(StreamId, Option<Fields>)>, bool), CmdError> {
    let g = st.groups.get_mut(gname).expect("group checked");
    let limit = if count == 0 { usize::MAX } else { count };
    let ids: Vec<StreamId> = match after.incr() {
        Some(start) => g
            .consumers
            .get(consumer)
            .map(|c| c.pel.range(start..).take(limit).copied().collect())
            .unwrap_or_default(),
        None => Vec::new(),
    };
    // The entries first: a page that cannot be read changes nothing.
    let mut got = Vec::with_capacity(ids.len());
    for id in ids {
        got.push((id, es.get(id)?));
    }
    let created = touch(g, consumer, now);
    for (id, fields) in &got {
        if fields.is_some() {
            let p = g.pel.get_mut(id).expect("consumer PEL is in the group PEL");
            p.delivery_time = now;
            p.delivery_count = p.delivery_count.wrapping_add(1);
        }
    }
    Ok((got, created))
}

fn xack(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let (key, gname) = (&args[1], &args[2]);
    let look = lookup(ctx, key, gname)?;
    let mut ids = Vec::with_capacity(args.len() - 3);
    for a in &args[3..] {
        let id = strict_id(a)?;
        ids.push(id);
    }
    if !matches!(look, Lookup::Found) {
        ctx.out.int(0);
        return Ok(());
    }
    // Nothing pending among them: the key stays untouched, as in Redis.
    let any = read_stream(ctx, key, |st, _, _| {
        let g = &st.groups[gname.as_slice()];
        Ok(ids.iter().any(|id| g.pel.contains_key(id)))
    })?;
    if any != Some(true) {
        ctx.out.int(0);
        return Ok(());
    }
    let n = with_group(ctx, key, gname, |g| {
        ids.into_iter().filter(|id| g.ack(*id)).count()
    })?;
    ctx.out.int(n as i64);
    Ok(())
}

fn xpending(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let (key, gname) = (&args[1], &args[2]);
    let n = args.len();
    if n != 3 && !(6..=9).contains(&n) {
        return Err(CmdError::Syntax);
    }
    let mut min_idle: i64 = 0;
    let mut range = None;
    let mut consumer: Option<&[u8]> = None;
    if n >= 6 {
        let mut at = 3;
        if args[3].eq_ignore_ascii_case(b"idle") {
            let Some(v) = crate::util::parse_i64(&args[4]) else {
                return Err(CmdError::NotInt);
            };
            min_idle = v;
            if n < 8 {
                return Err(CmdError::Syntax);
            }
            at += 2;
        }
        let Some(count) = crate::util::parse_i64(&args[at + 2]) else {
            return Err(CmdError::NotInt);
        };
        let start = interval_id(&args[at], true)?;
        let end = interval_id(&args[at + 1], false)?;
        if at + 3 < n {
            consumer = Some(&args[at + 3]);
        }
        range = Some((start, end, count.max(0) as usize));
    }
    match lookup(ctx, key, gname)? {
        Lookup::Found => {}
        _ => {
            return Err(no_key_or_group(key, gname));
        }
    }
    let now = ctx.now_ms;
    read_stream(ctx, key, |st, _, out| {
        pending_reply(
            out,
            &st.groups[gname.as_slice()],
            range,
            consumer,
            min_idle,
            now,
        );
        Ok(())
    })?;
    Ok(())
}

/// XPENDING's reply for group `g`: the summary, or the entries in `range`.
fn pending_reply(
    out: &mut crate::reply::Reply,
    g: &Group,
    range: Option<(StreamId, StreamId, usize)>,
    consumer: Option<&[u8]>,
    min_idle: i64,
    now: i64,
) {
    let Some((start, end, count)) = range else {
        out.array(4);
        out.int(g.pel.len() as i64);
        if g.pel.is_empty() {
            out.null();
            out.null();
            out.null_array();
            return;
        }
        reply_id(out, *g.pel.keys().next().expect("non-empty"));
        reply_id(out, *g.pel.keys().next_back().expect("non-empty"));
        let busy: Vec<_> = g
            .consumers
            .iter()
            .filter(|(_, c)| !c.pel.is_empty())
            .collect();
        out.array(busy.len());
        for (name, c) in busy {
            out.array(2);
            out.bulk(name);
            out.bulk(c.pel.len().to_string().as_bytes());
        }
        return;
    };
    let ids: Vec<StreamId> = if start > end || count == 0 {
        Vec::new()
    } else {
        match consumer {
            None => g.pel.range(start..=end).map(|(id, _)| *id).collect(),
            Some(c) => match g.consumers.get(c) {
                None => Vec::new(),
                Some(c) => c.pel.range(start..=end).copied().collect(),
            },
        }
    };
    let rows: Vec<_> = ids
        .iter()
        .map(|id| (id, &g.pel[id]))
        .filter(|(_, p)| min_idle == 0 || now.saturating_sub(p.delivery_time) >= min_idle)
        .take(count)
        .collect();
    out.array(rows.len());
    for (id, p) in rows {
        out.array(4);
        reply_id(out, *id);
        out.bulk(&p.consumer);
        out.int(now.saturating_sub(p.delivery_time));
        out.int(p.delivery_count as i64);
    }
}

fn xclaim(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let (key, gname, cname) = (&args[1], &args[2], &args[3]);
    match lookup(ctx, key, gname)? {
        Lookup::Found => {}
        _ => {
            return Err(no_key_or_group(key, gname));
        }
    }
    let Some(min_idle) = crate::util::parse_i64(&args[4]) else {
        return Err(CmdError::msg(
            "ERR Invalid min-idle-time argument for XCLAIM",
        ));
    };
    let min_idle = min_idle.max(0);
    let mut ids = Vec::new();
    let mut j = 5;
    while j < args.len() {
        match crate::stream::id::parse_strict(&args[j]) {
            Some(id) => ids.push(id),
            None => break,
        }
        j += 1;
    }
    let now = ctx.now_ms;
    let (mut force, mut justid) = (false, false);
    let mut delivery: Option<i64> = None;
    let mut retry: i64 = -1;
    let mut last_id = StreamId::MIN;
    while j < args.len() {
        let more = j + 1 < args.len();
        let opt = args[j].to_ascii_lowercase();
        let int_opt = |what: &str| {
            crate::util::parse_i64(&args[j + 1]).ok_or_else(|| {
                CmdError::msg(format!("ERR Invalid {what} option argument for XCLAIM"))
            })
        };
        match opt.as_slice() {
            b"force" => force = true,
            b"justid" => justid = true,
            b"idle" if more => {
                let v = int_opt("IDLE")?;
                delivery = Some(now.saturating_sub(v));
                j += 1;
            }
            b"time" if more => {
                let v = int_opt("TIME")?;
                delivery = Some(v);
                j += 1;
            }
            b"retrycount" if more => {
                let v = int_opt("RETRYCOUNT")?;
                retry = v;
                j += 1;
            }
            b"lastid" if more => {
                let id = strict_id(&args[j + 1])?;
                last_id = id;
                j += 1;
            }
            _ => {
                return Err(CmdError::msg(format!(
                    "ERR Unrecognized XCLAIM option '{}'",
                    s(&args[j])
                )))
            }
        }
        j += 1;
    }
    let delivery = match delivery {
        Some(d) if d >= 0 && d <= now => d,
        _ => now,
    };
    // Each claim is complete when made: a page that cannot be read stops the command with an
    // error, the claims before it kept.
    let w = write_stream(ctx, key, false, |st, es, out| {
        let g = st.groups.get_mut(gname.as_slice()).expect("checked");
        if last_id > g.last_id {
            g.last_id = last_id;
        }
        let mut claimed: Vec<(StreamId, Option<Fields>)> = Vec::new();
        let mut created = false;
        for id in ids {
            let Some(fields) = es.get(id)? else {
                // Gone from the stream: drop it from the PEL too.
                g.ack(id);
                continue;
            };
            let pending = g.pel.get(&id).cloned();
            let (count, owner) = match &pending {
                None if force => (1, None),
                None => continue,
                Some(p) => {
                    if min_idle > 0 && now.saturating_sub(p.delivery_time) < min_idle {
                        continue;
                    }
                    (p.delivery_count, Some(p.consumer.clone()))
                }
            };
            if !g.consumers.contains_key(cname.as_slice()) {
                created = true;
            }
            let count = if retry >= 0 {
                retry as u64
            } else if !justid {
                count.wrapping_add(1)
            } else {
                count
            };
            if owner.is_none() {
                g.pel.remove(&id);
            }
            g.assign(id, cname, delivery, count);
            if created {
                // A new consumer's seen time is now, not the delivery time.
                if let Some(c) = g.consumers.get_mut(cname.as_slice()) {
                    c.seen_time = now;
                }
            }
            claimed.push((id, (!justid).then_some(fields)));
        }
        if let Some(c) = g.consumers.get_mut(cname.as_slice()) {
            if !claimed.is_empty() {
                c.seen_time = now;
            }
        }
        out.array(claimed.len());
        for (id, f) in &claimed {
            match f {
                Some(f) => reply_entry(out, *id, f),
                None => reply_id(out, *id),
            }
        }
        Ok(created)
    })?;
    if w.is_some_and(|w| w.result) {
        notify(ctx, CLASS, "xgroup-createconsumer", key);
    }
    Ok(())
}

fn xautoclaim(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let (key, gname, cname) = (&args[1], &args[2], &args[3]);
    let look = lookup(ctx, key, gname)?;
    let Some(min_idle) = crate::util::parse_i64(&args[4]) else {
        return Err(CmdError::msg(
            "ERR Invalid min-idle-time argument for XAUTOCLAIM",
        ));
    };
    let min_idle = min_idle.max(0);
    let start = interval_id(&args[5], true)?;
    const ATTEMPTS_FACTOR: i64 = 10;
    let mut count: i64 = 100;
    let mut justid = false;
    let mut j = 6;
    while j < args.len() {
        let more = j + 1 < args.len();
        if args[j].eq_ignore_ascii_case(b"count") && more {
            match crate::util::parse_i64(&args[j + 1]) {
                Some(n) if (1..=i64::MAX / ATTEMPTS_FACTOR).contains(&n) => count = n,
                _ => return Err(CmdError::msg("ERR COUNT must be > 0")),
            }
            j += 1;
        } else if args[j].eq_ignore_ascii_case(b"justid") {
            justid = true;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    if !matches!(look, Lookup::Found) {
        return Err(no_key_or_group(key, gname));
    }
    let now = ctx.now_ms;
    let w = write_stream(ctx, key, false, |st, es, out| {
        let g = st.groups.get_mut(gname.as_slice()).expect("checked");
        let mut attempts = count * ATTEMPTS_FACTOR;
        let mut claimed: Vec<(StreamId, Option<Fields>)> = Vec::new();
        let mut deleted: Vec<StreamId> = Vec::new();
        let mut created = false;
        let candidates: Vec<StreamId> = g.pel.range(start..).map(|(id, _)| *id).collect();
        let mut it = candidates.into_iter().peekable();
        while attempts > 0 && count > 0 {
            let Some(id) = it.next() else { break };
            attempts -= 1;
            let Some(fields) = es.get(id)? else {
                g.ack(id);
                deleted.push(id);
                // A deleted entry counts against COUNT too, as in Redis 7.0.
                count -= 1;
                continue;
            };
            let p = &g.pel[&id];
            if min_idle > 0 && now.saturating_sub(p.delivery_time) < min_idle {
                continue;
            }
            if !g.consumers.contains_key(cname.as_slice()) {
                created = true;
            }
            let n = if justid {
                p.delivery_count
            } else {
                p.delivery_count.wrapping_add(1)
            };
            g.assign(id, cname, now, n);
            claimed.push((id, (!justid).then_some(fields)));
            count -= 1;
        }
        if let Some(c) = g.consumers.get_mut(cname.as_slice()) {
            if !claimed.is_empty() {
                c.seen_time = now;
            }
        }
        let next = it.next().unwrap_or(StreamId::MIN);
        out.array(3);
        reply_id(out, next);
        out.array(claimed.len());
        for (id, f) in &claimed {
            match f {
                Some(f) => reply_entry(out, *id, f),
                None => reply_id(out, *id),
            }
        }
        out.array(deleted.len());
        for id in deleted {
            reply_id(out, id);
        }
        Ok(created)
    })?;
    if w.is_some_and(|w| w.result) {
        notify(ctx, CLASS, "xgroup-createconsumer", key);
    }
    Ok(())
}
