//! IO worker threads: the only place that touches the disk store. They serialize values for
//! saves and decode records for loads, so the owner thread never pays for either.

use crate::encoding;
use crate::store::{DbIndex, DiskStore, ScanPage, StoreError, WriteOp};
use crate::value::CacheValue;
use crossbeam_channel::{Receiver, Sender};
use std::sync::Arc;

/// Wakes the owner thread's event loop after a completion was sent.
pub type Notify = Arc<dyn Fn() + Send + Sync>;

pub(crate) struct SaveItem<V> {
    pub db: DbIndex,
    pub key: Vec<u8>,
    pub version: u64,
    /// `None` deletes the key.
    pub value: Option<Arc<V>>,
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
    },
    Clear {
        db: Option<DbIndex>,
    },
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
        /// (db, key, version saved, whether it was a put).
        items: Vec<(DbIndex, Vec<u8>, u64, bool)>,
        result: Result<(), StoreError>,
    },
    Scan {
        id: u64,
        result: Result<super::KeyPage, StoreError>,
    },
    Clear {
        result: Result<(), StoreError>,
    },
}

pub(crate) fn run<V: CacheValue>(
    store: Arc<dyn DiskStore>,
    jobs: Receiver<Job<V>>,
    done: Sender<Completion<V>>,
    notify: Notify,
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
                    let result = raw.and_then(|bytes| decode_loaded::<V>(bytes, now_ms));
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
            Job::Save { groups, items } => save(&*store, groups, items),
            Job::Scan {
                id,
                db,
                cursor,
                limit,
                typed,
                now_ms,
            } => Completion::Scan {
                id,
                result: store
                    .scan(db, &cursor, limit)
                    .map(|page| key_page(&*store, db, page, typed, now_ms)),
            },
            Job::Clear { db } => Completion::Clear {
                result: store.clear(db),
            },
        };
        if done.send(completion).is_err() {
            return;
        }
        notify();
    }
}

/// A scan page, with record types read (one `get_many`) when `typed`: keys deleted since the
/// scan, expired or unreadable are left out (a damaged record is logged, not fatal).
fn key_page(
    store: &dyn DiskStore,
    db: DbIndex,
    page: ScanPage,
    typed: bool,
    now_ms: i64,
) -> super::KeyPage {
    if !typed {
        return super::KeyPage {
            keys: page.keys,
            types: Vec::new(),
            next: page.next,
        };
    }
    let refs: Vec<&[u8]> = page.keys.iter().map(Vec::as_slice).collect();
    let found = store.get_many(db, &refs);
    let mut keys = Vec::with_capacity(page.keys.len());
    let mut types = Vec::with_capacity(page.keys.len());
    for (key, got) in page.keys.into_iter().zip(found) {
        let tag = match got {
            Ok(Some(bytes)) => match encoding::decode(&bytes) {
                Ok(rec) if !rec.is_expired(now_ms) => rec.type_tag,
                Ok(_) => continue,
                Err(e) => {
                    log::warn!("scan: skipping a damaged record: {e}");
                    continue;
                }
            },
            Ok(None) => continue,
            Err(e) => {
                log::warn!("scan: reading a record failed: {e}");
                continue;
            }
        };
        keys.push(key);
        types.push(tag);
    }
    super::KeyPage {
        keys,
        types,
        next: page.next,
    }
}

fn decode_loaded<V: CacheValue>(
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
    let value = V::decode_payload(rec.type_tag, rec.payload)?;
    Ok(Loaded::Value(value, rec.expire_at_ms))
}

fn save<V: CacheValue>(
    store: &dyn DiskStore,
    groups: Vec<u64>,
    items: Vec<SaveItem<V>>,
) -> Completion<V> {
    let ops: Vec<WriteOp> = items
        .iter()
        .map(|it| match &it.value {
            Some(v) => {
                let mut value = Vec::with_capacity(v.mem_size() + 16);
                encoding::encode_with(v.type_tag(), it.expire_at, &mut value, |out| {
                    v.encode_payload(out)
                });
                WriteOp::Put {
                    db: it.db,
                    key: it.key.clone(),
                    value,
                }
            }
            None => WriteOp::Delete {
                db: it.db,
                key: it.key.clone(),
            },
        })
        .collect();
    let result = store.write(&ops).and_then(|()| store.sync());
    Completion::Save {
        groups,
        items: items
            .into_iter()
            .map(|it| {
                let put = it.value.is_some();
                (it.db, it.key, it.version, put)
            })
            .collect(),
        result,
    }
}
