//! The one place that knows the concrete backends: opens the configured one, and refuses a data
//! directory written by another backend.

use kvtier_core::{DiskStore, StoreError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Name of the file recording which backend owns a data directory.
const MARKER: &str = "KVTIER_BACKEND";

/// Backends compiled into this binary.
pub const BACKENDS: &[&str] = &["fs", "sled", "rocksdb"];

pub fn open_backend(
    kind: &str,
    dir: &Path,
    config: &crate::config::Config,
) -> Result<Arc<dyn DiskStore>, String> {
    if !BACKENDS.contains(&kind) {
        return Err(format!(
            "unknown backend '{kind}' (valid: {})",
            BACKENDS.join(", ")
        ));
    }
    let store_dir = claim_dir(kind, dir)?;
    open_builtin(kind, &store_dir, config)
}

/// Makes `dir` the data directory of backend `kind` (created if needed, marked on first use)
/// and returns the directory the store itself lives in. A directory written by another
/// backend, or holding anything that is not kvtier's, is refused.
pub fn claim_dir(kind: &str, dir: &Path) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("can't create data directory {}: {e}", dir.display()))?;
    let marker = dir.join(MARKER);
    match std::fs::read_to_string(&marker) {
        Ok(found) if found.trim() != kind => {
            return Err(format!(
                "data directory {} was written by the '{}' backend; start with --backend {} or use another --dir",
                dir.display(),
                found.trim(),
                found.trim()
            ))
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // A directory with data but no marker is not ours to take over.
            let foreign = std::fs::read_dir(dir)
                .map_err(|e| e.to_string())?
                .filter_map(|e| e.ok())
                .any(|e| e.file_name() != MARKER);
            if foreign {
                return Err(format!(
                    "data directory {} is not empty and holds no kvtier backend marker",
                    dir.display()
                ));
            }
            std::fs::write(&marker, format!("{kind}\n"))
                .and_then(|_| std::fs::File::open(dir).and_then(|d| d.sync_all()))
                .map_err(|e| format!("can't write {}: {e}", marker.display()))?;
        }
        Err(e) => return Err(format!("can't read {}: {e}", marker.display())),
    }
    Ok(dir.join(kind))
}

/// Work a built-in backend does after a clean shutdown, once the store is closed (sled: see
/// `SledStore::snapshot_after_close`); errors are logged, the data is already durable.
pub fn after_clean_close(kind: &str, dir: &Path) {
    if kind == "sled" {
        let started = std::time::Instant::now();
        match kvtier_sled::SledStore::snapshot_after_close(dir.join(kind)) {
            Ok(()) => log::info!("sled: recovery snapshot written in {:?}", started.elapsed()),
            Err(e) => log::warn!("sled: writing a recovery snapshot after shutdown failed: {e}"),
        }
    }
}

fn open_builtin(
    kind: &str,
    store_dir: &Path,
    config: &crate::config::Config,
) -> Result<Arc<dyn DiskStore>, String> {
    let store: Arc<dyn DiskStore> = match kind {
        "fs" => Arc::new(kvtier_fs::FsStore::open(store_dir).map_err(err)?),
        "sled" => Arc::new(
            kvtier_sled::SledStore::open_with(
                store_dir,
                kvtier_sled::SledOptions {
                    cache_capacity_bytes: sled_cache(config),
                },
            )
            .map_err(err)?,
        ),
        "rocksdb" => Arc::new(
            kvtier_rocksdb::RocksStore::open_with(
                store_dir,
                kvtier_rocksdb::RocksOptions {
                    block_cache_bytes: rocks_block_cache(config) as usize,
                    write_buffer_bytes: rocks_write_buffer(config) as usize,
                    // Background work yields to clients, as the save workers do.
                    low_priority_compactions: config.settings().io_save_nice > 0,
                    ..Default::default()
                },
            )
            .map_err(err)?,
        ),
        _ => unreachable!("checked above"),
    };
    Ok(store)
}

/// A backend memory setting: the configured value, or (0) one sized from `maxmemory`, so that
/// the backend's caches fit inside the limit instead of on top of it.
fn sized(config: &crate::config::Config, set: u64, share: u64, min: u64, max: u64) -> u64 {
    match set {
        0 => match config.settings().maxmemory {
            0 => max,
            m => (m / share).clamp(min, max),
        },
        set => set,
    }
}

fn rocks_block_cache(config: &crate::config::Config) -> u64 {
    sized(
        config,
        config.settings().rocksdb_block_cache_size,
        8,
        1 << 20,
        64 << 20,
    )
}

fn rocks_write_buffer(config: &crate::config::Config) -> u64 {
    sized(
        config,
        config.settings().rocksdb_write_buffer_size,
        16,
        1 << 20,
        16 << 20,
    )
}

fn sled_cache(config: &crate::config::Config) -> u64 {
    sized(
        config,
        config.settings().sled_cache_capacity,
        8,
        1 << 20,
        64 << 20,
    )
}

/// Bytes the backend may hold in memory beyond kvtier's cache (RocksDB: block cache plus a
/// memtable being filled and one being flushed; sled: its page cache). `maxmemory` covers
/// both: the object cache gets what is left.
pub fn memory_budget(kind: &str, config: &crate::config::Config) -> usize {
    (match kind {
        "rocksdb" => rocks_block_cache(config) + 2 * rocks_write_buffer(config),
        "sled" => sled_cache(config),
        _ => 0,
    }) as usize
}

fn err(e: StoreError) -> String {
    format!("can't open the disk store: {e}")
}
