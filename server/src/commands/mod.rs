//! The command table and what a command handler sees ([`Ctx`]).
//!
//! Every family lives in its own file and exports `COMMANDS`, a slice of [`CommandSpec`]. The
//! server looks a request up here, checks arity, makes sure the command's keys are in memory
//! (parking the client otherwise), and then calls the handler, which runs without blocking.

pub mod args;
pub mod bitops;
pub mod blocking;
pub mod compat;
pub mod connection;
pub mod dump;
pub mod error;
pub mod geo;
pub mod hashes;
pub mod hashes_paged;
pub mod hll;
pub mod info;
pub mod keys;
pub mod keyspecs;
pub mod list_access;
pub mod lists;
pub mod lists_paged;
pub mod monitor;
pub mod notify;
pub mod object;
pub mod page_out;
pub mod paged_hashlike;
pub mod paged_sample;
pub mod pause;
pub mod pubsub;
pub mod server_cmds;
pub mod sets;
pub mod sets_paged;
pub mod sort;
pub mod stream_access;
pub mod streams;
pub mod streams_groups;
pub mod streams_paged;
pub mod strings;
pub mod swapdb;
pub mod tracking;
pub mod transactions;
pub mod typed;
pub mod zsets;
pub mod zsets_paged;

use crate::client::ClientState;
use crate::reply::Reply;
use crate::shared::Shared;
use crate::value::Value;
use kvtier_core::{Db, Engine};
use rustc_hash::FxHashMap;
use std::sync::OnceLock;

pub use error::{CmdError, CmdResult};
pub use typed::TypedDb;

/// A command's implementation: it writes its reply into `ctx.out`, or fails with a
/// [`CmdError`] before writing anything (see [`run`]).
pub type Handler = fn(&mut Ctx, &[Vec<u8>]) -> CmdResult;

/// Whether `argc` arguments (the name included) fit `arity` in Redis's convention: exactly
/// `arity` when positive, at least `-arity` when negative (0 takes any number).
pub fn arity_accepts(arity: i32, argc: usize) -> bool {
    let n = i32::try_from(argc).unwrap_or(i32::MAX);
    !((arity > 0 && n != arity) || (arity < 0 && n < -arity))
}

/// Runs a command's handler. A failure becomes the error reply and is returned so that the
/// caller counts it (INFO errorstats, commandstats `failed_calls`).
pub fn run(spec: &CommandSpec, ctx: &mut Ctx, args: &[Vec<u8>]) -> Option<CmdError> {
    // A container's unknown subcommand or wrong arity is refused before its handler, with
    // Redis's text (subcommands.rs), whatever runs it: a client, EXEC, a script.
    if let Err(refusal) = crate::subcommands::check(spec, args) {
        let e = refusal.error(spec, args);
        ctx.out.error(&e.text());
        return Some(e);
    }
    let before = ctx.out.buf.len();
    let res = (spec.handler)(ctx, args);
    crate::paged::collect_released(ctx, spec, args);
    crate::paged::collector::note_command(ctx, spec, args);
    debug_assert!(
        match &res {
            Ok(()) => ctx.out.buf.get(before) != Some(&b'-'),
            Err(_) => ctx.out.buf.len() == before,
        },
        "{}: an error reply must be the handler's Err, returned before any reply",
        spec.name
    );
    let e = res.err()?;
    ctx.out.error(&e.text());
    Some(e)
}

/// Command flags (bit set).
pub mod flags {
    /// Changes data: saved to disk, refused when memory is full (with DENYOOM).
    pub const WRITE: u32 = 1;
    pub const READONLY: u32 = 1 << 1;
    /// May grow memory: refused with -OOM while memory is over the limit.
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    /// Allowed while a RESP2 client is subscribed.
    pub const PUBSUB: u32 = 1 << 4;
    /// Runs immediately inside MULTI instead of being queued (EXEC, DISCARD, MULTI, WATCH…).
    pub const NO_QUEUE: u32 = 1 << 5;
    /// Allowed before AUTH.
    pub const NO_AUTH: u32 = 1 << 6;
    pub const FAST: u32 = 1 << 7;
    /// Not allowed inside MULTI (WATCH).
    pub const NO_MULTI: u32 = 1 << 8;
    // What a command reads of the server beyond the keyspace, prepared just before it runs
    // (the loop asks the table, never the command's name).
    /// Reads the connected clients' details (CLIENT LIST, CLIENT INFO).
    pub const VIEW_CLIENTS: u32 = 1 << 9;
    /// Reads server-wide statistics gathered outside commands (INFO).
    pub const VIEW_STATS: u32 = 1 << 10;
    /// Needs the keys changed from now on to be recorded (WATCH).
    pub const TRACK_TOUCHED: u32 = 1 << 11;
    /// Has subcommands (`CONFIG GET`): checked, counted and permitted per subcommand (see
    /// `crate::subcommands`). A flag, not a lookup by name: every request asks.
    pub const CONTAINER: u32 = 1 << 12;
}

/// Where a command's keys are, for loading them before it runs.
#[derive(Debug, Clone, Copy)]
pub enum KeySpec {
    None,
    /// first, last (negative counts from the end), step — as in Redis's command table.
    Range(i32, i32, usize),
    /// `numkeys` at this index, keys right after it (SINTERCARD, ZUNION…).
    Numkeys(usize),
    /// A destination key at 1, `numkeys` at 2, keys after it (ZUNIONSTORE, ZINTERSTORE…).
    DestNumkeys,
    /// The key at 1 and the one after a `STORE` option (SORT).
    SortStore,
    /// The key at 1 and the one after the last STORE or STOREDIST option, options starting at
    /// this index (GEORADIUS, GEORADIUSBYMEMBER).
    GeoStore(usize),
    /// The keys after the STREAMS option (XREAD, XREADGROUP).
    Streams,
}

/// A key a command uses in another DB than the client's, loaded with its own keys.
#[derive(Debug, Clone, Copy)]
pub enum OtherDbKey {
    None,
    /// The key at 1, in the DB given at 2 (MOVE).
    KeyInDbArg,
    /// The key at 2, in the DB after a `DB` option (COPY).
    DestInDbOption,
}

#[derive(Debug)]
pub struct CommandSpec {
    pub name: &'static str,
    /// Redis arity: positive = exact, negative = at least.
    pub arity: i32,
    pub flags: u32,
    pub keys: KeySpec,
    /// A key in another DB (see [`CommandSpec::other_db_key`]).
    pub other_db: OtherDbKey,
    pub handler: Handler,
}

impl CommandSpec {
    pub fn has(&self, f: u32) -> bool {
        self.flags & f != 0
    }

    /// Whether this request replaces or deletes all its keys without reading their values
    /// (plain SET, MSET, SETEX, PSETEX, DEL, UNLINK): such a command may run over a key whose
    /// stored record is damaged, replacing it.
    pub fn overwrites_keys(&self, args: &[Vec<u8>]) -> bool {
        match self.name {
            "mset" | "setex" | "psetex" | "del" | "unlink" => true,
            "set" => args.iter().skip(3).all(|a| {
                !(a.eq_ignore_ascii_case(b"nx")
                    || a.eq_ignore_ascii_case(b"xx")
                    || a.eq_ignore_ascii_case(b"get")
                    || a.eq_ignore_ascii_case(b"keepttl"))
            }),
            _ => false,
        }
    }

    /// Whether this request is a blind write: it replaces whole values without reading them
    /// and its reply does not depend on them (plain SET, MSET, SETEX, PSETEX). It runs at once
    /// even when its keys are not in memory: no disk probe for a write.
    pub fn blind_write(&self, args: &[Vec<u8>]) -> bool {
        !matches!(self.name, "del" | "unlink") && self.overwrites_keys(args)
    }

    /// The key a request uses in another DB, with that DB, if any (already arity-checked;
    /// an invalid DB index gives none: the command fails without touching a key).
    pub fn other_db_key<'a>(
        &self,
        args: &'a [Vec<u8>],
        databases: usize,
    ) -> Option<(u32, &'a [u8])> {
        match self.other_db {
            OtherDbKey::None => None,
            OtherDbKey::KeyInDbArg => {
                let db = args::db_index(args.get(2)?, databases).ok()?;
                Some((db, args.get(1)?.as_slice()))
            }
            OtherDbKey::DestInDbOption => {
                let db = keys::copy_target_db(args, databases)?;
                Some((db, args.get(2)?.as_slice()))
            }
        }
    }

    /// Key arguments of a request (already arity-checked). Inline up to two keys: every
    /// request asks (residency, ACL), and most name one key.
    pub fn key_args<'a>(&self, args: &'a [Vec<u8>]) -> KeyArgs<'a> {
        let n = args.len() as i32;
        let mut v = KeyArgs::new();
        match self.keys {
            KeySpec::None => {}
            KeySpec::Range(first, last, step) => {
                let last = if last < 0 { n + last } else { last.min(n - 1) };
                v.extend(
                    (first..=last)
                        .step_by(step.max(1))
                        .filter(|&i| i >= 1 && i < n)
                        .map(|i| args[i as usize].as_slice()),
                );
            }
            KeySpec::Numkeys(at) => v.extend(numkeys(args, at)),
            KeySpec::DestNumkeys => {
                v.push(args[1].as_slice());
                v.extend(numkeys(args, 2));
            }
            KeySpec::SortStore => {
                v.push(args[1].as_slice());
                let store = (2..args.len().saturating_sub(1))
                    .rev()
                    .find(|&i| args[i].eq_ignore_ascii_case(b"store"));
                if let Some(i) = store {
                    v.push(args[i + 1].as_slice());
                }
            }
            KeySpec::GeoStore(base) => {
                v.push(args[1].as_slice());
                v.extend(geo::store_key_index(args, base).map(|i| args[i].as_slice()));
            }
            KeySpec::Streams => v.extend(streams::stream_keys(args)),
        }
        v
    }
}

/// The key arguments of one request (see [`CommandSpec::key_args`]).
pub type KeyArgs<'a> = smallvec::SmallVec<[&'a [u8]; 2]>;

fn numkeys(args: &[Vec<u8>], at: usize) -> impl Iterator<Item = &[u8]> {
    let n = args
        .get(at)
        .and_then(|a| crate::util::parse_i64(a))
        .filter(|&n| n >= 0)
        .unwrap_or(0);
    args.iter().skip(at + 1).take(n as usize).map(Vec::as_slice)
}

/// What the server loop must do after a handler returns (beyond sending its reply).
#[derive(Debug, Default)]
pub enum Action {
    #[default]
    None,
    /// Close the connection once the reply is written (QUIT).
    Close,
    /// Wait until everything dirty is durable, then reply (SAVE, SHUTDOWN, keyspace reads).
    Barrier(BarrierThen),
    /// Clear one DB or all, then reply +OK.
    Clear(Option<u32>),
    /// Block on the command's keys (BLPOP…) for up to `timeout_ms` (0 = forever); the command
    /// runs again when one of them changes.
    Block { timeout_ms: u64 },
    /// Like `Block`, but re-run as `args` (XREAD with `$` replaced by the last ID at the time).
    BlockWith { timeout_ms: u64, args: Vec<Vec<u8>> },
    /// Deliver a message to subscribers, then reply with their number.
    /// `shard`: SPUBLISH, to shard channel subscribers only.
    Publish {
        channel: Vec<u8>,
        message: Vec<u8>,
        shard: bool,
    },
    /// Read the store for a keyspace-wide command (KEYS, SCAN, DBSIZE, RANDOMKEY) on the IO
    /// workers; the reply is written when the last page is merged. (Boxed: every command
    /// returns an `Action`, and this one is rare and large.)
    KeyScan(Box<crate::keyscan::KeyScan>),
    /// Sleep the whole server (DEBUG SLEEP), as Redis does.
    Sleep(std::time::Duration),
    /// SWAPDB of two different DBs (already validated; +OK already written).
    SwapDb(u32, u32),
}

/// What happens when a barrier completes.
#[derive(Debug)]
pub enum BarrierThen {
    /// Reply +OK (SAVE) or record completion (BGSAVE, already replied).
    Save { reply: bool },
    /// Flush, then exit.
    Shutdown,
}

pub struct Ctx<'a> {
    pub engine: &'a mut Engine<Value>,
    pub client: &'a mut ClientState,
    pub out: &'a mut Reply,
    pub shared: &'a mut Shared,
    pub now_ms: i64,
    pub action: Action,
}

impl Ctx<'_> {
    /// The client's selected DB.
    pub fn db(&mut self) -> Db<'_, Value> {
        self.engine.db(self.client.db, self.now_ms)
    }

    /// Another DB (MOVE, COPY … DB).
    pub fn db_at(&mut self, index: u32) -> Db<'_, Value> {
        self.engine.db(index, self.now_ms)
    }
}

/// The optional `count [WITH…]` arguments of HRANDFIELD and ZRANDMEMBER (`flag` is WITHVALUES or
/// WITHSCORES): `(count, with)`, or Redis's error.
pub fn random_count_args(args: &[Vec<u8>], flag: &[u8]) -> Result<(Option<i64>, bool), CmdError> {
    let Some(a) = args.get(2) else {
        return Ok((None, false));
    };
    let n = match crate::util::parse_i64(a) {
        None => return Err(CmdError::NotInt),
        Some(i64::MIN) => {
            return Err(CmdError::msg(
                "ERR value is out of range, value must between -9223372036854775807 and \
                 9223372036854775807",
            ))
        }
        Some(n) => n,
    };
    if args.len() > 4 || (args.len() == 4 && !args[3].eq_ignore_ascii_case(flag)) {
        return Err(CmdError::Syntax);
    }
    let with = args.len() == 4;
    if with && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&n) {
        return Err(CmdError::OutOfRange);
    }
    Ok((Some(n), with))
}

/// The fewest reply bytes one drawn element takes (`$0\r\n\r\n` is 6).
const MIN_DRAW_REPLY: u64 = 4;

/// Draws with repetitions (HRANDFIELD, SRANDMEMBER, ZRANDMEMBER with a negative count) reply
/// one element per draw, so a count whose reply could not be held (more than
/// `proto-max-bulk-len` bytes at the fewest bytes per element) is refused as out of range
/// rather than built: Redis grows such a reply until memory runs out, and here a count of
/// -9223372036854775807 once panicked allocating it. A missing key still answers empty, as in
/// Redis.
pub fn refuse_huge_draws(ctx: &Ctx, key: &[u8], count: Option<i64>) -> Result<(), CmdError> {
    let Some(n) = count.filter(|n| *n < 0) else {
        return Ok(());
    };
    let limit = ctx.shared.config.settings().proto_max_bulk_len;
    if n.unsigned_abs().saturating_mul(MIN_DRAW_REPLY) > limit
        && ctx.engine.peek(ctx.client.db, key).is_some()
    {
        return Err(CmdError::OutOfRange);
    }
    Ok(())
}

fn all_families() -> impl Iterator<Item = &'static CommandSpec> {
    [
        connection::COMMANDS,
        server_cmds::COMMANDS,
        keys::COMMANDS,
        strings::COMMANDS,
        lists::COMMANDS,
        hashes::COMMANDS,
        sets::COMMANDS,
        zsets::COMMANDS,
        transactions::COMMANDS,
        pubsub::COMMANDS,
        blocking::COMMANDS,
        object::COMMANDS,
        bitops::COMMANDS,
        compat::COMMANDS,
        sort::COMMANDS,
        monitor::COMMANDS,
        crate::scripting::commands::COMMANDS,
        crate::acl::COMMANDS,
        dump::COMMANDS,
        hll::COMMANDS,
        geo::COMMANDS,
        streams::COMMANDS,
        streams_groups::COMMANDS,
    ]
    .into_iter()
    .flatten()
}

/// The ACL category of a command's data type or purpose (`@string`, `@list`, …), by the
/// family it belongs to, as COMMAND INFO reports it.
pub fn type_category(c: &CommandSpec) -> Option<&'static str> {
    let families: &[(&[CommandSpec], &str)] = &[
        (connection::COMMANDS, "@connection"),
        (server_cmds::COMMANDS, ""),
        (keys::COMMANDS, "@keyspace"),
        (strings::COMMANDS, "@string"),
        (lists::COMMANDS, "@list"),
        (hashes::COMMANDS, "@hash"),
        (sets::COMMANDS, "@set"),
        (zsets::COMMANDS, "@sortedset"),
        (transactions::COMMANDS, "@transaction"),
        (pubsub::COMMANDS, "@pubsub"),
        (blocking::COMMANDS, "@list"),
        (object::COMMANDS, "@keyspace"),
        (bitops::COMMANDS, "@bitmap"),
        (compat::COMMANDS, ""),
        (sort::COMMANDS, ""),
        (monitor::COMMANDS, ""),
        (crate::scripting::commands::COMMANDS, "@scripting"),
        (dump::COMMANDS, "@keyspace"),
        (hll::COMMANDS, "@hyperloglog"),
        (geo::COMMANDS, "@geo"),
        (streams::COMMANDS, "@stream"),
        (streams_groups::COMMANDS, "@stream"),
    ];
    families
        .iter()
        // By name: the tables are `const`s, whose addresses the compiler need not keep unique,
        // so pointer equality found no family in some builds.
        .find(|(f, _)| f.iter().any(|s| s.name == c.name))
        .map(|(_, cat)| *cat)
        .filter(|cat| !cat.is_empty())
}

/// Looks a command up by name (any case).
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    // Fx: the names are ours, not a client's, and this runs for every request.
    static TABLE: OnceLock<FxHashMap<&'static str, &'static CommandSpec>> = OnceLock::new();
    let table = TABLE.get_or_init(|| all_families().map(|c| (c.name, c)).collect());
    let mut lower = [0u8; 32];
    if name.len() > lower.len() {
        return None;
    }
    for (d, s) in lower.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    std::str::from_utf8(&lower[..name.len()])
        .ok()
        .and_then(|n| table.get(n).copied())
}

/// Every command, for COMMAND / COMMAND COUNT.
pub fn all() -> Vec<&'static CommandSpec> {
    all_families().collect()
}

/// Shorthand for building a table entry.
pub const fn cmd(
    name: &'static str,
    arity: i32,
    flags: u32,
    keys: KeySpec,
    handler: Handler,
) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags,
        keys,
        other_db: OtherDbKey::None,
        handler,
    }
}

impl CommandSpec {
    /// The entry with a key in another DB (table shorthand, see [`OtherDbKey`]).
    pub const fn with_other_db(mut self, other_db: OtherDbKey) -> Self {
        self.other_db = other_db;
        self
    }
}

/// Key spec of a command whose only key is its first argument.
pub const KEY1: KeySpec = KeySpec::Range(1, 1, 1);
/// Every argument from the first on is a key.
pub const ALL_KEYS: KeySpec = KeySpec::Range(1, -1, 1);
