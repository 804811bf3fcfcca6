use kvtier_fs::FsStore;

kvtier_core::conformance_tests!(|dir: &std::path::Path| FsStore::open(dir));
