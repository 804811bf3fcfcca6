//! Geo commands against the real server, with the replies Redis 7.0 gives for the same data.
//! Every test runs with the default cache and with a tiny one (values go through the disk
//! store and are loaded back).

use kvtier_tests::{assert_arity_errors, Client, Resp, Server};

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const TINY: &[&str] = &["--maxmemory", "1mb", "--cache-flush-delay", "0"];

fn both(f: impl Fn(&mut Client)) {
    for args in [&[][..], TINY] {
        let s = Server::start(args);
        let mut c = s.client();
        f(&mut c);
    }
}

fn b(items: &[&str]) -> Resp {
    Resp::bulks(items)
}

/// Fills the cache with other values so that earlier keys are evicted to disk.
fn churn(c: &mut Client) {
    let blob = "x".repeat(20_000);
    for i in 0..100 {
        c.cmd(&["SET", &format!("churn:{i}"), &blob]);
    }
}

fn sicily(c: &mut Client) {
    let r = c.cmd(&[
        "GEOADD",
        "Sicily",
        "13.361389",
        "38.115556",
        "Palermo",
        "15.087269",
        "37.502669",
        "Catania",
        "12.758489",
        "38.788135",
        "edge1",
        "17.241510",
        "38.788135",
        "edge2",
    ]);
    assert_eq!(r, Resp::Int(4));
    churn(c);
}

#[test]
fn geoadd_scores_positions_distances_hashes() {
    both(|c| {
        sicily(c);
        assert_eq!(
            c.cmd(&["ZSCORE", "Sicily", "Palermo"]),
            Resp::bulk("3479099956230698")
        );
        assert_eq!(
            c.cmd(&["ZSCORE", "Sicily", "Catania"]),
            Resp::bulk("3479447370796909")
        );
        assert_eq!(
            c.cmd(&["GEOPOS", "Sicily", "Palermo", "nope"]),
            Resp::Array(vec![
                b(&["13.36138933897018433", "38.11555639549629859"]),
                Resp::NilArray
            ])
        );
        assert_eq!(
            c.cmd(&["GEOPOS", "nokey", "a"]),
            Resp::Array(vec![Resp::NilArray])
        );
        assert_eq!(
            c.cmd(&["GEODIST", "Sicily", "Palermo", "Catania"]),
            Resp::bulk("166274.1516")
        );
        assert_eq!(
            c.cmd(&["GEODIST", "Sicily", "Palermo", "Catania", "km"]),
            Resp::bulk("166.2742")
        );
        assert_eq!(
            c.cmd(&["GEODIST", "Sicily", "Palermo", "Catania", "MI"]),
            Resp::bulk("103.3182")
        );
        assert_eq!(
            c.cmd(&["GEODIST", "Sicily", "Palermo", "Catania", "ft"]),
            Resp::bulk("545518.8700")
        );
        assert_eq!(c.cmd(&["GEODIST", "Sicily", "Palermo", "x"]), Resp::Nil);
        assert_eq!(c.cmd(&["GEODIST", "nokey", "a", "b"]), Resp::Nil);
        assert_eq!(
            c.cmd(&["GEOHASH", "Sicily", "Palermo", "Catania", "x"]),
            Resp::Array(vec![
                Resp::bulk("sqc8b49rny0"),
                Resp::bulk("sqdtr74hyu0"),
                Resp::Nil
            ])
        );
        // NX / XX / CH.
        assert_eq!(
            c.cmd(&["GEOADD", "Sicily", "NX", "1", "1", "Palermo", "2", "2", "n1"]),
            Resp::Int(1)
        );
        assert_eq!(
            c.cmd(&["ZSCORE", "Sicily", "Palermo"]),
            Resp::bulk("3479099956230698")
        );
        assert_eq!(
            c.cmd(&["GEOADD", "Sicily", "XX", "CH", "1", "1", "Palermo", "3", "3", "n2"]),
            Resp::Int(1)
        );
        assert_eq!(c.cmd(&["ZSCORE", "Sicily", "n2"]), Resp::Nil);
        assert_eq!(
            c.cmd(&["GEOADD", "Sicily", "1", "1", "Palermo"]),
            Resp::Int(0)
        );
        assert_eq!(
            c.cmd(&["GEOADD", "nokey", "XX", "1", "1", "a"]),
            Resp::Int(0)
        );
        assert_eq!(c.cmd(&["EXISTS", "nokey"]), Resp::Int(0));
    });
}

#[test]
fn searches() {
    both(|c| {
        sicily(c);
        // Unsorted results come in the order of Redis's cell scan.
        assert_eq!(
            c.cmd(&[
                "GEOSEARCH",
                "Sicily",
                "FROMMEMBER",
                "Palermo",
                "BYRADIUS",
                "200",
                "km"
            ]),
            b(&["Palermo", "edge1", "Catania"])
        );
        assert_eq!(
            c.cmd(&[
                "GEOSEARCH",
                "Sicily",
                "FROMLONLAT",
                "15",
                "37",
                "BYRADIUS",
                "2000",
                "km"
            ]),
            b(&["Palermo", "edge1", "Catania", "edge2"])
        );
        assert_eq!(
            c.cmd(&[
                "GEOSEARCH",
                "Sicily",
                "FROMLONLAT",
                "15",
                "37",
                "BYBOX",
                "400",
                "400",
                "km",
                "ASC",
                "WITHDIST"
            ]),
            Resp::Array(vec![
                b(&["Catania", "56.4413"]),
                b(&["Palermo", "190.4424"]),
                b(&["edge2", "279.7403"]),
                b(&["edge1", "279.7405"]),
            ])
        );
        assert_eq!(
            c.cmd(&[
                "GEOSEARCH",
                "Sicily",
                "FROMLONLAT",
                "15",
                "37",
                "BYRADIUS",
                "200",
                "km",
                "DESC"
            ]),
            b(&["Palermo", "Catania"])
        );
        assert_eq!(
            c.cmd(&[
                "GEORADIUS",
                "Sicily",
                "15",
                "37",
                "200",
                "km",
                "WITHDIST",
                "WITHCOORD",
                "WITHHASH",
                "ASC"
            ]),
            Resp::Array(vec![
                Resp::Array(vec![
                    Resp::bulk("Catania"),
                    Resp::bulk("56.4413"),
                    Resp::Int(3479447370796909),
                    b(&["15.08726745843887329", "37.50266842333162032"]),
                ]),
                Resp::Array(vec![
                    Resp::bulk("Palermo"),
                    Resp::bulk("190.4424"),
                    Resp::Int(3479099956230698),
                    b(&["13.36138933897018433", "38.11555639549629859"]),
                ]),
            ])
        );
        // COUNT alone sorts nearest first.
        assert_eq!(
            c.cmd(&["GEORADIUS", "Sicily", "15", "37", "200", "km", "COUNT", "1"]),
            b(&["Catania"])
        );
        assert_eq!(
            c.cmd(&[
                "GEORADIUSBYMEMBER",
                "Sicily",
                "Palermo",
                "1000",
                "km",
                "COUNT",
                "2",
                "DESC"
            ]),
            b(&["edge2", "Catania"])
        );
        assert_eq!(
            c.cmd(&[
                "GEORADIUS_RO",
                "Sicily",
                "15",
                "37",
                "200",
                "km",
                "COUNT",
                "1",
                "ANY"
            ])
            .sorted()
            .len(),
            1
        );
        assert_eq!(
            c.cmd(&["GEORADIUSBYMEMBER_RO", "Sicily", "nope", "1", "km"]),
            Resp::err("ERR could not decode requested zset member")
        );
        assert_eq!(
            c.cmd(&[
                "GEOSEARCH",
                "nokey",
                "FROMMEMBER",
                "x",
                "BYRADIUS",
                "1",
                "m"
            ]),
            Resp::Array(vec![])
        );
    });
}

#[test]
fn stores() {
    both(|c| {
        sicily(c);
        assert_eq!(
            c.cmd(&[
                "GEORADIUS",
                "Sicily",
                "15",
                "37",
                "200",
                "km",
                "STOREDIST",
                "d"
            ]),
            Resp::Int(2)
        );
        assert_eq!(
            c.cmd(&["ZRANGE", "d", "0", "-1", "WITHSCORES"]),
            b(&[
                "Catania",
                "56.441257870158204",
                "Palermo",
                "190.44242984775784"
            ])
        );
        // STORE keeps the geohash scores; the destination replaces what was there (its TTL
        // too), even when it was only on disk.
        c.cmd(&["SET", "st", "old"]);
        c.cmd(&["EXPIRE", "st", "1000"]);
        churn(c);
        assert_eq!(
            c.cmd(&[
                "GEORADIUSBYMEMBER",
                "Sicily",
                "Palermo",
                "200",
                "km",
                "STORE",
                "st"
            ]),
            Resp::Int(3)
        );
        assert_eq!(c.cmd(&["TTL", "st"]), Resp::Int(-1));
        assert_eq!(
            c.cmd(&["ZSCORE", "st", "Palermo"]),
            Resp::bulk("3479099956230698")
        );
        assert_eq!(
            c.cmd(&[
                "GEOSEARCHSTORE",
                "gs",
                "Sicily",
                "FROMLONLAT",
                "15",
                "37",
                "BYBOX",
                "400",
                "400",
                "km",
                "COUNT",
                "2",
                "STOREDIST"
            ]),
            Resp::Int(2)
        );
        assert_eq!(
            c.cmd(&["ZRANGE", "gs", "0", "-1"]),
            b(&["Catania", "Palermo"])
        );
        // Nothing found, or no source: the destination is deleted.
        assert_eq!(
            c.cmd(&[
                "GEOSEARCHSTORE",
                "gs",
                "Sicily",
                "FROMLONLAT",
                "0",
                "0",
                "BYRADIUS",
                "1",
                "m"
            ]),
            Resp::Int(0)
        );
        assert_eq!(c.cmd(&["EXISTS", "gs"]), Resp::Int(0));
        assert_eq!(
            c.cmd(&["GEORADIUS", "nokey", "15", "37", "200", "km", "STORE", "d"]),
            Resp::Int(0)
        );
        assert_eq!(c.cmd(&["EXISTS", "d"]), Resp::Int(0));
        assert_eq!(
            c.cmd(&[
                "COMMAND",
                "GETKEYS",
                "GEORADIUS",
                "k",
                "1",
                "2",
                "3",
                "km",
                "STORE",
                "dst"
            ]),
            b(&["k", "dst"])
        );
    });
}

#[test]
fn errors() {
    both(|c| {
        sicily(c);
        c.cmd(&["SET", "str", "x"]);
        let cases: &[(&[&str], &str)] = &[
            (
                &["GEOADD", "Sicily", "200", "100", "x"],
                "ERR invalid longitude,latitude pair 200.000000,100.000000",
            ),
            (&["GEOADD", "Sicily", "a", "1", "x"], "ERR value is not a valid float"),
            (&["GEOADD", "Sicily", "NX", "XX", "1", "1", "x"], "ERR syntax error"),
            (&["GEOADD", "Sicily", "1", "1", "x", "2"], "ERR syntax error"),
            (&["GEOADD", "str", "1", "1", "x"], WRONGTYPE),
            (&["GEOPOS", "str", "x"], WRONGTYPE),
            (&["GEOHASH", "str", "x"], WRONGTYPE),
            (&["GEODIST", "str", "a", "b"], WRONGTYPE),
            (
                &["GEODIST", "Sicily", "a", "b", "yd"],
                "ERR unsupported unit provided. please use M, KM, FT, MI",
            ),
            (&["GEODIST", "Sicily", "a", "b", "km", "x"], "ERR syntax error"),
            (
                &["GEOSEARCH", "Sicily", "FROMLONLAT", "1", "1", "BYRADIUS", "-1", "km"],
                "ERR radius cannot be negative",
            ),
            (
                &["GEOSEARCH", "Sicily", "FROMLONLAT", "1", "1", "BYRADIUS", "x", "km"],
                "ERR need numeric radius",
            ),
            (
                &["GEOSEARCH", "Sicily", "FROMLONLAT", "1", "1", "BYBOX", "x", "1", "km"],
                "ERR need numeric width",
            ),
            (
                &["GEOSEARCH", "Sicily", "FROMLONLAT", "1", "1", "BYBOX", "1", "x", "km"],
                "ERR need numeric height",
            ),
            (
                &["GEOSEARCH", "Sicily", "FROMLONLAT", "1", "1", "BYBOX", "1", "-1", "km"],
                "ERR height or width cannot be negative",
            ),
            (
                &["GEOSEARCH", "Sicily", "BYRADIUS", "1", "km", "ASC", "DESC"],
                "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for GEOSEARCH",
            ),
            (
                &["geosearch", "Sicily", "FROMLONLAT", "1", "1", "ASC", "WITHDIST"],
                "ERR exactly one of BYRADIUS and BYBOX can be specified for geosearch",
            ),
            (
                &["GEOSEARCH", "Sicily", "FROMLONLAT", "1", "1", "BYRADIUS", "1", "km", "ANY"],
                "ERR the ANY argument requires COUNT argument",
            ),
            (
                &["GEOSEARCH", "Sicily", "FROMLONLAT", "1", "1", "BYRADIUS", "1", "km", "COUNT", "0"],
                "ERR COUNT must be > 0",
            ),
            (
                &["GEOSEARCH", "Sicily", "FROMLONLAT", "1", "1", "BYRADIUS", "1", "km", "STORE", "x"],
                "ERR syntax error",
            ),
            (
                &[
                    "GEOSEARCHSTORE",
                    "d",
                    "Sicily",
                    "FROMLONLAT",
                    "1",
                    "1",
                    "BYRADIUS",
                    "1",
                    "km",
                    "WITHDIST",
                ],
                "ERR GEOSEARCHSTORE is not compatible with WITHDIST, WITHHASH and WITHCOORD options",
            ),
            (
                &["GEORADIUS", "Sicily", "1", "1", "1", "km", "STORE", "x", "WITHHASH"],
                "ERR STORE option in GEORADIUS is not compatible with WITHDIST, WITHHASH and WITHCOORD options",
            ),
            (
                &["GEORADIUS_RO", "Sicily", "1", "1", "1", "km", "STORE", "x"],
                "ERR syntax error",
            ),
            (
                &["GEORADIUSBYMEMBER", "Sicily", "nope", "1", "km"],
                "ERR could not decode requested zset member",
            ),
            (&["GEOSEARCH", "str", "FROMLONLAT", "1", "1", "BYRADIUS", "1", "km"], WRONGTYPE),
        ];
        for (req, err) in cases {
            assert_eq!(c.cmd(req), Resp::err(err), "{req:?}");
        }
        assert_arity_errors(
            c,
            &[
                &["GEOADD", "k", "1", "1"],
                &["GEOPOS"],
                &["GEODIST", "k", "a"],
                &["GEOHASH"],
                &["GEOSEARCH", "k", "FROMLONLAT", "1", "1"],
                &["GEOSEARCHSTORE", "d", "k", "FROMLONLAT", "1", "1", "x"],
                &["GEORADIUS", "k", "1", "1", "1"],
                &["GEORADIUSBYMEMBER", "k", "m", "1"],
            ],
        );
    });
}

#[test]
fn many_geo_sets_round_trip_through_disk() {
    let s = Server::start(TINY);
    let mut c = s.client();
    let mut want = Vec::new();
    for k in 0..60 {
        let key = format!("geo:{k}");
        let mut args = vec!["GEOADD".to_string(), key.clone()];
        for i in 0..200 {
            let lon = -170.0 + ((k * 200 + i) as f64 * 0.0137) % 340.0;
            let lat = -80.0 + ((k * 31 + i * 7) as f64 * 0.0113) % 160.0;
            args.extend([
                format!("{lon:.6}"),
                format!("{lat:.6}"),
                format!("member:{i}"),
            ]);
        }
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(c.cmd(&a), Resp::Int(200));
        want.push(c.cmd(&["GEOPOS", &key, "member:0", "member:199"]));
    }
    for (k, w) in want.iter().enumerate() {
        let key = format!("geo:{k}");
        assert_eq!(
            &c.cmd(&["GEOPOS", &key, "member:0", "member:199"]),
            w,
            "{key}"
        );
        assert_eq!(c.cmd(&["ZCARD", &key]), Resp::Int(200));
    }
}
