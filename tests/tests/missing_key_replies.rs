//! The reply of the commands whose reply shape follows an optional count (HRANDFIELD,
//! ZRANDMEMBER, LPOS … COUNT) when the key does not exist, and when it exists but is empty of
//! matches: byte-for-byte as redis-server 7.0 answers, in RESP2 and RESP3, with the value in the
//! cache and (tiny cache) on disk. Without redis-server the test prints why and passes.

use kvtier_tests::differential;

#[test]
fn missing_key_replies_follow_the_count() {
    differential("missing key replies", |p| {
        for cmd in [
            &["HRANDFIELD", "nokey"][..],
            &["HRANDFIELD", "nokey", "0"],
            &["HRANDFIELD", "nokey", "3"],
            &["HRANDFIELD", "nokey", "-3", "WITHVALUES"],
            &["ZRANDMEMBER", "nokey"],
            &["ZRANDMEMBER", "nokey", "0"],
            &["ZRANDMEMBER", "nokey", "2"],
            &["ZRANDMEMBER", "nokey", "-2", "WITHSCORES"],
            &["LPOS", "nokey", "x"],
            &["LPOS", "nokey", "x", "COUNT", "0"],
            &["LPOS", "nokey", "x", "RANK", "-1", "COUNT", "2"],
            // The arguments are checked before the key is looked up.
            &["ZRANDMEMBER", "nokey", "x"],
            &["ZRANDMEMBER", "nokey", "1", "WITHVALUES"],
            &["LPOS", "nokey", "x", "COUNT", "-1"],
        ] {
            p.c(cmd);
        }
        // A key of another type is WRONGTYPE whether or not a count was given.
        p.c(&["SET", "s", "v"]);
        for cmd in [
            &["HRANDFIELD", "s"][..],
            &["HRANDFIELD", "s", "1"],
            &["ZRANDMEMBER", "s"],
            &["ZRANDMEMBER", "s", "1"],
            &["LPOS", "s", "x"],
            &["LPOS", "s", "x", "COUNT", "1"],
        ] {
            p.c(cmd);
        }
        // An existing list with no match: nil without a count, an empty array with one.
        p.c(&["RPUSH", "l", "a", "b"]);
        p.c(&["LPOS", "l", "x"]);
        p.c(&["LPOS", "l", "x", "COUNT", "0"]);
    });
}
