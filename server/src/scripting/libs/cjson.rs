//! `cjson`: JSON encode/decode with lua-cjson's rules as Redis configures it (arrays are tables
//! whose keys are 1..n, sparse up to a ratio; numbers printed as Lua prints them, `%.14g`;
//! `cjson.null` is a null light userdata; nesting limited to 1000).

use super::lib_error;
use mlua::{LightUserData, Lua, Table, Value};

const MAX_DEPTH: usize = 1000;

fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

pub fn table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "encode",
        lua.create_function(|lua, v: Value| {
            let mut out = Vec::new();
            encode(lua, &v, 0, &mut out)?;
            lua.create_string(&out)
        })?,
    )?;
    t.raw_set(
        "decode",
        lua.create_function(|lua, v: Value| {
            let s = match &v {
                Value::String(s) => s.as_bytes().to_vec(),
                Value::Integer(_) | Value::Number(_) => lua
                    .coerce_string(v.clone())?
                    .map(|s| s.as_bytes().to_vec())
                    .unwrap_or_default(),
                other => {
                    return Err(lib_error(
                        lua,
                        format!(
                            "bad argument #1 to 'decode' (string expected, got {})",
                            other.type_name()
                        ),
                    ))
                }
            };
            let mut p = Parser { s: &s, pos: 0, lua };
            let v = p.value(0)?;
            let (tok, at) = p.token()?;
            if !matches!(tok, Tok::End) {
                return Err(p.expected("the end", &tok, at));
            }
            Ok(v)
        })?,
    )?;
    t.raw_set("null", null())?;
    Ok(t)
}

fn encode(lua: &Lua, v: &Value, depth: usize, out: &mut Vec<u8>) -> mlua::Result<()> {
    match v {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(u) if u.0.is_null() => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Integer(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Value::Number(n) => {
            if !n.is_finite() {
                return Err(lib_error(
                    lua,
                    "Cannot serialise number: must not be NaN or Inf",
                ));
            }
            let s = lua.coerce_string(Value::Number(*n))?.expect("a number");
            out.extend_from_slice(&s.as_bytes());
        }
        Value::String(s) => encode_string(&s.as_bytes(), out),
        Value::Table(t) => {
            if depth + 1 > MAX_DEPTH {
                return Err(lib_error(
                    lua,
                    format!("Cannot serialise, excessive nesting ({})", depth + 1),
                ));
            }
            let len = array_len(t)?;
            if len == Some(usize::MAX) {
                return Err(lib_error(
                    lua,
                    "Cannot serialise table: excessively sparse array",
                ));
            }
            match len {
                Some(n) => {
                    out.push(b'[');
                    for i in 1..=n {
                        if i > 1 {
                            out.push(b',');
                        }
                        encode(lua, &t.raw_get::<Value>(i)?, depth + 1, out)?;
                    }
                    out.push(b']');
                }
                None => {
                    out.push(b'{');
                    let mut first = true;
                    for pair in t.pairs::<Value, Value>() {
                        let (k, v) = pair?;
                        if !first {
                            out.push(b',');
                        }
                        first = false;
                        match &k {
                            Value::String(s) => encode_string(&s.as_bytes(), out),
                            Value::Integer(_) | Value::Number(_) => {
                                let s = lua.coerce_string(k.clone())?.expect("a number");
                                encode_string(&s.as_bytes(), out);
                            }
                            _ => {
                                return Err(lib_error(
                                    lua,
                                    "Cannot serialise table: table key must be a number or string",
                                ))
                            }
                        }
                        out.push(b':');
                        encode(lua, &v, depth + 1, out)?;
                    }
                    out.push(b'}');
                }
            }
        }
        other => {
            return Err(lib_error(
                lua,
                format!("Cannot serialise {}: type not supported", other.type_name()),
            ))
        }
    }
    Ok(())
}

/// `Some(n)` when the table is an array of n items (`Some(usize::MAX)`: too sparse to encode) (keys 1..n, holes allowed up to a ratio, as
/// lua-cjson's `encode_sparse_array` defaults: ratio 2, always an array up to 10).
fn array_len(t: &Table) -> mlua::Result<Option<usize>> {
    let (mut max, mut count) = (0usize, 0usize);
    for pair in t.pairs::<Value, Value>() {
        let (k, _) = pair?;
        let idx = match k {
            Value::Integer(i) if i >= 1 => i as usize,
            Value::Number(n) if n >= 1.0 && n.fract() == 0.0 => n as usize,
            _ => return Ok(None),
        };
        max = max.max(idx);
        count += 1;
    }
    if count == 0 {
        return Ok(None);
    }
    if max > 10 && max > count * 2 {
        // lua-cjson's default is to refuse such a table (usize::MAX tells the caller).
        return Ok(Some(usize::MAX));
    }
    Ok(Some(max))
}

fn encode_string(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            c if c < 0x20 || c == 0x7f => {
                out.extend_from_slice(format!("\\u{:04x}", c).as_bytes());
            }
            c => out.push(c),
        }
    }
    out.push(b'"');
}

enum Tok {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Str(Vec<u8>),
    Num(f64),
    Bool(bool),
    Null,
    Colon,
    Comma,
    End,
    Error(&'static str),
}

impl Tok {
    fn name(&self) -> &'static str {
        match self {
            Tok::ObjBegin => "T_OBJ_BEGIN",
            Tok::ObjEnd => "T_OBJ_END",
            Tok::ArrBegin => "T_ARR_BEGIN",
            Tok::ArrEnd => "T_ARR_END",
            Tok::Str(_) => "T_STRING",
            Tok::Num(_) => "T_NUMBER",
            Tok::Bool(_) => "T_BOOLEAN",
            Tok::Null => "T_NULL",
            Tok::Colon => "T_COLON",
            Tok::Comma => "T_COMMA",
            Tok::End => "T_END",
            Tok::Error(e) => e,
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    lua: &'a Lua,
}

impl Parser<'_> {
    fn expected(&self, what: &str, tok: &Tok, at: usize) -> mlua::Error {
        lib_error(
            self.lua,
            format!(
                "Expected {what} but found {} at character {}",
                tok.name(),
                at + 1
            ),
        )
    }

    /// The next token and where it starts.
    fn token(&mut self) -> mlua::Result<(Tok, usize)> {
        while self
            .s
            .get(self.pos)
            .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.pos += 1;
        }
        let at = self.pos;
        let Some(&c) = self.s.get(self.pos) else {
            return Ok((Tok::End, at));
        };
        let single = |t| (t, at);
        let tok = match c {
            b'{' => single(Tok::ObjBegin),
            b'}' => single(Tok::ObjEnd),
            b'[' => single(Tok::ArrBegin),
            b']' => single(Tok::ArrEnd),
            b':' => single(Tok::Colon),
            b',' => single(Tok::Comma),
            b'"' => return Ok((self.string(), at)),
            b'-' | b'0'..=b'9' => return Ok((self.number(), at)),
            _ => {
                for (word, t) in [
                    (&b"true"[..], Tok::Bool(true)),
                    (b"false", Tok::Bool(false)),
                    (b"null", Tok::Null),
                ] {
                    if self.s[self.pos..].starts_with(word) {
                        self.pos += word.len();
                        return Ok((t, at));
                    }
                }
                return Ok((Tok::Error("invalid token"), at));
            }
        };
        self.pos += 1;
        Ok(tok)
    }

    fn string(&mut self) -> Tok {
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.pos) else {
                return Tok::Error("unexpected end of string");
            };
            self.pos += 1;
            match c {
                b'"' => return Tok::Str(out),
                b'\\' => {
                    let Some(&e) = self.s.get(self.pos) else {
                        return Tok::Error("unexpected end of string");
                    };
                    self.pos += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let Some(cp) = self.hex4() else {
                                return Tok::Error("invalid unicode escape code");
                            };
                            let cp = if (0xd800..0xdc00).contains(&cp) {
                                // A surrogate pair.
                                if self.s[self.pos..].starts_with(b"\\u") {
                                    self.pos += 2;
                                    match self.hex4() {
                                        Some(lo) if (0xdc00..0xe000).contains(&lo) => {
                                            0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00)
                                        }
                                        _ => return Tok::Error("invalid unicode escape code"),
                                    }
                                } else {
                                    return Tok::Error("invalid unicode escape code");
                                }
                            } else {
                                cp
                            };
                            match char::from_u32(cp) {
                                Some(ch) => {
                                    let mut b = [0u8; 4];
                                    out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
                                }
                                None => return Tok::Error("invalid unicode escape code"),
                            }
                        }
                        _ => return Tok::Error("invalid escape code"),
                    }
                }
                c => out.push(c),
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = self.s.get(self.pos..self.pos + 4)?;
        let v = u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()?;
        self.pos += 4;
        Some(v)
    }

    fn number(&mut self) -> Tok {
        let start = self.pos;
        while self
            .s
            .get(self.pos)
            .is_some_and(|c| matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
        {
            self.pos += 1;
        }
        match std::str::from_utf8(&self.s[start..self.pos])
            .ok()
            .and_then(|t| t.parse::<f64>().ok())
        {
            Some(n) => Tok::Num(n),
            None => Tok::Error("invalid number"),
        }
    }

    fn value(&mut self, depth: usize) -> mlua::Result<Value> {
        let (tok, at) = self.token()?;
        self.value_from(tok, at, depth)
    }

    fn value_from(&mut self, tok: Tok, at: usize, depth: usize) -> mlua::Result<Value> {
        Ok(match tok {
            Tok::Str(s) => Value::String(self.lua.create_string(&s)?),
            Tok::Num(n) => Value::Number(n),
            Tok::Bool(b) => Value::Boolean(b),
            Tok::Null => null(),
            Tok::ObjBegin | Tok::ArrBegin if depth + 1 > MAX_DEPTH => {
                return Err(lib_error(
                    self.lua,
                    format!(
                        "Found too many nested data structures ({}) at character {}",
                        depth + 1,
                        at + 1
                    ),
                ))
            }
            Tok::ArrBegin => {
                let t = self.lua.create_table()?;
                let (mut tok, mut at) = self.token()?;
                if matches!(tok, Tok::ArrEnd) {
                    return Ok(Value::Table(t));
                }
                let mut i = 1;
                loop {
                    let v = self.value_from(tok, at, depth + 1)?;
                    t.raw_set(i, v)?;
                    i += 1;
                    let (sep, sep_at) = self.token()?;
                    match sep {
                        Tok::ArrEnd => break,
                        Tok::Comma => {}
                        other => return Err(self.expected("comma or array end", &other, sep_at)),
                    }
                    (tok, at) = self.token()?;
                }
                Value::Table(t)
            }
            Tok::ObjBegin => {
                let t = self.lua.create_table()?;
                let (mut tok, mut at) = self.token()?;
                if matches!(tok, Tok::ObjEnd) {
                    return Ok(Value::Table(t));
                }
                loop {
                    let Tok::Str(k) = tok else {
                        return Err(self.expected("object key string", &tok, at));
                    };
                    let (colon, colon_at) = self.token()?;
                    if !matches!(colon, Tok::Colon) {
                        return Err(self.expected("colon", &colon, colon_at));
                    }
                    let v = self.value(depth + 1)?;
                    t.raw_set(self.lua.create_string(&k)?, v)?;
                    let (sep, sep_at) = self.token()?;
                    match sep {
                        Tok::ObjEnd => break,
                        Tok::Comma => {}
                        other => return Err(self.expected("comma or object end", &other, sep_at)),
                    }
                    (tok, at) = self.token()?;
                }
                Value::Table(t)
            }
            other => return Err(self.expected("value", &other, at)),
        })
    }
}
