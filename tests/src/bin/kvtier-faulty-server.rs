//! `kvtier-faulty-server`: the stock server over the fs backend wrapped in the conformance
//! kit's fault injector, for black-box tests of what the server does when the disk is slow.
//! Backend name `faulty-fs`. `KVTIER_FAULT_STALL_WRITES_MS=N` makes every batch write sleep N
//! milliseconds first.

use kvtier_core::testkit::faulty::{Faulty, Op};
use kvtier_fs::FsStore;
use std::sync::Arc;
use std::time::Duration;

fn main() -> std::process::ExitCode {
    kvtier_server::serve_with("faulty-fs", |dir, _config| {
        let store = Faulty::new(FsStore::open(dir).map_err(|e| format!("can't open: {e}"))?);
        if let Some(ms) = std::env::var("KVTIER_FAULT_STALL_WRITES_MS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            store
                .control()
                .stall(Some(Op::Write), Duration::from_millis(ms));
        }
        Ok(Arc::new(store))
    })
}
