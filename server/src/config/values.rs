//! The text syntaxes of setting values that are more than a number or a word: memory amounts
//! and keyspace event classes, each read (and normalized) exactly as Redis does.

/// The classes `notify-keyspace-events` accepts, in Redis's order for CONFIG GET.
const EVENT_CLASSES: &str = "gKE$lshzxetmdn";

/// Normalizes a `notify-keyspace-events` value as Redis prints it back.
pub(super) fn normalize_events(v: &str) -> Option<String> {
    let mut set = std::collections::BTreeSet::new();
    for ch in v.chars() {
        match ch {
            'A' => set.extend("g$lshzxetd".chars()),
            c if EVENT_CLASSES.contains(c) => {
                set.insert(c);
            }
            _ => return None,
        }
    }
    let has = |c| set.contains(&c);
    // Redis's order (keyspaceEventsFlagsToString): A or the classes, then K, E, m.
    let mut out = String::new();
    if "g$lshzxetd".chars().all(has) {
        // Redis prints no `n` after `A` although the class stays on; kvtier keeps it visible
        // (the setting is stored as text).
        out.push('A');
        if has('n') {
            out.push('n');
        }
    } else {
        out.extend("g$lshzxetdn".chars().filter(|&c| has(c)));
    }
    out.extend("KEm".chars().filter(|&c| has(c)));
    Some(out)
}

/// Parses a memory amount the way redis.conf does: `1k` = 1000, `1kb` = 1024, … `1gb`.
///
/// Reads it exactly as Redis 7.0's `memtoull` does, odd inputs included
/// (compared with redis-server 7.0.15 in tests/tests/config_memory.rs): digits then an optional
/// unit (`b`, `k`, `kb`, `m`, `mb`, `g`, `gb`, any case), nothing else — no sign, no spaces, no
/// fraction. No digits read as 0 (`""`, `kb`); more than 127 digits are refused; a number past
/// 64 bits saturates at 2^64-1 and the unit's multiplication wraps, as `strtoull` and C's
/// unsigned arithmetic do there (a bounded setting then refuses it by its range).
pub fn parse_memory(v: &str) -> Option<u64> {
    let b = v.as_bytes();
    if b.first() == Some(&b'-') {
        return None;
    }
    let split = b
        .iter()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(b.len());
    let (digits, unit) = b.split_at(split);
    let mul: u64 = match unit.to_ascii_lowercase().as_slice() {
        b"" | b"b" => 1,
        b"k" => 1000,
        b"kb" => 1024,
        b"m" => 1000 * 1000,
        b"mb" => 1024 * 1024,
        b"g" => 1000 * 1000 * 1000,
        b"gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    if digits.len() >= 128 {
        return None;
    }
    let n = digits.iter().fold(0u64, |n, d| {
        n.checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
            .unwrap_or(u64::MAX)
    });
    Some(n.wrapping_mul(mul))
}
