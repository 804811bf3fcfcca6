//! Consumer-group commands: XGROUP, XREADGROUP (blocking like XREAD), XACK, XPENDING, XCLAIM
//! and XAUTOCLAIM. Replies and errors as Redis 7.0.15.

use super::flags::*;
use super::notify::{notify, notify_new};
use super::streams::{
    interval_id, may_block, parse_read_args, reply_entry, reply_id, stream_mut, strict_id, CLASS,
};
use super::{cmd, Action, CommandSpec, Ctx, KeySpec, KEY1};
use super::{CmdError, CmdResult, TypedDb};
use crate::stream::group::{Group, ENTRIES_READ_UNKNOWN};
use crate::stream::{Fields, Stream, StreamId};
use crate::value::Value;

pub const COMMANDS: &[CommandSpec] = &[
    cmd("xgroup", -2, WRITE, KeySpec::Range(2, 2, 1), xgroup),
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
    let mut db = ctx.engine.db(ctx.client.db, ctx.now_ms);
    match db.read::<Box<Stream>>(key)? {
        None => Ok(Lookup::NoKey),
        Some(st) if st.groups.contains_key(group) => Ok(Lookup::Found),
        Some(_) => Ok(Lookup::NoGroup),
    }
}

fn no_key_or_group(key: &[u8], group: &[u8]) -> CmdError {
    CmdError::msg(format!(
        "NOGROUP No such key '{}' or consumer group '{}'",
        s(key),
        s(group)
    ))
}

/// The group `name` of the stream at `key` (both checked to exist).
fn group_mut<'a>(db: &'a mut kvtier_core::Db<'_, Value>, key: &[u8], name: &[u8]) -> &'a mut Group {
    stream_mut(db, key)
        .groups
        .get_mut(name)
        .expect("group checked")
}

/// Finds or creates a consumer, refreshing its seen time; reports a creation.
fn touch_consumer(ctx: &mut Ctx, key: &[u8], group: &[u8], consumer: &[u8]) {
    let now = ctx.now_ms;
    let mut db = ctx.engine.db(ctx.client.db, ctx.now_ms);
    let (c, created) = group_mut(&mut db, key, group).consumer(consumer, now);
    c.seen_time = now;
    if created {
        notify(ctx, CLASS, "xgroup-createconsumer", key);
    }
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
    let mut db = ctx.engine.db(ctx.client.db, ctx.now_ms);
    let last_id = match db.get(key) {
        Some(Value::Stream(st)) => st.last_id,
        _ => StreamId::MIN,
    };
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
            let Value::Stream(st) = db.get_or_insert_with(key, || Value::Stream(Box::default()))
            else {
                unreachable!("type checked")
            };
            st.groups
                .insert(gname.clone(), Group::new(id, entries_read));
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
            let g = group_mut(&mut db, key, gname);
            g.last_id = id;
            g.entries_read = entries_read;
            ctx.out.ok();
            notify(ctx, CLASS, "xgroup-setid", key);
        }
        b"destroy" => {
            if !matches!(look, Lookup::Found) {
                ctx.out.int(0);
                return Ok(());
            }
            stream_mut(&mut db, key).groups.remove(gname.as_slice());
            ctx.out.int(1);
            notify(ctx, CLASS, "xgroup-destroy", key);
        }
        b"createconsumer" => {
            let now = ctx.now_ms;
            let (_, created) = group_mut(&mut db, key, gname).consumer(&args[4], now);
            ctx.out.int(i64::from(created));
            if created {
                notify(ctx, CLASS, "xgroup-createconsumer", key);
            }
        }
        b"delconsumer" => match group_mut(&mut db, key, gname).delete_consumer(&args[4]) {
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
            let mut db = ctx.engine.db(ctx.client.db, ctx.now_ms);
            match db.get(key) {
                Some(Value::Stream(st)) if st.groups.contains_key(&gname) => {}
                Some(Value::Stream(_)) => {
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
        let mut db = ctx.engine.db(ctx.client.db, ctx.now_ms);
        let Some(Value::Stream(st)) = db.get(key) else {
            continue;
        };
        let g = &st.groups[&gname];
        match ids[k] {
            None => {
                let has_new = st.last_entry().is_some_and(|(last, _)| last > g.last_id);
                if !has_new {
                    continue;
                }
                let from = g.last_id;
                touch_consumer(ctx, key, &gname, &cname);
                let mut db = ctx.engine.db(ctx.client.db, ctx.now_ms);
                let st = stream_mut(&mut db, key);
                let got = read_new(st, &gname, &cname, from, r.count, r.noack, now);
                served.push((k, Served::New(got)));
            }
            Some(after) => {
                touch_consumer(ctx, key, &gname, &cname);
                let mut db = ctx.engine.db(ctx.client.db, ctx.now_ms);
                let st = stream_mut(&mut db, key);
                let got = read_history(st, &gname, &cname, after, r.count, now);
                served.push((k, Served::History(got)));
            }
        }
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

/// Delivers entries after `from` to `consumer`: advances the group, adds them to the PEL.
fn read_new(
    st: &mut Stream,
    gname: &[u8],
    consumer: &[u8],
    from: StreamId,
    count: usize,
    noack: bool,
    now: i64,
) -> Vec<(StreamId, Fields)> {
    let Some(start) = from.incr() else {
        return Vec::new();
    };
    let got: Vec<(StreamId, Fields)> = st
        .range(start, StreamId::MAX, false, count)
        .into_iter()
        .map(|(id, f)| (id, f.clone()))
        .collect();
    for (id, _) in &got {
        let tombstones = st.has_tombstones_from(*id);
        let estimate = st.entries_before(*id);
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
    got
}

/// The consumer's pending entries after `after`, redelivered (time and count updated).
fn read_history(
    st: &mut Stream,
    gname: &[u8],
    consumer: &[u8],
    after: StreamId,
    count: usize,
    now: i64,
) -> Vec<(StreamId, Option<Fields>)> {
    let Some(start) = after.incr() else {
        return Vec::new();
    };
    let limit = if count == 0 { usize::MAX } else { count };
    let g = st.groups.get_mut(gname).expect("group checked");
    let ids: Vec<StreamId> = g.consumers[consumer]
        .pel
        .range(start..)
        .take(limit)
        .copied()
        .collect();
    let mut got = Vec::with_capacity(ids.len());
    for id in ids {
        let fields = st.entries.get(&id).cloned();
        if fields.is_some() {
            let p = g
                .pel
                .get_mut(&id)
                .expect("consumer PEL is in the group PEL");
            p.delivery_time = now;
            p.delivery_count = p.delivery_count.wrapping_add(1);
        }
        got.push((id, fields));
    }
    got
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
    let mut db = ctx.engine.db(ctx.client.db, ctx.now_ms);
    let Some(Value::Stream(st)) = db.get(key) else {
        unreachable!("checked")
    };
    // Nothing pending among them: the key stays untouched, as in Redis.
    if !ids
        .iter()
        .any(|id| st.groups[gname.as_slice()].pel.contains_key(id))
    {
        ctx.out.int(0);
        return Ok(());
    }
    let g = group_mut(&mut db, key, gname);
    let n = ids.into_iter().filter(|id| g.ack(*id)).count();
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
    let mut db = ctx.engine.db(ctx.client.db, ctx.now_ms);
    let Some(Value::Stream(st)) = db.get(key) else {
        unreachable!("checked")
    };
    let g = &st.groups[gname.as_slice()];
    let out = &mut *ctx.out;
    let Some((start, end, count)) = range else {
        out.array(4);
        out.int(g.pel.len() as i64);
        if g.pel.is_empty() {
            out.null();
            out.null();
            out.null_array();
            return Ok(());
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
        return Ok(());
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
    Ok(())
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
    let mut db = ctx.engine.db(ctx.client.db, ctx.now_ms);
    let st = stream_mut(&mut db, key);
    let entries = &st.entries;
    let g = st.groups.get_mut(gname.as_slice()).expect("checked");
    if last_id > g.last_id {
        g.last_id = last_id;
    }
    let mut claimed: Vec<(StreamId, Option<Fields>)> = Vec::new();
    let mut created = false;
    for id in ids {
        let Some(fields) = entries.get(&id) else {
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
        claimed.push((id, (!justid).then(|| fields.clone())));
    }
    if let Some(c) = g.consumers.get_mut(cname.as_slice()) {
        if !claimed.is_empty() {
            c.seen_time = now;
        }
    }
    let out = &mut *ctx.out;
    out.array(claimed.len());
    for (id, f) in &claimed {
        match f {
            Some(f) => reply_entry(out, *id, f),
            None => reply_id(out, *id),
        }
    }
    if created {
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
    let mut db = ctx.engine.db(ctx.client.db, ctx.now_ms);
    let st = stream_mut(&mut db, key);
    let entries = &st.entries;
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
        let Some(fields) = entries.get(&id) else {
            g.ack(id);
            deleted.push(id);
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
        claimed.push((id, (!justid).then(|| fields.clone())));
        count -= 1;
    }
    if let Some(c) = g.consumers.get_mut(cname.as_slice()) {
        if !claimed.is_empty() {
            c.seen_time = now;
        }
    }
    let next = it.next().unwrap_or(StreamId::MIN);
    let out = &mut *ctx.out;
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
    if created {
        notify(ctx, CLASS, "xgroup-createconsumer", key);
    }
    Ok(())
}
