//! The error a command handler returns: one of Redis's common errors, or any other exact text.
//!
//! A handler that fails returns `Err(CmdError)` before writing any reply; [`super::run`] writes
//! the error reply and the server counts it (INFO errorstats, commandstats `failed_calls`) by its
//! [`CmdError::code`]. An error that is part of a reply (an item of EXEC's array, a script's error
//! table) is reply data and is written into the reply instead.

use std::borrow::Cow;
use std::fmt;

/// What a command handler returns.
pub type CmdResult = Result<(), CmdError>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CmdError {
    /// `ERR syntax error`
    Syntax,
    /// `ERR value is not an integer or out of range`
    NotInt,
    /// `ERR value is not a valid float`
    NotFloat,
    /// `ERR value is out of range`
    OutOfRange,
    /// `ERR value is out of range, must be positive`
    NotPositive,
    /// `WRONGTYPE Operation against a key holding the wrong kind of value`
    WrongType,
    /// `ERR no such key`
    NoSuchKey,
    /// `ERR wrong number of arguments for '<name>' command` (the name lower-cased).
    Arity(String),
    /// `ERR index out of range`
    IndexOutOfRange,
    /// `ERR DB index is out of range`
    DbIndexOutOfRange,
    /// `ERR invalid cursor`
    InvalidCursor,
    /// Any other error, its exact text starting with its code (`ERR …`, `NOSCRIPT …`, …).
    Msg(Cow<'static, str>),
}

impl CmdError {
    /// A page of a paged value could not be read (see `paged`): the same text as a key whose
    /// load failed.
    pub fn store(e: kvtier_core::StoreError) -> Self {
        CmdError::Msg(format!("IOERR disk store read failed: {e}").into())
    }

    /// An error with this exact text (which starts with its code).
    pub fn msg(text: impl Into<Cow<'static, str>>) -> Self {
        CmdError::Msg(text.into())
    }

    /// The wrong-arity error of the command named `name` (any case, as the client sent it).
    pub fn arity(name: &[u8]) -> Self {
        CmdError::Arity(String::from_utf8_lossy(name).to_lowercase())
    }

    /// The error's text as Redis writes it after the `-`.
    pub fn text(&self) -> Cow<'_, str> {
        Cow::Borrowed(match self {
            CmdError::Syntax => "ERR syntax error",
            CmdError::NotInt => "ERR value is not an integer or out of range",
            CmdError::NotFloat => "ERR value is not a valid float",
            CmdError::OutOfRange => "ERR value is out of range",
            CmdError::NotPositive => "ERR value is out of range, must be positive",
            CmdError::WrongType => {
                "WRONGTYPE Operation against a key holding the wrong kind of value"
            }
            CmdError::NoSuchKey => "ERR no such key",
            CmdError::IndexOutOfRange => "ERR index out of range",
            CmdError::DbIndexOutOfRange => "ERR DB index is out of range",
            CmdError::InvalidCursor => "ERR invalid cursor",
            CmdError::Arity(name) => {
                return Cow::Owned(format!(
                    "ERR wrong number of arguments for '{name}' command"
                ))
            }
            CmdError::Msg(m) => m,
        })
    }

    /// The error code INFO errorstats counts: the first word of the text (`ERR`, `WRONGTYPE`,
    /// `NOSCRIPT`, `BUSYKEY`, …).
    pub fn code(&self) -> &str {
        match self {
            CmdError::WrongType => "WRONGTYPE",
            CmdError::Msg(m) => m.split_whitespace().next().unwrap_or("ERR"),
            _ => "ERR",
        }
    }
}

impl fmt::Display for CmdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

impl std::error::Error for CmdError {}

impl From<&'static str> for CmdError {
    fn from(s: &'static str) -> Self {
        CmdError::Msg(Cow::Borrowed(s))
    }
}

impl From<String> for CmdError {
    fn from(s: String) -> Self {
        CmdError::Msg(Cow::Owned(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_and_codes() {
        assert_eq!(CmdError::Syntax.to_string(), "ERR syntax error");
        assert_eq!(CmdError::Syntax.code(), "ERR");
        assert_eq!(
            CmdError::WrongType.to_string(),
            "WRONGTYPE Operation against a key holding the wrong kind of value"
        );
        assert_eq!(CmdError::WrongType.code(), "WRONGTYPE");
        assert_eq!(
            CmdError::arity(b"HSET").to_string(),
            "ERR wrong number of arguments for 'hset' command"
        );
        let e = CmdError::from("NOSCRIPT No matching script. Please use EVAL.");
        assert_eq!(e.code(), "NOSCRIPT");
        assert_eq!(
            e.to_string(),
            "NOSCRIPT No matching script. Please use EVAL."
        );
        assert_eq!(CmdError::from(String::new()).code(), "ERR");
    }
}
