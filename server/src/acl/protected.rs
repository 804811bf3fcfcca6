//! Protected mode (`protected-mode yes`, the default, as in Redis): while the `default` user
//! has no password, only loopback clients are served; any other gets Redis's DENIED message
//! and is closed. (kvtier binds 127.0.0.1 by default, so this matters once `bind` opens the
//! server to other interfaces.)

use std::net::SocketAddr;

/// Redis's reply to a refused client, byte for byte (clients and tools match on it).
pub const DENIED: &str = "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

/// Whether a client connecting from `peer` must be refused.
pub fn refuses(shared: &crate::shared::Shared, peer: &SocketAddr) -> bool {
    shared.config.settings().protected_mode
        && shared.acl.default_nopass()
        && !peer.ip().is_loopback()
        && !peer.ip().to_canonical().is_loopback()
}

/// The address to listen on for a `bind` setting: its first address (Redis's `-` prefix,
/// "optional address", is dropped), `*` meaning every IPv4 interface and `::*` every IPv6
/// one. IPv6 addresses are bracketed for the `host:port` form.
pub fn listen_host(bind: Option<&str>) -> String {
    let first = bind
        .and_then(|b| b.split_whitespace().next())
        .unwrap_or("127.0.0.1");
    let first = first.strip_prefix('-').unwrap_or(first);
    match first {
        "*" => "0.0.0.0".into(),
        "::*" => "[::]".into(),
        a if a.contains(':') && !a.starts_with('[') => format!("[{a}]"),
        a => a.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::listen_host;

    #[test]
    fn bind_addresses() {
        assert_eq!(listen_host(None), "127.0.0.1");
        assert_eq!(listen_host(Some("* -::*")), "0.0.0.0");
        assert_eq!(listen_host(Some("-::1 127.0.0.1")), "[::1]");
        assert_eq!(listen_host(Some("10.0.0.1")), "10.0.0.1");
    }
}
