//! `kvtier-logstore-server`: the stock kvtier server (same settings, commands and INFO) over the
//! example log-structured store. Everything a custom backend needs to ship a server binary.

use kvtier_example_logstore::LogStore;
use std::sync::Arc;

fn main() -> std::process::ExitCode {
    kvtier_server::serve_with("logstore", |dir, _config| {
        let store = LogStore::open(dir).map_err(|e| format!("can't open the log store: {e}"))?;
        Ok(Arc::new(store))
    })
}
