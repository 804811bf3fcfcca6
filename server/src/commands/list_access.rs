//! One interface to a list whether it is kept in one record or in pages (`paged::list`), so each
//! list command is written once. A paged list's operations can fail (a page that cannot be
//! read); a command reads what it needs before it writes any reply.

use super::typed::List;
use super::{CmdError, Ctx};
use crate::listval::Deque;
use crate::paged::list::{self as paged, PagedList};
use crate::reply::Reply;
use crate::value::Value;
use kvtier_core::Engine;
use std::ops::{Deref, DerefMut};

/// Reading a list.
pub trait ListRead {
    fn len(&self) -> usize;
    /// Element `i` (inside the list).
    fn get(&mut self, i: usize) -> Result<Vec<u8>, CmdError>;
    /// Makes `start..=end` ready for [`ListRead::range`], which then cannot fail half-way.
    fn prepare(&mut self, start: usize, end: usize) -> Result<(), CmdError>;
    /// Visits elements `start..=end` (inside the list) in order.
    fn range(&mut self, start: usize, end: usize, f: &mut dyn FnMut(&[u8]))
        -> Result<(), CmdError>;
    /// Visits elements with their index from the head or (`from_tail`) the tail until `f`
    /// returns false.
    fn visit(
        &mut self,
        from_tail: bool,
        f: &mut dyn FnMut(usize, &[u8]) -> bool,
    ) -> Result<(), CmdError>;
}

/// Changing a list. Every change is complete when it returns, also on error: a paged list's
/// manifest always describes its pages.
pub trait ListWrite: ListRead {
    fn push(&mut self, v: Vec<u8>, left: bool) -> Result<(), CmdError>;
    fn pop(&mut self, left: bool) -> Result<Option<Vec<u8>>, CmdError>;
    fn set(&mut self, i: usize, v: Vec<u8>) -> Result<(), CmdError>;
    /// Inserts `v` so that it becomes element `i` (`0..=len`).
    fn insert(&mut self, i: usize, v: Vec<u8>) -> Result<(), CmdError>;
    /// Removes up to `limit` elements equal to `elem` from the head or the tail; how many.
    fn remove(&mut self, elem: &[u8], limit: usize, from_tail: bool) -> Result<usize, CmdError>;
    /// Keeps `start..=end` (inside the list).
    fn trim(&mut self, start: usize, end: usize) -> Result<(), CmdError>;
}

/// A list in one record, read (`&List`) or changed (`&mut List`).
struct Plain<L>(L);

impl<L: Deref<Target = List>> ListRead for Plain<L> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn get(&mut self, i: usize) -> Result<Vec<u8>, CmdError> {
        Ok(self.0.get(i).map(<[u8]>::to_vec).unwrap_or_default())
    }
    fn prepare(&mut self, _: usize, _: usize) -> Result<(), CmdError> {
        Ok(())
    }
    fn range(&mut self, s: usize, e: usize, f: &mut dyn FnMut(&[u8])) -> Result<(), CmdError> {
        self.0.iter().skip(s).take(e + 1 - s).for_each(f);
        Ok(())
    }
    fn visit(
        &mut self,
        from_tail: bool,
        f: &mut dyn FnMut(usize, &[u8]) -> bool,
    ) -> Result<(), CmdError> {
        if from_tail {
            let n = self.0.len();
            for (k, x) in self.0.iter().rev().enumerate() {
                if !f(n - 1 - k, x) {
                    break;
                }
            }
        } else {
            for (k, x) in self.0.iter().enumerate() {
                if !f(k, x) {
                    break;
                }
            }
        }
        Ok(())
    }
}

impl<L: DerefMut<Target = List>> ListWrite for Plain<L> {
    fn push(&mut self, v: Vec<u8>, left: bool) -> Result<(), CmdError> {
        if left {
            self.0.push_front(v);
        } else {
            self.0.push_back(v);
        }
        Ok(())
    }
    fn pop(&mut self, left: bool) -> Result<Option<Vec<u8>>, CmdError> {
        Ok(if left {
            self.0.pop_front()
        } else {
            self.0.pop_back()
        })
    }
    fn set(&mut self, i: usize, v: Vec<u8>) -> Result<(), CmdError> {
        self.0.set(i, v);
        Ok(())
    }
    fn insert(&mut self, i: usize, v: Vec<u8>) -> Result<(), CmdError> {
        self.0.insert(i, v);
        Ok(())
    }
    fn remove(&mut self, elem: &[u8], limit: usize, from_tail: bool) -> Result<usize, CmdError> {
        Ok(self
            .0
            .with_deque(|l| remove_from(l, elem, limit, from_tail)))
    }
    fn trim(&mut self, s: usize, e: usize) -> Result<(), CmdError> {
        self.0.trim(s, e);
        Ok(())
    }
}

/// LREM on a deque: up to `limit` elements equal to `elem`, from the head or the tail.
fn remove_from(l: &mut Deque, elem: &[u8], limit: usize, from_tail: bool) -> usize {
    let mut removed = 0;
    if from_tail {
        let mut i = l.len();
        while i > 0 && removed < limit {
            i -= 1;
            if l[i].as_slice() == elem {
                l.remove(i);
                removed += 1;
            }
        }
    } else {
        l.retain(|e| {
            let hit = removed < limit && e.as_slice() == elem;
            removed += usize::from(hit);
            !hit
        });
    }
    removed
}

/// A paged list: its manifest (taken out of the cache while a command changes it) and the
/// engine its pages live in.
struct Paged<'e, M> {
    engine: &'e mut Engine<Value>,
    m: M,
    now_ms: i64,
    page_bytes: u64,
}

impl<M: Deref<Target = PagedList>> ListRead for Paged<'_, M> {
    fn len(&self) -> usize {
        self.m.len as usize
    }
    fn get(&mut self, i: usize) -> Result<Vec<u8>, CmdError> {
        paged::get(self.engine, &self.m, i as u64, self.now_ms).map_err(CmdError::store)
    }
    fn prepare(&mut self, s: usize, e: usize) -> Result<(), CmdError> {
        paged::prepare(self.engine, &self.m, s as u64, e as u64, self.now_ms)
            .map_err(CmdError::store)
    }
    fn range(&mut self, s: usize, e: usize, f: &mut dyn FnMut(&[u8])) -> Result<(), CmdError> {
        paged::range(self.engine, &self.m, s as u64, e as u64, self.now_ms, f)
            .map_err(CmdError::store)
    }
    fn visit(
        &mut self,
        from_tail: bool,
        f: &mut dyn FnMut(usize, &[u8]) -> bool,
    ) -> Result<(), CmdError> {
        paged::visit(self.engine, &self.m, from_tail, self.now_ms, f).map_err(CmdError::store)
    }
}

impl<M: DerefMut<Target = PagedList>> ListWrite for Paged<'_, M> {
    fn push(&mut self, v: Vec<u8>, left: bool) -> Result<(), CmdError> {
        paged::push(
            self.engine,
            &mut self.m,
            v,
            left,
            self.page_bytes,
            self.now_ms,
        )
        .map_err(CmdError::store)
    }
    fn pop(&mut self, left: bool) -> Result<Option<Vec<u8>>, CmdError> {
        paged::pop(self.engine, &mut self.m, left, self.now_ms).map_err(CmdError::store)
    }
    fn set(&mut self, i: usize, v: Vec<u8>) -> Result<(), CmdError> {
        paged::set(self.engine, &mut self.m, i as u64, v, self.now_ms).map_err(CmdError::store)
    }
    fn insert(&mut self, i: usize, v: Vec<u8>) -> Result<(), CmdError> {
        let (pb, now) = (self.page_bytes, self.now_ms);
        paged::insert(self.engine, &mut self.m, i as u64, v, pb, now).map_err(CmdError::store)
    }
    fn remove(&mut self, elem: &[u8], limit: usize, from_tail: bool) -> Result<usize, CmdError> {
        paged::remove(
            self.engine,
            &mut self.m,
            elem,
            limit,
            from_tail,
            self.page_bytes,
            self.now_ms,
        )
        .map_err(CmdError::store)
    }
    fn trim(&mut self, s: usize, e: usize) -> Result<(), CmdError> {
        paged::trim(self.engine, &mut self.m, s as u64, e as u64, self.now_ms)
            .map_err(CmdError::store)
    }
}

/// A paged list's manifest as the cache holds it, shared (see [`read_list`]).
struct SharedManifest(std::sync::Arc<Value>);

impl Deref for SharedManifest {
    type Target = PagedList;
    fn deref(&self) -> &PagedList {
        match &*self.0 {
            Value::PagedList(m) => m,
            _ => unreachable!("made from a paged list only"),
        }
    }
}

/// Runs `f` on the list at `key` for reading, with the reply buffer beside it. `Ok(None)` when
/// there is no such key; WRONGTYPE when it holds another type. Nothing becomes dirty.
pub fn read_list<R>(
    ctx: &mut Ctx,
    key: &[u8],
    f: impl FnOnce(&mut dyn ListRead, &mut Reply) -> Result<R, CmdError>,
) -> Result<Option<R>, CmdError> {
    let (db, now_ms) = (ctx.client.db, ctx.now_ms);
    let page_bytes = ctx.shared.config.settings().page_bytes;
    // A paged list's manifest is read through the cache's shared handle, not copied: it is
    // about 16 bytes per page (40 KB for a million elements), per read.
    let manifest = match ctx.engine.db(db, now_ms).get(key) {
        None => return Ok(None),
        Some(Value::List(_)) => None,
        Some(Value::PagedList(_)) => ctx.engine.peek_shared(db, key).map(SharedManifest),
        Some(_) => return Err(CmdError::WrongType),
    };
    match manifest {
        None => match ctx.engine.peek(db, key) {
            Some(Value::List(l)) => f(&mut Plain(&**l), ctx.out).map(Some),
            _ => unreachable!("looked up above"),
        },
        Some(m) => {
            let mut view = Paged {
                engine: &mut *ctx.engine,
                m,
                now_ms,
                page_bytes,
            };
            f(&mut view, ctx.out).map(Some)
        }
    }
}

/// What [`write_list`] did besides running the command.
pub struct Written<R> {
    pub result: R,
    /// The key was created for this command.
    pub created: bool,
    /// The list was emptied and its key deleted.
    pub emptied: bool,
}

/// Runs `f` on the list at `key` for changing it (the key becomes dirty): created empty first
/// when absent and `create` is set, otherwise `Ok(None)` for a missing key. An emptied list's
/// key is deleted, also when `f` fails; a list in one record that grew past
/// `paged-value-min-bytes` is paged out afterwards.
pub fn write_list<R>(
    ctx: &mut Ctx,
    key: &[u8],
    create: bool,
    f: impl FnOnce(&mut dyn ListWrite, &mut Reply) -> Result<R, CmdError>,
) -> Result<Option<Written<R>>, CmdError> {
    let (db, now_ms) = (ctx.client.db, ctx.now_ms);
    let settings = ctx.shared.config.settings();
    let (page_bytes, min_bytes) = (settings.page_bytes, settings.paged_value_min_bytes);
    // One lookup to learn the type and, for a paged list, take its manifest out (nothing is
    // marked yet: a WRONGTYPE changes nothing).
    let mut created = false;
    let taken = match ctx.engine.db(db, now_ms).get_mut_unmarked(key) {
        None if !create => return Ok(None),
        None => {
            created = true;
            None
        }
        Some(Value::List(_)) => None,
        // The manifest leaves the cache while the pages change (nothing reads the key
        // meanwhile, and eviction runs between commands), and goes back whatever happens.
        // Its fields are moved, not its box: an allocation per command less.
        Some(Value::PagedList(m)) => Some(std::mem::take(&mut **m)),
        Some(_) => return Err(CmdError::WrongType),
    };
    let Some(mut m) = taken else {
        let mut dbv = ctx.engine.db(db, now_ms);
        if created {
            dbv.insert(key, Value::List(Box::default()));
        }
        let Some(Value::List(l)) = dbv.into_get_mut(key) else {
            unreachable!("a list, checked above")
        };
        let before = l.len();
        let result = f(&mut Plain(&mut **l), ctx.out);
        let after = l.len();
        let emptied = after == 0;
        let mut dbv = ctx.engine.db(db, now_ms);
        if emptied {
            dbv.remove(key);
        } else if min_bytes > 0 && after > before && (after <= 64 || after >> 6 != before >> 6) {
            maybe_page_out(ctx.engine, db, key, page_bytes, min_bytes, now_ms);
        }
        return result.map(|result| {
            Some(Written {
                result,
                created,
                emptied,
            })
        });
    };
    let mut view = Paged {
        engine: &mut *ctx.engine,
        m: &mut m,
        now_ms,
        page_bytes,
    };
    let result = f(&mut view, ctx.out);
    let emptied = m.len == 0;
    let mut dbv = ctx.engine.db(db, now_ms);
    if emptied {
        dbv.remove(key);
    } else if let Some(Value::PagedList(slot)) = dbv.get_mut(key) {
        // Marked changed here, once the pages are (a failed command that changed nothing
        // saves an unchanged manifest: harmless).
        **slot = m;
    }
    result.map(|result| {
        Some(Written {
            result,
            created,
            emptied,
        })
    })
}

/// A list in one record that has reached `min_bytes` becomes paged.
pub(crate) fn maybe_page_out(
    engine: &mut Engine<Value>,
    db: u32,
    key: &[u8],
    page_bytes: u64,
    min_bytes: u64,
    now_ms: i64,
) {
    let big = match engine.peek(db, key) {
        Some(Value::List(l)) => l.iter().map(paged::elem_bytes).sum::<u64>() >= min_bytes,
        _ => false,
    };
    if !big {
        return;
    }
    let l = match engine.db(db, now_ms).get_mut(key) {
        Some(Value::List(l)) => std::mem::take(l),
        _ => return,
    };
    let m = paged::page_out(engine, l.into_deque(), page_bytes, now_ms);
    engine
        .db(db, now_ms)
        .insert_keep_ttl(key, Value::PagedList(Box::new(m)));
}
