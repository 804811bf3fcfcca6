//! Codec tests: payloads from redis-server 7.0.15 decode to the right value, kvtier's DUMP of
//! the same value is the same bytes where Redis's order is known, older encodings decode, and
//! damaged or hostile payloads are refused without panicking.

use super::*;
use crate::zset::ZSet;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn bytes(items: &[&str]) -> Vec<Vec<u8>> {
    items.iter().map(|s| s.as_bytes().to_vec()).collect()
}

fn list(items: &[&str]) -> Value {
    Value::List(Box::new(bytes(items).into_iter().collect()))
}

fn set(items: &[&str]) -> Value {
    Value::Set(Box::new(bytes(items).into_iter().collect()))
}

fn hash(pairs: &[(&str, &str)]) -> Value {
    Value::Hash(
        pairs
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect::<crate::hashval::Hash>()
            .into(),
    )
}

fn zset(pairs: &[(&str, f64)]) -> Value {
    let mut z = ZSet::default();
    for (m, s) in pairs {
        z.insert(m.as_bytes().to_vec(), *s);
    }
    Value::ZSet(z)
}

const SHAPE: encode::ListShape = encode::ListShape {
    fill: -2,
    compress_depth: 0,
};

fn dump_default(v: &Value) -> Vec<u8> {
    dump(v, &Config::default())
}

/// `(DUMP hex from redis-server 7.0.15, the value, whether kvtier's DUMP is the same bytes)`.
fn redis_payloads() -> Vec<(&'static str, Value, bool)> {
    let lz = format!("{} hello hello hello", "a".repeat(62));
    vec![
        (
            "00c3134050016161e03300052068656c6c6fe00105016c6f0a0097907185f9574b54",
            Value::Str(lz.into_bytes().into()),
            true,
        ),
        (
            "00c27929edff0a00569667057153cd9b",
            Value::Str(b"-1234567".to_vec().into()),
            true,
        ),
        (
            "000b31323334353637383930310a00304e52d727176510",
            Value::Str(b"12345678901".to_vec().into()),
            true,
        ),
        (
            "00c0070a0074cd48a283abce92",
            Value::Str(b"7".to_vec().into()),
            true,
        ),
        (
            "120102171700000005008161028162020101dffb02f270110104ff0a009f256ea455d5f473",
            list(&["a", "b", "1", "-5", "70000"]),
            true,
        ),
        (
            "0b0e02000000030000000100020003000a00a5025ce26d6e4d1b",
            set(&["1", "2", "3"]),
            true,
        ),
        ("0202017801790a00ac3a8d681184aa31", set(&["x", "y"]), false),
        (
            "11c32c3416340000000800816402842d696e660581610292312e3130e004000a311381620202018163\
             028320230104ff0a00bda9bcf975d14040",
            zset(&[
                ("a", 1.1),
                ("b", 2.0),
                ("c", f64::INFINITY),
                ("d", f64::NEG_INFINITY),
            ]),
            true,
        ),
        (
            "10151500000004008266310382763103826632031601ff0a00794ee62e9c48a90c",
            hash(&[("f1", "v1"), ("f2", "22")]),
            true,
        ),
        (
            "0502016d0000000000000440016e000000000000f0bf0a008cd58f397f91643b",
            zset(&[("m", 2.5), ("n", -1.0)]),
            false,
        ),
        (
            "0401016b01760a005020df261bff679e",
            hash(&[("k", "v")]),
            false,
        ),
    ]
}

#[test]
fn redis_payloads_restore() {
    for (hex, want, _) in redis_payloads() {
        assert_eq!(restore(&unhex(hex)), Ok(want), "{hex}");
    }
}

#[test]
fn dump_equals_redis_bytes() {
    for (hex, v, same) in redis_payloads() {
        if same {
            assert_eq!(hex_of(&dump_default(&v)), hex);
        }
    }
    // With the listpack thresholds at 0, Redis 7.0 writes ZSET_2 (highest score first) and HASH.
    let zs = encode::value(&zset(&[("m", 2.5), ("n", -1.0)]), "skiplist", SHAPE);
    assert_eq!(
        hex_of(&seal(&zs, RDB_VERSION)),
        "0502016d0000000000000440016e000000000000f0bf0a008cd58f397f91643b"
    );
    let hs = encode::value(&hash(&[("k", "v")]), "hashtable", SHAPE);
    assert_eq!(
        hex_of(&seal(&hs, RDB_VERSION)),
        "0401016b01760a005020df261bff679e"
    );
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn every_type_and_encoding_round_trips() {
    let long: String = (0..3000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let many: Vec<String> = (0..2000).map(|i| format!("item-{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let ints: Vec<String> = (0..600).map(|i| (i * 1_000_003 - 7).to_string()).collect();
    let ints: Vec<&str> = ints.iter().map(String::as_str).collect();
    let values = vec![
        Value::Str(Vec::new().into()),
        Value::Str(b"\x00\xff binary \r\n".to_vec().into()),
        Value::Str(b"-2147483648".to_vec().into()),
        Value::Str(b"9223372036854775807".to_vec().into()),
        Value::Str(long.clone().into_bytes().into()),
        list(&["x"]),
        list(&many),
        list(&[&long, "", "-1", &long]),
        set(&["-1", "70000", "9223372036854775807"]),
        set(&ints),
        set(&many),
        set(&["a", "1"]),
        hash(&[("f", ""), ("", "v"), ("n", "12")]),
        Value::Hash(
            many.iter()
                .map(|m| (m.as_bytes().to_vec(), b"v".to_vec()))
                .collect::<crate::hashval::Hash>()
                .into(),
        ),
        hash(&[("big", &long)]),
        zset(&[
            ("a", 0.1),
            ("b", -0.0),
            ("c", 1e300),
            ("d", f64::NEG_INFINITY),
            ("e", 5.0),
        ]),
        zset(&[
            ("a", 2f64.powi(60)),
            ("b", -(2f64.powi(62))),
            ("c", 2f64.powi(63)),
            ("d", 1.5e16),
        ]),
        Value::ZSet({
            let mut z = ZSet::default();
            for (i, m) in many.iter().enumerate() {
                z.insert(m.as_bytes().to_vec(), i as f64 / 3.0);
            }
            z
        }),
    ];
    let mut small = Config::default();
    small.set("list-max-listpack-size", "2", true).unwrap();
    for v in values {
        for config in [&Config::default(), &small] {
            let p = dump(&v, config);
            assert_eq!(restore(&p), Ok(v.clone()));
        }
    }
}

#[test]
fn lists_split_into_nodes_by_size_or_count() {
    let many: Vec<String> = (0..2000).map(|i| format!("item-{i}")).collect();
    let l = Value::List(Box::new(
        many.iter()
            .map(|s| s.as_bytes().to_vec())
            .collect::<crate::listval::List>(),
    ));
    let p = dump_default(&l);
    assert_eq!(p[0], types::LIST_QUICKLIST_2);
    // 2000 entries of ~10 bytes at 8 KiB a node: several nodes (a 14-bit node count).
    assert_eq!(p[1] >> 6, 0);
    assert!(p[1] > 1, "nodes {}", p[1]);
    let mut by_count = Config::default();
    by_count.set("list-max-listpack-size", "100", true).unwrap();
    let p = dump(&l, &by_count);
    assert_eq!(p[1], 20);
}

/// An RDB length as Redis writes it (for hand-built payloads).
fn len(n: usize) -> Vec<u8> {
    let mut v = Vec::new();
    encode::length(n as u64, &mut v);
    v
}

fn rstring(s: &[u8]) -> Vec<u8> {
    let mut v = len(s.len());
    v.extend_from_slice(s);
    v
}

/// A ziplist of short strings and small integers, as Redis 6 writes them.
fn ziplist(items: &[&str]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut prev = 0usize;
    let mut tail = 10;
    for it in items {
        tail = 10 + body.len();
        let start = body.len();
        body.push(prev as u8);
        match it.parse::<i64>() {
            Ok(n) if (0..=12).contains(&n) => body.push(0xF1 + n as u8),
            Ok(n) => {
                body.push(0xE0);
                body.extend_from_slice(&n.to_le_bytes());
            }
            Err(_) => {
                body.push(it.len() as u8);
                body.extend_from_slice(it.as_bytes());
            }
        }
        prev = body.len() - start;
    }
    let mut zl = Vec::new();
    zl.extend_from_slice(&((11 + body.len()) as u32).to_le_bytes());
    zl.extend_from_slice(&(tail as u32).to_le_bytes());
    zl.extend_from_slice(&(items.len() as u16).to_le_bytes());
    zl.extend_from_slice(&body);
    zl.push(0xFF);
    zl
}

fn typed(t: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut body = vec![t];
    parts.iter().for_each(|p| body.extend_from_slice(p));
    seal(&body, 9)
}

#[test]
fn older_encodings_restore() {
    let zl = rstring(&ziplist(&["a", "7", "-300", "hello"]));
    assert_eq!(
        restore(&typed(types::LIST_ZIPLIST, &[&zl])),
        Ok(list(&["a", "7", "-300", "hello"]))
    );
    let node2 = rstring(&ziplist(&["x"]));
    let empty = rstring(&ziplist(&[]));
    assert_eq!(
        restore(&typed(
            types::LIST_QUICKLIST,
            &[&len(3), &zl, &empty, &node2]
        )),
        Ok(list(&["a", "7", "-300", "hello", "x"]))
    );
    assert_eq!(
        restore(&typed(
            types::LIST,
            &[&len(2), &rstring(b"p"), &rstring(b"q")]
        )),
        Ok(list(&["p", "q"]))
    );
    let hz = rstring(&ziplist(&["f", "1", "g", "two"]));
    assert_eq!(
        restore(&typed(types::HASH_ZIPLIST, &[&hz])),
        Ok(hash(&[("f", "1"), ("g", "two")]))
    );
    let zz = rstring(&ziplist(&["m", "1", "n", "2.5", "o", "-inf"]));
    assert_eq!(
        restore(&typed(types::ZSET_ZIPLIST, &[&zz])),
        Ok(zset(&[("m", 1.0), ("n", 2.5), ("o", f64::NEG_INFINITY)]))
    );
    // Old ZSET: scores as text, 254 = +inf, 255 = -inf.
    let old = typed(
        types::ZSET,
        &[
            &len(3),
            &rstring(b"a"),
            b"\x031.5",
            &rstring(b"b"),
            b"\xfe",
            &rstring(b"c"),
            b"\xff",
        ],
    );
    assert_eq!(
        restore(&old),
        Ok(zset(&[
            ("a", 1.5),
            ("b", f64::INFINITY),
            ("c", f64::NEG_INFINITY)
        ]))
    );
    // Quicklist v2 with a PLAIN node (Redis writes those for huge elements).
    let lp = {
        let mut w = listpack::Writer::default();
        w.push(b"packed");
        rstring(&w.finish())
    };
    assert_eq!(
        restore(&typed(
            types::LIST_QUICKLIST_2,
            &[&len(2), &len(1), &rstring(b"plain"), &len(2), &lp]
        )),
        Ok(list(&["plain", "packed"]))
    );
}

#[test]
fn footer_is_checked_first() {
    let mut p = dump_default(&Value::Str(b"hello".to_vec().into()));
    assert_eq!(restore(&p[..9]), Err(RestoreError::VersionOrChecksum));
    let n = p.len();
    p[n - 1] ^= 1;
    assert_eq!(restore(&p), Err(RestoreError::VersionOrChecksum));
    let newer = seal(&[types::STRING, 1, b'x'], RDB_VERSION + 1);
    assert_eq!(restore(&newer), Err(RestoreError::VersionOrChecksum));
    let older = seal(&[types::STRING, 1, b'x'], 6);
    assert_eq!(restore(&older), Ok(Value::Str(b"x".to_vec().into())));
}

fn bad(body: &[u8]) -> bool {
    matches!(
        restore(&seal(body, RDB_VERSION)),
        Err(RestoreError::BadFormat(_))
    )
}

#[test]
fn hostile_payloads_are_bad_format() {
    // Lengths far beyond the payload: 2^40 as a 64-bit length, 2^32-1 as a 32-bit one.
    let huge = [0x81, 0, 0, 1, 0, 0, 0, 0, 0];
    for t in [
        types::STRING,
        types::LIST,
        types::SET,
        types::HASH,
        types::ZSET_2,
        types::LIST_QUICKLIST_2,
    ] {
        let mut body = vec![t];
        body.extend_from_slice(&huge);
        assert!(bad(&body), "type {t}");
        let mut body = vec![t, 0x80, 0xff, 0xff, 0xff, 0xff, 1, b'a'];
        assert!(bad(&body), "type {t}");
        body.truncate(1);
        assert!(bad(&body), "type {t}");
    }
    // LZF claiming 2^40 bytes of output.
    assert!(bad(&[
        types::STRING,
        0xC3,
        2,
        0x81,
        0,
        0,
        1,
        0,
        0,
        0,
        0,
        0,
        0,
        b'a'
    ]));
    // Empty collections, unknown and unsupported types (module, stream, 7.2 listpack set).
    for t in [types::LIST, types::SET, types::HASH, types::ZSET_2] {
        assert!(bad(&[t, 0]));
    }
    for t in [6, 7, 8, 9, 15, 19, 20, 21, 200] {
        assert!(bad(&[t, 1, b'a']), "type {t}");
    }
    // Duplicates, NaN scores, a bad quicklist container, an odd listpack of pairs.
    assert!(bad(&[types::SET, 2, 1, b'a', 1, b'a']));
    assert!(bad(&[types::HASH, 2, 1, b'a', 1, b'b', 1, b'a', 1, b'c']));
    let mut z = vec![types::ZSET_2, 1, 1, b'a'];
    z.extend_from_slice(&f64::NAN.to_le_bytes());
    assert!(bad(&z));
    assert!(bad(&[types::ZSET, 1, 1, b'a', 253]));
    assert!(bad(&[types::LIST_QUICKLIST_2, 1, 3, 1, b'a']));
    let mut w = listpack::Writer::default();
    w.push(b"lonely");
    let mut h = vec![types::HASH_LISTPACK];
    h.extend_from_slice(&rstring(&w.finish()));
    assert!(bad(&h));
    // Every truncation of every real payload is refused (after re-sealing, so the body is
    // what is checked).
    for (hex, _, _) in redis_payloads() {
        let p = unhex(hex);
        let body = &p[..p.len() - 10];
        for cut in 0..body.len() {
            let r = restore(&seal(&body[..cut], RDB_VERSION));
            assert!(r.is_err(), "{hex} cut at {cut}");
        }
    }
}

#[test]
fn random_damage_never_panics() {
    // Real payloads of every encoding (Redis's and kvtier's), damaged at random: bytes
    // overwritten, cut short, or a run of bytes duplicated; each re-sealed so the decoder sees it.
    let mut bodies: Vec<Vec<u8>> = redis_payloads()
        .iter()
        .map(|(hex, _, _)| {
            let p = unhex(hex);
            p[..p.len() - 10].to_vec()
        })
        .collect();
    let many: Vec<String> = (0..300).map(|i| format!("{}", i * 37)).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    for v in [list(&many), set(&many), zset(&[("a", 1.0), ("b", 2.5)])] {
        let p = dump_default(&v);
        bodies.push(p[..p.len() - 10].to_vec());
    }
    let hz = ziplist(&["f", "1", "g", "two", "h", "-300"]);
    bodies.push([&[types::HASH_ZIPLIST][..], &rstring(&hz)].concat());
    let mut seed = 12345u64;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize
    };
    for body in &bodies {
        for _ in 0..3000 {
            let mut b = body.clone();
            match next() % 3 {
                0 => {
                    for _ in 0..1 + next() % 3 {
                        let at = next() % b.len();
                        b[at] = next() as u8;
                    }
                }
                1 => b.truncate(next() % b.len()),
                _ => {
                    let at = next() % b.len();
                    let run = b[at..(at + 1 + next() % 8).min(b.len())].to_vec();
                    b.splice(at..at, run);
                }
            }
            let _ = restore(&seal(&b, RDB_VERSION));
        }
    }
}
