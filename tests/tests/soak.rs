//! A short bounded smoke of the soak (`kvtier-bench soak`, bench/src/soak.rs) against the
//! server on the current test backend: a tiny dataset through `maxmemory 1mb` (so values go
//! through the disk store), 8 clients for a few seconds of the mixed workload with every reply
//! checked, then owned keys read back after SAVE and after a restart. Asserts no error reply,
//! no wrong value and no mismatch; not timing (the soak's figures are in docs/reliability.md).

use kvtier_tests::{server_binary, test_backend};
use std::path::PathBuf;
use std::process::Command;

/// `kvtier-bench` is built next to the server binary (`cargo build --release --workspace
/// --bins`, as `make test` does).
fn bench_binary() -> PathBuf {
    let server = server_binary();
    let dir = server.parent().expect("server binary directory");
    let bin = dir.join("kvtier-bench");
    assert!(
        bin.exists(),
        "{} not found: run `cargo build --release -p kvtier-bench` first",
        bin.display()
    );
    bin
}

#[test]
fn a_short_soak_has_no_errors_and_loses_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let csv = tmp.path().join("soak.csv");
    let out = Command::new(bench_binary())
        .args(["soak", "--backend", &test_backend()])
        .args(["--seconds", "4", "--ops", "200000", "--clients", "8"])
        .args([
            "--maxmemory-mb",
            "1",
            "--data-mb",
            "3",
            "--owned-per-client",
            "16",
        ])
        .arg("--server-bin")
        .arg(server_binary())
        .arg("--csv")
        .arg(&csv)
        // The soak's servers put their data directories under TMPDIR.
        .env("TMPDIR", tmp.path())
        .output()
        .expect("run kvtier-bench soak");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "kvtier-bench soak failed ({}):\n{stdout}\n{stderr}",
        out.status
    );

    let text = std::fs::read_to_string(&csv).expect("the soak's CSV");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("CSV header").split(',').collect();
    let row: Vec<&str> = lines.next().expect("CSV row").split(',').collect();
    let col = |name: &str| -> u64 {
        let i = header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no column {name} in {header:?}"));
        row[i]
            .parse()
            .unwrap_or_else(|_| panic!("column {name}: {:?}", row[i]))
    };
    assert_eq!(
        col("errors"),
        0,
        "error replies or wrong values:\n{stdout}\n{stderr}"
    );
    assert_eq!(
        col("verify_mismatches"),
        0,
        "owned keys lost or wrong:\n{stdout}\n{stderr}"
    );
    assert!(col("ops") > 0, "no load ran:\n{stdout}");
    // 8 clients x 16 owned keys, read after SAVE and after the restart; a key whose write got
    // an error is skipped, and there were none.
    assert_eq!(col("verified_keys"), 2 * 8 * 16, "{stdout}");
}
