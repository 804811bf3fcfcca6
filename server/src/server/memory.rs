use super::*;

/// Heap bytes allocated, and in active pages, from one snapshot ([`Heap`]). The one reading of
/// the heap for the limit: the startup baseline (`startup_memory`) and every memory check.
pub(super) fn heap() -> (usize, usize) {
    let h = crate::heap::Heap::read();
    (h.allocated, h.active.max(h.allocated))
}

/// Bytes this thread has allocated since it started (jemalloc's per-thread counter: one read
/// of a thread-local, unlike [`heap`], which merges every arena's statistics).
pub(super) fn thread_allocated() -> u64 {
    thread_local! {
        static MIB: Option<tikv_jemalloc_ctl::thread::allocatedp_mib> =
            tikv_jemalloc_ctl::thread::allocatedp::mib().ok();
    }
    MIB.with(|m| {
        m.as_ref()
            .and_then(|m| m.read().ok())
            .map_or(0, |p| p.get())
    })
}

impl Server {
    /// Whether a request may grow memory (DENYOOM, or an EXEC queuing such a command).
    pub(super) fn grows_memory(state: &ClientState, spec: &CommandSpec) -> bool {
        let denyoom =
            |a: &[Vec<u8>]| commands::lookup(&a[0]).is_some_and(|s| s.has(flags::DENYOOM));
        if spec.name == "exec" {
            return state
                .multi
                .as_ref()
                .is_some_and(|q| q.iter().any(|c| denyoom(c)));
        }
        spec.has(flags::DENYOOM)
    }

    /// Runs writers held for memory once it is back under the low-water mark (and saves are
    /// within their lag bound). With `maxmemory-max-wait` set, a writer held longer than that
    /// gets -OOM instead if memory is what holds it.
    pub(super) fn release_mem_waiters(&mut self) {
        if self.mem_waiters.is_empty() {
            return;
        }
        let now = Instant::now();
        let all = !self.shared.writers_held();
        let max_wait = self.shared.config.settings().maxmemory_max_wait;
        let waiters = std::mem::take(&mut self.mem_waiters);
        let mut released = 0;
        for t in waiters {
            let Some(c) = self.conns.get_mut(&t) else {
                continue;
            };
            let waited = match c.wait {
                Wait::Memory { since, .. } => Some(now.duration_since(since)),
                _ => None,
            };
            let late = max_wait > 0 && waited.is_some_and(|w| w >= Duration::from_millis(max_wait));
            // A few writers per loop pass: each runs what it pipelined meanwhile, and 64 of them
            // at once held every other client for up to 250 ms (soak); the rest go on the
            // next pass, which comes at once (see `run`).
            let go = late || (all && released < MEM_RELEASE_PER_PASS);
            if !go {
                self.mem_waiters.push(t);
                continue;
            }
            released += 1;
            self.shared.writer_delay_usec += waited.map_or(0, |w| w.as_micros() as u64);
            // Only memory refuses a late writer: one held for lagging saves goes on.
            if late && self.shared.mem_over {
                c.wait = Wait::Idle;
                c.state.multi = None;
                self.release_pins(t);
                self.reply_error(
                    t,
                    "OOM command not allowed when used memory > 'maxmemory'.",
                    None,
                );
            } else {
                self.try_run(t);
            }
            self.process_input(t);
        }
        self.shared.delayed_writers = self.mem_waiters.len();
    }

    pub(super) fn enforce_memory(&mut self) {
        // Reading jemalloc's totals merges every arena's statistics: at one request per event
        // loop pass (a client at -c 1) it was 40% of the server's CPU. Input is read in bounded
        // slices, so a millisecond's staleness lets memory overshoot by little.
        // Between two readings, what this thread allocated (requests, values, replies: nearly
        // all of what can grow quickly) is watched cheaply, and a large enough amount brings
        // the reading forward.
        let now = Instant::now();
        let allocated = thread_allocated();
        if now.duration_since(self.memory_checked_at) < self.memory_check_gap
            && allocated.wrapping_sub(self.memory_checked_alloc) < self.memory_slack
        {
            // Writers let go a few per pass go on at every pass, not at every check.
            if !self.shared.writers_held() {
                self.release_mem_waiters();
            }
            return;
        }
        self.memory_checked_at = now;
        self.memory_checked_alloc = allocated;
        // jemalloc serves the whole process, RocksDB's C++ included (its `malloc` is
        // jemalloc's; see the workspace Cargo.toml), so its total is everything kvtier and the
        // backend hold. sled allocates from this heap too, but its heap grows with the data
        // far beyond its configured cache (the soak saw 100+ MB for 320 MB of data): counted as
        // cache, it left the object cache empty (every clean key evicted at once). So for sled
        // the cache is measured by its own estimate, re-taken every CACHE_ESTIMATE_EVERY, plus
        // what the heap grew since (writes between two estimates).
        let store = self.engine.store();
        let sled = store.name() == "sled";
        let budget = crate::backend::memory_budget(store.name(), &self.shared.config);
        self.shared.backend_memory_budget = budget;
        let (total, active) = heap();
        let used = if sled {
            let stale = self
                .cache_anchor
                .is_none_or(|(at, _, _)| now.duration_since(at) >= CACHE_ESTIMATE_EVERY);
            if stale {
                let estimate = self.engine.estimate_cache_bytes(CACHE_ESTIMATE_SAMPLES);
                self.cache_anchor = Some((now, estimate, total));
            }
            let (_, estimate, then) = self.cache_anchor.expect("set above");
            self.shared.backend_heap_measured =
                Some(then.saturating_sub(self.startup_memory + estimate));
            self.startup_memory + estimate + total.saturating_sub(then)
        } else {
            total
        };
        self.shared.used_memory = used;
        self.shared.used_memory_startup = self.startup_memory;
        self.shared.used_memory_peak = self.shared.used_memory_peak.max(used);
        // What the server needs to exist (tables, threads, buffers at startup) is not cache:
        // the limit applies to what came after.
        let mut counted = used.saturating_sub(self.startup_memory);
        if !sled {
            // Fragmentation is memory too: what bounds the process's RSS is the pages it holds,
            // not only the bytes in use (soak on RocksDB: 15 MB between the two).
            counted += active - total;
        }
        // Counted in the total, RocksDB's memory shares `maxmemory` with the object cache, which
        // gets what RocksDB leaves. sled's heap is not counted: its configured cache is set
        // aside from `maxmemory` instead (the object cache keeps at least half).
        let maxmemory = match self.shared.config.settings().maxmemory as usize {
            0 => 0,
            m if sled => m.saturating_sub(budget).max(m / 2),
            m => m,
        };
        // Saves in flight hold copies of what they write (encoded batches, RocksDB's write
        // batch and memtables) that are freed only once written: the cache and dirty data stop
        // an eighth below the limit so those copies fit under it (RocksDB preload: the process
        // went 12 MB past `maxmemory` with the cache allowed up to it).
        let high = maxmemory - maxmemory / 8;
        // Writers wait while memory is over that mark (saves make room) and go on once it is
        // back under a low-water mark, so they do not start and stop on every byte; while they
        // wait, eviction works towards that mark.
        let low = high - maxmemory / 16;
        let target = if self.shared.mem_over { low } else { high };
        let over = self.engine.enforce_memory(counted, target);
        // Over the limit with nothing dirty, nothing being saved and nothing left to evict: the
        // memory is not cache (buffers, the backend's heap) and waiting would never end.
        // (Cheap accessors: this runs on every event-loop pass.)
        let nothing_to_free = self.engine.dirty_len() == 0 && !self.engine.saving();
        if over && nothing_to_free && !self.warned_not_cache {
            self.warned_not_cache = true;
            log::warn!(
                "memory is over maxmemory ({counted} bytes used beyond startup) with no cache \
                 left to free: raise maxmemory"
            );
        }
        self.shared.mem_over = !nothing_to_free && over;
        // Saves that fall behind (their workers yield the CPU to this thread, see
        // `io-save-nice`) hold writers too, until they are back within half the bound: what a
        // crash can lose stays bounded by time, not only by memory.
        let max_lag = Duration::from_secs(self.shared.config.settings().cache_flush_max_lag);
        let lag = self.engine.save_lag();
        self.shared.save_lagging = !max_lag.is_zero()
            && if self.shared.save_lagging {
                lag > max_lag / 2
            } else {
                lag > max_lag
            };
        // Before that, from half the bound on (or with memory full of dirty data), saves go to
        // the save worker that is not lowered, until they are back within a quarter of it:
        // lowered workers keep saves from slowing clients on busy cores, but get so little of
        // them that writers would otherwise end up held (docs/benchmarks.md, session 20).
        let behind = if self.engine.saves_urgent() {
            lag > max_lag / 4
        } else {
            lag > max_lag / 2
        };
        self.engine
            .set_saves_urgent((!max_lag.is_zero() && behind) || self.shared.mem_over);
        // Input is read in bounded slices: with a quarter of the limit free, 10 ms of it cannot
        // overshoot by much; near the limit every millisecond counts.
        let far = maxmemory == 0 || counted < maxmemory - maxmemory / 4;
        // The allocation that brings the next check forward: near the limit a 64th of it;
        // far from it a quarter of the room left (a reading per 64 KiB cost 7% of the owner
        // thread under pipelined writes with no limit at all, for figures only INFO shows).
        self.memory_slack = if maxmemory == 0 {
            u64::MAX
        } else if far {
            (maxmemory.saturating_sub(counted) as u64 / 4).max(MEMORY_SLACK_MIN)
        } else {
            (maxmemory as u64 / 64).max(MEMORY_SLACK_MIN)
        };
        self.memory_check_gap = if far && !over && self.mem_waiters.is_empty() {
            MEMORY_CHECK_RELAXED
        } else {
            MEMORY_CHECK_EVERY
        };
        self.shared.oom = false;
        self.release_mem_waiters();
    }
}
