//! Pure slice maths: forward and backward side by side, no `Result`, no allocation.
//!
//! Kernels see one [`Block`](crate::par::Block) of positions (or one run of elements) at a
//! time, read the input through it, and write their share of the outputs. Everything they are
//! given has been checked by the caller; an empty output slice means "not wanted".

pub(crate) mod binary;
pub(crate) mod cross_entropy;
pub(crate) mod focal;
pub(crate) mod math;
pub(crate) mod overlap;
pub(crate) mod simd;
pub(crate) mod softmax;
pub(crate) mod tile;
