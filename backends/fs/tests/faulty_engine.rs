//! The engine over a failing store: the fs backend wrapped in the kit's `Faulty`. Each test
//! injects one kind of fault and checks what the engine promises: failed saves are retried and
//! counted, point-in-time requests report the failure, reads of healthy keys go on, a full store
//! is flagged, and once the fault clears nothing acknowledged is lost (checked by reopening the
//! store without the wrapper).

use kvtier_core::testkit::faulty::{Fault, FaultControl, Faulty, Op};
use kvtier_core::{CacheValue, Engine, EngineConfig, Event, Residency, StoreError};
use kvtier_fs::FsStore;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Debug, PartialEq)]
struct V(Vec<u8>);

impl CacheValue for V {
    fn mem_size(&self) -> usize {
        self.0.len()
    }
    fn type_tag(&self) -> u8 {
        0
    }
    fn encode_payload(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }
    fn decode_payload(_tag: u8, payload: &[u8]) -> Result<Self, StoreError> {
        Ok(V(payload.to_vec()))
    }
}

fn engine(dir: &Path) -> (Engine<V>, Arc<FaultControl>) {
    engine_with(
        dir,
        EngineConfig {
            flush_delay: Duration::from_secs(3600),
            io_threads: 2,
            ..EngineConfig::default()
        },
    )
}

fn engine_with(dir: &Path, cfg: EngineConfig) -> (Engine<V>, Arc<FaultControl>) {
    let store = Faulty::new(FsStore::open(dir).expect("open"));
    let control = store.control();
    (Engine::new(Arc::new(store), cfg, Arc::new(|| {})), control)
}

/// Ticks and polls the engine until `done` holds (panics after 10 s, saying `what` did not
/// happen).
fn poll_until(e: &mut Engine<V>, what: &str, mut done: impl FnMut(&Engine<V>) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(e) {
        assert!(Instant::now() < deadline, "{what}");
        e.tick();
        e.poll();
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Until a save has reached the store's `write` (held there by a test).
fn wait_write_started(e: &mut Engine<V>, control: &FaultControl) {
    poll_until(e, "no save reached the store", |_| {
        control.calls(Op::Write) > 0
    });
}

/// Until the key filter of DB 0 is built (new keys are then known absent).
fn wait_filter(e: &mut Engine<V>) {
    poll_until(e, "filter not built", |e| e.filter_ready(0));
}

fn now() -> i64 {
    kvtier_core::engine::now_ms()
}

fn set(e: &mut Engine<V>, key: &str, val: &str) {
    e.begin_group();
    e.db(0, now())
        .insert(key.as_bytes(), V(val.as_bytes().to_vec()));
    e.end_group();
}

/// Polls until an event matches (panics after 10 s).
fn wait_event<T>(e: &mut Engine<V>, mut pick: impl FnMut(&Event) -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        e.tick();
        for ev in e.poll() {
            if let Some(t) = pick(&ev) {
                return t;
            }
        }
        assert!(Instant::now() < deadline, "event not seen in time");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn barrier(e: &mut Engine<V>, token: u64) -> Result<(), String> {
    e.barrier(token);
    wait_event(e, |ev| match ev {
        Event::BarrierDone { token: t, result } if *t == token => Some(result.clone()),
        _ => None,
    })
}

/// Loads `key` (if not resident) and returns its value, or the load's error.
fn read(e: &mut Engine<V>, key: &str) -> Result<Option<Vec<u8>>, String> {
    if e.ensure(0, key.as_bytes()) == Residency::Unknown {
        let failed = wait_event(e, |ev| match ev {
            Event::KeyReady { key: k, .. } if k == key.as_bytes() => Some(None),
            Event::KeyFailed { key: k, error, .. } if k == key.as_bytes() => {
                Some(Some(error.clone()))
            }
            _ => None,
        });
        if let Some(err) = failed {
            return Err(err);
        }
    }
    Ok(e.db(0, now()).get(key.as_bytes()).map(|v| v.0.clone()))
}

/// Reopens the directory without faults and reads `key` straight from the store.
fn on_disk(dir: &Path, key: &str) -> Option<Vec<u8>> {
    let (mut e, _) = engine(dir);
    read(&mut e, key).expect("healthy store")
}

/// Retries a save until it succeeds (the engine retries failed groups with backoff).
fn barrier_until_ok(e: &mut Engine<V>, first_token: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut token = first_token;
    while barrier(e, token).is_err() {
        assert!(Instant::now() < deadline, "saves never recovered");
        token += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_failed_write_is_retried_counted_and_reported_then_nothing_is_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut e, control) = engine(tmp.path());
    control.fail_nth(Some(Op::Write), 1, Fault::Io(std::io::ErrorKind::Other));
    set(&mut e, "a", "1");
    set(&mut e, "b", "2");
    assert!(barrier(&mut e, 1).is_err(), "SAVE must report the failure");
    assert!(e.stats().save_errors >= 1);
    assert!(e.stats().last_save_error.is_some());
    // One-shot fault: the retry goes through.
    barrier_until_ok(&mut e, 2);
    assert_eq!(e.key_count(0), Some(2));
    drop(e);
    assert_eq!(on_disk(tmp.path(), "a"), Some(b"1".to_vec()));
    assert_eq!(on_disk(tmp.path(), "b"), Some(b"2".to_vec()));
}

#[test]
fn a_full_store_is_flagged_while_reads_of_healthy_keys_go_on() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let (mut e, _) = engine(tmp.path());
        set(&mut e, "old", "kept");
        barrier(&mut e, 1).unwrap();
    }
    let (mut e, control) = engine(tmp.path());
    control.set_no_space(true);
    set(&mut e, "new", "pending");
    assert!(barrier(&mut e, 2).is_err());
    assert!(e.stats().out_of_space, "NoSpace must be flagged");
    // "old" is only on disk: reading it needs the store, which still serves reads.
    assert_eq!(read(&mut e, "old"), Ok(Some(b"kept".to_vec())));
    control.set_no_space(false);
    barrier_until_ok(&mut e, 3);
    assert!(!e.stats().out_of_space, "cleared by a successful save");
    drop(e);
    assert_eq!(on_disk(tmp.path(), "new"), Some(b"pending".to_vec()));
}

#[test]
fn a_sync_that_fails_after_its_write_is_retried_without_counting_keys_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut e, control) = engine(tmp.path());
    control.fail_sync_after_write();
    set(&mut e, "x", "1");
    set(&mut e, "y", "2");
    assert!(barrier(&mut e, 1).is_err(), "a failed fsync fails the SAVE");
    barrier_until_ok(&mut e, 2);
    assert_eq!(e.key_count(0), Some(2));
    drop(e);
    let (e, _) = engine(tmp.path());
    assert_eq!(e.key_count(0), Some(2), "persisted count after the retry");
}

#[test]
fn a_corrupt_record_fails_its_own_reads_only() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let (mut e, _) = engine(tmp.path());
        set(&mut e, "bad", "1");
        set(&mut e, "good", "2");
        barrier(&mut e, 1).unwrap();
    }
    let (mut e, control) = engine(tmp.path());
    control.corrupt_key(0, b"bad");
    assert!(
        read(&mut e, "bad").is_err(),
        "a corrupt record is never a value"
    );
    assert!(e.stats().corrupt_records >= 1);
    assert_eq!(read(&mut e, "good"), Ok(Some(b"2".to_vec())));
}

#[test]
fn stalled_reads_do_not_hold_up_saves() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let (mut e, _) = engine(tmp.path());
        set(&mut e, "cold", "c");
        barrier(&mut e, 1).unwrap();
    }
    let (mut e, control) = engine(tmp.path());
    // Once the key filter is built, a new key is known absent and its save reads nothing (a
    // blind write over a key that may exist reads it first, to keep DBSIZE exact).
    wait_filter(&mut e);
    control.hold(Op::Get);
    assert_eq!(e.ensure(0, b"cold"), Residency::Unknown);
    e.tick();
    set(&mut e, "hot", "h");
    // One IO worker is stuck in the held read; the other saves.
    barrier(&mut e, 2).unwrap();
    control.release(Op::Get);
    assert_eq!(read(&mut e, "cold"), Ok(Some(b"c".to_vec())));
}

#[test]
fn saves_held_up_do_not_hold_up_reads() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let (mut e, _) = engine(tmp.path());
        set(&mut e, "cold", "c");
        barrier(&mut e, 1).unwrap();
    }
    // One worker of each kind: with one pool, the stuck save below held the only worker and
    // the read waited for the disk write to finish.
    let cfg = EngineConfig {
        flush_delay: Duration::from_secs(3600),
        io_threads: 1,
        ..EngineConfig::default()
    };
    let (mut e, control) = engine_with(tmp.path(), cfg);
    wait_filter(&mut e);
    control.hold(Op::Write);
    set(&mut e, "hot", "h");
    e.barrier(2);
    wait_write_started(&mut e, &control);
    assert_eq!(read(&mut e, "cold"), Ok(Some(b"c".to_vec())));
    control.release(Op::Write);
    barrier(&mut e, 3).unwrap();
    drop(e);
    assert_eq!(on_disk(tmp.path(), "hot"), Some(b"h".to_vec()));
}

#[test]
fn a_save_held_up_shows_as_lag_past_the_flush_delay() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = EngineConfig {
        flush_delay: Duration::from_millis(20),
        io_threads: 1,
        ..EngineConfig::default()
    };
    let (mut e, control) = engine_with(tmp.path(), cfg);
    wait_filter(&mut e);
    assert_eq!(e.save_lag(), Duration::ZERO);
    control.hold(Op::Write);
    set(&mut e, "a", "1");
    wait_write_started(&mut e, &control);
    // Written while the first save is stuck: its group waits behind it, past its delay.
    set(&mut e, "b", "2");
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(200));
    e.tick();
    let lag = e.save_lag();
    // At least the wait above less the delay; at most the time since `b` was written.
    assert!(lag >= Duration::from_millis(180), "{lag:?}");
    assert!(lag <= started.elapsed(), "{lag:?}");
    control.release(Op::Write);
    barrier(&mut e, 1).unwrap();
    assert_eq!(e.save_lag(), Duration::ZERO);
    drop(e);
    assert_eq!(on_disk(tmp.path(), "b"), Some(b"2".to_vec()));
}

/// Saves dispatched while saves are urgent go to the worker at the process's own priority
/// (counted), the others to the lowered workers; both reach the disk. Without lowered workers
/// there is no urgent worker and the switch changes nothing.
#[test]
fn saves_sent_while_urgent_go_to_the_urgent_worker() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let cfg = EngineConfig {
            flush_delay: Duration::from_secs(3600),
            background_nice: 19,
            ..EngineConfig::default()
        };
        let (mut e, _) = engine_with(tmp.path(), cfg);
        set(&mut e, "a", "1");
        barrier(&mut e, 1).unwrap();
        assert_eq!(e.stats().urgent_save_batches, 0);
        e.set_saves_urgent(true);
        assert!(e.saves_urgent());
        set(&mut e, "b", "2");
        barrier(&mut e, 2).unwrap();
        let urgent = e.stats().urgent_save_batches;
        assert!(urgent >= 1, "the save of b was not sent as urgent");
        e.set_saves_urgent(false);
        set(&mut e, "c", "3");
        barrier(&mut e, 3).unwrap();
        assert_eq!(e.stats().urgent_save_batches, urgent);
    }
    for (k, v) in [("a", "1"), ("b", "2"), ("c", "3")] {
        assert_eq!(on_disk(tmp.path(), k), Some(v.as_bytes().to_vec()), "{k}");
    }
    let cfg = EngineConfig {
        flush_delay: Duration::from_secs(3600),
        background_nice: 0,
        ..EngineConfig::default()
    };
    let (mut e, _) = engine_with(tmp.path(), cfg);
    e.set_saves_urgent(true);
    assert!(!e.saves_urgent());
    set(&mut e, "d", "4");
    barrier(&mut e, 1).unwrap();
    assert_eq!(e.stats().urgent_save_batches, 0);
    drop(e);
    assert_eq!(on_disk(tmp.path(), "d"), Some(b"4".to_vec()));
}
