//! `struct`: binary pack/unpack/size with Roberto Ierusalimschy's struct library's format
//! letters (`<` `>` `=` endianness, `!n` alignment, `x` padding, `b B h H l L T i I [n]`
//! integers, `f d` floats, `s` zero-terminated and `c[n]` fixed strings).

use super::{lib_error, number_arg};
use mlua::{Lua, MultiValue, Table, Value};

#[derive(Clone, Copy)]
struct State {
    little: bool,
    align: usize,
}

enum Item {
    Pad,
    Int {
        size: usize,
        signed: bool,
    },
    Float,
    Double,
    ZString,
    Chars(usize),
    /// `c0`: length taken from the previous value (unpack) or the string itself (pack).
    CharsAll,
}

/// Parses a format into items; `Err` with the message to raise.
fn parse(fmt: &[u8]) -> Result<Vec<(Item, State)>, String> {
    let mut st = State {
        little: cfg!(target_endian = "little"),
        align: 1,
    };
    let mut items = Vec::new();
    let mut i = 0;
    let digits = |i: &mut usize| -> Option<usize> {
        let start = *i;
        while fmt.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        std::str::from_utf8(&fmt[start..*i]).ok()?.parse().ok()
    };
    while i < fmt.len() {
        let c = fmt[i];
        i += 1;
        let item = match c {
            b' ' => continue,
            b'<' => {
                st.little = true;
                continue;
            }
            b'>' => {
                st.little = false;
                continue;
            }
            b'=' => {
                st.little = cfg!(target_endian = "little");
                continue;
            }
            b'!' => {
                st.align = digits(&mut i).unwrap_or(8);
                if !st.align.is_power_of_two() {
                    return Err("alignment must be power of 2".into());
                }
                continue;
            }
            b'x' => Item::Pad,
            b'b' | b'B' => Item::Int {
                size: 1,
                signed: c == b'b',
            },
            b'h' | b'H' => Item::Int {
                size: 2,
                signed: c == b'h',
            },
            b'l' | b'L' | b'T' => Item::Int {
                size: 8,
                signed: c == b'l',
            },
            b'i' | b'I' => {
                let size = digits(&mut i).unwrap_or(4);
                if !(1..=8).contains(&size) {
                    return Err(format!("integral size {size} is larger than limit of 8"));
                }
                Item::Int {
                    size,
                    signed: c == b'i',
                }
            }
            b'f' => Item::Float,
            b'd' => Item::Double,
            b's' => Item::ZString,
            b'c' => match digits(&mut i) {
                Some(0) => Item::CharsAll,
                Some(n) => Item::Chars(n),
                None => Item::Chars(1),
            },
            other => return Err(format!("invalid format option '{}'", other as char)),
        };
        items.push((item, st));
    }
    Ok(items)
}

fn size_of(item: &Item) -> usize {
    match item {
        Item::Pad => 1,
        Item::Int { size, .. } => *size,
        Item::Float => 4,
        Item::Double => 8,
        Item::Chars(n) => *n,
        Item::ZString | Item::CharsAll => 0,
    }
}

fn padding(len: usize, item: &Item, st: State) -> usize {
    let size = size_of(item).min(st.align);
    if size <= 1 || matches!(item, Item::Chars(_) | Item::CharsAll | Item::ZString) {
        return 0;
    }
    (size - (len & (size - 1))) & (size - 1)
}

pub fn table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "pack",
        lua.create_function(|lua, args: MultiValue| {
            let fmt = match args.front() {
                Some(Value::String(s)) => s.as_bytes().to_vec(),
                _ => {
                    return Err(lib_error(
                        lua,
                        "bad argument #1 to 'pack' (string expected)",
                    ))
                }
            };
            let items = parse(&fmt)
                .map_err(|e| lib_error(lua, format!("bad argument #1 to 'pack' ({e})")))?;
            let mut out = Vec::new();
            let mut arg = 1;
            for (item, st) in &items {
                out.resize(out.len() + padding(out.len(), item, *st), 0);
                match item {
                    Item::Pad => out.push(0),
                    Item::Int { size, .. } => {
                        let n = number_arg(lua, args.get(arg), arg + 1, "pack")?;
                        arg += 1;
                        let v = if n < 0.0 { n as i64 as u64 } else { n as u64 };
                        let bytes = v.to_le_bytes();
                        if st.little {
                            out.extend_from_slice(&bytes[..*size]);
                        } else {
                            out.extend(bytes[..*size].iter().rev());
                        }
                    }
                    Item::Float | Item::Double => {
                        let n = number_arg(lua, args.get(arg), arg + 1, "pack")?;
                        arg += 1;
                        let bytes = if matches!(item, Item::Float) {
                            (n as f32).to_le_bytes().to_vec()
                        } else {
                            n.to_le_bytes().to_vec()
                        };
                        if st.little {
                            out.extend_from_slice(&bytes);
                        } else {
                            out.extend(bytes.iter().rev());
                        }
                    }
                    Item::ZString | Item::Chars(_) | Item::CharsAll => {
                        let s = match args.get(arg) {
                            Some(v @ (Value::String(_) | Value::Integer(_) | Value::Number(_))) => {
                                lua.coerce_string(v.clone())?
                                    .expect("coercible")
                                    .as_bytes()
                                    .to_vec()
                            }
                            _ => {
                                return Err(lib_error(
                                    lua,
                                    format!(
                                        "bad argument #{} to 'pack' (string expected)",
                                        arg + 1
                                    ),
                                ))
                            }
                        };
                        arg += 1;
                        match item {
                            Item::ZString => {
                                out.extend_from_slice(&s);
                                out.push(0);
                            }
                            Item::Chars(n) => {
                                if s.len() < *n {
                                    return Err(lib_error(
                                        lua,
                                        format!(
                                            "bad argument #{} to 'pack' (string too short)",
                                            arg
                                        ),
                                    ));
                                }
                                out.extend_from_slice(&s[..*n]);
                            }
                            _ => out.extend_from_slice(&s),
                        }
                    }
                }
            }
            lua.create_string(&out)
        })?,
    )?;
    t.raw_set(
        "unpack",
        lua.create_function(|lua, args: MultiValue| {
            let (fmt, data) = match (args.front(), args.get(1)) {
                (Some(Value::String(f)), Some(Value::String(d))) => {
                    (f.as_bytes().to_vec(), d.as_bytes().to_vec())
                }
                _ => {
                    return Err(lib_error(
                        lua,
                        "bad argument #2 to 'unpack' (string expected)",
                    ))
                }
            };
            let mut pos = match args.get(2) {
                None | Some(Value::Nil) => 0,
                v => {
                    let i = number_arg(lua, v, 3, "unpack")? as i64;
                    if i < 1 {
                        return Err(lib_error(lua, "offset must be 1 or greater"));
                    }
                    (i - 1) as usize
                }
            };
            let items = parse(&fmt)
                .map_err(|e| lib_error(lua, format!("bad argument #1 to 'unpack' ({e})")))?;
            let mut out = MultiValue::new();
            let short = || lib_error(lua, "bad argument #2 to 'unpack' (data string too short)");
            let mut last_num: Option<usize> = None;
            for (item, st) in &items {
                pos += padding(pos, item, *st);
                match item {
                    Item::Pad => pos += 1,
                    Item::Int { size, signed } => {
                        let b = data.get(pos..pos + size).ok_or_else(short)?;
                        let mut v: u64 = 0;
                        for i in 0..*size {
                            let byte = if st.little { b[size - 1 - i] } else { b[i] };
                            v = (v << 8) | byte as u64;
                        }
                        let n = if *signed && *size < 8 && v & (1 << (size * 8 - 1)) != 0 {
                            (v as i64 - (1i64 << (size * 8))) as f64
                        } else if *signed {
                            v as i64 as f64
                        } else {
                            v as f64
                        };
                        last_num = Some(n as usize);
                        out.push_back(Value::Number(n));
                        pos += size;
                    }
                    Item::Float | Item::Double => {
                        let size = size_of(item);
                        let b = data.get(pos..pos + size).ok_or_else(short)?;
                        let mut bytes = b.to_vec();
                        if !st.little {
                            bytes.reverse();
                        }
                        let n = if size == 4 {
                            f32::from_le_bytes(bytes.try_into().expect("4 bytes")) as f64
                        } else {
                            f64::from_le_bytes(bytes.try_into().expect("8 bytes"))
                        };
                        out.push_back(Value::Number(n));
                        pos += size;
                    }
                    Item::ZString => {
                        let rest = data.get(pos..).ok_or_else(short)?;
                        let end = rest
                            .iter()
                            .position(|&b| b == 0)
                            .ok_or_else(|| lib_error(lua, "unfinished string in data"))?;
                        out.push_back(Value::String(lua.create_string(&rest[..end])?));
                        pos += end + 1;
                    }
                    Item::Chars(_) | Item::CharsAll => {
                        let n = match item {
                            Item::Chars(n) => *n,
                            _ => last_num.take().ok_or_else(|| {
                                lib_error(lua, "format 'c0' needs a previous size")
                            })?,
                        };
                        let b = data.get(pos..pos + n).ok_or_else(short)?;
                        out.push_back(Value::String(lua.create_string(b)?));
                        pos += n;
                    }
                }
            }
            out.push_back(Value::Number((pos + 1) as f64));
            Ok(out)
        })?,
    )?;
    t.raw_set(
        "size",
        lua.create_function(|lua, fmt: mlua::String| {
            let items = parse(&fmt.as_bytes())
                .map_err(|e| lib_error(lua, format!("bad argument #1 to 'size' ({e})")))?;
            let mut len = 0;
            for (item, st) in &items {
                if matches!(item, Item::ZString | Item::CharsAll) {
                    return Err(lib_error(lua, "options 'c0' - 's' have undefined sizes"));
                }
                len += padding(len, item, *st) + size_of(item);
            }
            Ok(len)
        })?,
    )?;
    Ok(t)
}
