//! Shared helpers: opening a backend by name, number formatting, percentiles, CSV output.

use kvtier_core::{DiskStore, StoreError};
use std::fmt::Write as _;
use std::path::Path;

/// Backends the server knows (`e2e` starts the server with one of these).
pub const BACKENDS: &[&str] = &["fs", "sled", "rocksdb"];

/// Backends this binary can open directly (`backends`): the server's, plus the example
/// third-party backend `logstore` (examples/logstore), which the server does not know.
pub const STORE_BACKENDS: &[&str] = &["fs", "sled", "rocksdb", "logstore"];

/// Opens a backend with its default options (the server's defaults too) in `dir`.
pub fn open_store(kind: &str, dir: &Path) -> Result<Box<dyn DiskStore>, String> {
    let opened: Result<Box<dyn DiskStore>, StoreError> = match kind {
        "fs" => kvtier_fs::FsStore::open(dir).map(|s| Box::new(s) as Box<dyn DiskStore>),
        "sled" => kvtier_sled::SledStore::open(dir).map(|s| Box::new(s) as Box<dyn DiskStore>),
        "rocksdb" => {
            kvtier_rocksdb::RocksStore::open(dir).map(|s| Box::new(s) as Box<dyn DiskStore>)
        }
        "logstore" => {
            kvtier_example_logstore::LogStore::open(dir).map(|s| Box::new(s) as Box<dyn DiskStore>)
        }
        other => {
            return Err(format!(
                "unknown backend '{other}' (valid: {})",
                STORE_BACKENDS.join(", ")
            ))
        }
    };
    opened.map_err(|e| format!("open {kind} store in {}: {e}", dir.display()))
}

/// `1234567.8` → `"1,234,568"`; small rates keep one decimal.
pub fn fmt_rate(x: f64) -> String {
    if !x.is_finite() {
        return "N/A".into();
    }
    if x < 100.0 {
        return format!("{x:.1}");
    }
    let digits = format!("{:.0}", x);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A ratio such as `0.42x` or `12.3x`.
pub fn fmt_ratio(x: f64) -> String {
    if !x.is_finite() {
        "N/A".into()
    } else if x >= 10.0 {
        format!("{x:.0}x")
    } else if x >= 1.0 {
        format!("{x:.1}x")
    } else {
        format!("{x:.2}x")
    }
}

/// The `p`-th percentile (0..=100) of sorted values, nearest-rank.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Renders a markdown table with a header row; columns after the first are right-aligned.
pub fn markdown_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        out.push('|');
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i == 0 {
                let _ = write!(out, " {c:<w$} |");
            } else {
                let _ = write!(out, " {c:>w$} |");
            }
        }
        out.push('\n');
    };
    line(header.to_vec(), &mut out);
    out.push('|');
    for (i, w) in widths.iter().enumerate() {
        if i == 0 {
            let _ = write!(out, "{}|", "-".repeat(w + 2));
        } else {
            let _ = write!(out, "{}:|", "-".repeat(w + 1));
        }
    }
    out.push('\n');
    for row in rows {
        line(row.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

/// Writes a CSV file (values must not contain commas or quotes; ours are numbers and names).
pub fn write_csv(path: &Path, header: &[&str], rows: &[Vec<String>]) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    let mut text = header.join(",");
    text.push('\n');
    for row in rows {
        debug_assert!(row.iter().all(|c| !c.contains([',', '"', '\n'])));
        text.push_str(&row.join(","));
        text.push('\n');
    }
    std::fs::write(path, text).map_err(|e| format!("write {}: {e}", path.display()))
}

/// Bytes allocated on disk under `dir` (blocks, not apparent sizes: one small file costs a
/// whole block).
pub fn disk_usage(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            total += meta.blocks() * 512;
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_ratios() {
        assert_eq!(fmt_rate(1234567.8), "1,234,568");
        assert_eq!(fmt_rate(123.4), "123");
        assert_eq!(fmt_rate(12.34), "12.3");
        assert_eq!(fmt_rate(f64::NAN), "N/A");
        assert_eq!(fmt_ratio(0.123), "0.12x");
        assert_eq!(fmt_ratio(2.26), "2.3x");
        assert_eq!(fmt_ratio(25.0), "25x");
    }

    #[test]
    fn percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
    }

    #[test]
    fn table_shape() {
        let t = markdown_table(&["a", "bb"], &[vec!["x".into(), "1".into()]]);
        assert_eq!(t, "| a | bb |\n|---|---:|\n| x |  1 |\n");
    }
}
