//! jemalloc's view of the process's heap (kvtier's, RocksDB's and sled's allocations alike):
//! the one place that reads it, for the memory limit and for INFO memory.

/// Bytes handed out (`allocated`), in the pages holding them (`active`: plus the free space of
/// those pages, fragmentation the process still holds) and in pages mapped in (`resident`),
/// from one snapshot of jemalloc's statistics. Named as Redis's INFO names them.
pub struct Heap {
    pub allocated: usize,
    pub active: usize,
    pub resident: usize,
}

impl Heap {
    /// Merges every arena's statistics first (costly enough to keep off a per-request path).
    pub fn read() -> Heap {
        use tikv_jemalloc_ctl::{epoch, stats};
        let _ = epoch::advance();
        Heap {
            allocated: stats::allocated::read().unwrap_or(0),
            active: stats::active::read().unwrap_or(0),
            resident: stats::resident::read().unwrap_or(0),
        }
    }
}
