//! Geo commands over sorted sets whose scores are 52-bit geohashes (see `crate::geohash`):
//! GEOADD, GEOPOS, GEODIST, GEOHASH, GEOSEARCH, GEOSEARCHSTORE, GEORADIUS[_RO],
//! GEORADIUSBYMEMBER[_RO].

use super::flags::*;
use super::notify::{class, notify, notify_new, notify_store};
use super::zsets_paged as paged;
use super::{cmd, CommandSpec, Ctx, KeySpec, KEY1};
use super::{CmdError, CmdResult, TypedDb};
use crate::geohash::{self, Search, Shape};
use crate::reply::Reply;
use crate::util::{parse_f64, parse_i64};
use crate::value::Value;
use crate::zset::{ScoreRange, ZSet};

pub const COMMANDS: &[CommandSpec] = &[
    cmd("geoadd", -5, WRITE | DENYOOM, KEY1, geoadd),
    cmd("geopos", -2, READONLY, KEY1, geopos),
    cmd("geodist", -4, READONLY, KEY1, geodist),
    cmd("geohash", -2, READONLY, KEY1, geohash_cmd),
    cmd("geosearch", -7, READONLY, KEY1, geosearch),
    cmd(
        "geosearchstore",
        -8,
        WRITE | DENYOOM,
        KeySpec::Range(1, 2, 1),
        geosearchstore,
    ),
    cmd(
        "georadius",
        -6,
        WRITE | DENYOOM,
        KeySpec::GeoStore(6),
        georadius,
    ),
    cmd("georadius_ro", -6, READONLY, KEY1, georadius_ro),
    cmd(
        "georadiusbymember",
        -5,
        WRITE | DENYOOM,
        KeySpec::GeoStore(5),
        georadiusbymember,
    ),
    cmd(
        "georadiusbymember_ro",
        -5,
        READONLY,
        KEY1,
        georadiusbymember_ro,
    ),
];

/// The index of the STORE/STOREDIST key of a GEORADIUS[BYMEMBER] request whose options start
/// at `base`, found by walking the options as the command parses them (the last one wins).
pub fn store_key_index(args: &[Vec<u8>], base: usize) -> Option<usize> {
    let mut found = None;
    let mut i = base;
    while i < args.len() {
        let a = args[i].to_ascii_lowercase();
        let has_next = i + 1 < args.len();
        match a.as_slice() {
            b"store" | b"storedist" if has_next => {
                found = Some(i + 1);
                i += 1;
            }
            b"count" if has_next => i += 1,
            _ => {}
        }
        i += 1;
    }
    found
}

/// A coordinate reply: `%.17Lf` with trailing zeros cut, as Redis prints long doubles for
/// humans (a double in RESP3, a bulk string in RESP2).
fn reply_coord(out: &mut Reply, d: f64) {
    let mut s = format!("{d:.17}");
    if s.contains('.') {
        s.truncate(s.trim_end_matches('0').trim_end_matches('.').len());
    }
    if s == "-0" {
        s = "0".into();
    }
    if out.resp3 {
        out.buf.push(b',');
        out.buf.extend_from_slice(s.as_bytes());
        out.buf.extend_from_slice(b"\r\n");
    } else {
        out.bulk(s.as_bytes());
    }
}

/// A distance reply: always a bulk string with four decimals, rounded as Redis 7.0 does it:
/// the distance times 10^4 rounded half-to-even as a double (not the exact decimal rounding
/// of `%.4f`, which differs on values a hair above a half).
fn reply_dist(out: &mut Reply, d: f64) {
    out.bulk(fixed4(d).as_bytes());
}

fn fixed4(d: f64) -> String {
    let scaled = (d * 10_000.0).round_ties_even();
    // Distances are far below i64's range; the saturating cast only guards garbage.
    let v = scaled as i64;
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    format!("{sign}{}.{:04}", a / 10_000, a % 10_000)
}

/// Parses a longitude/latitude pair.
fn lon_lat(lon: &[u8], lat: &[u8]) -> Result<(f64, f64), CmdError> {
    let (Some(x), Some(y)) = (parse_f64(lon), parse_f64(lat)) else {
        return Err(CmdError::NotFloat);
    };
    if !(geohash::LONG_MIN..=geohash::LONG_MAX).contains(&x)
        || !(geohash::LAT_MIN..=geohash::LAT_MAX).contains(&y)
    {
        return Err(CmdError::msg(format!(
            "ERR invalid longitude,latitude pair {x:.6},{y:.6}"
        )));
    }
    Ok((x, y))
}

/// Metres per unit.
fn unit(u: &[u8]) -> Result<f64, CmdError> {
    Ok(match u.to_ascii_lowercase().as_slice() {
        b"m" => 1.0,
        b"km" => 1000.0,
        b"ft" => 0.3048,
        b"mi" => 1609.34,
        _ => {
            return Err(CmdError::msg(
                "ERR unsupported unit provided. please use M, KM, FT, MI",
            ));
        }
    })
}

/// A non-negative float argument; `msg` is the error when it is not a number.
fn non_negative(a: &[u8], msg: &'static str, negative: &'static str) -> Result<f64, CmdError> {
    let Some(v) = parse_f64(a) else {
        return Err(CmdError::msg(msg));
    };
    if v < 0.0 {
        return Err(CmdError::msg(negative));
    }
    Ok(v)
}

fn geoadd(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let (mut nx, mut xx, mut ch) = (false, false, false);
    let mut i = 2;
    while i < args.len() {
        match args[i].to_ascii_lowercase().as_slice() {
            b"nx" => nx = true,
            b"xx" => xx = true,
            b"ch" => ch = true,
            _ => break,
        }
        i += 1;
    }
    if !(args.len() - i).is_multiple_of(3) || (nx && xx) {
        return Err(CmdError::Syntax);
    }
    let mut points = Vec::with_capacity((args.len() - i) / 3);
    for p in args[i..].chunks(3) {
        let (lon, lat) = lon_lat(&p[0], &p[1])?;
        points.push((geohash::encode_score(lon, lat) as f64, p[2].as_slice()));
    }
    if points.is_empty() {
        return Err(CmdError::Syntax);
    }
    let key = &args[1];
    if let Some(m) = paged::take(ctx, key) {
        // GEOADD is ZADD with NX, XX and CH.
        let o = super::zsets::ZaddOpts {
            nx,
            xx,
            ch,
            ..Default::default()
        };
        let t = paged::zadd(ctx, key, m, &points, o)?;
        let n = t.added + if ch { t.updated } else { 0 };
        ctx.out.int(n as i64);
        return Ok(());
    }
    let exists = ctx.db().check::<ZSet>(key)?;
    if !exists && xx {
        ctx.out.int(0);
        return Ok(());
    }
    // Dry run first, so that a GEOADD changing nothing does not rewrite the key.
    let changes = |z: &ZSet| {
        points.iter().any(|&(s, m)| match z.score(m) {
            None => !xx,
            Some(old) => !nx && old != s,
        })
    };
    let mut db = ctx.db();
    if exists {
        let Some(Value::ZSet(z)) = db.get(key) else {
            unreachable!("checked above")
        };
        if !changes(z) {
            ctx.out.int(0);
            return Ok(());
        }
    } else {
        db.insert(key, Value::ZSet(ZSet::default()));
    }
    let Some(Value::ZSet(z)) = db.get_mut(key) else {
        unreachable!("just checked or created")
    };
    let len_before = z.len();
    let (mut added, mut updated) = (0i64, 0i64);
    for &(s, m) in &points {
        match z.score(m) {
            None if !xx => {
                z.insert(m.to_vec(), s);
                added += 1;
            }
            Some(old) if !nx && old != s => {
                z.insert(m.to_vec(), s);
                updated += 1;
            }
            _ => {}
        }
    }
    notify_new(ctx, exists, key);
    if added + updated > 0 {
        notify(ctx, class::ZSET, "zadd", key);
    }
    paged::maybe_page_out(ctx, key, len_before);
    ctx.out.int(if ch { added + updated } else { added });
    Ok(())
}

/// For a paged sorted set at `key`: the named members' scores as a small `ZSet` (a member page
/// each, not the whole set); `None` for any other key, which is read as before.
fn named(ctx: &mut Ctx, key: &[u8], members: &[Vec<u8>]) -> Result<Option<ZSet>, CmdError> {
    match paged::shared(ctx, key) {
        Some(m) => paged::subset(ctx, &m, members).map(Some),
        None => Ok(None),
    }
}

fn geopos(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let named = named(ctx, &args[1], &args[2..])?;
    let mut db = ctx.engine.db(ctx.client.db, ctx.now_ms);
    let z = match &named {
        Some(z) => Some(z),
        None => db.read::<ZSet>(&args[1])?,
    };
    let pos: Vec<Option<(f64, f64)>> = args[2..]
        .iter()
        .map(|m| z.and_then(|z| z.score(m)).map(geohash::decode_score))
        .collect();
    ctx.out.array(pos.len());
    for p in pos {
        match p {
            None => ctx.out.null_array(),
            Some((lon, lat)) => {
                ctx.out.array(2);
                reply_coord(ctx.out, lon);
                reply_coord(ctx.out, lat);
            }
        }
    }
    Ok(())
}

fn geodist(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let to_m = match args.len() {
        4 => 1.0,
        5 => unit(&args[4])?,
        _ => return Err(CmdError::Syntax),
    };
    let named = named(ctx, &args[1], &args[2..4])?;
    let mut db = ctx.engine.db(ctx.client.db, ctx.now_ms);
    let z = match &named {
        Some(z) => Some(z),
        None => db.read::<ZSet>(&args[1])?,
    };
    let scores = z.map(|z| (z.score(&args[2]), z.score(&args[3])));
    match scores {
        Some((Some(a), Some(b))) => {
            let (lon1, lat1) = geohash::decode_score(a);
            let (lon2, lat2) = geohash::decode_score(b);
            reply_dist(ctx.out, geohash::distance(lon1, lat1, lon2, lat2) / to_m);
        }
        _ => ctx.out.null(),
    }
    Ok(())
}

fn geohash_cmd(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let named = named(ctx, &args[1], &args[2..])?;
    let mut db = ctx.engine.db(ctx.client.db, ctx.now_ms);
    let z = match &named {
        Some(z) => Some(z),
        None => db.read::<ZSet>(&args[1])?,
    };
    let hashes: Vec<Option<String>> = args[2..]
        .iter()
        .map(|m| z.and_then(|z| z.score(m)).map(geohash::geohash_string))
        .collect();
    ctx.out.array(hashes.len());
    for h in hashes {
        match h {
            None => ctx.out.null(),
            Some(h) => ctx.out.bulk(h.as_bytes()),
        }
    }
    Ok(())
}

/// Which command runs the search, as it changes the parsing.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// GEORADIUS (centre from coordinates) or GEORADIUSBYMEMBER; `store` if STORE is allowed.
    Radius { by_member: bool, store: bool },
    /// GEOSEARCH or GEOSEARCHSTORE.
    Search { store: bool },
}

#[derive(Clone, Copy, PartialEq)]
enum Sort {
    None,
    Asc,
    Desc,
}

/// A point found by a search.
struct Found {
    member: Vec<u8>,
    score: f64,
    lon: f64,
    lat: f64,
    dist: f64,
}

fn geosearch(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    search_generic(ctx, args, 1, Kind::Search { store: false })?;
    Ok(())
}

fn geosearchstore(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    search_generic(ctx, args, 2, Kind::Search { store: true })?;
    Ok(())
}

fn georadius(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let kind = Kind::Radius {
        by_member: false,
        store: true,
    };
    search_generic(ctx, args, 1, kind)
}

fn georadius_ro(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let kind = Kind::Radius {
        by_member: false,
        store: false,
    };
    search_generic(ctx, args, 1, kind)
}

fn georadiusbymember(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let kind = Kind::Radius {
        by_member: true,
        store: true,
    };
    search_generic(ctx, args, 1, kind)
}

fn georadiusbymember_ro(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let kind = Kind::Radius {
        by_member: true,
        store: false,
    };
    search_generic(ctx, args, 1, kind)
}

/// A radius: a non-negative number and a unit; `(radius in metres, metres per unit)`.
fn radius_arg(r: &[u8], u: &[u8]) -> Result<(f64, f64), CmdError> {
    let r = non_negative(
        r,
        "ERR need numeric radius",
        "ERR radius cannot be negative",
    )?;
    let to_m = unit(u)?;
    Ok((r, to_m))
}

/// The position of a member of `z`.
fn member_pos(z: &ZSet, m: &[u8]) -> Result<(f64, f64), CmdError> {
    match z.score(m) {
        Some(s) => Ok(geohash::decode_score(s)),
        None => Err(CmdError::msg("ERR could not decode requested zset member")),
    }
}

/// Everything GEOSEARCH-like commands share: argument parsing in Redis's order (so the same
/// error comes first), the cell scan, sorting, and the reply or the stored set.
fn search_generic(ctx: &mut Ctx, args: &[Vec<u8>], src: usize, kind: Kind) -> CmdResult {
    // A paged source is read whole: the search works on one `ZSet` (its cells' score ranges,
    // BYMEMBER's centre), and GEO searches are rare next to the set's reads and writes.
    let whole = paged::whole(ctx, &args[src])?;
    let mut db = ctx.engine.db(ctx.client.db, ctx.now_ms);
    let z = match &whole {
        Some(z) => Some(z),
        None => db.read::<ZSet>(&args[src])?,
    };
    let plan = plan(z, args, kind)?;
    finish(ctx, plan)
}

/// What a search found and what to do with it.
struct Plan {
    /// `None` when the source key does not exist.
    found: Option<Vec<Found>>,
    store_key: Option<Vec<u8>>,
    storedist: bool,
    withdist: bool,
    withhash: bool,
    withcoord: bool,
    event: &'static str,
}

/// Parses the arguments in Redis's order (so that the same error comes first) and runs the
/// search.
fn plan(z: Option<&ZSet>, args: &[Vec<u8>], kind: Kind) -> Result<Plan, CmdError> {
    let mut centre: Option<(f64, f64)> = None;
    // The area in the command's unit, and metres per unit.
    let mut area: Option<(Shape, f64)> = None;
    let mut store_key: Option<Vec<u8>> = None;
    let base;
    match kind {
        Kind::Radius { by_member, .. } => {
            if !by_member {
                base = 6;
                centre = Some(lon_lat(&args[2], &args[3])?);
                let (r, to_m) = radius_arg(&args[4], &args[5])?;
                area = Some((Shape::Radius(r), to_m));
            } else {
                base = 5;
                // Without a source key the member cannot be looked up: parsing goes on only
                // to know which empty reply to give.
                if let Some(z) = z {
                    centre = Some(member_pos(z, &args[2])?);
                    let (r, to_m) = radius_arg(&args[3], &args[4])?;
                    area = Some((Shape::Radius(r), to_m));
                }
            }
        }
        Kind::Search { store } => {
            base = if store { 3 } else { 2 };
            if store {
                store_key = Some(args[1].clone());
            }
        }
    }
    let (mut withdist, mut withhash, mut withcoord, mut any) = (false, false, false, false);
    let (mut from_member, mut from_lonlat, mut by_radius, mut by_box) =
        (false, false, false, false);
    let mut storedist = false;
    let mut sort = Sort::None;
    let mut count: i64 = 0;
    let is_search = matches!(kind, Kind::Search { .. });
    let search_store = matches!(kind, Kind::Search { store: true });
    let radius_store = matches!(kind, Kind::Radius { store: true, .. });
    let mut i = base;
    while i < args.len() {
        let left = args.len() - i - 1;
        match args[i].to_ascii_lowercase().as_slice() {
            b"withdist" => withdist = true,
            b"withhash" => withhash = true,
            b"withcoord" => withcoord = true,
            b"any" => any = true,
            b"asc" => sort = Sort::Asc,
            b"desc" => sort = Sort::Desc,
            b"count" if left >= 1 => {
                let Some(n) = parse_i64(&args[i + 1]) else {
                    return Err(CmdError::NotInt);
                };
                if n <= 0 {
                    return Err(CmdError::msg("ERR COUNT must be > 0"));
                }
                count = n;
                i += 1;
            }
            b"store" if left >= 1 && radius_store => {
                store_key = Some(args[i + 1].clone());
                storedist = false;
                i += 1;
            }
            b"storedist" if left >= 1 && radius_store => {
                store_key = Some(args[i + 1].clone());
                storedist = true;
                i += 1;
            }
            b"storedist" if search_store => storedist = true,
            b"frommember" if left >= 1 && is_search && !from_lonlat => {
                if let Some(z) = z {
                    centre = Some(member_pos(z, &args[i + 1])?);
                }
                from_member = true;
                i += 1;
            }
            b"fromlonlat" if left >= 2 && is_search && !from_member => {
                centre = Some(lon_lat(&args[i + 1], &args[i + 2])?);
                from_lonlat = true;
                i += 2;
            }
            b"byradius" if left >= 2 && is_search && !by_box => {
                let (r, to_m) = radius_arg(&args[i + 1], &args[i + 2])?;
                area = Some((Shape::Radius(r), to_m));
                by_radius = true;
                i += 2;
            }
            b"bybox" if left >= 3 && is_search && !by_radius => {
                let (Some(w), Some(h)) = (parse_f64(&args[i + 1]), parse_f64(&args[i + 2])) else {
                    let msg = if parse_f64(&args[i + 1]).is_none() {
                        "ERR need numeric width"
                    } else {
                        "ERR need numeric height"
                    };
                    return Err(CmdError::msg(msg));
                };
                if h < 0.0 || w < 0.0 {
                    return Err(CmdError::msg("ERR height or width cannot be negative"));
                }
                let to_m = unit(&args[i + 3])?;
                area = Some((Shape::Box(w, h), to_m));
                by_box = true;
                i += 3;
            }
            _ => {
                return Err(CmdError::Syntax);
            }
        }
        i += 1;
    }
    if (store_key.is_some() || search_store) && (withdist || withhash || withcoord) {
        let what = if search_store {
            "GEOSEARCHSTORE"
        } else {
            "STORE option in GEORADIUS"
        };
        return Err(CmdError::msg(format!(
            "ERR {what} is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        )));
    }
    let name = String::from_utf8_lossy(&args[0]).into_owned();
    if is_search && !(from_member || from_lonlat) {
        return Err(CmdError::msg(format!(
            "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}"
        )));
    }
    if is_search && !(by_radius || by_box) {
        return Err(CmdError::msg(format!(
            "ERR exactly one of BYRADIUS and BYBOX can be specified for {name}"
        )));
    }
    if any && count == 0 {
        return Err(CmdError::msg(
            "ERR the ANY argument requires COUNT argument",
        ));
    }
    let event = if is_search {
        "geosearchstore"
    } else {
        "georadiusstore"
    };
    let mut plan = Plan {
        found: None,
        store_key,
        storedist,
        withdist,
        withhash,
        withcoord,
        event,
    };
    let (Some(z), Some((lon, lat)), Some((shape, to_m))) = (z, centre, area) else {
        return Ok(plan);
    };
    // COUNT alone means the nearest ones.
    if count != 0 && sort == Sort::None && !any {
        sort = Sort::Asc;
    }
    let shape_m = match shape {
        Shape::Radius(r) => Shape::Radius(r * to_m),
        Shape::Box(w, h) => Shape::Box(w * to_m, h * to_m),
    };
    let search = Search {
        lon,
        lat,
        shape: shape_m,
    };
    // The area's extent in metres for choosing the cell size uses the unit too.
    let limit = if any { count as usize } else { 0 };
    let mut found: Vec<Found> = Vec::new();
    for (min, max) in search.score_ranges() {
        if limit > 0 && found.len() >= limit {
            break;
        }
        let range = ScoreRange {
            min: min as f64,
            max: max as f64,
            minex: false,
            maxex: true,
        };
        for (m, s) in z.range_by_score(range, false) {
            let (plon, plat) = geohash::decode_score(s);
            if let Some(dist) = search.within(plon, plat) {
                found.push(Found {
                    member: m.to_vec(),
                    score: s,
                    lon: plon,
                    lat: plat,
                    dist,
                });
                if limit > 0 && found.len() >= limit {
                    break;
                }
            }
        }
    }
    match sort {
        Sort::None => {}
        Sort::Asc => found.sort_by(|a, b| a.dist.total_cmp(&b.dist)),
        Sort::Desc => found.sort_by(|a, b| b.dist.total_cmp(&a.dist)),
    }
    let returned = if count > 0 {
        found.len().min(count as usize)
    } else {
        found.len()
    };
    found.truncate(returned);
    for f in &mut found {
        f.dist /= to_m;
    }
    plan.found = Some(found);
    Ok(plan)
}

/// Replies with what a search found, or stores it.
fn finish(ctx: &mut Ctx, plan: Plan) -> CmdResult {
    let Some(dst) = plan.store_key else {
        let found = plan.found.unwrap_or_default();
        let (withdist, withhash, withcoord) = (plan.withdist, plan.withhash, plan.withcoord);
        let opts = withdist as usize + withhash as usize + withcoord as usize;
        let out = &mut *ctx.out;
        out.array(found.len());
        for f in &found {
            if opts > 0 {
                out.array(opts + 1);
            }
            out.bulk(&f.member);
            if withdist {
                reply_dist(out, f.dist);
            }
            if withhash {
                out.int(f.score as i64);
            }
            if withcoord {
                out.array(2);
                reply_coord(out, f.lon);
                reply_coord(out, f.lat);
            }
        }
        return Ok(());
    };
    let found = plan.found.unwrap_or_default();
    let storedist = plan.storedist;
    let n = found.len();
    let mut db = ctx.db();
    let existed = db.contains(&dst);
    if n > 0 {
        let mut zs = ZSet::default();
        for f in found {
            zs.insert(f.member, if storedist { f.dist } else { f.score });
        }
        db.insert(&dst, Value::ZSet(zs));
    } else {
        db.remove(&dst);
    }
    notify_store(ctx, class::ZSET, plan.event, &dst, n > 0, existed);
    paged::maybe_page_out(ctx, &dst, 0);
    ctx.out.int(n as i64);
    Ok(())
}
