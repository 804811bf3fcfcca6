//! The one place that knows the concrete backends: opens the configured one, and refuses a data
//! directory written by another backend.

use kvtier_core::{DiskStore, StoreError};
use std::path::Path;
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
    let store_dir = dir.join(kind);
    let store: Arc<dyn DiskStore> = match kind {
        "fs" => Arc::new(kvtier_fs::FsStore::open(&store_dir).map_err(err)?),
        "sled" => Arc::new(
            kvtier_sled::SledStore::open_with(
                &store_dir,
                kvtier_sled::SledOptions {
                    cache_capacity_bytes: config.get_u64("sled-cache-capacity"),
                },
            )
            .map_err(err)?,
        ),
        "rocksdb" => Arc::new(
            kvtier_rocksdb::RocksStore::open_with(
                &store_dir,
                kvtier_rocksdb::RocksOptions {
                    block_cache_bytes: config.get_u64("rocksdb-block-cache-size") as usize,
                    write_buffer_bytes: config.get_u64("rocksdb-write-buffer-size") as usize,
                    ..Default::default()
                },
            )
            .map_err(err)?,
        ),
        _ => unreachable!("checked above"),
    };
    Ok(store)
}

fn err(e: StoreError) -> String {
    format!("can't open the disk store: {e}")
}
