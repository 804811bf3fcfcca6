//! The whole conformance kit in one line.

use kvtier_example_logstore::LogStore;

kvtier_core::conformance_tests!(|dir: &std::path::Path| LogStore::open(dir));
