//! Redis Functions: FUNCTION LOAD/LIST/DELETE/FLUSH/DUMP/RESTORE/STATS/KILL, FCALL, FCALL_RO.
//!
//! Libraries persist in `<dir>/functions.kvtier` (the FUNCTION DUMP payload), replaced
//! atomically (write, fsync, rename, fsync the directory) after every change, and read back on
//! the first scripting command after a start: they survive a restart and kill -9.
//!
//! Files: `library` (a library's code turned into its functions), `subcommands` (FUNCTION);
//! the registry, its dump format and file, and FCALL are here.

mod library;
mod subcommands;

use super::run::Invocation;
use super::ScriptFlags;
use crate::commands::CmdResult;
use crate::server::Server;
use library::{evaluate, parse_metadata};
use mlua::{Function, Lua};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;

const DUMP_MAGIC: &[u8] = b"KVTF\x01";
const FILE_NAME: &str = "functions.kvtier";

pub struct FunctionDef {
    pub name: String,
    pub func: Function,
    pub flags: ScriptFlags,
    pub description: Option<String>,
}

pub struct Library {
    pub code: Vec<u8>,
    pub functions: Vec<FunctionDef>,
}

#[derive(Default)]
pub struct Registry {
    pub libs: BTreeMap<String, Library>,
    /// Function name → library name.
    pub by_fn: HashMap<String, String>,
    /// Libraries were read back from disk after the start.
    pub restored: bool,
}

/// FNV-1a, a checksum for the dump payload.
fn checksum(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl Registry {
    /// Loads (or replaces) a library; returns its name.
    pub fn load(&mut self, lua: &Lua, code: &[u8], replace: bool) -> Result<String, String> {
        let name = parse_metadata(code)?;
        if self.libs.contains_key(&name) && !replace {
            return Err(format!("ERR Library '{name}' already exists"));
        }
        let functions = evaluate(lua, code)?;
        if functions.is_empty() {
            return Err("ERR No functions registered".into());
        }
        for f in &functions {
            if self.by_fn.get(&f.name).is_some_and(|l| *l != name) {
                return Err(format!("ERR Function {} already exists", f.name));
            }
        }
        self.delete(&name);
        for f in &functions {
            self.by_fn.insert(f.name.clone(), name.clone());
        }
        self.libs.insert(
            name.clone(),
            Library {
                code: code.to_vec(),
                functions,
            },
        );
        Ok(name)
    }

    pub fn delete(&mut self, name: &str) -> bool {
        let Some(lib) = self.libs.remove(name) else {
            return false;
        };
        for f in lib.functions {
            self.by_fn.remove(&f.name);
        }
        true
    }

    pub fn dump(&self) -> Vec<u8> {
        let mut out = DUMP_MAGIC.to_vec();
        for lib in self.libs.values() {
            out.extend_from_slice(&(lib.code.len() as u32).to_le_bytes());
            out.extend_from_slice(&lib.code);
        }
        let sum = checksum(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    /// The library codes of a dump payload.
    pub fn parse_dump(payload: &[u8]) -> Option<Vec<Vec<u8>>> {
        let body_len = payload.len().checked_sub(8)?;
        let (body, sum) = payload.split_at(body_len);
        if !body.starts_with(DUMP_MAGIC) || checksum(body).to_le_bytes() != sum {
            return None;
        }
        let mut codes = Vec::new();
        let mut rest = &body[DUMP_MAGIC.len()..];
        while !rest.is_empty() {
            let n = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
            codes.push(rest.get(4..4 + n)?.to_vec());
            rest = &rest[4 + n..];
        }
        Some(codes)
    }

    /// The `engines` entry of FUNCTION STATS (the same whether a script is running or not).
    pub(crate) fn write_engines(&self, out: &mut crate::reply::Reply) {
        out.bulk(b"engines");
        out.map(1);
        out.bulk(b"LUA");
        out.map(2);
        out.bulk(b"libraries_count");
        out.int(self.libs.len() as i64);
        out.bulk(b"functions_count");
        out.int(self.by_fn.len() as i64);
    }
}

impl Server {
    fn functions_file(&self) -> PathBuf {
        PathBuf::from(&self.shared.config.settings().dir).join(FILE_NAME)
    }

    /// Reads the libraries saved before a restart (once).
    fn restore_functions(&mut self) {
        if self.scripting.functions.restored {
            return;
        }
        self.scripting.functions.restored = true;
        let path = self.functions_file();
        let Ok(payload) = std::fs::read(&path) else {
            return;
        };
        let Some(codes) = Registry::parse_dump(&payload) else {
            log::warn!("{}: damaged functions file ignored", path.display());
            return;
        };
        let lua = self.scripting.lua.clone();
        for code in codes {
            if let Err(e) = self.scripting.functions.load(&lua, &code, true) {
                log::warn!("a saved function library failed to load: {e}");
            }
        }
    }

    /// Saves the libraries durably (temp file, fsync, rename, fsync of the directory).
    fn persist_functions(&mut self) -> Result<(), String> {
        let path = self.functions_file();
        let tmp = path.with_extension("tmp");
        let payload = self.scripting.functions.dump();
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&payload)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            if let Some(dir) = path.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|e| format!("ERR saving the function libraries failed: {e}"))
    }

    pub(crate) fn fcall(&mut self, t: usize, name: &str, args: &[Vec<u8>]) -> CmdResult {
        self.restore_functions();
        let fname = String::from_utf8_lossy(&args[1]).into_owned();
        let (keys, argv) = match super::commands::split_keys(args) {
            Ok(v) => v,
            Err("ERR value is not an integer or out of range") => {
                return Err("ERR Bad number of keys provided".into())
            }
            Err(e) => return Err(e.into()),
        };
        let reg = &self.scripting.functions;
        let Some(def) = reg
            .by_fn
            .get(&fname)
            .and_then(|l| reg.libs.get(l))
            .and_then(|l| l.functions.iter().find(|f| f.name == fname))
        else {
            return Err("ERR Function not found".into());
        };
        let read_only = name == "fcall_ro";
        if read_only && !def.flags.no_writes {
            return Err("ERR Can not execute a script with write flag using *_ro command.".into());
        }
        let inv = Invocation {
            func: def.func.clone(),
            flags: def.flags,
            name: fname,
            is_function: true,
            read_only,
            keys,
            argv,
        };
        self.run_script(t, inv, args)
    }
}
