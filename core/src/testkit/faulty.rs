//! [`Faulty`]: a [`DiskStore`] wrapper that injects faults on command, to test how code above a
//! store (the engine, a server, a replication layer) copes with a store that fails.
//!
//! ```
//! # use kvtier_core::testkit::faulty::{Faulty, Fault, Op};
//! # fn demo<S: kvtier_core::DiskStore>(store: S) {
//! let store = Faulty::new(store);
//! let control = store.control(); // an Arc: hand it to another thread
//! control.fail_nth(Some(Op::Write), 3, Fault::NoSpace); // the third write from now fails
//! control.corrupt_key(0, b"damaged"); // get(0, "damaged") is Err(Corruption)
//! control.fail_sync_after_write(); // the next sync after a successful write fails
//! control.reset(); // back to a healthy store
//! # }
//! ```
//!
//! A failed operation does not reach the inner store, except `sync` after
//! [`FaultControl::fail_sync_after_write`]: the batch is applied, only its `sync` fails, which is
//! what a disk error during fsync looks like.

use crate::store::{DbIndex, DiskStore, ScanPage, StoreError, WriteOp};
use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// The kinds of operations faults can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// [`DiskStore::get`], and each key of the default [`DiskStore::get_many`].
    Get,
    /// [`DiskStore::write`].
    Write,
    /// [`DiskStore::sync`].
    Sync,
    /// [`DiskStore::scan`].
    Scan,
    /// [`DiskStore::clear`].
    Clear,
    /// [`DiskStore::checkpoint`].
    Checkpoint,
}

const OPS: [Op; 6] = [
    Op::Get,
    Op::Write,
    Op::Sync,
    Op::Scan,
    Op::Clear,
    Op::Checkpoint,
];

/// An error to inject. (`StoreError` is not `Clone`, so a fault describes one.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// `StoreError::Io` of this kind.
    Io(std::io::ErrorKind),
    /// `StoreError::NoSpace`.
    NoSpace,
    /// `StoreError::Corruption`, with a message naming the operation.
    Corruption,
    /// `StoreError::Backend` with this message.
    Backend(String),
    /// `StoreError::Unsupported`.
    Unsupported,
}

impl Fault {
    fn to_error(&self, op: Op) -> StoreError {
        let what = format!("injected fault in {op:?}");
        match self {
            Fault::Io(kind) => StoreError::Io(std::io::Error::new(*kind, what)),
            Fault::NoSpace => StoreError::NoSpace,
            Fault::Corruption => StoreError::Corruption(what),
            Fault::Backend(msg) => StoreError::Backend(format!("{what}: {msg}").into()),
            Fault::Unsupported => StoreError::Unsupported,
        }
    }
}

/// A fault waiting for its turn.
#[derive(Debug)]
struct Armed {
    op: Option<Op>,
    /// Matching operations still to let through before this one fails.
    skip: u64,
    fault: Fault,
    /// Fails every matching operation from its turn on, until reset.
    sticky: bool,
}

#[derive(Debug, Default)]
struct Plan {
    armed: Vec<Armed>,
    no_space: bool,
    corrupt: HashSet<(DbIndex, Vec<u8>)>,
    stalls: Vec<(Option<Op>, Duration)>,
    held: HashSet<Op>,
    /// 0 = off; 1 = waiting for a successful write; 2 = the next sync fails.
    sync_after_write: u8,
    calls: [u64; OPS.len()],
    injected: u64,
}

/// The shared switchboard of a [`Faulty`] store. Every method takes `&self` and may be called
/// from any thread while the store is in use; changes apply to operations that start later.
#[derive(Debug, Default)]
pub struct FaultControl {
    plan: Mutex<Plan>,
    released: Condvar,
}

fn index(op: Op) -> usize {
    OPS.iter()
        .position(|o| *o == op)
        .expect("every op is listed")
}

impl FaultControl {
    fn plan(&self) -> MutexGuard<'_, Plan> {
        // A panicking test thread must not hide the faults from the others.
        self.plan.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes the `n`-th operation of kind `op` (any kind if `None`) from now fail with `fault`,
    /// once. `n` = 1 is the next one. Several armed faults count independently.
    pub fn fail_nth(&self, op: Option<Op>, n: u64, fault: Fault) {
        assert!(n >= 1, "fail_nth counts from 1");
        self.plan().armed.push(Armed {
            op,
            skip: n - 1,
            fault,
            sticky: false,
        });
    }

    /// Makes every operation of kind `op` (any kind if `None`) fail with `fault` until
    /// [`FaultControl::reset`].
    pub fn fail_always(&self, op: Option<Op>, fault: Fault) {
        self.plan().armed.push(Armed {
            op,
            skip: 0,
            fault,
            sticky: true,
        });
    }

    /// While on, `write`, `sync` and `clear` fail with `StoreError::NoSpace` (reads still work,
    /// as on a full disk).
    pub fn set_no_space(&self, on: bool) {
        self.plan().no_space = on;
    }

    /// `get` of this key returns `StoreError::Corruption` (its data stays intact underneath).
    pub fn corrupt_key(&self, db: DbIndex, key: &[u8]) {
        self.plan().corrupt.insert((db, key.to_vec()));
    }

    /// Undoes [`FaultControl::corrupt_key`].
    pub fn heal_key(&self, db: DbIndex, key: &[u8]) {
        self.plan().corrupt.remove(&(db, key.to_vec()));
    }

    /// Every operation of kind `op` (any kind if `None`) sleeps `for_` before it runs.
    pub fn stall(&self, op: Option<Op>, for_: Duration) {
        self.plan().stalls.push((op, for_));
    }

    /// Operations of kind `op` block before they run until [`FaultControl::release`]: a stall
    /// of exactly the length a test wants, with no clock involved.
    pub fn hold(&self, op: Op) {
        self.plan().held.insert(op);
    }

    /// Lets held operations of kind `op` go on.
    pub fn release(&self, op: Op) {
        self.plan().held.remove(&op);
        self.released.notify_all();
    }

    /// The next `sync` that follows a successful `write` fails with an I/O error, without
    /// syncing: the batch is visible but not durable, as after a failed fsync.
    pub fn fail_sync_after_write(&self) {
        self.plan().sync_after_write = 1;
    }

    /// Removes every fault (held operations are released); counters are kept.
    pub fn reset(&self) {
        let mut p = self.plan();
        p.armed.clear();
        p.no_space = false;
        p.corrupt.clear();
        p.stalls.clear();
        p.held.clear();
        p.sync_after_write = 0;
        drop(p);
        self.released.notify_all();
    }

    /// Operations of kind `op` started so far (failed ones included).
    pub fn calls(&self, op: Op) -> u64 {
        self.plan().calls[index(op)]
    }

    /// Faults injected so far.
    pub fn injected(&self) -> u64 {
        self.plan().injected
    }

    /// Counts the call, waits out holds and stalls, and says whether it must fail.
    fn before(&self, op: Op, key: Option<(DbIndex, &[u8])>) -> Result<(), StoreError> {
        let mut p = self.plan();
        p.calls[index(op)] += 1;
        while p.held.contains(&op) {
            p = self.released.wait(p).unwrap_or_else(|e| e.into_inner());
        }
        let stall: Duration = p
            .stalls
            .iter()
            .filter(|(o, _)| o.is_none_or(|o| o == op))
            .map(|(_, d)| *d)
            .sum();
        if !stall.is_zero() {
            drop(p);
            std::thread::sleep(stall);
            p = self.plan();
        }
        let mut fault = None;
        // Every matching armed fault counts this call, even when an earlier one fires.
        p.armed.retain_mut(|a| {
            if a.op.is_some_and(|o| o != op) {
                return true;
            }
            if a.skip > 0 {
                a.skip -= 1;
                return true;
            }
            if fault.is_none() {
                fault = Some(a.fault.clone());
            }
            a.sticky
        });
        if fault.is_none() && p.no_space && matches!(op, Op::Write | Op::Sync | Op::Clear) {
            fault = Some(Fault::NoSpace);
        }
        if fault.is_none() && op == Op::Sync && p.sync_after_write == 2 {
            p.sync_after_write = 0;
            fault = Some(Fault::Io(std::io::ErrorKind::Other));
        }
        if let (None, Some((db, k))) = (&fault, key) {
            if p.corrupt.contains(&(db, k.to_vec())) {
                fault = Some(Fault::Corruption);
            }
        }
        match fault {
            Some(f) => {
                p.injected += 1;
                Err(f.to_error(op))
            }
            None => Ok(()),
        }
    }

    fn write_succeeded(&self) {
        let mut p = self.plan();
        if p.sync_after_write == 1 {
            p.sync_after_write = 2;
        }
    }
}

/// A [`DiskStore`] that forwards to `S` unless a fault programmed through its
/// [`FaultControl`] says otherwise. See the [module documentation](self).
#[derive(Debug)]
pub struct Faulty<S: DiskStore> {
    inner: S,
    control: Arc<FaultControl>,
}

impl<S: DiskStore> Faulty<S> {
    /// Wraps `inner`, with no fault programmed.
    pub fn new(inner: S) -> Self {
        Faulty {
            inner,
            control: Arc::new(FaultControl::default()),
        }
    }

    /// The control handle, shared with the store (clone the `Arc` freely).
    pub fn control(&self) -> Arc<FaultControl> {
        Arc::clone(&self.control)
    }

    /// The wrapped store, to read or write past the faults.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Unwraps the store, dropping the faults.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: DiskStore> DiskStore for Faulty<S> {
    fn get(&self, db: DbIndex, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.control.before(Op::Get, Some((db, key)))?;
        self.inner.get(db, key)
    }

    fn write(&self, batch: &[WriteOp]) -> Result<(), StoreError> {
        self.control.before(Op::Write, None)?;
        self.inner.write(batch)?;
        self.control.write_succeeded();
        Ok(())
    }

    fn sync(&self) -> Result<(), StoreError> {
        self.control.before(Op::Sync, None)?;
        self.inner.sync()
    }

    fn scan(&self, db: DbIndex, cursor: &[u8], limit: usize) -> Result<ScanPage, StoreError> {
        self.control.before(Op::Scan, None)?;
        self.inner.scan(db, cursor, limit)
    }

    fn clear(&self, db: Option<DbIndex>) -> Result<(), StoreError> {
        self.control.before(Op::Clear, None)?;
        self.inner.clear(db)
    }

    fn approximate_len(&self, db: DbIndex) -> Option<u64> {
        self.inner.approximate_len(db)
    }

    fn checkpoint(&self, dest: &Path) -> Result<(), StoreError> {
        self.control.before(Op::Checkpoint, None)?;
        self.inner.checkpoint(dest)
    }

    fn atomic_batches(&self) -> bool {
        self.inner.atomic_batches()
    }

    fn memory_usage(&self) -> Option<u64> {
        self.inner.memory_usage()
    }

    fn name(&self) -> &'static str {
        self.inner.name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::mpsc;
    use std::time::Instant;

    type Records = BTreeMap<(DbIndex, Vec<u8>), Vec<u8>>;

    /// A minimal in-memory store to wrap.
    #[derive(Debug, Default)]
    struct Map(Mutex<Records>);

    impl DiskStore for Map {
        fn get(&self, db: DbIndex, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
            Ok(self.0.lock().unwrap().get(&(db, key.to_vec())).cloned())
        }
        fn write(&self, batch: &[WriteOp]) -> Result<(), StoreError> {
            let mut m = self.0.lock().unwrap();
            for op in batch {
                match op {
                    WriteOp::Put { db, key, value } => {
                        m.insert((*db, key.clone()), value.clone());
                    }
                    WriteOp::Delete { db, key } => {
                        m.remove(&(*db, key.clone()));
                    }
                }
            }
            Ok(())
        }
        fn sync(&self) -> Result<(), StoreError> {
            Ok(())
        }
        fn scan(&self, db: DbIndex, _: &[u8], _: usize) -> Result<ScanPage, StoreError> {
            let m = self.0.lock().unwrap();
            let keys = m
                .keys()
                .filter(|k| k.0 == db)
                .map(|k| k.1.clone())
                .collect();
            Ok(ScanPage { keys, next: None })
        }
        fn clear(&self, _: Option<DbIndex>) -> Result<(), StoreError> {
            self.0.lock().unwrap().clear();
            Ok(())
        }
        fn name(&self) -> &'static str {
            "map"
        }
    }

    fn put(key: &[u8]) -> WriteOp {
        WriteOp::Put {
            db: 0,
            key: key.to_vec(),
            value: b"v".to_vec(),
        }
    }

    #[test]
    fn healthy_by_default_and_forwards_everything() {
        let s = Faulty::new(Map::default());
        s.write(&[put(b"k")]).unwrap();
        s.sync().unwrap();
        assert_eq!(s.get(0, b"k").unwrap(), Some(b"v".to_vec()));
        assert_eq!(s.scan(0, b"", 10).unwrap().keys, vec![b"k".to_vec()]);
        assert!(matches!(
            s.checkpoint(Path::new("/nonexistent")),
            Err(StoreError::Unsupported)
        ));
        assert_eq!(s.name(), "map");
        let c = s.control();
        assert_eq!(
            (c.calls(Op::Write), c.calls(Op::Get), c.injected()),
            (1, 1, 0)
        );
    }

    #[test]
    fn nth_operation_of_a_kind_or_of_any_kind_fails_once() {
        let s = Faulty::new(Map::default());
        let c = s.control();
        c.fail_nth(Some(Op::Write), 2, Fault::NoSpace);
        s.write(&[put(b"a")]).unwrap();
        s.get(0, b"a").unwrap(); // another kind does not count
        assert!(matches!(s.write(&[put(b"b")]), Err(StoreError::NoSpace)));
        assert_eq!(
            s.inner().get(0, b"b").unwrap(),
            None,
            "a failed write is not applied"
        );
        s.write(&[put(b"b")]).unwrap();

        c.fail_nth(None, 3, Fault::Backend("boom".into()));
        s.sync().unwrap();
        s.get(0, b"a").unwrap();
        match s.scan(0, b"", 1) {
            Err(StoreError::Backend(e)) => assert!(e.to_string().contains("boom")),
            other => panic!("expected the injected backend error, got {other:?}"),
        }
        s.scan(0, b"", 1).unwrap();
        assert_eq!(c.injected(), 2);
    }

    #[test]
    fn sticky_faults_and_no_space_last_until_reset() {
        let s = Faulty::new(Map::default());
        let c = s.control();
        c.fail_always(
            Some(Op::Get),
            Fault::Io(std::io::ErrorKind::PermissionDenied),
        );
        for _ in 0..3 {
            match s.get(0, b"k") {
                Err(StoreError::Io(e)) => {
                    assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied)
                }
                other => panic!("{other:?}"),
            }
        }
        c.set_no_space(true);
        assert!(matches!(s.write(&[put(b"k")]), Err(StoreError::NoSpace)));
        assert!(matches!(s.sync(), Err(StoreError::NoSpace)));
        assert!(matches!(s.clear(None), Err(StoreError::NoSpace)));
        s.scan(0, b"", 10).unwrap();
        c.reset();
        s.write(&[put(b"k")]).unwrap();
        assert_eq!(s.get(0, b"k").unwrap(), Some(b"v".to_vec()));
    }

    #[test]
    fn chosen_keys_read_as_corruption() {
        let s = Faulty::new(Map::default());
        s.write(&[put(b"bad"), put(b"good")]).unwrap();
        let c = s.control();
        c.corrupt_key(0, b"bad");
        assert!(matches!(s.get(0, b"bad"), Err(StoreError::Corruption(_))));
        assert_eq!(
            s.get(1, b"bad").unwrap(),
            None,
            "another DB's key of that name is fine"
        );
        assert_eq!(s.get(0, b"good").unwrap(), Some(b"v".to_vec()));
        c.heal_key(0, b"bad");
        assert_eq!(s.get(0, b"bad").unwrap(), Some(b"v".to_vec()));
    }

    #[test]
    fn sync_fails_after_a_successful_write() {
        let s = Faulty::new(Map::default());
        let c = s.control();
        c.fail_sync_after_write();
        s.sync().unwrap(); // no write yet: this sync is not the one
        s.write(&[put(b"k")]).unwrap();
        assert!(matches!(s.sync(), Err(StoreError::Io(_))));
        assert_eq!(
            s.get(0, b"k").unwrap(),
            Some(b"v".to_vec()),
            "the write was applied"
        );
        s.sync().unwrap(); // once only
    }

    #[test]
    fn stall_delays_the_chosen_operations() {
        let s = Faulty::new(Map::default());
        s.control().stall(Some(Op::Sync), Duration::from_millis(30));
        s.write(&[put(b"k")]).unwrap();
        let t = Instant::now();
        s.sync().unwrap();
        // A lower bound only: sleep never returns early, so this cannot flake.
        assert!(t.elapsed() >= Duration::from_millis(30));
    }

    #[test]
    fn held_operations_wait_for_release_from_another_thread() {
        let s = Arc::new(Faulty::new(Map::default()));
        let c = s.control();
        c.hold(Op::Write);
        let (tx, rx) = mpsc::channel();
        let writer = {
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                s.write(&[put(b"k")]).unwrap();
                tx.send(()).unwrap();
            })
        };
        // The writer has started its call (counted) but cannot finish it.
        while c.calls(Op::Write) == 0 {
            std::thread::yield_now();
        }
        assert!(rx.try_recv().is_err());
        assert_eq!(s.inner().get(0, b"k").unwrap(), None);
        s.get(0, b"k").unwrap(); // other kinds go on
        c.release(Op::Write);
        rx.recv().unwrap();
        writer.join().unwrap();
        assert_eq!(s.get(0, b"k").unwrap(), Some(b"v".to_vec()));
    }
}
