//! kvtier-core: everything between the Redis command layer and a disk store.
//!
//! A third-party backend depends on this crate alone: implement [`store::DiskStore`] and prove it
//! with the conformance kit (feature `testkit`, macro [`conformance_tests!`]).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cache;
pub mod cursor;
pub mod dbmap;
pub mod diskkeys;
pub mod encoding;
pub mod engine;
pub mod keycount;
pub mod keysample;
pub mod memstore;
pub mod negcache;
pub mod pages;
pub mod store;
pub mod value;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use cache::{Db, Keyspace, Residency};
pub use engine::{Engine, EngineConfig, Event, KeyFilter, KeyPage};
pub use store::{DbIndex, DiskStore, HeadPage, ScanPage, StoreError, WriteOp};
pub use value::CacheValue;
