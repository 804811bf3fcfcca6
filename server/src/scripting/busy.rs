//! Serving other clients while a script runs past `busy-reply-threshold` (Redis's BUSY state).
//!
//! The Lua instruction hook calls `serve_busy` now and then; it reads what idle clients sent
//! and answers every request `-BUSY`, except SCRIPT KILL / FUNCTION KILL (which stop the script
//! if it has not written) and SHUTDOWN NOSAVE (which ends the process at once, as a crash
//! would: what was acknowledged before the script is durable in the store).

use crate::server::Server;
use std::io::{ErrorKind, Read};
use std::time::{Duration, Instant};

/// How often the busy pass looks at the sockets.
const POLL_EVERY: Duration = Duration::from_millis(10);

impl Server {
    pub(crate) fn serve_busy(&mut self) {
        let Some(run) = self.scripting.run.as_ref() else {
            return;
        };
        if self
            .scripting
            .last_busy_poll
            .is_some_and(|at| at.elapsed() < POLL_EVERY)
        {
            return;
        }
        self.scripting.last_busy_poll = Some(Instant::now());
        let own = run.client;
        self.accept();
        let max_bulk = self.shared.config.settings().proto_max_bulk_len as usize;
        let tokens: Vec<usize> = self.conns.keys().copied().filter(|&t| t != own).collect();
        for t in tokens {
            let Some(conn) = self.conns.get_mut(&t) else {
                continue;
            };
            if conn.is_waiting() {
                // Parked on a key or a barrier: its input is for later.
                continue;
            }
            let mut closed = false;
            let mut chunk = [0u8; 4096];
            loop {
                match conn.sock.read(&mut chunk) {
                    Ok(0) => {
                        closed = true;
                        break;
                    }
                    Ok(n) => conn.inbuf.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => {
                        closed = true;
                        break;
                    }
                }
            }
            let mut requests = Vec::new();
            loop {
                let mut pos = conn.inpos;
                match conn.parser.parse(&conn.inbuf, &mut pos, max_bulk) {
                    Ok(Some(args)) => {
                        conn.inpos = pos;
                        if !args.is_empty() {
                            requests.push(args);
                        }
                    }
                    _ => break,
                }
            }
            conn.compact_input();
            for args in requests {
                self.busy_request(t, &args);
            }
            self.flush(t);
            if closed {
                self.close(t);
            }
        }
    }

    fn busy_request(&mut self, t: usize, args: &[Vec<u8>]) {
        let Some(run) = self.scripting.run.as_mut() else {
            return;
        };
        let is = |i: usize, w: &[u8]| args.get(i).is_some_and(|a| a.eq_ignore_ascii_case(w));
        let reply = if (is(0, b"script") || is(0, b"function")) && is(1, b"kill") && args.len() == 2
        {
            let wants_function = is(0, b"function");
            if run.wrote {
                "-UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command."
            } else if wants_function != run.is_function {
                if run.is_function {
                    "-BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
                } else {
                    "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
                }
            } else {
                run.killed = true;
                "+OK"
            }
        } else if is(0, b"function") && is(1, b"stats") && args.len() == 2 {
            let is_function = run.is_function;
            let (name, command, ms) = (
                run.name.clone(),
                run.command.clone(),
                run.started.elapsed().as_millis() as i64,
            );
            let (libs, funcs) = (
                self.scripting.functions.libs.len(),
                self.scripting.functions.by_fn.len(),
            );
            if let Some(c) = self.conns.get_mut(&t) {
                let out = &mut c.out;
                out.map(2);
                out.bulk(b"running_script");
                if !is_function {
                    // Only a function counts as running for FUNCTION STATS.
                    out.null();
                } else {
                    out.map(3);
                    out.bulk(b"name");
                    out.bulk(name.as_bytes());
                    out.bulk(b"command");
                    out.array(command.len());
                    for a in &command {
                        out.bulk(a);
                    }
                    out.bulk(b"duration_ms");
                    out.int(ms);
                }
                out.bulk(b"engines");
                out.map(1);
                out.bulk(b"LUA");
                out.map(2);
                out.bulk(b"libraries_count");
                out.int(libs as i64);
                out.bulk(b"functions_count");
                out.int(funcs as i64);
            }
            return;
        } else if is(0, b"shutdown") && is(1, b"nosave") {
            log::warn!("SHUTDOWN NOSAVE while a script runs: exiting now");
            std::process::exit(0);
        } else {
            let busy = if run.is_function {
                "-BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
            } else {
                "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
            };
            let Some(c) = self.conns.get_mut(&t) else {
                return;
            };
            let st = &mut c.state;
            // Transactions as Redis treats them meanwhile: MULTI and DISCARD work, a refused
            // command fails the transaction, and EXEC discards it (nothing of it runs).
            let single = args.len() == 1;
            if is(0, b"multi") && single {
                if st.multi.is_some() {
                    "-ERR MULTI calls can not be nested"
                } else {
                    st.multi = Some(Vec::new());
                    st.multi_error = false;
                    "+OK"
                }
            } else if is(0, b"discard") && single && st.multi.is_some() {
                st.multi = None;
                st.multi_error = false;
                st.watched.clear();
                st.watch_dirty = false;
                "+OK"
            } else if is(0, b"exec") && single && st.multi.is_some() {
                st.multi = None;
                st.multi_error = false;
                st.watched.clear();
                st.watch_dirty = false;
                let msg = format!(
                    "-EXECABORT Transaction discarded because of: {}",
                    &busy[1..]
                );
                self.busy_reply(t, &msg);
                return;
            } else {
                if st.multi.is_some() {
                    st.multi_error = true;
                }
                busy
            }
        };
        self.busy_reply(t, reply);
    }

    /// Writes a one-line reply (`+…` or `-…`) and counts an error.
    fn busy_reply(&mut self, t: usize, reply: &str) {
        if let Some(err) = reply.strip_prefix('-') {
            self.shared.total_error_replies += 1;
            let code = err.split(' ').next().unwrap_or("ERR").to_string();
            *self.shared.error_stats.entry(code).or_insert(0) += 1;
        }
        if let Some(c) = self.conns.get_mut(&t) {
            c.out.buf.extend_from_slice(reply.as_bytes());
            c.out.buf.extend_from_slice(b"\r\n");
        }
    }
}
