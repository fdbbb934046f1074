//! Pure slice maths: forward and backward side by side, no `Result`, no allocation beyond small
//! scratch. May use only the base layer (`float`, `layout`, `sum`).
//!
//! Each kernel is a struct holding its arguments (`simd::Kernel`): one block of positions (or
//! one run of elements), read through it, and the block's share of the outputs. [`run`] calls
//! it on the widest vector unit of the CPU. Everything they are given has been checked by the
//! caller; an empty output slice means "not wanted". The class-axis kernels share one driver
//! for the three ways a block can lie in memory (`tile::drive`).

mod binary;
mod block;
mod count;
mod cross_entropy;
mod focal;
mod overlap;
mod simd;
mod softmax;
mod tile;

pub use focal::FocalAlpha;
pub use overlap::Activation;

pub(crate) use binary::{Bce, BceWithLogits, Elementwise, SigmoidFocal};
pub(crate) use block::{Block, ClassOut, Upstream};
pub(crate) use cross_entropy::{CrossEntropy, CrossEntropyProbs, Index, IndexParams, Nll};
pub(crate) use focal::{Focal, FocalData, FocalParams};
pub(crate) use overlap::{OverlapBackward, OverlapParams, OverlapSums, Truth};
pub(crate) use simd::{run, tally};
pub(crate) use softmax::Softmax;
pub(crate) use tile::{in_place, math_block, narrow_out, scratch_out, Pooled};

#[cfg(test)]
mod widths;
