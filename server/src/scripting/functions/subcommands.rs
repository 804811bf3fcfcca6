//! The FUNCTION command: its subcommands and their replies. A subcommand that changes the
//! libraries saves them to the functions file afterwards (`persist_functions`).

use super::library::parse_metadata;
use super::{Library, Registry};
use crate::commands::CmdResult;
use crate::server::Server;
use mlua::Lua;

impl Server {
    pub(crate) fn function(&mut self, t: usize, args: &[Vec<u8>]) -> CmdResult {
        self.restore_functions();
        // (Arities are checked before, from Redis's table: `scripting_command`.)
        let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
        let lua = self.scripting.lua.clone();
        let changed = match sub.as_str() {
            "load" => {
                // Every argument before the code is an option: REPLACE (any number of times).
                let code = args.len() - 1;
                if let Some(o) = args[2..code]
                    .iter()
                    .find(|o| !o.eq_ignore_ascii_case(b"replace"))
                {
                    let msg = format!("ERR Unknown option given: {}", String::from_utf8_lossy(o));
                    return Err(msg.into());
                }
                let replace = code > 2;
                match self
                    .scripting
                    .functions
                    .load(&lua, &args[args.len() - 1], replace)
                {
                    Ok(name) => {
                        self.conns
                            .get_mut(&t)
                            .expect("live")
                            .out
                            .bulk(name.as_bytes());
                        true
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            "delete" => {
                let name = String::from_utf8_lossy(&args[2]).into_owned();
                if self.scripting.functions.delete(&name) {
                    self.conns.get_mut(&t).expect("live").out.ok();
                    true
                } else {
                    return Err("ERR Library not found".into());
                }
            }
            "flush" => {
                if args.len() > 3 {
                    return Err(crate::subcommands::syntax_error(args));
                }
                if let Some(mode) = args.get(2) {
                    if !mode.eq_ignore_ascii_case(b"sync") && !mode.eq_ignore_ascii_case(b"async") {
                        return Err("ERR FUNCTION FLUSH only supports SYNC|ASYNC option".into());
                    }
                }
                let f = &mut self.scripting.functions;
                f.libs.clear();
                f.by_fn.clear();
                self.conns.get_mut(&t).expect("live").out.ok();
                true
            }
            "dump" => {
                let payload = self.scripting.functions.dump();
                self.conns.get_mut(&t).expect("live").out.bulk(&payload);
                false
            }
            "restore" => {
                if args.len() > 4 {
                    return Err(crate::subcommands::syntax_error(args));
                }
                self.function_restore(t, &lua, args)?;
                true
            }
            "list" => {
                self.function_list(t, args)?;
                false
            }
            "stats" => {
                let out = &mut self.conns.get_mut(&t).expect("live").out;
                out.map(2);
                out.bulk(b"running_script");
                out.null();
                self.scripting.functions.write_engines(out);
                false
            }
            "kill" => return Err("NOTBUSY No scripts in execution right now.".into()),
            _ => {
                let lines = [
                    "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                    "LOAD [REPLACE] <FUNCTION CODE>",
                    "DELETE <LIBRARY NAME>",
                    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
                    "FCALL <FUNCTION NAME> <NUMKEYS> <KEY1> ... <KEYN> <ARG1> ... <ARGN>",
                    "FCALL_RO <FUNCTION NAME> <NUMKEYS> <KEY1> ... <KEYN> <ARG1> ... <ARGN>",
                    "KILL",
                    "FLUSH [ASYNC|SYNC]",
                    "DUMP",
                    "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
                    "STATS",
                    "HELP",
                ];
                let out = &mut self.conns.get_mut(&t).expect("live").out;
                out.array(lines.len());
                for l in lines {
                    out.simple(l);
                }
                false
            }
        };
        if changed {
            if let Err(e) = self.persist_functions() {
                log::warn!("{e}");
            }
        }
        Ok(())
    }

    fn function_restore(&mut self, t: usize, lua: &Lua, args: &[Vec<u8>]) -> CmdResult {
        let policy = args
            .get(3)
            .map(|p| String::from_utf8_lossy(p).to_ascii_lowercase())
            .unwrap_or_else(|| "append".into());
        if !["append", "replace", "flush"].contains(&policy.as_str()) {
            return Err(
                "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE."
                    .into(),
            );
        }
        let Some(codes) = Registry::parse_dump(&args[2]) else {
            return Err("ERR DUMP payload version or checksum are wrong".into());
        };
        // Built aside and swapped in whole: a failure leaves the libraries as they were.
        let mut next = Registry {
            restored: true,
            ..Default::default()
        };
        if policy != "flush" {
            for (name, lib) in &self.scripting.functions.libs {
                if let Err(e) = next.load(lua, &lib.code, true) {
                    log::warn!("reloading library {name}: {e}");
                }
            }
        }
        for code in codes {
            if policy == "append" {
                if let Ok(name) = parse_metadata(&code) {
                    if next.libs.contains_key(&name) {
                        return Err(format!("ERR Library {name} already exists").into());
                    }
                }
            }
            next.load(lua, &code, policy != "append")?;
        }
        self.scripting.functions = next;
        self.conns.get_mut(&t).expect("live").out.ok();
        Ok(())
    }

    fn function_list(&mut self, t: usize, args: &[Vec<u8>]) -> CmdResult {
        let (mut pattern, mut code) = (None, false);
        let mut i = 2;
        while i < args.len() {
            if args[i].eq_ignore_ascii_case(b"withcode") && !code {
                code = true;
            } else if args[i].eq_ignore_ascii_case(b"libraryname") && pattern.is_none() {
                let Some(p) = args.get(i + 1) else {
                    return Err("ERR library name argument was not given".into());
                };
                pattern = Some(p.clone());
                i += 1;
            } else {
                let msg = format!("ERR Unknown argument {}", String::from_utf8_lossy(&args[i]));
                return Err(msg.into());
            }
            i += 1;
        }
        let libs: Vec<(&String, &Library)> = self
            .scripting
            .functions
            .libs
            .iter()
            .filter(|(n, _)| {
                pattern
                    .as_ref()
                    .is_none_or(|p| crate::glob::glob_match(p, n.as_bytes(), false))
            })
            .collect();
        let out = &mut self.conns.get_mut(&t).expect("live").out;
        out.array(libs.len());
        for (name, lib) in libs {
            out.map(if code { 4 } else { 3 });
            out.bulk(b"library_name");
            out.bulk(name.as_bytes());
            out.bulk(b"engine");
            out.bulk(b"LUA");
            out.bulk(b"functions");
            out.array(lib.functions.len());
            for f in &lib.functions {
                out.map(3);
                out.bulk(b"name");
                out.bulk(f.name.as_bytes());
                out.bulk(b"description");
                match &f.description {
                    Some(d) => out.bulk(d.as_bytes()),
                    None => out.null(),
                }
                out.bulk(b"flags");
                let names = f.flags.names();
                out.set(names.len());
                for n in names {
                    out.simple(n);
                }
            }
            if code {
                out.bulk(b"library_code");
                out.bulk(&lib.code);
            }
        }
        Ok(())
    }
}
