//! Stream commands without consumer groups: XADD, XRANGE, XREVRANGE, XLEN, XDEL, XTRIM, XSETID,
//! XREAD (blocking like BLPOP: the server loop re-runs it when one of its keys changes) and
//! XINFO. Consumer groups are in `streams_groups.rs`. Replies and errors as Redis 7.0.15.

use super::flags::*;
use super::notify::{notify, notify_new};
use super::stream_access::{check_stream, read_stream, write_stream};
use super::{cmd, Action, CommandSpec, Ctx, KeySpec, KEY1};
use super::{CmdError, CmdResult};
use crate::reply::Reply;
use crate::stream::group::ENTRIES_READ_UNKNOWN;
use crate::stream::{id, EntriesRead, Fields, Stream, StreamId, Trim};

pub const COMMANDS: &[CommandSpec] = &[
    cmd("xadd", -5, WRITE | DENYOOM | FAST, KEY1, xadd),
    cmd("xrange", -4, READONLY, KEY1, xrange),
    cmd("xrevrange", -4, READONLY, KEY1, xrevrange),
    cmd("xlen", 2, READONLY | FAST, KEY1, xlen),
    cmd("xdel", -3, WRITE | FAST, KEY1, xdel),
    cmd("xtrim", -4, WRITE, KEY1, xtrim),
    cmd("xsetid", -3, WRITE | DENYOOM | FAST, KEY1, xsetid),
    cmd("xread", -4, READONLY, KeySpec::Streams, xread),
    cmd(
        "xinfo",
        -2,
        READONLY | CONTAINER,
        KeySpec::Range(2, 2, 1),
        xinfo,
    ),
];

/// Keyspace event class of streams.
pub const CLASS: u8 = b't';
pub const ERR_INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";

/// The keys of an XREAD / XREADGROUP request: the first half of the arguments after STREAMS
/// (found by walking the options as the command parses them).
pub fn stream_keys(args: &[Vec<u8>]) -> Vec<&[u8]> {
    let group = args[0].eq_ignore_ascii_case(b"xreadgroup");
    let mut i = 1;
    while i < args.len() {
        let a = args[i].to_ascii_lowercase();
        match a.as_slice() {
            b"streams" => {
                let rest = &args[i + 1..];
                return rest[..rest.len() / 2].iter().map(Vec::as_slice).collect();
            }
            b"count" | b"block" => i += 2,
            b"group" if group => i += 3,
            b"noack" if group => i += 1,
            _ => break,
        }
    }
    Vec::new()
}

/// Fails unless `key` is a stream or missing; whether it exists.
pub fn check_type(ctx: &mut Ctx, key: &[u8]) -> Result<bool, CmdError> {
    check_stream(ctx, key)
}

pub fn reply_id(out: &mut Reply, id: StreamId) {
    out.bulk(id.to_string().as_bytes());
}

/// One entry: `[id, [field, value, …]]`.
pub fn reply_entry(out: &mut Reply, id: StreamId, fields: &Fields) {
    out.array(2);
    reply_id(out, id);
    out.bulks(fields.iter().map(Vec::as_slice));
}

pub fn reply_entries(out: &mut Reply, entries: &[(StreamId, Fields)]) {
    out.array(entries.len());
    for (id, f) in entries {
        reply_entry(out, *id, f);
    }
}

/// Parses a strict ID (`<ms>[-<seq>]`), replying the error when invalid.
pub fn strict_id(arg: &[u8]) -> Result<StreamId, CmdError> {
    id::parse_strict(arg).ok_or(CmdError::msg(ERR_INVALID_ID))
}

/// Parses a range bound: `-`, `+`, an ID, or `(ID` (exclusive). `missing_seq` completes a
/// bare `<ms>`; `start` says which side (for the exclusive step and its error).
pub fn interval_id(arg: &[u8], start: bool) -> Result<StreamId, CmdError> {
    let missing = if start { 0 } else { u64::MAX };
    if arg.len() > 1 && arg[0] == b'(' {
        let p = id::parse(&arg[1..], missing, true, false).ok_or(CmdError::msg(ERR_INVALID_ID))?;
        let stepped = if start { p.id.incr() } else { p.id.decr() };
        return stepped.ok_or(CmdError::msg(if start {
            "ERR invalid start ID for the interval"
        } else {
            "ERR invalid end ID for the interval"
        }));
    }
    id::parse(arg, missing, false, false)
        .map(|p| p.id)
        .ok_or(CmdError::msg(ERR_INVALID_ID))
}

/// Trimming arguments of XADD and XTRIM.
struct TrimArgs {
    how: Option<Trim>,
    approx: bool,
    limit: u64,
}

/// Parses XADD/XTRIM options from `args[2..]`. For XADD it stops at the ID, returning its
/// position and the parsed ID; `nomkstream` is set by XADD's NOMKSTREAM.
fn parse_trim_args(
    ctx: &mut Ctx,
    args: &[Vec<u8>],
    xadd: bool,
    nomkstream: &mut bool,
) -> Result<(TrimArgs, usize, Option<id::Parsed>), CmdError> {
    let mut t = TrimArgs {
        how: None,
        approx: false,
        limit: 0,
    };
    let mut limit_given = false;
    let mut i = 2;
    let mut parsed = None;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = args[i].to_ascii_lowercase();
        if xadd && opt == b"*" {
            break;
        } else if (opt == b"maxlen" || opt == b"minid") && more > 0 {
            let maxlen = opt == b"maxlen";
            let mut approx = false;
            let next = &args[i + 1];
            if (next == b"~" || next == b"=") && more >= 2 {
                approx = next == b"~";
                i += 1;
            }
            let v = &args[i + 1];
            if maxlen {
                if matches!(t.how, Some(Trim::MinId(_))) {
                    return Err(CmdError::msg("ERR syntax error, MAXLEN and MINID options at the same time are not compatible"));
                }
                let Some(n) = crate::util::parse_i64(v) else {
                    return Err(CmdError::NotInt);
                };
                if n < 0 {
                    return Err(CmdError::msg("ERR The MAXLEN argument must be >= 0."));
                }
                t.how = Some(Trim::MaxLen(n as u64));
            } else {
                if matches!(t.how, Some(Trim::MaxLen(_))) {
                    return Err(CmdError::msg("ERR syntax error, MAXLEN and MINID options at the same time are not compatible"));
                }
                t.how = Some(Trim::MinId(strict_id(v)?));
            }
            t.approx = approx;
            i += 1;
        } else if opt == b"limit" && more > 0 {
            let Some(n) = crate::util::parse_i64(&args[i + 1]) else {
                return Err(CmdError::NotInt);
            };
            if n < 0 {
                return Err(CmdError::msg("ERR The LIMIT argument must be >= 0."));
            }
            t.limit = n as u64;
            limit_given = true;
            i += 1;
        } else if xadd && opt == b"nomkstream" {
            *nomkstream = true;
        } else if xadd {
            let Some(p) = id::parse(&args[i], 0, true, true) else {
                return Err(CmdError::msg(ERR_INVALID_ID));
            };
            parsed = Some(p);
            break;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if limit_given {
        if t.how.is_none() {
            return Err(CmdError::msg(
                "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy",
            ));
        }
        if !t.approx {
            return Err(CmdError::msg(
                "ERR syntax error, LIMIT cannot be used without the special ~ option",
            ));
        }
    } else if t.approx {
        let per_node = ctx.shared.config.settings().stream_node_max_entries as i64;
        t.limit = if per_node > 0 {
            (per_node as u64).saturating_mul(100).min(1_000_000)
        } else {
            10_000
        };
    } else {
        t.limit = 0;
    }
    Ok((t, i, parsed))
}

fn node_limits(ctx: &Ctx) -> (u64, u64) {
    (
        ctx.shared.config.settings().stream_node_max_entries,
        ctx.shared.config.settings().stream_node_max_bytes,
    )
}

fn xadd(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let mut nomkstream = false;
    let (trim, at, parsed) = parse_trim_args(ctx, args, true, &mut nomkstream)?;
    let fields_at = at + 1;
    if args.len() <= fields_at || (args.len() - fields_at) % 2 == 1 {
        return Err(CmdError::arity(&args[0]));
    }
    if let Some(p) = parsed {
        if !p.seq_auto && p.id.is_zero() {
            return Err(CmdError::msg(
                "ERR The ID specified in XADD must be greater than 0-0",
            ));
        }
    }
    let key = &args[1];
    let existed = check_type(ctx, key)?;
    if !existed && nomkstream {
        ctx.out.null();
        return Ok(());
    }
    let (max_entries, max_bytes) = node_limits(ctx);
    let now = ctx.now_ms.max(0) as u64;
    // The ID is chosen (or refused) before anything changes: a refused XADD leaves the key
    // untouched.
    let choose = |s: &Stream| -> Result<StreamId, CmdError> {
        if s.last_id == StreamId::MAX {
            return Err(CmdError::msg(
                "ERR The stream has exhausted the last possible ID, unable to add more items",
            ));
        }
        let id = match parsed {
            None => s.next_auto_id(now, None),
            Some(p) if p.seq_auto => s.next_auto_id(now, Some(p.id.ms)),
            Some(p) => (p.id > s.last_id).then_some(p.id),
        };
        id.ok_or(CmdError::msg(
            "ERR The ID specified in XADD is equal or smaller than the target stream top item",
        ))
    };
    let id = match read_stream(ctx, key, |s, _, _| choose(s))? {
        Some(id) => id,
        None => choose(&Stream::default())?,
    };
    let fields = args[fields_at..].to_vec();
    let written = write_stream(ctx, key, true, |s, es, out| {
        s.append_in(es, id, fields, max_entries, max_bytes)?;
        let trimmed = match trim.how {
            Some(how) => s.trim_in(es, how, trim.approx, trim.limit)? > 0,
            None => false,
        };
        reply_id(out, id);
        Ok(trimmed)
    })?;
    let trimmed = written.is_some_and(|w| w.result);
    notify_new(ctx, existed, key);
    notify(ctx, CLASS, "xadd", key);
    if trimmed {
        notify(ctx, CLASS, "xtrim", key);
    }
    Ok(())
}

fn xtrim(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let key = &args[1];
    let exists = check_type(ctx, key)?;
    let mut unused = false;
    let (trim, _, _) = parse_trim_args(ctx, args, false, &mut unused)?;
    let Some(how) = trim.how else {
        return Err(CmdError::Syntax);
    };
    if !exists {
        ctx.out.int(0);
        return Ok(());
    }
    let would = read_stream(ctx, key, |s, es, _| {
        Ok(s.trim_would_remove(es, how, trim.approx, trim.limit)?)
    })?;
    if would != Some(true) {
        ctx.out.int(0);
        return Ok(());
    }
    let n = write_stream(ctx, key, false, |s, es, _| {
        Ok(s.trim_in(es, how, trim.approx, trim.limit)?)
    })?
    .map_or(0, |w| w.result);
    ctx.out.int(n as i64);
    if n > 0 {
        notify(ctx, CLASS, "xtrim", key);
    }
    Ok(())
}

fn range_common(ctx: &mut Ctx, args: &[Vec<u8>], rev: bool) -> CmdResult {
    let (start_arg, end_arg) = if rev {
        (&args[3], &args[2])
    } else {
        (&args[2], &args[3])
    };
    let start = interval_id(start_arg, true)?;
    let end = interval_id(end_arg, false)?;
    let mut count: i64 = -1;
    let mut j = 4;
    while j < args.len() {
        if args[j].eq_ignore_ascii_case(b"count") && j + 1 < args.len() {
            let Some(n) = crate::util::parse_i64(&args[j + 1]) else {
                return Err(CmdError::NotInt);
            };
            count = n.max(0);
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let found = read_stream(ctx, &args[1], |_, es, out| {
        if count == 0 {
            out.null_array();
            return Ok(());
        }
        let entries = es.range(start, end, rev, count.max(0) as usize)?;
        reply_entries(out, &entries);
        Ok(())
    })?;
    if found.is_none() {
        ctx.out.array(0);
    }
    Ok(())
}

fn xrange(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    range_common(ctx, args, false)
}

fn xrevrange(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    range_common(ctx, args, true)
}

fn xlen(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let n = read_stream(ctx, &args[1], |_, es, _| Ok(es.count()))?.unwrap_or(0);
    ctx.out.int(n as i64);

    Ok(())
}

fn xdel(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let mut ids = Vec::with_capacity(args.len() - 2);
    for a in &args[2..] {
        let id = strict_id(a)?;
        ids.push(id);
    }
    let key = &args[1];
    if !check_type(ctx, key)? {
        ctx.out.int(0);
        return Ok(());
    }
    // Nothing to delete: the key stays untouched (WATCH, blocked readers), as in Redis.
    let any = read_stream(ctx, key, |_, es, _| {
        for id in &ids {
            if es.contains(*id)? {
                return Ok(true);
            }
        }
        Ok(false)
    })?;
    if any != Some(true) {
        ctx.out.int(0);
        return Ok(());
    }
    let n = write_stream(ctx, key, false, |s, es, _| {
        let mut n = 0;
        for id in ids {
            n += usize::from(s.delete_in(es, id)?);
        }
        Ok(n)
    })?
    .map_or(0, |w| w.result);
    ctx.out.int(n as i64);
    if n > 0 {
        notify(ctx, CLASS, "xdel", key);
    }
    Ok(())
}

fn xsetid(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let id = strict_id(&args[2])?;
    let mut entries_added: Option<u64> = None;
    let mut max_deleted: Option<StreamId> = None;
    let mut i = 3;
    while i < args.len() {
        let more = i + 1 < args.len();
        if args[i].eq_ignore_ascii_case(b"entriesadded") && more {
            let Some(n) = crate::util::parse_i64(&args[i + 1]) else {
                return Err(CmdError::NotInt);
            };
            if n < 0 {
                return Err(CmdError::msg("ERR entries_added must be positive"));
            }
            entries_added = Some(n as u64);
        } else if args[i].eq_ignore_ascii_case(b"maxdeletedid") && more {
            let m = strict_id(&args[i + 1])?;
            if id < m {
                return Err(CmdError::msg("ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id"));
            }
            max_deleted = Some(m);
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    let key = &args[1];
    if !check_type(ctx, key)? {
        return Err(CmdError::NoSuchKey);
    }
    read_stream(ctx, key, |_, es, _| {
        if let Some(n) = entries_added {
            if es.count() > n {
                return Err(CmdError::msg("ERR The entries_added specified in XSETID is smaller than the target stream length"));
            }
        }
        // Against the last live entry, not the last ID (which may be a deleted entry's).
        if es.last_id()?.is_some_and(|last| id < last) {
            return Err(CmdError::msg(
                "ERR The ID specified in XSETID is smaller than the target stream top item",
            ));
        }
        Ok(())
    })?;
    write_stream(ctx, key, false, |s, _, _| {
        set_ids(s, id, entries_added, max_deleted);
        Ok(())
    })?;
    ctx.out.ok();
    notify(ctx, CLASS, "xsetid", key);
    Ok(())
}

/// XSETID's changes (all in the stream's metadata).
fn set_ids(
    s: &mut Stream,
    id: StreamId,
    entries_added: Option<u64>,
    max_deleted: Option<StreamId>,
) {
    s.last_id = id;
    if let Some(n) = entries_added {
        s.entries_added = n;
    }
    if let Some(m) = max_deleted {
        s.max_deleted_id = m;
    }
}

/// The parsed options of XREAD / XREADGROUP.
pub struct ReadArgs {
    pub count: usize,
    /// Milliseconds to block (0 = forever), when BLOCK was given.
    pub block: Option<u64>,
    pub group: Option<(Vec<u8>, Vec<u8>)>,
    pub noack: bool,
    /// Index of the first key.
    pub streams_at: usize,
    pub nstreams: usize,
}

/// Parses XREAD / XREADGROUP options.
pub fn parse_read_args(args: &[Vec<u8>], xreadgroup: bool) -> Result<ReadArgs, CmdError> {
    let mut r = ReadArgs {
        count: 0,
        block: None,
        group: None,
        noack: false,
        streams_at: 0,
        nstreams: 0,
    };
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = args[i].to_ascii_lowercase();
        if opt == b"block" && more > 0 {
            i += 1;
            let Some(ms) = crate::util::parse_i64(&args[i]) else {
                return Err(CmdError::msg(
                    "ERR timeout is not an integer or out of range",
                ));
            };
            if ms < 0 {
                return Err(CmdError::msg("ERR timeout is negative"));
            }
            r.block = Some(ms as u64);
        } else if opt == b"count" && more > 0 {
            i += 1;
            let Some(n) = crate::util::parse_i64(&args[i]) else {
                return Err(CmdError::NotInt);
            };
            r.count = n.max(0) as usize;
        } else if opt == b"streams" && more > 0 {
            r.streams_at = i + 1;
            let n = args.len() - r.streams_at;
            if !n.is_multiple_of(2) {
                return Err(CmdError::msg("ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified."));
            }
            r.nstreams = n / 2;
            break;
        } else if opt == b"group" && more >= 2 {
            if !xreadgroup {
                return Err(CmdError::msg("ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead."));
            }
            r.group = Some((args[i + 1].clone(), args[i + 2].clone()));
            i += 2;
        } else if opt == b"noack" {
            if !xreadgroup {
                return Err(CmdError::msg("ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead."));
            }
            r.noack = true;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if r.streams_at == 0 {
        return Err(CmdError::Syntax);
    }
    if xreadgroup && r.group.is_none() {
        return Err(CmdError::msg("ERR Missing GROUP option for XREADGROUP"));
    }
    Ok(r)
}

/// Whether the client may block now (not inside MULTI or a script's EXEC).
pub fn may_block(ctx: &Ctx) -> bool {
    ctx.client.multi.is_none() && !ctx.client.in_exec
}

fn xread(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let r = parse_read_args(args, false)?;
    let keys = &args[r.streams_at..r.streams_at + r.nstreams];
    let id_args = &args[r.streams_at + r.nstreams..];
    let woken = ctx.client.woken;
    let mut ids = Vec::with_capacity(keys.len());
    // `$` becomes the stream's last ID now, so that a blocked read waits for later entries.
    let mut rewritten: Option<Vec<Vec<u8>>> = None;
    for (k, (key, a)) in keys.iter().zip(id_args).enumerate() {
        if a.as_slice() == b"$" {
            let last = match read_stream(ctx, key, |s, _, _| Ok(s.last_id)) {
                Ok(last) => last,
                Err(_) if woken => None,
                Err(e) => return Err(e),
            };
            let last = last.unwrap_or(StreamId::MIN);
            ids.push(last);
            rewritten.get_or_insert_with(|| args.to_vec())[r.streams_at + r.nstreams + k] =
                last.to_bytes();
            continue;
        }
        // A key of another type: WRONGTYPE, as Redis checks every key first.
        if !woken {
            check_type(ctx, key)?;
        }
        if a.as_slice() == b">" {
            return Err(CmdError::msg("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option."));
        }
        let id = strict_id(a)?;
        ids.push(id);
    }
    let mut found: Vec<(usize, Vec<(StreamId, Fields)>)> = Vec::new();
    for (k, key) in keys.iter().enumerate() {
        let after = ids[k];
        let got = read_stream(ctx, key, |_, es, _| {
            if es.last_id()?.is_none_or(|last| last <= after) {
                return Ok(None);
            }
            let Some(start) = after.incr() else {
                return Ok(None);
            };
            Ok(Some(es.range(start, StreamId::MAX, false, r.count)?))
        });
        match got {
            Ok(Some(Some(got))) => found.push((k, got)),
            Ok(_) => {}
            Err(CmdError::WrongType) => {}
            Err(e) => return Err(e),
        }
    }
    if !found.is_empty() {
        if ctx.out.resp3 {
            ctx.out.map(found.len());
        } else {
            ctx.out.array(found.len());
        }
        for (k, entries) in found {
            if !ctx.out.resp3 {
                ctx.out.array(2);
            }
            ctx.out.bulk(&keys[k]);
            ctx.out.array(entries.len());
            for (id, f) in &entries {
                reply_entry(ctx.out, *id, f);
            }
        }
        return Ok(());
    }
    match r.block {
        Some(ms) if may_block(ctx) => {
            ctx.action = match rewritten {
                Some(args) => Action::BlockWith {
                    timeout_ms: ms,
                    args,
                },
                None => Action::Block { timeout_ms: ms },
            }
        }
        _ => ctx.out.null_array(),
    }
    Ok(())
}

fn xinfo(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let sub = args[1].to_ascii_lowercase();
    let arity_ok = match sub.as_slice() {
        b"help" => args.len() == 2,
        b"stream" => args.len() >= 3,
        b"groups" => args.len() == 3,
        b"consumers" => args.len() == 4,
        _ => {
            return Err(CmdError::msg(format!(
                "ERR unknown subcommand '{}'. Try XINFO HELP.",
                String::from_utf8_lossy(&args[1])
            )))
        }
    };
    if !arity_ok {
        return Err(CmdError::msg(format!(
            "ERR wrong number of arguments for 'xinfo|{}' command",
            String::from_utf8_lossy(&sub)
        )));
    }
    if sub == b"help" {
        super::object::help(
            ctx,
            &[
                "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "CONSUMERS <key> <groupname>",
                "    Show consumers of <groupname>.",
                "GROUPS <key>",
                "    Show the stream consumer groups.",
                "STREAM <key> [FULL [COUNT <count>]",
                "    Show information about the stream.",
                "HELP",
                "    Prints this help.",
            ],
        );
        return Ok(());
    }
    let now = ctx.now_ms;
    let done = read_stream(ctx, &args[2], |s, es, out| {
        xinfo_reply(out, s, es, &sub, args, now)
    })?;
    done.ok_or(CmdError::NoSuchKey)
}

/// XINFO CONSUMERS, GROUPS or STREAM of stream `s` with entries `es`.
fn xinfo_reply(
    out: &mut Reply,
    s: &Stream,
    es: &mut dyn EntriesRead,
    sub: &[u8],
    args: &[Vec<u8>],
    now: i64,
) -> CmdResult {
    let len = es.count();
    match sub {
        b"consumers" => {
            let Some(g) = s.groups.get(&args[3]) else {
                return Err(CmdError::msg(format!(
                    "NOGROUP No such consumer group '{}' for key name '{}'",
                    String::from_utf8_lossy(&args[3]),
                    String::from_utf8_lossy(&args[2])
                )));
            };
            out.array(g.consumers.len());
            for (name, c) in &g.consumers {
                out.map(3);
                out.bulk(b"name");
                out.bulk(name);
                out.bulk(b"pending");
                out.int(c.pel.len() as i64);
                out.bulk(b"idle");
                out.int((now.saturating_sub(c.seen_time)).max(0));
            }
        }
        b"groups" => {
            out.array(s.groups.len());
            for (name, g) in &s.groups {
                out.map(6);
                out.bulk(b"name");
                out.bulk(name);
                out.bulk(b"consumers");
                out.int(g.consumers.len() as i64);
                out.bulk(b"pending");
                out.int(g.pel.len() as i64);
                out.bulk(b"last-delivered-id");
                reply_id(out, g.last_id);
                reply_group_counters(out, s, len, g);
            }
        }
        _ => xinfo_stream(out, s, es, &args[1], &args[3..])?,
    }
    Ok(())
}

/// `entries-read` and `lag` of a group (null when unknown).
fn reply_group_counters(out: &mut Reply, s: &Stream, len: u64, g: &crate::stream::group::Group) {
    out.bulk(b"entries-read");
    if g.entries_read != ENTRIES_READ_UNKNOWN {
        out.int(g.entries_read);
    } else {
        out.null();
    }
    out.bulk(b"lag");
    match s.group_lag(len, g) {
        Some(l) => out.int(l),
        None => out.null(),
    }
}

fn xinfo_stream(
    out: &mut Reply,
    s: &Stream,
    es: &mut dyn EntriesRead,
    sub: &[u8],
    opts: &[Vec<u8>],
) -> CmdResult {
    let syntax = || {
        Err(CmdError::msg(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try XINFO HELP.",
            String::from_utf8_lossy(sub)
        )))
    };
    let mut full = false;
    let mut count: i64 = 10;
    if !opts.is_empty() {
        if !opts[0].eq_ignore_ascii_case(b"full") {
            return syntax();
        }
        full = true;
        if opts.len() == 3 && opts[1].eq_ignore_ascii_case(b"count") {
            let Some(n) = crate::util::parse_i64(&opts[2]) else {
                return Err(CmdError::NotInt);
            };
            count = if n < 0 { 10 } else { n };
        } else if opts.len() != 1 {
            return syntax();
        }
    }
    let limit = if count == 0 {
        usize::MAX
    } else {
        count as usize
    };
    // The entries first: a page that cannot be read fails the command before any reply.
    let len = es.count();
    let (edges, entries) = if full {
        let entries = es.range(StreamId::MIN, StreamId::MAX, false, limit)?;
        ((None, None), entries)
    } else {
        ((es.first_entry()?, es.last_entry()?), Vec::new())
    };
    out.map(if full { 9 } else { 10 });
    out.bulk(b"length");
    out.int(len as i64);
    out.bulk(b"radix-tree-keys");
    out.int(s.nodes.len() as i64);
    out.bulk(b"radix-tree-nodes");
    out.int(s.rax_nodes() as i64);
    out.bulk(b"last-generated-id");
    reply_id(out, s.last_id);
    out.bulk(b"max-deleted-entry-id");
    reply_id(out, s.max_deleted_id);
    out.bulk(b"entries-added");
    out.int(s.entries_added as i64);
    out.bulk(b"recorded-first-entry-id");
    reply_id(out, s.first_id);
    if !full {
        out.bulk(b"groups");
        out.int(s.groups.len() as i64);
        for (name, e) in [("first-entry", edges.0), ("last-entry", edges.1)] {
            out.bulk(name.as_bytes());
            match e {
                Some((id, f)) => reply_entry(out, id, &f),
                None => out.null(),
            }
        }
        return Ok(());
    }
    out.bulk(b"entries");
    reply_entries(out, &entries);
    out.bulk(b"groups");
    out.array(s.groups.len());
    for (name, g) in &s.groups {
        out.map(7);
        out.bulk(b"name");
        out.bulk(name);
        out.bulk(b"last-delivered-id");
        reply_id(out, g.last_id);
        reply_group_counters(out, s, len, g);
        out.bulk(b"pel-count");
        out.int(g.pel.len() as i64);
        out.bulk(b"pending");
        let pel: Vec<_> = g.pel.iter().take(limit).collect();
        out.array(pel.len());
        for (id, p) in pel {
            out.array(4);
            reply_id(out, *id);
            out.bulk(&p.consumer);
            out.int(p.delivery_time);
            out.int(p.delivery_count as i64);
        }
        out.bulk(b"consumers");
        out.array(g.consumers.len());
        for (cname, c) in &g.consumers {
            out.map(4);
            out.bulk(b"name");
            out.bulk(cname);
            out.bulk(b"seen-time");
            out.int(c.seen_time);
            out.bulk(b"pel-count");
            out.int(c.pel.len() as i64);
            out.bulk(b"pending");
            let ids: Vec<_> = c.pel.iter().take(limit).collect();
            out.array(ids.len());
            for id in ids {
                let p = &g.pel[id];
                out.array(3);
                reply_id(out, *id);
                out.int(p.delivery_time);
                out.int(p.delivery_count as i64);
            }
        }
    }
    Ok(())
}
