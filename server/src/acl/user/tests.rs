//! The rule language, the text of a user and its permissions, checked together.

use super::*;
use crate::commands;

fn user(rules: &[&str]) -> User {
    let mut u = User::new("t");
    u.apply_all(rules.iter().map(|r| r.as_bytes())).unwrap();
    u
}

#[test]
fn describes_like_redis() {
    assert_eq!(
        User::default_user().describe(),
        "user default on nopass ~* &* +@all"
    );
    assert_eq!(user(&[]).describe(), "user t off resetchannels -@all");
    assert_eq!(
        user(&["+@all", "-@dangerous", "+get"]).describe_commands(),
        "+@all -@dangerous"
    );
    assert_eq!(
        user(&["+@all", "-@dangerous", "+flushall", "-flushall"]).describe_commands(),
        "+@all -@dangerous"
    );
    assert_eq!(user(&["+get", "-get"]).describe_commands(), "-@all");
    assert_eq!(
        user(&["+get", "-get", "+get"]).describe_commands(),
        "-@all +get"
    );
    assert_eq!(user(&["+@read", "-@read"]).describe_commands(), "-@all");
    assert_eq!(
        user(&["allcommands", "-get", "nocommands", "+set"]).describe_commands(),
        "-@all +set"
    );
    assert_eq!(
        user(&["+config|get", "-config"]).describe_commands(),
        "-@all"
    );
    assert_eq!(
        user(&["+@all", "-@admin", "+debug"]).describe_commands(),
        "+@all -@admin +debug"
    );
    assert_eq!(user(&["~a", "~b", "~a"]).describe_keys(), "~a ~b");
    assert_eq!(user(&["~a", "allkeys"]).describe_keys(), "~*");
    assert_eq!(user(&["%R~a", "%W~a"]).describe_keys(), "~a");
    assert_eq!(user(&["%RW~a"]).describe_keys(), "~a");
    assert_eq!(user(&["~a", "resetkeys", "~b"]).describe_keys(), "~b");
    assert_eq!(
        user(&["&a", "allchannels"]).describe(),
        "user t off &* -@all"
    );
    assert_eq!(
        user(&[">x", "nopass"]).describe(),
        "user t off nopass resetchannels -@all"
    );
    assert_eq!(
        user(&["nopass", ">y"]).describe(),
        "user t off #a1fce4363854ff888cff4b8e7875d600c2682390412a8cf79b37d0b11148b0fa resetchannels -@all"
    );
    assert_eq!(
        user(&["on", "reset"]).describe(),
        "user t off sanitize-payload resetchannels -@all"
    );
}

#[test]
fn rule_errors() {
    let mut u = User::new("t");
    let err = |u: &mut User, r: &str| u.apply_all([r.as_bytes()]).unwrap_err();
    assert_eq!(
        err(&mut u, "badrule"),
        "Error in ACL SETUSER modifier 'badrule': Syntax error"
    );
    assert!(err(&mut u, "+nosuchcmd").ends_with("Unknown command or category name in ACL"));
    assert!(err(&mut u, "+@nosuch").ends_with("Unknown command or category name in ACL"));
    assert!(err(&mut u, "#abc").contains("exactly 64 characters"));
    assert!(err(&mut u, "<nopw").contains("does not exist"));
    assert!(err(&mut u, "%X~a").ends_with("Syntax error"));
    assert!(err(&mut u, "+config|get|x").ends_with("not supported"));
    u.apply(b"allkeys").unwrap();
    assert!(err(&mut u, "~a").contains("'allkeys' flag"));
    // Atomic: a failing rule list changes nothing.
    let before = u.clone();
    assert!(u.apply_all([b"on".as_slice(), b"bad"]).is_err());
    assert_eq!(u, before);
}

#[test]
fn permissions() {
    let get = commands::lookup(b"get").unwrap();
    let flushall = commands::lookup(b"flushall").unwrap();
    let config = commands::lookup(b"config").unwrap();
    let u = user(&["+@all", "-@dangerous", "+flushall"]);
    assert!(u.may_run(get, None) && u.may_run(flushall, None));
    assert!(!u.may_run(config, Some(b"get")));
    let u = user(&["+config|get"]);
    assert!(u.may_run(config, Some(b"GET")) && !u.may_run(config, Some(b"set")));
    let u = user(&["%R~r*", "%W~w*", "~both"]);
    let r = Access {
        read: true,
        write: false,
    };
    let w = Access {
        read: false,
        write: true,
    };
    let rw = Access {
        read: true,
        write: true,
    };
    assert!(u.may_access_key(b"r1", r) && !u.may_access_key(b"r1", w));
    assert!(u.may_access_key(b"w1", w) && !u.may_access_key(b"w1", rw));
    assert!(u.may_access_key(b"both", rw) && !u.may_access_key(b"x", r));
    let u = user(&["&news.*"]);
    assert!(u.may_use_channel(b"news.a", false));
    assert!(!u.may_use_channel(b"news.*x", true) && u.may_use_channel(b"news.*", true));
    let u = user(&["on", ">pw"]);
    assert!(u.accepts(b"pw") && !u.accepts(b"px"));
    assert!(!user(&["off", ">pw"]).accepts(b"pw"));
}
