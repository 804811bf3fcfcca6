//! hashes commands (being implemented).

use super::CommandSpec;

pub const COMMANDS: &[CommandSpec] = &[];
