//! The settings table's own tests: memory values, validation by CONFIG SET, and the config
//! file.

use super::*;

#[test]
fn memory_units() {
    assert_eq!(parse_memory("1k"), Some(1000));
    assert_eq!(parse_memory("1kb"), Some(1024));
    assert_eq!(parse_memory("64mb"), Some(64 << 20));
    assert_eq!(parse_memory("2GB"), Some(2 << 30));
    assert_eq!(parse_memory("12"), Some(12));
    assert_eq!(parse_memory("1x"), None);
}

#[test]
fn set_validates() {
    let mut c = Config::default();
    assert_eq!(c.settings().proto_max_bulk_len, 512 << 20);
    c.set("maxmemory", "64mb", true).unwrap();
    assert_eq!(c.settings().maxmemory, 64 << 20);
    assert!(c.set("port", "1", true).unwrap_err().contains("immutable"));
    assert!(c.set("nope", "1", false).is_err());
    assert!(c.set("timeout", "abc", true).is_err());
    // Any name: the binary that opens the store decides (the stock one refuses lmdb).
    assert!(c.set("backend", "lmdb", false).is_ok());
    let dir = tempfile::tempdir().unwrap();
    let err = crate::backend::open_backend("lmdb", dir.path(), &c)
        .err()
        .unwrap();
    assert!(err.contains("fs, sled, rocksdb"), "{err}");
}

#[test]
fn buffer_limits_have_redis_bounds() {
    let mut c = Config::default();
    let between = |name: &str| {
        format!(
            "CONFIG SET failed (possibly related to argument '{name}') - argument must be \
             between 1048576 and 9223372036854775807 inclusive"
        )
    };
    for name in ["client-query-buffer-limit", "proto-max-bulk-len"] {
        for v in [
            "0",
            "1",
            "1048575",
            "1023kb",
            "9223372036854775808",
            "99999999999999999999",
            "",
            "kb",
        ] {
            assert_eq!(c.set(name, v, true), Err(between(name)), "{name} {v}");
        }
        for v in ["-1", "abc", "1.5mb", "1xb"] {
            let err = c.set(name, v, true).unwrap_err();
            assert!(
                err.ends_with("- argument must be a memory value"),
                "{v}: {err}"
            );
        }
        c.set(name, "1mb", true).unwrap();
        assert_eq!(c.get(name), Some("1048576"));
        c.set(name, "9223372036854775807", true).unwrap();
        assert_eq!(c.get(name), Some("9223372036854775807"));
    }
    c.set("client-query-buffer-limit", "2MB", true).unwrap();
    assert_eq!(c.settings().client_query_buffer_limit, 2 << 20);
    // Past 64 bits saturates, the unit wraps (Redis's `strtoull` and multiplication).
    assert_eq!(parse_memory("99999999999999999999"), Some(u64::MAX));
    assert_eq!(parse_memory("17179869185gb"), Some(1 << 30));
    assert_eq!(parse_memory(" 2mb"), None);
    assert_eq!(parse_memory("+5mb"), None);
    // No digits are 0, as Redis reads them.
    assert_eq!(parse_memory("kb"), Some(0));
    assert_eq!(parse_memory(""), Some(0));
}

#[test]
fn file_errors_name_the_line() {
    let dir = std::env::temp_dir().join(format!("kvtier-conf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("k.conf");
    std::fs::write(&f, "# c\nport 7000\nbogus 1\n").unwrap();
    let err = Config::default().load_file(&f).unwrap_err();
    assert!(err.contains("line 3"), "{err}");
    std::fs::write(&f, "port 7000\nmaxmemory 10mb\n").unwrap();
    let mut c = Config::default();
    c.load_file(&f).unwrap();
    assert_eq!(c.get("port"), Some("7000"));
    std::fs::remove_dir_all(&dir).unwrap();
}
