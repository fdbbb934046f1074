//! # xent: PyTorch's classification losses in Rust
//!
//! Exact PyTorch semantics (options, shapes, numbers, errors), forward and gradient, `f32` and
//! `f64`, on PyTorch's `[N, C, d1..dk]` layout with the class dimension at 1.
//!
//! | PyTorch | xent |
//! | --- | --- |
//! | `torch.softmax` / `torch.log_softmax` | [`softmax`], [`log_softmax`] (+ `_into`, `_backward_into`) |
//! | `F.nll_loss` | [`NllLoss`] |
//! | `F.cross_entropy` (class indices or probabilities) | [`CrossEntropyLoss`] |
//! | `F.binary_cross_entropy` | [`BceLoss`] |
//! | `F.binary_cross_entropy_with_logits` | [`BceWithLogitsLoss`] |
//! | `torchvision.ops.sigmoid_focal_loss` | [`SigmoidFocalLoss`] |
//! | `monai.losses.DiceLoss` (and Jaccard) | [`DiceLoss`] |
//! | `monai.losses.GeneralizedDiceLoss` | [`GeneralizedDiceLoss`] |
//! | `monai.losses.TverskyLoss` | [`TverskyLoss`] |
//! | `monai.losses.FocalLoss` | [`FocalLoss`] |
//! | `monai.losses.DiceCELoss` | [`DiceCeLoss`] |
//! | `monai.losses.DiceFocalLoss` | [`DiceFocalLoss`] |
//!
//! ## Data flow
//! ```text
//! View (shape checked) -> validation (targets, weights, options) -> kernel (fused forward and
//! backward per block of positions) -> ordered reduction -> LossOutput (+ gradient buffer)
//! ```
//! Every loss is built once from an options struct whose `Default` is PyTorch's defaults, then
//! called with borrowed [`View`]s. `forward` returns a [`LossOutput`]; `forward_backward` also
//! writes `d(sum(loss * grad_output)) / d(input)` into the caller's buffer, reading the input
//! once. Class-index targets may be any integer type ([`Label`]): `u8` label maps need no copy.
//!
//! ## The seed's worked numbers
//! `LogSoftmax` is the log of `Softmax`, `NLLLoss` picks `-x[target]`, and `CrossEntropyLoss` is
//! `LogSoftmax` followed by `NLLLoss`:
//! ```
//! use xent::{log_softmax, softmax, CrossEntropyLoss, Loss, NllLoss, View};
//! let x = View::new(&[1.0f32, 2.0, 3.0], &[1, 3])?;
//! let p = softmax(x, 1)?;                                   // [0.0900, 0.2447, 0.6652]
//! assert!((p[2] - 0.6652).abs() < 1e-4);
//! let lp = log_softmax(x, 1)?;                              // [-2.4076, -1.4076, -0.4076]
//! assert!((lp[0] + 2.4076).abs() < 1e-4);
//! let nll = NllLoss::new(Default::default())?;
//! let t = [1i64];
//! let out = nll.forward(x, View::new(&t, &[1])?)?;         // -(k + 1) for k = 1
//! assert_eq!(out.scalar(), Some(-2.0));
//! let ce = CrossEntropyLoss::new(Default::default())?;
//! let t = [2u8];                                           // any integer label type
//! let out = ce.forward(x, View::new(&t, &[1])?)?;          // 0.4076
//! assert!((out.scalar().unwrap() - 0.4076).abs() < 1e-4);
//! // CrossEntropyLoss = NLL of LogSoftmax:
//! let via_nll = nll.forward(View::new(&lp, &[1, 3])?, View::new(&t, &[1])?)?;
//! assert!((via_nll.scalar().unwrap() - out.scalar().unwrap()).abs() < 1e-6);
//! # Ok::<(), xent::Error>(())
//! ```
//!
//! ## Gradients
//! ```
//! use xent::{CrossEntropyLoss, Loss, View};
//! let ce = CrossEntropyLoss::<f64>::new(Default::default())?;
//! let x = [1.0, 2.0, 3.0];
//! let mut grad = [0.0; 3];
//! let out = ce.forward_backward(View::new(&x, &[1, 3])?, View::new(&[2i64], &[1])?, &[1.0], &mut grad)?;
//! // d/dx = softmax(x) - onehot(2)
//! assert!((grad[2] - (0.6652 - 1.0)).abs() < 1e-4);
//! # let _ = out;
//! # Ok::<(), xent::Error>(())
//! ```
//!
//! ## Threads and determinism
//! With the default `rayon` feature, work is split into fixed blocks over the positions; the
//! block size depends on the shape only, and per-block sums (in `f64`) are combined in block
//! order. Results are the same bit for bit for any number of threads.
//!
//! ## Options by name
//! `Reduction`, `Activation`, `WeightType`, `EmptyMean` and the weighting schemes parse from
//! (`FromStr`) and print as (`Display`) PyTorch's and MONAI's names: `"sum".parse::<Reduction>()`.
//! With the `serde` feature, every options struct reads from and writes to those names (absent
//! fields take their defaults, unknown fields are errors).
//!
//! ## Errors
//! Bad input (shapes, out-of-range targets, non-finite weights, bad options) is an [`Error`]
//! naming the problem; no input makes xent panic.

#![deny(missing_docs)]

mod error;
mod float;
pub mod fresh;
mod instances;
mod kernel;
mod layout;
pub mod loss;
mod par;
mod reduction;
#[doc(hidden)]
pub mod reference;
mod sum;
#[doc(hidden)]
pub mod testing;
mod validate;
mod view;
pub mod weights;

pub use error::{Error, Result};
pub use float::{bf16, f16, Element, Float, Label};
pub use loss::binary_cross_entropy::{BceLoss, BceOptions, BceWithLogitsLoss, BceWithLogitsOptions};
pub use loss::cross_entropy::{CrossEntropyLoss, CrossEntropyOptions};
pub use loss::dice::{DiceLoss, DiceOptions};
pub use loss::dice_ce::{DiceCeLoss, DiceCeOptions};
pub use loss::dice_focal::{DiceFocalLoss, DiceFocalOptions};
pub use loss::focal::{FocalAlpha, FocalLoss, FocalOptions};
pub use loss::generalized_dice::{GeneralizedDiceLoss, GeneralizedDiceOptions, WeightType};
pub use loss::linear_cross_entropy::{
    Linear, LinearCrossEntropy, LinearCrossEntropyOptions, LinearGrads, LinearTarget,
};
pub use loss::nll::{NllLoss, NllOptions};
pub use loss::sigmoid_focal::{SigmoidFocalLoss, SigmoidFocalOptions};
pub use loss::softmax::{
    log_softmax, log_softmax_backward_into, log_softmax_into, softmax, softmax_backward_into, softmax_into,
};
pub use loss::spec::{LossSpec, MaybeLoss};
pub use loss::tversky::{TverskyLoss, TverskyOptions};
pub use loss::{Activation, Backward, ClassWeight, Loss, WeightTensor};
pub use reduction::{EmptyMean, LossOutput, Reduction};
pub use sum::ExactSum;
pub use view::{numel, View};

/// How many rows (slices of the first dimension) each chunk of a streamed computation must be a
/// multiple of, so that computing a loss chunk by chunk and merging the [`LossOutput`]s gives
/// the in-memory result bit for bit: chunks then cut the work into the same blocks.
///
/// `class_axis`: a loss over the class dimension 1 (`nll_loss`, `cross_entropy`); otherwise an
/// element-wise loss (the binary ones).
///
/// ```
/// // [N, 19, 256, 512]: blocks never span two samples, so any chunk of samples works.
/// assert_eq!(xent::chunk_rows_multiple(&[8, 19, 256, 512], true), 1);
/// // [N, 1000]: blocks are runs of 131 rows.
/// assert_eq!(xent::chunk_rows_multiple(&[16384, 1000], true), 131);
/// ```
pub fn chunk_rows_multiple(shape: &[usize], class_axis: bool) -> usize {
    let row: usize = shape.iter().skip(1).product();
    if class_axis {
        let classes = shape.get(1).copied().unwrap_or(1);
        let inner = if shape.len() > 2 { row / classes.max(1) } else { 1 };
        if inner == 1 {
            par::rows_per_block(classes)
        } else {
            1
        }
    } else {
        let g = gcd(row.max(1), par::BLOCK_ELEMS);
        par::BLOCK_ELEMS / g
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
