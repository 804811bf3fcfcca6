//! CLIENT TRACKING, CLIENT CACHING, CLIENT GETREDIR and CLIENT TRACKINGINFO (dispatched from
//! CLIENT in connection.rs). The invalidations themselves are sent by `crate::tracking`.

use super::{CmdError, CmdResult, Ctx};

/// Runs a tracking subcommand of CLIENT; `false` if `args[1]` is none of them.
pub fn client_subcommand(ctx: &mut Ctx, args: &[Vec<u8>]) -> Result<bool, CmdError> {
    let sub = args[1].to_ascii_lowercase();
    let (name, arity_ok) = match sub.as_slice() {
        b"tracking" => ("tracking", args.len() >= 3),
        b"caching" => ("caching", args.len() == 3),
        b"getredir" => ("getredir", args.len() == 2),
        b"trackinginfo" => ("trackinginfo", args.len() == 2),
        _ => return Ok(false),
    };
    if !arity_ok {
        return Err(CmdError::msg(format!(
            "ERR wrong number of arguments for 'client|{name}' command"
        )));
    }
    match name {
        "tracking" => tracking(ctx, args)?,
        "caching" => caching(ctx, &args[2])?,
        "getredir" => {
            let tr = &ctx.client.tracking;
            ctx.out.int(if tr.on { tr.redirect as i64 } else { -1 })
        }
        _ => tracking_info(ctx),
    }
    Ok(true)
}

/// Options of CLIENT TRACKING as given.
#[derive(Default)]
struct Options {
    redirect: u64,
    bcast: bool,
    optin: bool,
    optout: bool,
    noloop: bool,
    prefixes: Vec<Vec<u8>>,
}

/// Whether one prefix is a prefix of the other (equal ones overlap too).
fn overlap(a: &[u8], b: &[u8]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// Parses the options, with Redis's error for a bad one. As in Redis,
/// REDIRECT names a client that must exist now.
fn parse(ctx: &mut Ctx, args: &[Vec<u8>]) -> Result<Options, CmdError> {
    let mut o = Options::default();
    let mut i = 3;
    while i < args.len() {
        let more = i + 1 < args.len();
        match args[i].to_ascii_lowercase().as_slice() {
            b"redirect" if more => {
                i += 1;
                if o.redirect != 0 {
                    return Err(CmdError::msg(
                        "ERR A client can only redirect to a single other client",
                    ));
                }
                let Some(id) = crate::util::parse_i64(&args[i]) else {
                    return Err(CmdError::NotInt);
                };
                let prefix = format!("id={id} ");
                if id <= 0
                    || !ctx
                        .shared
                        .client_list
                        .iter()
                        .any(|l| l.starts_with(&prefix))
                {
                    return Err(CmdError::msg(
                        "ERR The client ID you want redirect to does not exist",
                    ));
                }
                o.redirect = id as u64;
            }
            b"bcast" => o.bcast = true,
            b"optin" => o.optin = true,
            b"optout" => o.optout = true,
            b"noloop" => o.noloop = true,
            b"prefix" if more => {
                i += 1;
                o.prefixes.push(args[i].clone());
            }
            _ => {
                return Err(CmdError::Syntax);
            }
        }
        i += 1;
    }
    Ok(o)
}

/// The reason CLIENT TRACKING ON with these options is refused, in Redis's order of checks.
fn refusal(ctx: &Ctx, o: &Options) -> Option<String> {
    let tr = &ctx.client.tracking;
    if !o.bcast && !o.prefixes.is_empty() {
        return Some("ERR PREFIX option requires BCAST mode to be enabled".into());
    }
    if tr.on && tr.bcast != o.bcast {
        return Some("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.".into());
    }
    if o.bcast && (o.optin || o.optout) {
        return Some("ERR OPTIN and OPTOUT are not compatible with BCAST".into());
    }
    if o.optin && o.optout {
        return Some("ERR You can't specify both OPTIN mode and OPTOUT mode".into());
    }
    if (o.optin && tr.optout) || (o.optout && tr.optin) {
        return Some("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.".into());
    }
    if o.bcast {
        for (i, p) in o.prefixes.iter().enumerate() {
            if let Some(old) = tr.prefixes.iter().find(|old| overlap(p, old)) {
                return Some(format!(
                    "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                    String::from_utf8_lossy(p),
                    String::from_utf8_lossy(old)
                ));
            }
            if let Some(other) = o.prefixes[i + 1..].iter().find(|q| overlap(p, q)) {
                return Some(format!(
                    "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                    String::from_utf8_lossy(p),
                    String::from_utf8_lossy(other)
                ));
            }
        }
    }
    None
}

fn tracking(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let o = parse(ctx, args)?;
    match args[2].to_ascii_lowercase().as_slice() {
        b"on" => {
            if let Some(e) = refusal(ctx, &o) {
                return Err(CmdError::msg(e));
            }
            let tr = &mut ctx.client.tracking;
            tr.on = true;
            tr.broken_redir = false;
            tr.redirect = o.redirect;
            tr.bcast = o.bcast;
            tr.optin = o.optin;
            tr.optout = o.optout;
            tr.noloop = o.noloop;
            if o.bcast {
                // Prefixes add up over successive CLIENT TRACKING ON calls, as in Redis; none
                // given means every key.
                if o.prefixes.is_empty() {
                    tr.prefixes.insert(Vec::new());
                }
                tr.prefixes.extend(o.prefixes);
            }
            tr.changed = true;
        }
        b"off" => ctx.client.tracking.disable(),
        _ => return Err(CmdError::Syntax),
    }
    ctx.out.ok();
    Ok(())
}

fn caching(ctx: &mut Ctx, opt: &[u8]) -> CmdResult {
    let tr = &mut ctx.client.tracking;
    if !tr.on {
        return Err(CmdError::msg("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled"));
    }
    match opt.to_ascii_lowercase().as_slice() {
        b"yes" if tr.optin => tr.caching = true,
        b"yes" => {
            return Err(CmdError::msg(
                "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            ))
        }
        b"no" if tr.optout => tr.caching = true,
        b"no" => {
            return Err(CmdError::msg(
                "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            ))
        }
        _ => return Err(CmdError::Syntax),
    }
    ctx.out.ok();
    Ok(())
}

fn tracking_info(ctx: &mut Ctx) {
    let tr = &ctx.client.tracking;
    let mut flags: Vec<&str> = Vec::new();
    if !tr.on {
        flags.push("off");
    } else {
        flags.push("on");
        if tr.bcast {
            flags.push("bcast");
        }
        if tr.optin {
            flags.push("optin");
            if tr.caching {
                flags.push("caching-yes");
            }
        }
        if tr.optout {
            flags.push("optout");
            if tr.caching {
                flags.push("caching-no");
            }
        }
        if tr.noloop {
            flags.push("noloop");
        }
        if tr.broken_redir {
            flags.push("broken_redirect");
        }
    }
    let redirect = tr.redir_field();
    let prefixes: Vec<Vec<u8>> = tr.prefixes.iter().cloned().collect();
    let out = &mut *ctx.out;
    out.map(3);
    out.bulk(b"flags");
    out.set(flags.len());
    for f in flags {
        out.bulk(f.as_bytes());
    }
    out.bulk(b"redirect");
    out.int(redirect);
    out.bulk(b"prefixes");
    out.array(prefixes.len());
    for p in &prefixes {
        out.bulk(p);
    }
}
