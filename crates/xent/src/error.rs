//! The one error type of the crate.

/// Everything that can be wrong with the input of an xent call.
///
/// Messages name the argument, the shapes, the index and the value involved.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A view's data length does not match the element count of its shape.
    #[error("data has {len} elements but shape {shape:?} needs {expected}")]
    DataLength {
        /// Elements in the slice.
        len: usize,
        /// The shape given.
        shape: Vec<usize>,
        /// The product of the shape.
        expected: usize,
    },
    /// The element count of a shape does not fit in `usize`.
    #[error("the element count of shape {shape:?} overflows usize")]
    ShapeOverflow {
        /// The shape given.
        shape: Vec<usize>,
    },
    /// An argument's shape does not fit the input's.
    #[error("{what} has shape {got:?}, expected {expected}")]
    ShapeMismatch {
        /// The argument (`"target"`, `"weight"`, `"grad_output"`, ...).
        what: &'static str,
        /// Its shape.
        got: Vec<usize>,
        /// What was expected, in words.
        expected: String,
    },
    /// A dimension index outside `-ndim..ndim`.
    #[error("dimension {dim} is out of range for a tensor of {ndim} dimensions")]
    DimOutOfRange {
        /// The dimension asked for.
        dim: i64,
        /// The tensor's number of dimensions.
        ndim: usize,
    },
    /// A class-index target (or label) outside `0..classes` that is not the ignore value.
    #[error(
        "{what} value {value} at flat index {index} is out of range: labels must lie in [0, {classes}){}",
        ignore_index.map_or(String::new(), |i| format!(" or the ignore value {i}"))
    )]
    TargetOutOfRange {
        /// `"target"` or `"labels"`.
        what: &'static str,
        /// Flat (row-major) index of the element.
        index: usize,
        /// The value found.
        value: i128,
        /// Number of classes.
        classes: usize,
        /// The ignore value in force, if any.
        ignore_index: Option<i64>,
    },
    /// A value that must be finite is NaN or infinite.
    #[error("{what}[{index}] = {value} is not finite")]
    NonFinite {
        /// The argument.
        what: &'static str,
        /// Flat index of the element.
        index: usize,
        /// The value found.
        value: f64,
    },
    /// A probability input outside `[0, 1]` (or NaN).
    #[error("{what}[{index}] = {value} is outside [0, 1]")]
    NotAProbability {
        /// The argument.
        what: &'static str,
        /// Flat index of the element.
        index: usize,
        /// The value found.
        value: f64,
    },
    /// `weight` or `pos_weight` does not broadcast to the input's shape (NumPy rules).
    #[error("{what} of shape {shape:?} does not broadcast to the input shape {input:?}")]
    Broadcast {
        /// The argument.
        what: &'static str,
        /// Its shape.
        shape: Vec<usize>,
        /// The input's shape.
        input: Vec<usize>,
    },
    /// An option value outside its domain.
    #[error("option {name} = {value} is invalid: {reason}")]
    InvalidOption {
        /// PyTorch's name of the option.
        name: &'static str,
        /// The value given, printed.
        value: String,
        /// What it must be.
        reason: &'static str,
    },
    /// Class counts that cannot be combined or used: different class numbers or ignore values,
    /// no labelled pixel, a class absent under [`AbsentClasses::Error`](crate::weights::AbsentClasses::Error).
    #[error("class counts: {0}")]
    Counts(String),
    /// A serialised value (such as class counts in JSON) that does not parse.
    #[error("cannot parse {what}: {message}")]
    Parse {
        /// What was being read.
        what: &'static str,
        /// The parser's message.
        message: String,
    },
    /// An `ndarray` view that is not contiguous in standard (row-major) order.
    #[error("{what} is not contiguous in row-major order")]
    NotContiguous {
        /// The argument.
        what: &'static str,
    },
}

/// `Result` with xent's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `FromStr` and `Display` (and with the `serde` feature `Serialize` and `Deserialize`, as the
/// same strings) for an enum of unit variants by their names (PyTorch's, MONAI's): one table, so
/// that parsing and printing cannot disagree. An unknown name is an [`Error::InvalidOption`]
/// listing the names.
macro_rules! named {
    ($t:ty, $option:literal, { $($v:ident => $n:literal),+ $(,)? }) => {
        impl std::str::FromStr for $t {
            type Err = $crate::error::Error;
            fn from_str(s: &str) -> $crate::error::Result<Self> {
                match s {
                    $($n => Ok(<$t>::$v),)+
                    _ => Err($crate::error::Error::InvalidOption {
                        name: $option,
                        value: s.to_string(),
                        reason: concat!("must be one of", $(" ", $n),+),
                    }),
                }
            }
        }
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(match self {
                    $(<$t>::$v => $n,)+
                })
            }
        }
        #[cfg(feature = "serde")]
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        #[cfg(feature = "serde")]
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let s = <String as serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use named;
