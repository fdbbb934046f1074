//! Binary cross-entropy, on probabilities and on logits.
//!
//! ```text
//! binary_cross_entropy:             l = -w (y max(ln x, -100) + (1 - y) max(ln(1 - x), -100))
//! binary_cross_entropy_with_logits: l = w ((1 - y) x - (1 + (q - 1) y) ln sigmoid(x))
//! ```
//! with `ln sigmoid(x) = min(x, 0) - ln(1 + e^-|x|)`, exact for logits of any size (no
//! sigmoid-then-log), `w` the element weight and `q` the positive-class weight `pos_weight`.
//! PyTorch: `torch.nn.functional.binary_cross_entropy` and `binary_cross_entropy_with_logits`.
//!
//! # Shapes
//! input and target: any shape, the same. `weight` and `pos_weight` broadcast against the input
//! by NumPy's rules: a per-class `pos_weight` for `[N, C, H, W]` has shape `[C, 1, 1]`.
//!
//! # Example
//! ```
//! use xent::{BceWithLogits, BceWithLogitsOptions, Tensor, View};
//! let loss = BceWithLogits::new(BceWithLogitsOptions {
//!     pos_weight: Some(Tensor::new(vec![3.0f32], vec![1])?),
//!     ..Default::default()
//! })?;
//! let out = loss.forward(View::new(&[1e4f32, -1e4], &[2])?, View::new(&[0.0, 1.0], &[2])?)?;
//! // Each term is 1e4 (times pos_weight for the positive): (1e4 + 3e4) / 2, no overflow.
//! assert_eq!(out.scalar(), Some(2e4));
//! # Ok::<(), xent::Error>(())
//! ```

use super::{run_elementwise, Backward, Tensor};
use crate::error::Result;
use crate::float::Float;
use crate::kernel::simd;
use crate::layout::Broadcast;
use crate::reduction::{EmptyMean, LossOutput, Reduction};
use crate::validate;
use crate::view::View;

/// Options of [`Bce`], PyTorch's names and defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct BceOptions<T> {
    /// Element weight, broadcast against the input. Default: none.
    pub weight: Option<Tensor<T>>,
    /// Default: [`Reduction::Mean`] (over all elements).
    pub reduction: Reduction,
    /// What a mean over an empty input gives. Default: [`EmptyMean::Nan`], as PyTorch.
    pub empty_mean: EmptyMean,
}

impl<T> Default for BceOptions<T> {
    fn default() -> Self {
        BceOptions { weight: None, reduction: Reduction::Mean, empty_mean: EmptyMean::Nan }
    }
}

/// Binary cross-entropy on probabilities in `[0, 1]` (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct Bce<T> {
    options: BceOptions<T>,
}

/// The broadcast map of an optional weight against `input`.
fn bcast<'a, T: Float>(
    what: &'static str,
    w: &'a Option<Tensor<T>>,
    input: &[usize],
) -> Result<Option<(&'a [T], Broadcast)>> {
    w.as_ref().map(|w| Ok((w.values(), Broadcast::new(what, w.shape(), input)?))).transpose()
}

impl<T: Float> Bce<T> {
    /// Takes the options (a [`Tensor`]'s values are checked when it is built).
    ///
    /// # Errors
    /// None today; kept fallible like every loss's `new`.
    pub fn new(options: BceOptions<T>) -> Result<Self> {
        Ok(Bce { options })
    }

    /// The loss.
    ///
    /// # Errors
    /// A target shape other than the input's, a weight that does not broadcast, an input
    /// element outside `[0, 1]` (or NaN).
    pub fn forward(&self, input: View<'_, T>, target: View<'_, T>) -> Result<LossOutput<T>> {
        self.run(input, target, None)
    }

    /// The loss and `d(sum(loss * grad_output)) / d(input)` into `grad_input`, in one pass.
    ///
    /// # Errors
    /// As [`forward`](Self::forward), and for gradient buffers of the wrong length.
    pub fn forward_backward(
        &self,
        input: View<'_, T>,
        target: View<'_, T>,
        grad_output: &[T],
        grad_input: &mut [T],
    ) -> Result<LossOutput<T>> {
        self.run(input, target, Some((grad_output, grad_input)))
    }

    fn run(&self, input: View<'_, T>, target: View<'_, T>, backward: Backward<'_, T>) -> Result<LossOutput<T>> {
        let o = &self.options;
        let w = bcast("weight", &o.weight, input.shape())?;
        validate::unit_interval("input", input.data())?;
        let w = w.as_ref().map(|(v, m)| (*v, m));
        run_elementwise(input, target, o.reduction, o.empty_mean, backward, |r, up, g, l| {
            simd::bce(input.data(), target.data(), w, r, up, g, l)
        })
    }
}

/// Options of [`BceWithLogits`], PyTorch's names and defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct BceWithLogitsOptions<T> {
    /// Element weight, broadcast against the input. Default: none.
    pub weight: Option<Tensor<T>>,
    /// Weight `q` of the positive term, broadcast against the input (`[C, 1, 1]` per class of
    /// `[N, C, H, W]`). Default: none (1).
    pub pos_weight: Option<Tensor<T>>,
    /// Default: [`Reduction::Mean`] (over all elements).
    pub reduction: Reduction,
    /// What a mean over an empty input gives. Default: [`EmptyMean::Nan`], as PyTorch.
    pub empty_mean: EmptyMean,
}

impl<T> Default for BceWithLogitsOptions<T> {
    fn default() -> Self {
        BceWithLogitsOptions { weight: None, pos_weight: None, reduction: Reduction::Mean, empty_mean: EmptyMean::Nan }
    }
}

/// Binary cross-entropy on logits, numerically stable (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct BceWithLogits<T> {
    options: BceWithLogitsOptions<T>,
}

impl<T: Float> BceWithLogits<T> {
    /// Takes the options (a [`Tensor`]'s values are checked when it is built).
    ///
    /// # Errors
    /// None today; kept fallible like every loss's `new`.
    pub fn new(options: BceWithLogitsOptions<T>) -> Result<Self> {
        Ok(BceWithLogits { options })
    }

    /// The loss.
    ///
    /// # Errors
    /// A target shape other than the input's, a weight or pos_weight that does not broadcast.
    pub fn forward(&self, input: View<'_, T>, target: View<'_, T>) -> Result<LossOutput<T>> {
        self.run(input, target, None)
    }

    /// The loss and `d(sum(loss * grad_output)) / d(input)` into `grad_input`, in one pass.
    ///
    /// # Errors
    /// As [`forward`](Self::forward), and for gradient buffers of the wrong length.
    pub fn forward_backward(
        &self,
        input: View<'_, T>,
        target: View<'_, T>,
        grad_output: &[T],
        grad_input: &mut [T],
    ) -> Result<LossOutput<T>> {
        self.run(input, target, Some((grad_output, grad_input)))
    }

    fn run(&self, input: View<'_, T>, target: View<'_, T>, backward: Backward<'_, T>) -> Result<LossOutput<T>> {
        let o = &self.options;
        let w = bcast("weight", &o.weight, input.shape())?;
        let q = bcast("pos_weight", &o.pos_weight, input.shape())?;
        let w = w.as_ref().map(|(v, m)| (*v, m));
        let q = q.as_ref().map(|(v, m)| (*v, m));
        run_elementwise(input, target, o.reduction, o.empty_mean, backward, |r, up, g, l| {
            simd::bce_with_logits(input.data(), target.data(), w, q, r, up, g, l)
        })
    }
}
