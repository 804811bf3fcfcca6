//! A log-structured kvtier backend, written the way a third party would write one: it depends
//! on `kvtier-core` (plus `crc32fast`, `memmap2` and `log`), implements [`DiskStore`] and runs
//! the conformance kit (`tests/conformance.rs`). The on-disk format is described in README.md.
//!
//! - **Writes** append one checksummed *group* per batch to the active segment file, then update
//!   an in-memory index (per DB, a `BTreeMap` from key to segment, offset and length).
//! - **Atomic batches**: recovery applies a group only if its checksum (over the whole group)
//!   holds, so a batch torn by a crash is dropped whole.
//! - **Reads** look the key up in the index and read that one record: through a memory map for
//!   sealed segments (never written again), with a positioned read for the active one.
//! - **`sync`** is an fsync of the active segment; older segments were fsynced when sealed, and
//!   the directory is fsynced after every segment creation.
//! - **Compaction** (a background thread, started when dead bytes pass a ratio) seals the active
//!   segment and copies the live records of every older segment into new ones.
//! - **Open** loads the index from the hint file written at compaction and close, and replays
//!   only the log written after it.

use kvtier_core::{cursor, DbIndex, DiskStore, ScanPage, StoreError, WriteOp};
use memmap2::Mmap;
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, ErrorKind, Read, Seek, SeekFrom, Write};
use std::ops::Bound;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

mod format;

use format::{GroupBuf, Index, Kind, Loc, GROUP_HEADER};

const LOCK: &str = "LOCK";
const HINT: &str = "index.hint";
const SEG_SUFFIX: &str = ".seg";
const TMP_SUFFIX: &str = ".tmp";
/// Compaction writes its output in groups of about this size.
const COMPACT_GROUP_BYTES: usize = 1 << 20;

/// Tuning knobs. The defaults suit a server; tests use small segments to exercise rollover.
#[derive(Debug, Clone, PartialEq)]
pub struct LogOptions {
    /// The active segment is sealed, and a new one started, once it holds this many bytes.
    pub segment_bytes: u64,
    /// Background compaction starts when dead bytes exceed this share of all segment bytes...
    pub compact_dead_ratio: f64,
    /// ...and the segments hold at least this many bytes.
    pub compact_min_bytes: u64,
    /// Whether the background compaction thread runs ([`LogStore::compact`] always works).
    pub background_compaction: bool,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            segment_bytes: 64 << 20,
            compact_dead_ratio: 0.5,
            compact_min_bytes: 16 << 20,
            background_compaction: true,
        }
    }
}

/// What [`LogStore::open`] found and did, for tests and logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenStats {
    /// The index came from the hint file (else from replaying every segment).
    pub used_hint: bool,
    /// Bytes of log read to rebuild the index (only the tail after the hint, if one was used).
    pub replayed_bytes: u64,
    /// Bytes of a torn tail cut off the last segment (a batch a crash interrupted).
    pub truncated_bytes: u64,
    /// Segment files found.
    pub segments: usize,
}

/// What one compaction did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactStats {
    pub input_segments: usize,
    pub input_bytes: u64,
    pub output_segments: usize,
    pub output_bytes: u64,
}

/// One segment file. Sealed segments are memory-mapped; the active one is read with `read_at`.
struct Segment {
    id: u64,
    path: PathBuf,
    file: File,
    map: Option<Mmap>,
}

impl Segment {
    /// Reads `len` bytes at `off`, failing as corruption if they are not all there.
    fn read(&self, off: u64, len: u64) -> Result<Vec<u8>, StoreError> {
        let short = || {
            StoreError::Corruption(format!(
                "logstore: record at {off}+{len} is past the end of segment {:016x}",
                self.id
            ))
        };
        if let Some(map) = &self.map {
            let start = usize::try_from(off).map_err(|_| short())?;
            let end = usize::try_from(off + len).map_err(|_| short())?;
            return map.get(start..end).map(<[u8]>::to_vec).ok_or_else(short);
        }
        let mut buf = vec![0; usize::try_from(len).map_err(|_| short())?];
        match self.file.read_exact_at(&mut buf, off) {
            Ok(()) => Ok(buf),
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => Err(short()),
            Err(e) => Err(StoreError::from_io(e)),
        }
    }

    /// The mapped bytes of a sealed segment (empty for an empty one).
    fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }
}

/// Maps a sealed segment.
#[allow(unsafe_code)]
fn map_sealed(file: &File) -> std::io::Result<Mmap> {
    // SAFETY: `Mmap::map` is unsafe because the mapped bytes could change (or vanish, with a
    // SIGBUS) if the file were written or truncated while mapped. This crate maps a segment only
    // once it is sealed, and never writes to or truncates a sealed segment afterwards (the only
    // truncation is of the last segment's torn tail at open, before anything is mapped).
    // Compaction removes sealed segments by unlinking them, which leaves existing maps intact.
    // Other kvtier processes are kept out by the directory lock; a process that ignores it and
    // edits segment files is outside what any store can defend against.
    unsafe { Mmap::map(file) }
}

fn seg_name(id: u64) -> String {
    format!("{id:016x}{SEG_SUFFIX}")
}

/// The id of the first segment of the next generation. Ids are `generation << 32 | sub`: new
/// active segments start a generation, compaction output takes the subs after its inputs, so
/// it sorts after them and before every segment written since the compaction started.
fn next_generation(id: u64) -> u64 {
    ((id >> 32) + 1) << 32
}

/// Index plus the segments it points into, under one lock so both change together.
#[derive(Default)]
struct State {
    index: Index,
    segments: BTreeMap<u64, Arc<Segment>>,
    /// Bytes of records the index points to.
    live_bytes: u64,
    /// Bytes of all segments (the active one up to its write offset).
    total_bytes: u64,
    keys: u64,
    key_bytes: u64,
}

impl State {
    fn put(&mut self, db: DbIndex, key: &[u8], loc: Loc) {
        let d = self.index.entry(db).or_default();
        if let Some(old) = d.get_mut(key) {
            self.live_bytes -= old.len;
            *old = loc;
        } else {
            d.insert(key.to_vec(), loc);
            self.keys += 1;
            self.key_bytes += key.len() as u64;
        }
        self.live_bytes += loc.len;
    }

    fn remove(&mut self, db: DbIndex, key: &[u8]) {
        if let Some(old) = self.index.get_mut(&db).and_then(|d| d.remove(key)) {
            self.live_bytes -= old.len;
            self.keys -= 1;
            self.key_bytes -= key.len() as u64;
        }
    }

    fn clear(&mut self, db: Option<DbIndex>) {
        let dropped: Vec<BTreeMap<Vec<u8>, Loc>> = match db {
            Some(db) => self.index.remove(&db).into_iter().collect(),
            None => std::mem::take(&mut self.index).into_values().collect(),
        };
        for (key, loc) in dropped.iter().flatten() {
            self.live_bytes -= loc.len;
            self.keys -= 1;
            self.key_bytes -= key.len() as u64;
        }
    }

    /// Applies one decoded record found at `loc`.
    fn apply(&mut self, kind: Kind, db: DbIndex, key: &[u8], loc: Loc) {
        match kind {
            Kind::Put => self.put(db, key, loc),
            Kind::Delete => self.remove(db, key),
            Kind::ClearDb => self.clear(Some(db)),
            Kind::ClearAll => self.clear(None),
        }
    }

    fn get(&self, db: DbIndex, key: &[u8]) -> Option<Loc> {
        self.index.get(&db)?.get(key).copied()
    }
}

/// The segment being appended to.
struct Writer {
    active: Arc<Segment>,
    offset: u64,
}

struct Inner {
    dir: PathBuf,
    opts: LogOptions,
    state: RwLock<State>,
    /// Serializes appends; lock order is `compacting`, then `writer`, then `state`.
    writer: Mutex<Writer>,
    /// Held for a whole compaction or checkpoint.
    compacting: Mutex<()>,
    stop: AtomicBool,
    compactions: AtomicU64,
    _lock: File,
}

/// An append-only log-structured store. Open it with [`LogStore::open`].
pub struct LogStore {
    inner: Arc<Inner>,
    compactor: Option<(SyncSender<()>, JoinHandle<()>)>,
    open_stats: OpenStats,
}

impl std::fmt::Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore")
            .field("dir", &self.inner.dir)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().expect("logstore lock poisoned")
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::from_io(e)
}

fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

impl LogStore {
    /// Opens (creating if needed) the store in `dir` with default options.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(dir, LogOptions::default())
    }

    /// Opens (creating if needed) the store in `dir`.
    pub fn open_with(dir: impl AsRef<Path>, opts: LogOptions) -> Result<Self, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(io)?;
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK))
            .map_err(io)?;
        match lock_file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(StoreError::Io(std::io::Error::new(
                    ErrorKind::WouldBlock,
                    format!("{} is in use by another logstore", dir.display()),
                )))
            }
            Err(fs::TryLockError::Error(e)) => return Err(io(e)),
        }

        // Segment files, and leftovers of an interrupted compaction or hint write.
        let mut ids = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io)? {
            let name = entry.map_err(io)?.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(TMP_SUFFIX) {
                fs::remove_file(dir.join(&*name)).map_err(io)?;
            } else if let Some(hex) = name.strip_suffix(SEG_SUFFIX) {
                if let Ok(id) = u64::from_str_radix(hex, 16) {
                    ids.push(id);
                }
            }
        }
        ids.sort_unstable();
        let mut stats = OpenStats {
            segments: ids.len(),
            ..OpenStats::default()
        };
        let mut lens: BTreeMap<u64, u64> = BTreeMap::new();
        for &id in &ids {
            let len = fs::metadata(dir.join(seg_name(id))).map_err(io)?.len();
            lens.insert(id, len);
        }

        // The index: from the hint if it is whole and fits the segments, else empty.
        let mut state = State::default();
        let mut replay_from = (0, 0);
        if let Some(hint) = load_hint(&dir, &lens) {
            stats.used_hint = true;
            replay_from = (hint.cut_seg, hint.cut_off);
            for (db, keys) in hint.index {
                for (key, loc) in keys {
                    state.put(db, &key, loc);
                }
            }
        }

        // Replay the log after the hint's cut (or all of it). Only the last segment may end in
        // a torn group: it is cut off there.
        let last = ids.last().copied();
        for &id in &ids {
            if id < replay_from.0 {
                continue;
            }
            let start = if id == replay_from.0 {
                replay_from.1
            } else {
                0
            };
            let path = dir.join(seg_name(id));
            let (end, replayed) = replay_segment(&path, id, start, &mut state)?;
            stats.replayed_bytes += replayed;
            let len = lens[&id];
            if end < len {
                if Some(id) != last {
                    return Err(StoreError::Corruption(format!(
                        "logstore: damaged group at offset {end} of sealed segment {}",
                        path.display()
                    )));
                }
                log::warn!(
                    "logstore: dropping a torn tail of {} bytes at offset {end} of {}",
                    len - end,
                    path.display()
                );
                let f = OpenOptions::new().write(true).open(&path).map_err(io)?;
                f.set_len(end).map_err(io)?;
                f.sync_all().map_err(io)?;
                stats.truncated_bytes = len - end;
                lens.insert(id, end);
            }
        }

        // Sealed segments are mapped; the last one stays the active segment.
        for (&id, &len) in &lens {
            let path = dir.join(seg_name(id));
            if Some(id) == last {
                continue;
            }
            let file = File::open(&path).map_err(io)?;
            let map = if len > 0 {
                Some(map_sealed(&file).map_err(io)?)
            } else {
                None
            };
            let seg = Segment {
                id,
                path,
                file,
                map,
            };
            state.segments.insert(id, Arc::new(seg));
            state.total_bytes += len;
        }
        let (active, offset) = match last {
            Some(id) => {
                let path = dir.join(seg_name(id));
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&path)
                    .map_err(io)?;
                let seg = Segment {
                    id,
                    path,
                    file,
                    map: None,
                };
                (Arc::new(seg), lens[&id])
            }
            None => (Arc::new(create_segment(&dir, 1 << 32)?), 0),
        };
        state.segments.insert(active.id, Arc::clone(&active));
        state.total_bytes += offset;

        let inner = Arc::new(Inner {
            dir,
            state: RwLock::new(state),
            writer: Mutex::new(Writer { active, offset }),
            compacting: Mutex::new(()),
            stop: AtomicBool::new(false),
            compactions: AtomicU64::new(0),
            _lock: lock_file,
            opts,
        });
        let compactor = inner
            .opts
            .background_compaction
            .then(|| spawn_compactor(Arc::clone(&inner)))
            .transpose()?;
        Ok(LogStore {
            inner,
            compactor,
            open_stats: stats,
        })
    }

    /// What the last open found.
    pub fn open_stats(&self) -> &OpenStats {
        &self.open_stats
    }

    /// Compacts now, in the calling thread (the background thread does the same on its own).
    pub fn compact(&self) -> Result<CompactStats, StoreError> {
        self.inner.compact()
    }

    /// Compactions completed since open, by either thread.
    pub fn compactions(&self) -> u64 {
        self.inner.compactions.load(Ordering::Relaxed)
    }

    /// Segment files currently in use (sealed and active).
    pub fn segment_count(&self) -> usize {
        self.inner.read_state().segments.len()
    }

    /// Bytes of records that are no longer the newest of their key, and of all segments.
    pub fn dead_and_total_bytes(&self) -> (u64, u64) {
        let st = self.inner.read_state();
        (st.total_bytes - st.live_bytes, st.total_bytes)
    }

    fn maybe_trigger_compaction(&self) {
        if let Some((tx, _)) = &self.compactor {
            if self.inner.should_compact() {
                // A full channel means a compaction is already pending.
                let _ = tx.try_send(());
            }
        }
    }
}

impl Drop for LogStore {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::Relaxed);
        if let Some((tx, handle)) = self.compactor.take() {
            drop(tx);
            let _ = handle.join();
        }
        // A clean close leaves a hint, so the next open reads no log at all.
        if let Err(e) = self.inner.write_hint() {
            log::warn!("logstore: writing the hint file at close failed: {e}");
        }
    }
}

fn spawn_compactor(inner: Arc<Inner>) -> Result<(SyncSender<()>, JoinHandle<()>), StoreError> {
    let (tx, rx) = sync_channel::<()>(1);
    let handle = std::thread::Builder::new()
        .name("logstore-compact".into())
        .spawn(move || {
            while rx.recv().is_ok() {
                if inner.stop.load(Ordering::Relaxed) {
                    return;
                }
                if !inner.should_compact() {
                    continue;
                }
                if let Err(e) = inner.compact() {
                    log::warn!("logstore: compaction failed: {e}");
                    // Do not spin on a persistent failure (a full disk): wait before the next
                    // try, or until the store is dropped (the channel disconnects).
                    if let Err(RecvTimeoutError::Disconnected) =
                        rx.recv_timeout(Duration::from_secs(1))
                    {
                        return;
                    }
                }
            }
        })
        .map_err(io)?;
    Ok((tx, handle))
}

/// Creates an empty segment file and makes its name durable.
fn create_segment(dir: &Path, id: u64) -> Result<Segment, StoreError> {
    let path = dir.join(seg_name(id));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(io)?;
    fsync_dir(dir).map_err(io)?;
    Ok(Segment {
        id,
        path,
        file,
        map: None,
    })
}

/// Reads the hint file, if it exists, is whole, and points only at bytes that exist.
fn load_hint(dir: &Path, lens: &BTreeMap<u64, u64>) -> Option<format::Hint> {
    let bytes = match fs::read(dir.join(HINT)) {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::NotFound => return None,
        Err(e) => {
            log::warn!("logstore: cannot read the hint file, replaying the log: {e}");
            return None;
        }
    };
    let hint = match format::decode_hint(&bytes) {
        Ok(h) => h,
        Err(e) => {
            log::warn!("logstore: ignoring the hint file ({e}), replaying the log");
            return None;
        }
    };
    let fits = |seg: u64, end: u64| lens.get(&seg).is_some_and(|&len| end <= len);
    let ok = fits(hint.cut_seg, hint.cut_off)
        && hint
            .index
            .values()
            .flat_map(BTreeMap::values)
            .all(|l| fits(l.seg, l.off + l.len));
    if !ok {
        log::warn!("logstore: the hint file does not match the segments, replaying the log");
        return None;
    }
    Some(hint)
}

/// Applies the whole groups of segment `id` from `start` on; returns where the last whole
/// group ends and how many bytes were read.
fn replay_segment(
    path: &Path,
    id: u64,
    start: u64,
    state: &mut State,
) -> Result<(u64, u64), StoreError> {
    let mut file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    file.seek(SeekFrom::Start(start)).map_err(io)?;
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut off = start;
    let mut header = [0u8; GROUP_HEADER];
    let mut body = Vec::new();
    while len - off >= GROUP_HEADER as u64 {
        r.read_exact(&mut header).map_err(io)?;
        let Some(h) = format::group_header(&header) else {
            break;
        };
        if h.body_len > len - off - GROUP_HEADER as u64 {
            break; // torn: the body was never written whole
        }
        body.resize(h.body_len as usize, 0);
        r.read_exact(&mut body).map_err(io)?;
        let Ok(records) = format::group_records(&h, &body) else {
            break;
        };
        let body_off = off + GROUP_HEADER as u64;
        for rec in records {
            let loc = Loc {
                seg: id,
                off: body_off + rec.rel as u64,
                len: rec.len as u64,
            };
            state.apply(rec.kind, rec.db, rec.key, loc);
        }
        off = body_off + h.body_len;
    }
    Ok((off, off - start))
}

impl Inner {
    fn read_state(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().expect("logstore lock poisoned")
    }

    fn write_state(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().expect("logstore lock poisoned")
    }

    fn should_compact(&self) -> bool {
        let st = self.read_state();
        let dead = st.total_bytes - st.live_bytes;
        st.total_bytes >= self.opts.compact_min_bytes
            && dead as f64 >= self.opts.compact_dead_ratio * st.total_bytes as f64
    }

    /// Appends one group to the active segment; returns the offset it starts at.
    fn append(&self, w: &mut Writer, bytes: &[u8]) -> Result<u64, StoreError> {
        if w.offset >= self.opts.segment_bytes {
            self.roll(w)?;
        }
        let base = w.offset;
        if let Err(e) = w.active.file.write_all_at(bytes, base) {
            // Cut off what may have been written, so it cannot follow the next group.
            let _ = w.active.file.set_len(base);
            return Err(io(e));
        }
        w.offset += bytes.len() as u64;
        Ok(base)
    }

    /// Seals the active segment and starts the next one.
    fn roll(&self, w: &mut Writer) -> Result<(), StoreError> {
        // Everything in the sealed segment is durable before any newer segment can be, so only
        // the last segment can ever end in a torn group.
        w.active.file.sync_data().map_err(io)?;
        let file = File::open(&w.active.path).map_err(io)?;
        let map = if w.offset > 0 {
            Some(map_sealed(&file).map_err(io)?)
        } else {
            None
        };
        let sealed = Arc::new(Segment {
            id: w.active.id,
            path: w.active.path.clone(),
            file,
            map,
        });
        let next = Arc::new(create_segment(&self.dir, next_generation(w.active.id))?);
        let mut st = self.write_state();
        st.segments.insert(sealed.id, sealed);
        st.segments.insert(next.id, Arc::clone(&next));
        w.active = next;
        w.offset = 0;
        Ok(())
    }

    /// Writes the index as of now into the hint file, atomically.
    fn write_hint(&self) -> Result<(), StoreError> {
        let (bytes, active) = {
            let w = lock(&self.writer);
            let st = self.read_state();
            (
                format::encode_hint(&st.index, w.active.id, w.offset),
                Arc::clone(&w.active),
            )
        };
        // Everything the hint points at must be durable before the hint is.
        active.file.sync_data().map_err(io)?;
        let tmp = self.dir.join(format!("{HINT}{TMP_SUFFIX}"));
        let mut f = File::create(&tmp).map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
        fs::rename(&tmp, self.dir.join(HINT)).map_err(io)?;
        fsync_dir(&self.dir).map_err(io)
    }

    fn compact(&self) -> Result<CompactStats, StoreError> {
        let _c = lock(&self.compacting);
        // Seal the active segment so that its dead records can go too; every segment but the
        // new active one is an input.
        let inputs: Vec<Arc<Segment>> = {
            let mut w = lock(&self.writer);
            if w.offset > 0 {
                self.roll(&mut w)?;
            }
            let st = self.read_state();
            st.segments
                .values()
                .filter(|s| s.id != w.active.id)
                .cloned()
                .collect()
        };
        let Some(max_input) = inputs.last().map(|s| s.id) else {
            return Ok(CompactStats::default());
        };
        let mut stats = CompactStats {
            input_segments: inputs.len(),
            input_bytes: inputs.iter().map(|s| s.bytes().len() as u64).sum(),
            ..CompactStats::default()
        };

        // Copy every record the index still points to into new segments.
        let mut out = Output {
            dir: &self.dir,
            next_id: max_input + 1,
            segment_bytes: self.opts.segment_bytes,
            files: Vec::new(),
            group: GroupBuf::default(),
            pending: Vec::new(),
            moves: Vec::new(),
        };
        for seg in &inputs {
            let data = seg.bytes();
            let mut off = 0usize;
            while off < data.len() {
                let damaged = || {
                    StoreError::Corruption(format!(
                        "logstore: damaged group at offset {off} of sealed segment {}",
                        seg.path.display()
                    ))
                };
                let h = format::group_header(&data[off..]).ok_or_else(damaged)?;
                let body_start = off + GROUP_HEADER;
                let body = usize::try_from(h.body_len)
                    .ok()
                    .and_then(|l| data.get(body_start..body_start.checked_add(l)?))
                    .ok_or_else(damaged)?;
                let records = format::group_records(&h, body).map_err(|_| damaged())?;
                {
                    let st = self.read_state();
                    for rec in records.iter().filter(|r| r.kind == Kind::Put) {
                        let loc = Loc {
                            seg: seg.id,
                            off: (body_start + rec.rel) as u64,
                            len: rec.len as u64,
                        };
                        if st.get(rec.db, rec.key) == Some(loc) {
                            let (rel, _) = out.group.push(Kind::Put, rec.db, rec.key, rec.value);
                            out.pending.push((rec.db, rec.key.to_vec(), loc, rel));
                        }
                    }
                }
                if out.group.len() >= COMPACT_GROUP_BYTES {
                    out.flush_group()?;
                }
                off = body_start + body.len();
            }
        }
        out.flush_group()?;

        // Make the output durable under its final names before anything points at it.
        let mut outputs = Vec::new();
        for (id, tmp, file, len) in std::mem::take(&mut out.files) {
            file.sync_all().map_err(io)?;
            let path = self.dir.join(seg_name(id));
            fs::rename(&tmp, &path).map_err(io)?;
            let map = if len > 0 {
                Some(map_sealed(&file).map_err(io)?)
            } else {
                None
            };
            stats.output_segments += 1;
            stats.output_bytes += len;
            outputs.push(Arc::new(Segment {
                id,
                path,
                file,
                map,
            }));
        }
        fsync_dir(&self.dir).map_err(io)?;

        // Point the index at the copies, unless a key was written again meanwhile (its new
        // record is in a newer segment, which replay applies after the copy).
        {
            let mut st = self.write_state();
            for seg in &outputs {
                st.total_bytes += seg.bytes().len() as u64;
                st.segments.insert(seg.id, Arc::clone(seg));
            }
            for (db, key, old, new) in out.moves {
                if let Some(loc) = st.index.get_mut(&db).and_then(|d| d.get_mut(&key)) {
                    if *loc == old {
                        *loc = new;
                    }
                }
            }
            for seg in &inputs {
                st.total_bytes -= seg.bytes().len() as u64;
                st.segments.remove(&seg.id);
            }
        }

        // The new hint no longer points into the inputs, so they can go, oldest first: if a crash
        // stops the deletion halfway, replaying what is left still gives the same index.
        self.write_hint()?;
        for seg in &inputs {
            match fs::remove_file(&seg.path) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(io(e)),
            }
        }
        fsync_dir(&self.dir).map_err(io)?;
        self.compactions.fetch_add(1, Ordering::Relaxed);
        Ok(stats)
    }
}

/// Compaction output being written: temp files, the group being filled, and index moves.
struct Output<'a> {
    dir: &'a Path,
    next_id: u64,
    segment_bytes: u64,
    /// `(id, temp path, file, length)` of each output segment.
    files: Vec<(u64, PathBuf, File, u64)>,
    group: GroupBuf,
    /// Records in `group`: db, key, old location, offset in the group.
    pending: Vec<(DbIndex, Vec<u8>, Loc, u64)>,
    /// db, key, old location, new location.
    moves: Vec<(DbIndex, Vec<u8>, Loc, Loc)>,
}

impl Output<'_> {
    fn flush_group(&mut self) -> Result<(), StoreError> {
        if self.group.is_empty() {
            return Ok(());
        }
        let need_new = self
            .files
            .last()
            .is_none_or(|(_, _, _, len)| *len >= self.segment_bytes);
        if need_new {
            let id = self.next_id;
            self.next_id += 1;
            let tmp = self.dir.join(format!("{}{TMP_SUFFIX}", seg_name(id)));
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&tmp)
                .map_err(io)?;
            self.files.push((id, tmp, file, 0));
        }
        let (id, _, file, len) = self.files.last_mut().expect("an output file");
        let bytes = self.group.finish();
        file.write_all_at(bytes, *len).map_err(io)?;
        for (db, key, old, rel) in self.pending.drain(..) {
            let new = Loc {
                seg: *id,
                off: *len + rel,
                len: old.len,
            };
            self.moves.push((db, key, old, new));
        }
        *len += bytes.len() as u64;
        self.group.clear();
        Ok(())
    }
}

impl DiskStore for LogStore {
    fn get(&self, db: DbIndex, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let (loc, seg) = {
            let st = self.inner.read_state();
            let Some(loc) = st.get(db, key) else {
                return Ok(None);
            };
            let seg = st.segments.get(&loc.seg).cloned().ok_or_else(|| {
                StoreError::Corruption(format!("logstore: segment {:016x} is gone", loc.seg))
            })?;
            (loc, seg)
        };
        // The segment stays readable even if compaction drops it now: we hold it.
        let bytes = seg.read(loc.off, loc.len)?;
        let bad = |what: &str| {
            StoreError::Corruption(format!(
                "logstore: {what} at offset {} of segment {:016x}",
                loc.off, loc.seg
            ))
        };
        let rec = format::record_at(&bytes, 0).map_err(|e| bad(&e))?;
        if rec.kind != Kind::Put || rec.db != db || rec.key != key || rec.len != bytes.len() {
            return Err(bad("index points at another record"));
        }
        let start = bytes.len() - rec.value.len();
        let mut bytes = bytes;
        bytes.drain(..start);
        Ok(Some(bytes))
    }

    fn write(&self, batch: &[WriteOp]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        // Encode outside the lock; one group per batch makes it all-or-nothing at recovery.
        let mut group = GroupBuf::default();
        let rels: Vec<(u64, u64)> = batch
            .iter()
            .map(|op| match op {
                WriteOp::Put { db, key, value } => group.push(Kind::Put, *db, key, value),
                WriteOp::Delete { db, key } => group.push(Kind::Delete, *db, key, &[]),
            })
            .collect();
        let bytes = group.finish();
        {
            let mut w = lock(&self.inner.writer);
            let base = self.inner.append(&mut w, bytes)?;
            let seg = w.active.id;
            // Still under the writer lock, so the index changes in log order.
            let mut st = self.inner.write_state();
            for (op, (rel, len)) in batch.iter().zip(rels) {
                let loc = Loc {
                    seg,
                    off: base + rel,
                    len,
                };
                let kind = match op {
                    WriteOp::Put { .. } => Kind::Put,
                    WriteOp::Delete { .. } => Kind::Delete,
                };
                st.apply(kind, op.db(), op.key(), loc);
            }
            st.total_bytes += bytes.len() as u64;
        }
        self.maybe_trigger_compaction();
        Ok(())
    }

    fn sync(&self) -> Result<(), StoreError> {
        // Writes that finished before this call are in this segment, or in a sealed one that
        // was fsynced when it was sealed.
        let active = Arc::clone(&lock(&self.inner.writer).active);
        active.file.sync_data().map_err(io)
    }

    fn scan(&self, db: DbIndex, cursor: &[u8], limit: usize) -> Result<ScanPage, StoreError> {
        // Key order and "continue after the last key returned": a key present for the whole
        // scan is still ahead of the cursor until it is returned, whatever is written meanwhile.
        let after = match cursor::decode(cursor, "logstore")? {
            None => Bound::Unbounded,
            Some(k) => Bound::Excluded(k),
        };
        let limit = limit.max(1);
        let st = self.inner.read_state();
        let Some(keys) = st.index.get(&db) else {
            return Ok(ScanPage::default());
        };
        let mut page: Vec<Vec<u8>> = keys
            .range::<[u8], _>((after, Bound::Unbounded))
            .take(limit + 1)
            .map(|(k, _)| k.clone())
            .collect();
        let next = (page.len() > limit).then(|| {
            page.truncate(limit);
            cursor::after(&page[limit - 1])
        });
        Ok(ScanPage { keys: page, next })
    }

    fn clear(&self, db: Option<DbIndex>) -> Result<(), StoreError> {
        let mut group = GroupBuf::default();
        match db {
            Some(db) => group.push(Kind::ClearDb, db, &[], &[]),
            None => group.push(Kind::ClearAll, 0, &[], &[]),
        };
        let bytes = group.finish();
        let mut w = lock(&self.inner.writer);
        self.inner.append(&mut w, bytes)?;
        {
            let mut st = self.inner.write_state();
            st.clear(db);
            st.total_bytes += bytes.len() as u64;
        }
        // Durable when it returns; the writer lock keeps later writes behind the clear record.
        let result = w.active.file.sync_data().map_err(io);
        drop(w);
        self.maybe_trigger_compaction();
        result
    }

    fn approximate_len(&self, db: DbIndex) -> Option<u64> {
        let st = self.inner.read_state();
        Some(st.index.get(&db).map_or(0, |d| d.len() as u64))
    }

    fn checkpoint(&self, dest: &Path) -> Result<(), StoreError> {
        match fs::create_dir(dest) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                return Err(StoreError::InvalidArgument(format!(
                    "checkpoint destination {} exists",
                    dest.display()
                )))
            }
            Err(e) => return Err(io(e)),
        }
        // No compaction may delete a segment while it is being linked.
        let _c = lock(&self.inner.compacting);
        let (segments, active, offset) = {
            let w = lock(&self.inner.writer);
            let st = self.inner.read_state();
            let sealed: Vec<Arc<Segment>> = st
                .segments
                .values()
                .filter(|s| s.id != w.active.id)
                .cloned()
                .collect();
            (sealed, Arc::clone(&w.active), w.offset)
        };
        // Sealed segments never change: a hard link is a copy (a real copy across devices).
        for seg in &segments {
            let to = dest.join(seg_name(seg.id));
            if fs::hard_link(&seg.path, &to).is_err() {
                fs::copy(&seg.path, &to).map_err(io)?;
            }
        }
        // The active segment below `offset` never changes either, even while writes go on.
        let mut copy = File::create(dest.join(seg_name(active.id))).map_err(io)?;
        let mut off = 0;
        let mut buf = vec![0u8; 1 << 20];
        while off < offset {
            let n = (offset - off).min(buf.len() as u64) as usize;
            active.file.read_exact_at(&mut buf[..n], off).map_err(io)?;
            copy.write_all(&buf[..n]).map_err(io)?;
            off += n as u64;
        }
        copy.sync_all().map_err(io)?;
        fsync_dir(dest).map_err(io)
    }

    fn atomic_batches(&self) -> bool {
        true
    }

    fn memory_usage(&self) -> Option<u64> {
        // Keys plus a location and roughly a B-tree slot's overhead per key. Mapped segments are
        // page cache, which the kernel can drop at will, so they do not count.
        let st = self.inner.read_state();
        Some(st.key_bytes + st.keys * (std::mem::size_of::<(Vec<u8>, Loc)>() as u64 + 16))
    }

    fn name(&self) -> &'static str {
        "logstore"
    }
}
