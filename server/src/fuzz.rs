//! Fuzz harness for the RESP request parser, on stable Rust, run by `cargo test`.
//!
//! Seeded pseudo-random byte streams — valid requests (multibulk and inline), mutations of
//! them (bit flips, cut, duplicated and spliced bytes, hostile length headers), and the
//! saved corpus in `server/tests/fuzz-corpus/` — go through the parser the way the server
//! feeds it: in random chunks, compacting consumed input between reads. Checked for every
//! case: no panic, only Redis's protocol error texts, never more bytes consumed than given,
//! the parser's held memory bounded by its input, and for valid streams the same requests
//! whatever the chunking.
//!
//! `KVTIER_FUZZ_CASES` (default 1,000,000) and `KVTIER_FUZZ_SEED` (default fixed) run it
//! longer or differently: `KVTIER_FUZZ_CASES=50000000 cargo test --release -p kvtier-server
//! fuzz_`. A failing case is printed as hex: save it under `server/tests/fuzz-corpus/` and
//! name a regression test after it.

use crate::resp::{Parser, ProtoError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const KNOWN_ERRORS: &[&str] = &[
    "invalid bulk length",
    "invalid multibulk length",
    "unauthenticated bulk length",
    "unauthenticated multibulk length",
    "too big mbulk count string",
    "too big bulk count string",
    "too big inline request",
    "unbalanced quotes in request",
];

/// What feeding a stream produced: the requests, then the error that ended it (if any).
#[derive(Debug, PartialEq)]
struct Outcome {
    requests: Vec<Vec<Vec<u8>>>,
    error: Option<String>,
}

/// Feeds `input` to a fresh parser in chunks cut at `cuts`, like the server's read loop.
fn feed(input: &[u8], cuts: &[usize], max_bulk: usize, unauthenticated: bool) -> Outcome {
    let mut parser = Parser::default();
    parser.unauthenticated = unauthenticated;
    let mut buf: Vec<u8> = Vec::new();
    let mut pos = 0;
    let mut requests = Vec::new();
    let mut fed = 0;
    let mut bounds: Vec<usize> = cuts.iter().copied().filter(|&c| c < input.len()).collect();
    bounds.sort_unstable();
    bounds.push(input.len());
    for end in bounds {
        if end < fed {
            continue;
        }
        buf.extend_from_slice(&input[fed..end]);
        fed = end;
        loop {
            let before = pos;
            match parser.parse(&buf, &mut pos, max_bulk) {
                Ok(Some(args)) => {
                    assert!(pos > before, "a request without consuming input");
                    if !args.is_empty() {
                        requests.push(args);
                    }
                }
                Ok(None) => break,
                Err(ProtoError(e)) => {
                    assert!(
                        KNOWN_ERRORS.contains(&e.as_str()) || e.starts_with("expected '$', got '"),
                        "unexpected protocol error text {e:?}"
                    );
                    return Outcome {
                        requests,
                        error: Some(e),
                    };
                }
            }
            assert!(pos <= buf.len(), "consumed past the input");
            assert!(
                parser.held() <= input.len() * 40 + 64,
                "parser holds more than its input"
            );
        }
        // The server drops consumed input between reads.
        buf.drain(..pos);
        pos = 0;
    }
    Outcome {
        requests,
        error: None,
    }
}

fn random_arg(rng: &mut StdRng) -> Vec<u8> {
    let len = match rng.random_range(0..10) {
        0 => 0,
        1..=6 => rng.random_range(1..8),
        7 | 8 => rng.random_range(8..64),
        _ => rng.random_range(64..600),
    };
    (0..len)
        .map(|_| match rng.random_range(0..6) {
            0 => rng.random(),
            1 => {
                let special = b"\r\n\"' \\$*x";
                special[rng.random_range(0..special.len())]
            }
            _ => rng.random_range(b'a'..=b'z'),
        })
        .collect()
}

fn multibulk(args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A valid stream of requests and the requests it encodes.
fn valid_stream(rng: &mut StdRng) -> (Vec<u8>, Vec<Vec<Vec<u8>>>) {
    let mut out = Vec::new();
    let mut reqs = Vec::new();
    for _ in 0..rng.random_range(1..5) {
        let n = rng.random_range(1..6);
        let mut args: Vec<Vec<u8>> = (0..n).map(|_| random_arg(rng)).collect();
        if rng.random_bool(0.3) {
            // Inline form: plain words only (quoting is exercised by the mutations).
            for a in &mut args {
                a.retain(|c| c.is_ascii_alphanumeric());
                if a.is_empty() {
                    a.push(b'x');
                }
            }
            if args[0][0] == b'*' {
                args[0][0] = b'x';
            }
            out.extend_from_slice(&args.join(&b' '));
            out.extend_from_slice(if rng.random_bool(0.5) { b"\r\n" } else { b"\n" });
        } else {
            out.extend_from_slice(&multibulk(&args));
        }
        reqs.push(args);
    }
    (out, reqs)
}

fn hostile_header(rng: &mut StdRng) -> Vec<u8> {
    let num: String = match rng.random_range(0..8) {
        0 => "-1".into(),
        1 => (i64::MAX).to_string(),
        2 => "99999999999999999999999".into(),
        3 => "2147483648".into(),
        4 => "+5".into(),
        5 => " 3".into(),
        6 => "".into(),
        _ => rng.random_range(0..100_000u32).to_string(),
    };
    let kind = if rng.random_bool(0.5) { '*' } else { '$' };
    format!("{kind}{num}\r\n").into_bytes()
}

fn mutate(rng: &mut StdRng, mut data: Vec<u8>, corpus: &[Vec<u8>]) -> Vec<u8> {
    for _ in 0..rng.random_range(1..4) {
        let len = data.len();
        match rng.random_range(0..8) {
            0 if len > 0 => {
                let i = rng.random_range(0..len);
                data[i] ^= 1 << rng.random_range(0..8);
            }
            1 if len > 0 => data.truncate(rng.random_range(0..len)),
            2 => {
                let i = rng.random_range(0..=len);
                let b: u8 = *[b'\r', b'\n', b'"', b'\'', b'\\', b'*', b'$', 0]
                    .get(rng.random_range(0..8))
                    .unwrap_or(&0);
                data.insert(i, b);
            }
            3 if len > 0 => {
                let a = rng.random_range(0..len);
                let b = rng.random_range(a..len.min(a + 64) + 1).min(len);
                let piece = data[a..b].to_vec();
                let at = rng.random_range(0..=data.len());
                data.splice(at..at, piece);
            }
            4 => {
                let at = rng.random_range(0..=len);
                let h = hostile_header(rng);
                data.splice(at..at, h);
            }
            5 if !corpus.is_empty() => {
                let other = &corpus[rng.random_range(0..corpus.len())];
                data.extend_from_slice(other);
            }
            6 => data.extend((0..rng.random_range(1..32)).map(|_| rng.random::<u8>())),
            _ => {
                // Unbalanced or escaped quotes in an inline request.
                let quotes: &[&[u8]] = &[
                    b"set a \"b\r\n",
                    b"x 'y\\'\r\n",
                    b"\"\\x4\"\r\n",
                    b"a \"b\"c\r\n",
                ];
                data.extend_from_slice(quotes[rng.random_range(0..quotes.len())]);
            }
        }
    }
    data
}

fn random_cuts(rng: &mut StdRng, len: usize) -> Vec<usize> {
    if len == 0 || rng.random_bool(0.3) {
        return Vec::new();
    }
    (0..rng.random_range(1..6))
        .map(|_| rng.random_range(0..=len))
        .collect()
}

fn corpus_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus")
}

fn load_corpus() -> Vec<Vec<u8>> {
    let mut files: Vec<_> = std::fs::read_dir(corpus_dir())
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// The harness: `KVTIER_FUZZ_CASES` cases (valid, mutated, corpus-seeded).
#[test]
fn fuzz_parser_generated_and_mutated_streams() {
    let cases = env_u64("KVTIER_FUZZ_CASES", 1_000_000);
    let seed = env_u64("KVTIER_FUZZ_SEED", 0x6b76_7469_6572);
    let corpus = load_corpus();
    let mut rng = StdRng::seed_from_u64(seed);
    for case in 0..cases {
        let (valid, reqs) = valid_stream(&mut rng);
        let (input, check_valid) = if case % 4 == 0 {
            (valid, true)
        } else {
            let base = if case % 7 == 0 && !corpus.is_empty() {
                corpus[rng.random_range(0..corpus.len())].clone()
            } else {
                valid
            };
            (mutate(&mut rng, base, &corpus), false)
        };
        let cuts = random_cuts(&mut rng, input.len());
        let max_bulk = if rng.random_bool(0.9) { 512 << 20 } else { 16 };
        let unauth = rng.random_bool(0.1);
        let result = std::panic::catch_unwind(|| {
            let whole = feed(&input, &[], max_bulk, unauth);
            let chunked = feed(&input, &cuts, max_bulk, unauth);
            // Chunking never changes what is parsed (nor the error, when there is one).
            assert_eq!(whole, chunked, "chunking changed the outcome");
            whole
        });
        let outcome = result.unwrap_or_else(|_| {
            panic!(
                "parser failure, case {case} seed {seed}: input hex {} cuts {cuts:?} \
                 max_bulk {max_bulk} unauthenticated {unauth}",
                hex(&input)
            )
        });
        if check_valid && max_bulk > 1000 && !unauth {
            assert_eq!(outcome.error, None, "valid input refused: {}", hex(&input));
            assert_eq!(
                outcome.requests,
                reqs,
                "valid input misparsed: {}",
                hex(&input)
            );
        }
    }
}

/// Every saved corpus file parses without a panic, however it is cut.
#[test]
fn fuzz_corpus_regressions() {
    let corpus = load_corpus();
    assert!(!corpus.is_empty(), "corpus dir {:?} is empty", corpus_dir());
    for input in &corpus {
        for step in [1, 2, 3, 7, 64, usize::MAX] {
            let cuts: Vec<usize> = (0..input.len())
                .step_by(step.min(input.len().max(1)))
                .collect();
            let _ = feed(input, &cuts, 512 << 20, false);
            let _ = feed(input, &cuts, 1024, true);
        }
    }
}

/// Length headers at and around the limits are refused before anything is allocated.
#[test]
fn fuzz_hostile_lengths_refused_early() {
    let cases: &[(&[u8], &str)] = &[
        (b"*2147483648\r\n", "invalid multibulk length"),
        (b"*1\r\n$536870913\r\n", "invalid bulk length"),
        (b"*1\r\n$9223372036854775807\r\n", "invalid bulk length"),
        (b"*1\r\n$99999999999999999999\r\n", "invalid bulk length"),
        (b"*11\r\n", "unauthenticated multibulk length"),
    ];
    for (input, want) in cases {
        let unauth = want.starts_with("unauth");
        let out = feed(input, &[], 512 << 20, unauth);
        assert_eq!(
            out.error.as_deref(),
            Some(*want),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
    let out = feed(b"*1\r\n$16385\r\n", &[], 512 << 20, true);
    assert_eq!(out.error.as_deref(), Some("unauthenticated bulk length"));
    // A count up to INT_MAX waits for its arguments, as in Redis 7.0.
    let out = feed(b"*2147483647\r\n$1\r\na\r\n", &[], 512 << 20, false);
    assert_eq!(
        out,
        Outcome {
            requests: vec![],
            error: None
        }
    );
}
