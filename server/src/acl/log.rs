//! ACL LOG: the last refusals (commands, keys, channels, failed AUTH), newest first. A refusal
//! like a recent one (same reason, context, object and user within 60 s) counts on that entry
//! instead of adding one, as in Redis.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

const GROUP_WITHIN: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct Entry {
    pub count: u64,
    pub reason: &'static str,
    pub context: &'static str,
    pub object: String,
    pub username: String,
    pub at: Instant,
    pub client_info: String,
}

#[derive(Debug, Default)]
pub struct AclLog {
    pub entries: VecDeque<Entry>,
}

impl AclLog {
    /// Records a refusal; keeps at most `max` entries.
    pub fn add(
        &mut self,
        reason: &'static str,
        context: &'static str,
        object: &str,
        username: &str,
        client_info: String,
        max: usize,
    ) {
        let now = Instant::now();
        let same = self.entries.iter().position(|e| {
            e.reason == reason
                && e.context == context
                && e.object == object
                && e.username == username
                && now.duration_since(e.at) < GROUP_WITHIN
        });
        let entry = match same.and_then(|i| self.entries.remove(i)) {
            Some(mut e) => {
                e.count += 1;
                e.at = now;
                e.client_info = client_info;
                e
            }
            None => Entry {
                count: 1,
                reason,
                context,
                object: object.to_string(),
                username: username.to_string(),
                at: now,
                client_info,
            },
        };
        self.entries.push_front(entry);
        self.entries.truncate(max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_and_bounds() {
        let mut log = AclLog::default();
        log.add("command", "toplevel", "get", "u", "a".into(), 2);
        log.add("key", "toplevel", "k", "u", "b".into(), 2);
        log.add("command", "toplevel", "get", "u", "c".into(), 2);
        assert_eq!(log.entries.len(), 2);
        assert_eq!(log.entries[0].count, 2);
        assert_eq!(log.entries[0].client_info, "c");
        log.add("command", "multi", "get", "u", "d".into(), 2);
        assert_eq!(log.entries.len(), 2);
        assert_eq!(log.entries[1].object, "get");
    }
}
