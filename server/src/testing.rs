//! Helpers for unit tests that need a real engine: one DB over an in-memory store, saved and
//! evicted on demand.

use crate::value::Value;
use kvtier_core::memstore::MemStore;
use kvtier_core::{Engine, EngineConfig, Event};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An engine of one DB over `store`, one IO worker, saving only when asked (see
/// [`save_and_evict`]).
pub fn engine_on(store: Arc<MemStore>) -> Engine<Value> {
    let cfg = EngineConfig {
        databases: 1,
        io_threads: 1,
        flush_delay: Duration::from_secs(3600),
        ..EngineConfig::default()
    };
    Engine::new(store, cfg, Arc::new(|| {}))
}

/// [`engine_on`] a fresh store.
pub fn engine() -> Engine<Value> {
    engine_on(Arc::new(MemStore::new()))
}

/// Saves every dirty key, then evicts the clean ones: later reads load them from the store.
pub fn save_and_evict(e: &mut Engine<Value>) {
    e.barrier(7);
    let deadline = Instant::now() + Duration::from_secs(20);
    'wait: loop {
        for ev in e.poll() {
            if let Event::BarrierDone { token: 7, result } = ev {
                result.expect("save");
                break 'wait;
            }
        }
        assert!(Instant::now() < deadline, "the save did not finish");
        e.tick();
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(e.dirty_len(), 0);
    e.evict(usize::MAX);
}
