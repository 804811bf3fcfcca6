//! kvtier-core: everything between the Redis command layer and a disk store.
//!
//! A third-party backend depends on this crate alone: implement [`store::DiskStore`] and prove it
//! with the conformance kit (feature `testkit`, macro [`conformance_tests!`]).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod cache;
pub mod cursor;
pub mod dbmap;
mod diskkeys;
pub mod encoding;
pub mod engine;
pub mod keycount;
mod keysample;
pub mod memstore;
mod negcache;
pub mod pages;
pub mod store;
pub mod value;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use cache::{CacheStats, Db, Residency};
pub use engine::{
    CacheReport, Engine, EngineConfig, EngineStats, Event, KeyFilter, KeyPage, SavedKey,
};
pub use store::{DbIndex, DiskStore, HeadPage, ScanPage, StoreError, WriteOp};
pub use value::{CacheValue, LinkedCommit, LinkedWrite};
