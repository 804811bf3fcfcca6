//! kvtier-core: everything between the Redis command layer and a disk store.
//!
//! A third-party backend depends on this crate alone: implement [`store::DiskStore`] and prove it
//! with the conformance kit (feature `testkit`, macro [`conformance_tests!`]).

#![forbid(unsafe_code)]

pub mod encoding;
pub mod store;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use store::{DbIndex, DiskStore, ScanPage, StoreError, WriteOp};
