//! Typed access to a DB's values: the one place a command meets a key of another type and
//! answers WRONGTYPE.

use super::CmdError;
use crate::stream::Stream;
use crate::value::Value;
use crate::zset::ZSet;
use kvtier_core::Db;

/// A string value.
pub type Str = crate::value::StrBuf;
/// A list value.
pub type List = crate::listval::List;
/// A hash value.
pub type Hash = crate::hashval::Hash;
/// A set value.
pub type Set = crate::setval::Set;

/// The Rust type held by one variant of [`Value`].
pub trait Kind: Sized {
    fn of(v: &Value) -> Option<&Self>;
    fn of_mut(v: &mut Value) -> Option<&mut Self>;
    /// An empty value of this type, for a key written for the first time.
    fn empty() -> Value;
}

macro_rules! kind {
    ($t:ty, $variant:ident, $empty:expr) => {
        impl Kind for $t {
            fn of(v: &Value) -> Option<&Self> {
                match v {
                    Value::$variant(x) => Some(x),
                    _ => None,
                }
            }
            fn of_mut(v: &mut Value) -> Option<&mut Self> {
                match v {
                    Value::$variant(x) => Some(x),
                    _ => None,
                }
            }
            fn empty() -> Value {
                Value::$variant($empty)
            }
        }
    };
}

kind!(Str, Str, Str::new());
kind!(List, List, Box::default());
kind!(Hash, Hash, Box::default());
kind!(Set, Set, Box::default());
kind!(ZSet, ZSet, ZSet::default());
kind!(Box<Stream>, Stream, Box::default());

/// Typed lookups; each fails with [`CmdError::WrongType`] when the key holds another type.
pub trait TypedDb {
    /// The value at `key`, `None` if absent.
    fn read<T: Kind>(&mut self, key: &[u8]) -> Result<Option<&T>, CmdError>;
    /// The value at `key` for changing it, created empty if absent.
    fn entry<T: Kind>(&mut self, key: &[u8]) -> Result<&mut T, CmdError>;
    /// Fails unless `key` is absent or of type `T`; whether it exists.
    fn check<T: Kind>(&mut self, key: &[u8]) -> Result<bool, CmdError> {
        Ok(self.read::<T>(key)?.is_some())
    }
    /// The value at `key` where either of two types is accepted (ZUNION's sources: sorted
    /// sets or sets), `None` if absent.
    fn read_either<A: Kind, B: Kind>(
        &mut self,
        key: &[u8],
    ) -> Result<Option<Either<&A, &B>>, CmdError>;
}

/// A value of one of two accepted types (see [`TypedDb::read_either`]).
pub enum Either<A, B> {
    A(A),
    B(B),
}

impl TypedDb for Db<'_, Value> {
    fn read<T: Kind>(&mut self, key: &[u8]) -> Result<Option<&T>, CmdError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => T::of(v).map(Some).ok_or(CmdError::WrongType),
        }
    }

    fn read_either<A: Kind, B: Kind>(
        &mut self,
        key: &[u8],
    ) -> Result<Option<Either<&A, &B>>, CmdError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => A::of(v)
                .map(Either::A)
                .or_else(|| B::of(v).map(Either::B))
                .map(Some)
                .ok_or(CmdError::WrongType),
        }
    }

    fn entry<T: Kind>(&mut self, key: &[u8]) -> Result<&mut T, CmdError> {
        self.read::<T>(key)?;
        let v = self.get_or_insert_with(key, T::empty);
        Ok(T::of_mut(v).expect("type checked above"))
    }
}
