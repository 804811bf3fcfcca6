//! `cmsgpack`: MessagePack pack/unpack as lua-cmsgpack does it (integers in the smallest
//! encoding, non-integers as float when exact else double, tables with keys 1..n as arrays).

use super::lib_error;
use mlua::{Lua, MultiValue, Table, Value};

/// Nesting past which tables are packed as nil, as lua-cmsgpack does.
const MAX_NESTING: usize = 16;

pub fn table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "pack",
        lua.create_function(|lua, args: MultiValue| {
            if args.is_empty() {
                return Err(lib_error(lua, "MessagePack pack needs input."));
            }
            let mut out = Vec::new();
            for v in args.iter() {
                pack(v, 0, &mut out)?;
            }
            lua.create_string(&out)
        })?,
    )?;
    t.raw_set(
        "unpack",
        lua.create_function(|lua, s: mlua::String| {
            let data = s.as_bytes();
            let mut pos = 0;
            let mut out = MultiValue::new();
            while pos < data.len() {
                match unpack(lua, &data, &mut pos)? {
                    Ok(v) => out.push_back(v),
                    Err(msg) => return Err(lib_error(lua, msg)),
                }
            }
            Ok(out)
        })?,
    )?;
    Ok(t)
}

fn pack_int(n: i64, out: &mut Vec<u8>) {
    if n >= 0 {
        let u = n as u64;
        if u < 128 {
            out.push(u as u8);
        } else if u <= 0xff {
            out.extend_from_slice(&[0xcc, u as u8]);
        } else if u <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(u as u16).to_be_bytes());
        } else if u <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(u as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&u.to_be_bytes());
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2_147_483_648 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn pack_len(n: usize, fix: u8, fix_max: usize, codes: [u8; 2], out: &mut Vec<u8>) {
    if n < fix_max {
        out.push(fix | n as u8);
    } else if n <= 0xffff {
        out.push(codes[0]);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(codes[1]);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn pack(v: &Value, depth: usize, out: &mut Vec<u8>) -> mlua::Result<()> {
    match v {
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(i) => pack_int(*i, out),
        Value::Number(n) => {
            if n.fract() == 0.0 && n.abs() < 9.2e18 {
                pack_int(*n as i64, out);
            } else if (*n as f32) as f64 == *n || n.is_nan() {
                out.push(0xca);
                out.extend_from_slice(&(*n as f32).to_be_bytes());
            } else {
                out.push(0xcb);
                out.extend_from_slice(&n.to_be_bytes());
            }
        }
        Value::String(s) => {
            let b = s.as_bytes();
            let n = b.len();
            if n < 32 {
                out.push(0xa0 | n as u8);
            } else if n <= 0xff {
                out.extend_from_slice(&[0xd9, n as u8]);
            } else if n <= 0xffff {
                out.push(0xda);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            } else {
                out.push(0xdb);
                out.extend_from_slice(&(n as u32).to_be_bytes());
            }
            out.extend_from_slice(&b);
        }
        Value::Table(t) if depth < MAX_NESTING => {
            let pairs: Vec<(Value, Value)> =
                t.pairs::<Value, Value>().collect::<mlua::Result<_>>()?;
            let is_array = pairs.iter().all(|(k, _)| match k {
                Value::Integer(i) => *i >= 1 && (*i as usize) <= pairs.len(),
                Value::Number(n) => *n >= 1.0 && n.fract() == 0.0 && (*n as usize) <= pairs.len(),
                _ => false,
            });
            if is_array {
                pack_len(pairs.len(), 0x90, 16, [0xdc, 0xdd], out);
                for i in 1..=pairs.len() {
                    pack(&t.raw_get::<Value>(i)?, depth + 1, out)?;
                }
            } else {
                pack_len(pairs.len(), 0x80, 16, [0xde, 0xdf], out);
                for (k, v) in &pairs {
                    pack(k, depth + 1, out)?;
                    pack(v, depth + 1, out)?;
                }
            }
        }
        _ => out.push(0xc0),
    }
    Ok(())
}

fn take<'a>(data: &'a [u8], pos: &mut usize, n: usize) -> Result<&'a [u8], &'static str> {
    let s = data.get(*pos..*pos + n).ok_or("Missing bytes in input.")?;
    *pos += n;
    Ok(s)
}

fn be(data: &[u8], pos: &mut usize, n: usize) -> Result<u64, &'static str> {
    Ok(take(data, pos, n)?
        .iter()
        .fold(0u64, |acc, &b| (acc << 8) | b as u64))
}

type Unpacked = Result<Value, &'static str>;

fn unpack(lua: &Lua, data: &[u8], pos: &mut usize) -> mlua::Result<Unpacked> {
    let c = data[*pos];
    *pos += 1;
    let num = |n: f64| Ok(Ok(Value::Number(n)));
    macro_rules! get {
        ($e:expr) => {
            match $e {
                Ok(v) => v,
                Err(e) => return Ok(Err(e)),
            }
        };
    }
    let string = |pos: &mut usize, n: usize| -> mlua::Result<Unpacked> {
        let b = get!(take(data, pos, n));
        Ok(Ok(Value::String(lua.create_string(b)?)))
    };
    let array = |pos: &mut usize, n: usize| -> mlua::Result<Unpacked> {
        let t = lua.create_table()?;
        for i in 1..=n {
            if *pos >= data.len() {
                return Ok(Err("Missing bytes in input."));
            }
            let v = get!(unpack(lua, data, pos)?);
            t.raw_set(i, v)?;
        }
        Ok(Ok(Value::Table(t)))
    };
    let map = |pos: &mut usize, n: usize| -> mlua::Result<Unpacked> {
        let t = lua.create_table()?;
        for _ in 0..n {
            if *pos >= data.len() {
                return Ok(Err("Missing bytes in input."));
            }
            let k = get!(unpack(lua, data, pos)?);
            if *pos >= data.len() {
                return Ok(Err("Missing bytes in input."));
            }
            let v = get!(unpack(lua, data, pos)?);
            if k != Value::Nil {
                t.raw_set(k, v)?;
            }
        }
        Ok(Ok(Value::Table(t)))
    };
    match c {
        0x00..=0x7f => num(c as f64),
        0x80..=0x8f => map(pos, (c & 0x0f) as usize),
        0x90..=0x9f => array(pos, (c & 0x0f) as usize),
        0xa0..=0xbf => string(pos, (c & 0x1f) as usize),
        0xc0 => Ok(Ok(Value::Nil)),
        0xc2 => Ok(Ok(Value::Boolean(false))),
        0xc3 => Ok(Ok(Value::Boolean(true))),
        0xc4 | 0xd9 => {
            let n = get!(be(data, pos, 1)) as usize;
            string(pos, n)
        }
        0xc5 | 0xda => {
            let n = get!(be(data, pos, 2)) as usize;
            string(pos, n)
        }
        0xc6 | 0xdb => {
            let n = get!(be(data, pos, 4)) as usize;
            string(pos, n)
        }
        0xca => num(f32::from_bits(get!(be(data, pos, 4)) as u32) as f64),
        0xcb => num(f64::from_bits(get!(be(data, pos, 8)))),
        0xcc => num(get!(be(data, pos, 1)) as f64),
        0xcd => num(get!(be(data, pos, 2)) as f64),
        0xce => num(get!(be(data, pos, 4)) as f64),
        0xcf => num(get!(be(data, pos, 8)) as f64),
        0xd0 => num(get!(be(data, pos, 1)) as u8 as i8 as f64),
        0xd1 => num(get!(be(data, pos, 2)) as u16 as i16 as f64),
        0xd2 => num(get!(be(data, pos, 4)) as u32 as i32 as f64),
        0xd3 => num(get!(be(data, pos, 8)) as i64 as f64),
        0xdc => {
            let n = get!(be(data, pos, 2)) as usize;
            array(pos, n)
        }
        0xdd => {
            let n = get!(be(data, pos, 4)) as usize;
            array(pos, n)
        }
        0xde => {
            let n = get!(be(data, pos, 2)) as usize;
            map(pos, n)
        }
        0xdf => {
            let n = get!(be(data, pos, 4)) as usize;
            map(pos, n)
        }
        0xe0..=0xff => num(c as i8 as f64),
        _ => Ok(Err("Bad data format in input.")),
    }
}
