//! The threads of a process and their CPU priorities, from `/proc` (Linux only): what tests of
//! background work at a lower priority look at.

/// (name, nice value) of every thread of process `pid`; empty where `/proc` cannot be read.
pub fn thread_nices(pid: u32) -> Vec<(String, i64)> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for t in tasks.flatten() {
        let t = t.path();
        let comm = std::fs::read_to_string(t.join("comm")).unwrap_or_default();
        let stat = std::fs::read_to_string(t.join("stat")).unwrap_or_default();
        // The fields after the name (which may hold spaces and parentheses) start with field 3,
        // the state; field 19 is the nice value.
        let nice = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(16)?.parse().ok());
        if let Some(n) = nice {
            out.push((comm.trim().to_string(), n));
        }
    }
    out
}
