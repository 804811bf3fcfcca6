//! IO worker threads: the only place that touches the disk store. They serialize values for
//! saves and decode records for loads, so the owner thread never pays for either.

use crate::encoding;
use crate::keycount::{self, StoredCounts};
use crate::pages::PAGES_NS;
use crate::store::{DbIndex, DiskStore, StoreError, WriteOp};
use crate::value::{CacheValue, LinkedCommit};
use crossbeam_channel::{Receiver, Sender};
use std::collections::HashMap;
use std::sync::Arc;

/// Wakes the owner thread's event loop after a completion was sent.
pub type Notify = Arc<dyn Fn() + Send + Sync>;

pub(crate) struct SaveItem<V> {
    pub db: DbIndex,
    pub key: Vec<u8>,
    pub version: u32,
    /// `None` deletes the key.
    pub value: Option<Arc<V>>,
    pub expire_at: Option<i64>,
    /// Whether the store holds the key before this save, if the owner knows.
    pub on_disk: Option<bool>,
    /// The DB's flush epoch when the save was dispatched.
    pub epoch: u64,
}

/// One key of a completed save.
pub(crate) struct Saved {
    pub db: DbIndex,
    pub key: Vec<u8>,
    /// The entry version the save wrote.
    pub version: u32,
    /// Written (`true`) or deleted.
    pub put: bool,
    /// Whether the store held the key before (resolved by the worker when the owner did not
    /// know).
    pub existed: bool,
    /// The DB's flush epoch when the save was dispatched.
    pub epoch: u64,
    /// The expire time written with the value, if any.
    pub expire_at: Option<i64>,
}

pub(crate) enum Job<V> {
    /// Loads of keys of one DB, read with one `get_many`.
    Load {
        db: DbIndex,
        keys: Vec<Vec<u8>>,
        epoch: u64,
        now_ms: i64,
    },
    Save {
        groups: Vec<u64>,
        items: Vec<SaveItem<V>>,
    },
    Scan {
        id: u64,
        db: DbIndex,
        cursor: Vec<u8>,
        limit: usize,
        /// Also read each key's record header: type tag, and drop expired ones.
        typed: bool,
        now_ms: i64,
        /// Keys to keep (before any record is read).
        filter: Option<super::KeyFilter>,
    },
    Clear {
        db: Option<DbIndex>,
        /// The DBs it covers (all of them for FLUSHALL), whose counts become 0.
        dbs: Vec<DbIndex>,
        /// The page namespace, cleared too by FLUSHALL (it keeps no count).
        pages: Option<DbIndex>,
    },
    /// Make a changed DB map (SWAPDB) durable, if no batch carried it yet.
    WriteMap,
}

impl<V> Job<V> {
    /// Whether the job writes the store: such jobs run on the lower-priority write workers.
    pub(crate) fn is_write(&self) -> bool {
        matches!(self, Job::Save { .. } | Job::Clear { .. } | Job::WriteMap)
    }
}

/// Lowers the calling thread's CPU priority by `nice` (an unprivileged thread can lower its
/// own, never raise it back). Best effort: a refusal only costs the intended scheduling.
pub(crate) fn lower_priority(nice: i32) {
    if nice <= 0 {
        return;
    }
    // On Linux a thread id names one thread for setpriority (elsewhere it would be the whole
    // process, so nothing is changed there).
    #[cfg(target_os = "linux")]
    {
        let tid = rustix::thread::gettid();
        let now = rustix::process::getpriority_process(Some(tid)).unwrap_or(0);
        if let Err(e) = rustix::process::setpriority_process(Some(tid), (now + nice).min(19)) {
            log::warn!("could not lower the save workers' CPU priority: {e}");
        }
    }
}

/// What a load found on disk.
pub(crate) enum Loaded<V> {
    Value(V, Option<i64>),
    Absent,
    /// Present on disk but past its expire time: never served, deleted by the owner.
    Expired,
}

pub(crate) enum Completion<V> {
    Load {
        db: DbIndex,
        key: Vec<u8>,
        epoch: u64,
        result: Result<Loaded<V>, StoreError>,
    },
    Save {
        groups: Vec<u64>,
        items: Vec<Saved>,
        /// The batch reached the store (`result` may still be an error of the sync after it).
        applied: bool,
        /// Bytes of the records the batch put (keys and values).
        bytes: u64,
        result: Result<(), StoreError>,
    },
    Scan {
        id: u64,
        result: Result<super::KeyPage, StoreError>,
    },
    Clear {
        result: Result<(), StoreError>,
    },
    MapWritten {
        result: Result<(), StoreError>,
    },
}

pub(crate) fn run<V: CacheValue>(
    store: Arc<dyn DiskStore>,
    counts: Arc<StoredCounts>,
    jobs: Receiver<Job<V>>,
    done: Sender<Completion<V>>,
    notify: Notify,
    pages: DbIndex,
) {
    for job in jobs {
        let completion = match job {
            Job::Load {
                db,
                keys,
                epoch,
                now_ms,
            } => {
                let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
                let mut found = store.get_many(db, &refs).into_iter();
                let mut last = None;
                for key in keys {
                    let raw = found.next().unwrap_or(Err(StoreError::Backend(
                        "get_many returned fewer answers than keys".into(),
                    )));
                    let result = raw.and_then(|bytes| decode_loaded::<V>(&*store, bytes, now_ms));
                    if let Some(prev) = last.replace(Completion::Load {
                        db,
                        key,
                        epoch,
                        result,
                    }) {
                        if done.send(prev).is_err() {
                            return;
                        }
                    }
                }
                match last {
                    Some(c) => c,
                    None => continue,
                }
            }
            Job::Save { groups, items } => save(&*store, &counts, groups, items, pages),
            Job::Scan {
                id,
                db,
                cursor,
                limit,
                typed,
                now_ms,
                filter,
            } => Completion::Scan {
                id,
                result: key_page(&*store, db, &cursor, limit, typed, now_ms, filter),
            },
            // FLUSHALL clears the Redis DBs one by one: kvtier's own records (META_DB: key
            // counts, script libraries) are not data and survive it.
            Job::Clear { db, dbs, pages } => Completion::Clear {
                result: match db {
                    Some(d) => store.clear(Some(d)),
                    None => dbs
                        .iter()
                        .chain(&pages)
                        .try_for_each(|&d| store.clear(Some(d))),
                }
                .and_then(|()| counts.cleared(&*store, dbs.into_iter())),
            },
            Job::WriteMap => Completion::MapWritten {
                result: counts.write_pending_map(&*store),
            },
        };
        if done.send(completion).is_err() {
            return;
        }
        notify();
    }
}

/// A scan page, with record types read from their headers (in the scan's own pass where the
/// backend can) when `typed`: keys deleted since, expired (listed apart) or unreadable are left
/// out (a damaged header is logged, not fatal).
fn key_page(
    store: &dyn DiskStore,
    db: DbIndex,
    cursor: &[u8],
    limit: usize,
    typed: bool,
    now_ms: i64,
    filter: Option<super::KeyFilter>,
) -> Result<super::KeyPage, StoreError> {
    if !typed {
        let mut page = store.scan(db, cursor, limit)?;
        if let Some(f) = filter {
            page.keys.retain(|k| f(k));
        }
        return Ok(super::KeyPage {
            keys: page.keys,
            types: Vec::new(),
            payload_heads: Vec::new(),
            next: page.next,
            expired: Vec::new(),
        });
    }
    // The header and the start of the payload.
    const HEAD: usize = encoding::HEAD_LEN + encoding::PAYLOAD_HEAD;
    let (page, heads) = match filter {
        // Few keys match: read the records of those only.
        Some(f) => {
            let mut page = store.scan(db, cursor, limit)?;
            page.keys.retain(|k| f(k));
            let refs: Vec<&[u8]> = page.keys.iter().map(Vec::as_slice).collect();
            let heads = store
                .get_many(db, &refs)
                .into_iter()
                .map(|r| {
                    r.map(|v| {
                        v.map(|mut v| {
                            v.truncate(HEAD);
                            v
                        })
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            (page, heads)
        }
        None => store.scan_heads(db, cursor, limit, HEAD)?,
    };
    let mut keys = Vec::with_capacity(page.keys.len());
    let mut types = Vec::with_capacity(page.keys.len());
    let mut payload_heads = Vec::with_capacity(page.keys.len());
    let mut expired = Vec::new();
    for (key, head) in page.keys.into_iter().zip(heads) {
        let Some(head) = head else { continue };
        match encoding::decode_head(&head) {
            Ok((_, Some(t))) if t <= now_ms => expired.push(key),
            Ok((tag, _)) => {
                keys.push(key);
                types.push(tag);
                payload_heads.push(encoding::head_payload(&head).to_vec());
            }
            Err(e) => log::warn!("scan: skipping a damaged record: {e}"),
        }
    }
    Ok(super::KeyPage {
        keys,
        types,
        payload_heads,
        next: page.next,
        expired,
    })
}

pub(crate) fn decode_loaded<V: CacheValue>(
    store: &dyn DiskStore,
    bytes: Option<Vec<u8>>,
    now_ms: i64,
) -> Result<Loaded<V>, StoreError> {
    let Some(bytes) = bytes else {
        return Ok(Loaded::Absent);
    };
    let rec = encoding::decode(&bytes)?;
    if rec.is_expired(now_ms) {
        return Ok(Loaded::Expired);
    }
    let mut value = V::decode_payload(rec.type_tag, rec.payload)?;
    let linked = value.linked_keys();
    if !linked.is_empty() {
        let refs: Vec<&[u8]> = linked.iter().map(Vec::as_slice).collect();
        let parts = store
            .get_many(PAGES_NS, &refs)
            .into_iter()
            .map(|raw| match raw? {
                None => Ok(None),
                Some(b) => {
                    let part = encoding::decode(&b)?;
                    V::decode_payload(part.type_tag, part.payload).map(Some)
                }
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        value.link(parts)?;
    }
    Ok(Loaded::Value(value, rec.expire_at_ms))
}

fn save<V: CacheValue>(
    store: &dyn DiskStore,
    counts: &StoredCounts,
    groups: Vec<u64>,
    items: Vec<SaveItem<V>>,
    pages: DbIndex,
) -> Completion<V> {
    // Page records are addressed in the store's page namespace here, so the store wrapper
    // (`pages::NsStore`) passes the batch through instead of copying it to rename them.
    let store_ns = |db: DbIndex| if db == pages { PAGES_NS } else { db };
    let failed = |items: Vec<SaveItem<V>>, e: StoreError| Completion::Save {
        groups: groups.clone(),
        items: items
            .into_iter()
            .map(|it| Saved {
                db: it.db,
                put: it.value.is_some(),
                existed: false,
                key: it.key,
                version: it.version,
                epoch: it.epoch,
                expire_at: it.expire_at,
            })
            .collect(),
        applied: false,
        bytes: 0,
        result: Err(e),
    };
    let existed = match resolve_presence(store, &items) {
        Ok(v) => v,
        Err(e) => return failed(items, e),
    };
    // Each value is let go of as soon as it is encoded, before the rest of the batch, the
    // write and the sync: a command that changes one of these keys meanwhile then does not have
    // to copy it (copy-on-write of a shared value: a whole page of a paged collection under
    // random writes).
    let mut ops: Vec<WriteOp> = Vec::with_capacity(items.len() + 2);
    let mut saved: Vec<Saved> = Vec::with_capacity(items.len());
    let mut deltas: HashMap<DbIndex, i64> = HashMap::new();
    let mut linked = Vec::new();
    let mut commits: Vec<LinkedCommit> = Vec::new();
    for (it, existed) in items.into_iter().zip(existed) {
        let put = it.value.is_some();
        ops.push(match it.value {
            Some(v) => {
                let mut value = Vec::with_capacity(v.mem_size() + 16);
                encoding::encode_with(v.type_tag(), it.expire_at, &mut value, |out| {
                    v.encode_payload(out)
                });
                commits.extend(v.linked_writes(&mut linked));
                WriteOp::Put {
                    db: store_ns(it.db),
                    key: it.key.clone(),
                    value,
                }
            }
            None => WriteOp::Delete {
                db: store_ns(it.db),
                key: it.key.clone(),
            },
        });
        let d = i64::from(put) - i64::from(existed);
        if d != 0 {
            *deltas.entry(it.db).or_insert(0) += d;
        }
        saved.push(Saved {
            db: it.db,
            put,
            existed,
            key: it.key,
            version: it.version,
            epoch: it.epoch,
            expire_at: it.expire_at,
        });
    }
    // Records a value keeps beside its own (deletes first: a number a value dropped and took
    // again in one batch ends written).
    linked.sort_by_key(|w| w.put.is_some());
    for w in linked {
        ops.push(match w.put {
            None => WriteOp::Delete {
                db: PAGES_NS,
                key: w.key,
            },
            Some((tag, payload)) => {
                let mut value = Vec::with_capacity(payload.len() + 16);
                encoding::encode_with(tag, None, &mut value, |out| out.extend_from_slice(&payload));
                WriteOp::Put {
                    db: PAGES_NS,
                    key: w.key,
                    value,
                }
            }
        });
    }
    // The counts are written in the batch they describe, under the lock, so they are written
    // in the order the batches are.
    let written = {
        let mut stored = counts.lock();
        let mut new_counts = Vec::new();
        for (&db, &d) in &deltas {
            if let Some(&n) = stored.get(&db) {
                let n = (n as i64 + d).max(0) as u64;
                ops.push(keycount::count_record(db, n));
                new_counts.push((db, n));
            }
        }
        let map = counts.pending_map();
        if let Some(m) = &map {
            ops.push(crate::dbmap::map_record(m));
        }
        let r = store.write(&ops);
        if r.is_ok() {
            for commit in commits {
                commit();
            }
            stored.extend(new_counts);
            if let Some(m) = &map {
                counts.map_written(m);
            }
        }
        r
    };
    if let Err(e) = written {
        return Completion::Save {
            groups,
            items: saved
                .into_iter()
                .map(|s| Saved {
                    existed: false,
                    ..s
                })
                .collect(),
            applied: false,
            bytes: 0,
            result: Err(e),
        };
    }
    let bytes = ops
        .iter()
        .map(|op| match op {
            WriteOp::Put { key, value, .. } => (key.len() + value.len()) as u64,
            WriteOp::Delete { .. } => 0,
        })
        .sum();
    let result = store.sync();
    Completion::Save {
        groups,
        items: saved,
        applied: true,
        bytes,
        result,
    }
}

/// Whether the store holds each key before the save: known by the owner for most keys; read
/// (one `get_many` per DB) for blind writes over keys that were never loaded.
fn resolve_presence<V>(
    store: &dyn DiskStore,
    items: &[SaveItem<V>],
) -> Result<Vec<bool>, StoreError> {
    let mut existed: Vec<bool> = items.iter().map(|it| it.on_disk == Some(true)).collect();
    let mut unknown: HashMap<DbIndex, Vec<usize>> = HashMap::new();
    for (i, it) in items.iter().enumerate() {
        if it.on_disk.is_none() {
            unknown.entry(it.db).or_default().push(i);
        }
    }
    for (db, idx) in unknown {
        let keys: Vec<&[u8]> = idx.iter().map(|&i| items[i].key.as_slice()).collect();
        for (&i, got) in idx.iter().zip(store.get_many(db, &keys)) {
            existed[i] = match got {
                Ok(v) => v.is_some(),
                // A damaged record is still a record (this save replaces or deletes it).
                Err(StoreError::Corruption(_)) => true,
                Err(e) => return Err(e),
            };
        }
    }
    Ok(existed)
}
