//! kvtier-server: a Redis-protocol server whose RAM is a bounded cache over a disk store.
//! Everything is in the library (`kvtier_server`); a custom backend's binary looks the same,
//! with `kvtier_server::serve_with` instead.

fn main() -> std::process::ExitCode {
    kvtier_server::main_builtin()
}
