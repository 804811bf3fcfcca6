//! Conversions between Lua values and RESP, as Redis 7.0 does them: a command's reply becomes
//! a Lua value for `redis.call` (RESP2 or, after `redis.setresp(3)`, RESP3 shapes), and the
//! script's return value becomes the client's reply.

use crate::reply::Reply;
use mlua::{Lua, Table, Value};

/// Nesting depth past which a returned table is cut (Redis stops at a similar bound).
const MAX_DEPTH: usize = 1000;

/// Lua number → integer reply as Redis does it (a C cast: out of range and NaN give i64::MIN).
fn lua_int(n: f64) -> i64 {
    if n.is_nan() || !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&n) {
        i64::MIN
    } else {
        n as i64
    }
}

fn number_of(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => Some(*n),
        _ => None,
    }
}

/// Writes a script's return value (or a value inside it) as a reply. `script_resp3` is the
/// protocol the script chose with `redis.setresp` (booleans depend on it).
/// The text of an error table (`{err = …}`), which as a script's result is the command's error,
/// and whether the table says the error is already counted (see [`super::vm::COUNTED`]).
pub fn error_of(v: &Value) -> Option<(String, bool)> {
    let Value::Table(t) = v else {
        return None;
    };
    match t.raw_get::<Value>("err") {
        Ok(Value::String(e)) => Some((e.to_string_lossy(), super::vm::is_counted(t))),
        _ => None,
    }
}

pub fn write_value(out: &mut Reply, v: &Value, script_resp3: bool, depth: usize) {
    match v {
        Value::Nil => out.null(),
        Value::Boolean(b) => {
            if script_resp3 {
                if out.resp3 {
                    out.buf
                        .extend_from_slice(if *b { b"#t\r\n" } else { b"#f\r\n" });
                } else {
                    out.int(*b as i64);
                }
            } else if *b {
                out.int(1);
            } else {
                out.null();
            }
        }
        Value::Integer(i) => out.int(*i),
        Value::Number(n) => out.int(lua_int(*n)),
        Value::String(s) => out.bulk(&s.as_bytes()),
        Value::Table(t) if depth < MAX_DEPTH => write_table(out, t, script_resp3, depth),
        _ => out.null(),
    }
}

fn write_table(out: &mut Reply, t: &Table, script_resp3: bool, depth: usize) {
    let field = |name: &str| t.raw_get::<Value>(name).unwrap_or(Value::Nil);
    if let Value::String(e) = field("err") {
        // Newlines would break the protocol; Reply::error replaces them.
        return out.error(&e.to_string_lossy());
    }
    if let Value::String(s) = field("ok") {
        let clean: String = s
            .to_string_lossy()
            .chars()
            .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
            .collect();
        return out.simple(&clean);
    }
    if let Some(d) = number_of(&field("double")) {
        return write_double(out, d);
    }
    if let Value::String(s) = field("big_number") {
        let b = s.as_bytes();
        if out.resp3 {
            out.buf.push(b'(');
            out.buf.extend_from_slice(&b);
            out.buf.extend_from_slice(b"\r\n");
        } else {
            out.bulk(&b);
        }
        return;
    }
    if let Value::Table(m) = field("map") {
        let pairs: Vec<(Value, Value)> = m.pairs::<Value, Value>().filter_map(Result::ok).collect();
        out.map(pairs.len());
        for (k, v) in &pairs {
            write_value(out, k, script_resp3, depth + 1);
            write_value(out, v, script_resp3, depth + 1);
        }
        return;
    }
    if let Value::Table(s) = field("set") {
        let keys: Vec<Value> = s
            .pairs::<Value, Value>()
            .filter_map(Result::ok)
            .map(|(k, _)| k)
            .collect();
        out.set(keys.len());
        for k in &keys {
            write_value(out, k, script_resp3, depth + 1);
        }
        return;
    }
    if let Value::Table(vs) = field("verbatim_string") {
        if let (Ok(Value::String(fmt)), Ok(Value::String(s))) =
            (vs.raw_get::<Value>("format"), vs.raw_get::<Value>("string"))
        {
            let (fmt, s) = (fmt.as_bytes(), s.as_bytes());
            if out.resp3 {
                let mut b = itoa::Buffer::new();
                out.buf.push(b'=');
                out.buf
                    .extend_from_slice(b.format(fmt.len() + 1 + s.len()).as_bytes());
                out.buf.extend_from_slice(b"\r\n");
                out.buf.extend_from_slice(&fmt);
                out.buf.push(b':');
                out.buf.extend_from_slice(&s);
                out.buf.extend_from_slice(b"\r\n");
            } else {
                out.bulk(&s);
            }
            return;
        }
    }
    // An array: elements 1, 2, … up to the first nil.
    let mut items = Vec::new();
    let mut i = 1;
    loop {
        match t.raw_get::<Value>(i) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(v) => items.push(v),
        }
        i += 1;
    }
    out.array(items.len());
    for v in &items {
        write_value(out, v, script_resp3, depth + 1);
    }
}

/// A double as Redis writes one from Lua (`%.17g`-like shortest form; `inf`, `-nan`).
fn write_double(out: &mut Reply, d: f64) {
    let s = if d.is_nan() {
        "-nan".to_string()
    } else if d.is_infinite() {
        if d > 0.0 { "inf" } else { "-inf" }.to_string()
    } else {
        crate::util::fmt_double(d)
    };
    if out.resp3 {
        out.buf.push(b',');
        out.buf.extend_from_slice(s.as_bytes());
        out.buf.extend_from_slice(b"\r\n");
    } else {
        out.bulk(s.as_bytes());
    }
}

/// Parses one reply at `pos` of `buf` into a Lua value (`resp3`: the script asked for RESP3, so
/// the buffer holds RESP3 types). An error becomes an error table marked as counted.
pub fn reply_to_lua(lua: &Lua, buf: &[u8], pos: &mut usize, resp3: bool) -> mlua::Result<Value> {
    let line_end = buf[*pos..]
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|p| *pos + p)
        .ok_or_else(|| mlua::Error::runtime("truncated reply"))?;
    let kind = buf[*pos];
    let body = &buf[*pos + 1..line_end];
    *pos = line_end + 2;
    let num = || -> i64 {
        std::str::from_utf8(body)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    };
    let table_with = |k: &str, v: Value| -> mlua::Result<Value> {
        let t = lua.create_table()?;
        t.raw_set(k, v)?;
        Ok(Value::Table(t))
    };
    Ok(match kind {
        b'+' => table_with("ok", Value::String(lua.create_string(body)?))?,
        b'-' => {
            // The command's error is counted where it was replied (`Server::execute`).
            let t = lua.create_table()?;
            t.raw_set("err", lua.create_string(body)?)?;
            t.raw_set(super::vm::COUNTED, true)?;
            Value::Table(t)
        }
        b':' => Value::Number(num() as f64),
        b'$' | b'=' => {
            let n = num();
            if n < 0 {
                return Ok(if resp3 {
                    Value::Nil
                } else {
                    Value::Boolean(false)
                });
            }
            let data = &buf[*pos..*pos + n as usize];
            *pos += n as usize + 2;
            if kind == b'=' {
                let (fmt, text) = data.split_at(3.min(data.len()));
                let vt = lua.create_table()?;
                vt.raw_set("format", lua.create_string(fmt)?)?;
                vt.raw_set("string", lua.create_string(text.get(1..).unwrap_or(b""))?)?;
                table_with("verbatim_string", Value::Table(vt))?
            } else {
                Value::String(lua.create_string(data)?)
            }
        }
        b'*' | b'>' | b'~' | b'%' => {
            let n = num();
            if n < 0 {
                return Ok(if resp3 {
                    Value::Nil
                } else {
                    Value::Boolean(false)
                });
            }
            let t = lua.create_table()?;
            match kind {
                b'%' => {
                    for _ in 0..n {
                        let k = reply_to_lua(lua, buf, pos, resp3)?;
                        let v = reply_to_lua(lua, buf, pos, resp3)?;
                        if k != Value::Nil {
                            t.raw_set(k, v)?;
                        }
                    }
                    return table_with("map", Value::Table(t));
                }
                b'~' => {
                    for _ in 0..n {
                        let k = reply_to_lua(lua, buf, pos, resp3)?;
                        if k != Value::Nil {
                            t.raw_set(k, true)?;
                        }
                    }
                    return table_with("set", Value::Table(t));
                }
                _ => {
                    for i in 0..n {
                        let v = reply_to_lua(lua, buf, pos, resp3)?;
                        t.raw_set(i + 1, v)?;
                    }
                }
            }
            Value::Table(t)
        }
        b'_' => Value::Nil,
        b'#' => Value::Boolean(body == b"t"),
        b',' => {
            let s = String::from_utf8_lossy(body);
            let d = match s.as_ref() {
                "inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                "nan" | "-nan" => f64::NAN,
                other => other.parse().unwrap_or(0.0),
            };
            table_with("double", Value::Number(d))?
        }
        b'(' => table_with("big_number", Value::String(lua.create_string(body)?))?,
        _ => Value::Nil,
    })
}
