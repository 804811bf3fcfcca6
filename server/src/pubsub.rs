//! Pub/sub registry: which clients listen on which channels and patterns.

use std::collections::{HashMap, HashSet};

#[derive(Debug, Default)]
pub struct PubSub {
    pub channels: HashMap<Vec<u8>, HashSet<u64>>,
    pub patterns: HashMap<Vec<u8>, HashSet<u64>>,
}
