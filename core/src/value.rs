//! What core needs to know about the server's values: their size, and how to (de)serialize them.

use crate::store::StoreError;

/// A value type the object cache can hold. Core never looks inside a value; it asks the value
/// for its memory footprint (for eviction) and for its serialized payload (on IO workers).
pub trait CacheValue: Clone + Send + Sync + 'static {
    /// Approximate heap bytes owned by the value, used to decide how much eviction frees.
    fn mem_size(&self) -> usize;
    /// Type tag written into the record header ([`crate::encoding`]).
    fn type_tag(&self) -> u8;
    /// Appends the serialized payload to `out`.
    fn encode_payload(&self, out: &mut Vec<u8>);
    /// Rebuilds a value from a payload written by `encode_payload` with the same tag.
    fn decode_payload(type_tag: u8, payload: &[u8]) -> Result<Self, StoreError>;
    /// Whether the value is a manifest whose pages live under other keys (see
    /// [`crate::pages`]): such a value is handed back through
    /// [`Keyspace::take_released`](crate::Keyspace::take_released) when it is replaced,
    /// deleted or expires, so its pages can be deleted.
    fn owns_pages(&self) -> bool {
        false
    }
    /// Keys in the page namespace ([`crate::pages`]) of the records that hold the rest of a
    /// value stored across several (a large manifest split in parts, so that a save rewrites
    /// only the parts that changed). The load that read the value reads them in the same job
    /// and hands them to [`CacheValue::link`] before the value reaches the cache: a value is
    /// never seen half loaded.
    fn linked_keys(&self) -> Vec<Vec<u8>> {
        Vec::new()
    }
    /// Completes a value with the records named by [`CacheValue::linked_keys`], decoded, in
    /// that order (`None` for a record the store does not have).
    fn link(&mut self, _parts: Vec<Option<Self>>) -> Result<(), StoreError> {
        Ok(())
    }
    /// The records of a value stored across several that its save writes beside its own, in
    /// the same batch (so they reach the store together or not at all): appended to `out`,
    /// on the IO worker that encodes the value. The value decides what changed since its last
    /// save that reached the store; the returned closure, if any, runs once this batch has
    /// (a failed batch does not run it, and the next save writes the same again).
    fn linked_writes(&self, _out: &mut Vec<LinkedWrite>) -> Option<LinkedCommit> {
        None
    }
}

/// A record in the page namespace ([`crate::pages`]) written with a value's own (see
/// [`CacheValue::linked_writes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedWrite {
    /// The record's key in the page namespace.
    pub key: Vec<u8>,
    /// The record to put, as a type tag and payload; `None` deletes the key.
    pub put: Option<(u8, Vec<u8>)>,
}

/// Run once a batch with a value's linked writes has reached the store.
pub type LinkedCommit = Box<dyn FnOnce() + Send>;
