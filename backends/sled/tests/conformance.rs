use kvtier_sled::SledStore;

kvtier_core::conformance_tests!(|dir: &std::path::Path| SledStore::open(dir));
