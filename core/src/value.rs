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
}
