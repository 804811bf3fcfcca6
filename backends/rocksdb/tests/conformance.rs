use kvtier_rocksdb::RocksStore;

kvtier_core::conformance_tests!(|dir: &std::path::Path| RocksStore::open(dir));
