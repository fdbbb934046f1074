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
//! use xent::{BceWithLogitsLoss, BceWithLogitsOptions, Loss, View, WeightTensor};
//! let loss = BceWithLogitsLoss::new(BceWithLogitsOptions {
//!     pos_weight: Some(WeightTensor::new(vec![3.0f32], vec![1])?),
//!     ..Default::default()
//! })?;
//! let out = loss.forward(View::new(&[1e4f32, -1e4], &[2])?, View::new(&[0.0, 1.0], &[2])?)?;
//! // Each term is 1e4 (times pos_weight for the positive): (1e4 + 3e4) / 2, no overflow.
//! assert_eq!(out.scalar(), Some(2e4));
//! # Ok::<(), xent::Error>(())
//! ```

use super::{run_elementwise, Backward, Loss, WeightTensor};
use crate::error::Result;
use crate::float::{Element, Float};
use crate::kernel;
use crate::layout::Broadcast;
use crate::reduction::{EmptyMean, LossOutput, Reduction};
use crate::validate;
use crate::view::View;

/// Options of [`BceLoss`], PyTorch's names and defaults.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(default, deny_unknown_fields, bound(deserialize = "T: Float + serde::Deserialize<'de>"))
)]
pub struct BceOptions<T> {
    /// Element weight, broadcast against the input. Default: none.
    pub weight: Option<WeightTensor<T>>,
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
pub struct BceLoss<T> {
    options: BceOptions<T>,
}

/// The broadcast map of an optional weight against `input`.
fn bcast<'a, T: Float>(
    what: &'static str,
    w: &'a Option<WeightTensor<T>>,
    input: &[usize],
) -> Result<Option<(&'a [T], Broadcast)>> {
    w.as_ref().map(|w| Ok((w.values(), Broadcast::new(what, w.shape(), input)?))).transpose()
}

impl<T: Float> BceLoss<T> {
    /// Takes the options (a [`WeightTensor`]'s values are checked when it is built).
    ///
    /// # Errors
    /// None today; kept fallible like every loss's `new`.
    pub fn new(options: BceOptions<T>) -> Result<Self> {
        Ok(BceLoss { options })
    }
}

super::same_type_targets!(
    BceLoss,
    "Probabilities `input` in `[0, 1]` for targets of the same shape.\n\n# Errors\nA target shape \
     other than the input's, a weight that does not broadcast, an input element outside `[0, 1]` \
     (or NaN)."
);

impl<T: Float> BceLoss<T> {
    fn run<S: Element<Math = T>>(
        &self,
        input: View<'_, S>,
        target: View<'_, S>,
        backward: Option<Backward<'_, S, T>>,
    ) -> Result<LossOutput<T>> {
        let o = &self.options;
        let w = bcast("weight", &o.weight, input.shape())?;
        validate::unit_interval("input", input.data())?;
        let w = w.as_ref().map(|(v, m)| (*v, m));
        run_elementwise(input, target, o.reduction, o.empty_mean, backward, |e| kernel::run(kernel::Bce { e, w }))
    }
}

/// Options of [`BceWithLogitsLoss`], PyTorch's names and defaults.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(default, deny_unknown_fields, bound(deserialize = "T: Float + serde::Deserialize<'de>"))
)]
pub struct BceWithLogitsOptions<T> {
    /// Element weight, broadcast against the input. Default: none.
    pub weight: Option<WeightTensor<T>>,
    /// Weight `q` of the positive term, broadcast against the input (`[C, 1, 1]` per class of
    /// `[N, C, H, W]`). Default: none (1).
    pub pos_weight: Option<WeightTensor<T>>,
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
pub struct BceWithLogitsLoss<T> {
    options: BceWithLogitsOptions<T>,
}

impl<T: Float> BceWithLogitsLoss<T> {
    /// Takes the options (a [`WeightTensor`]'s values are checked when it is built).
    ///
    /// # Errors
    /// None today; kept fallible like every loss's `new`.
    pub fn new(options: BceWithLogitsOptions<T>) -> Result<Self> {
        Ok(BceWithLogitsLoss { options })
    }
}

super::same_type_targets!(
    BceWithLogitsLoss,
    "Logits `input` for targets of the same shape (any real values, as in PyTorch).\n\n# Errors\n\
     A target shape other than the input's, a weight or pos_weight that does not broadcast."
);

impl<T: Float> BceWithLogitsLoss<T> {
    fn run<S: Element<Math = T>>(
        &self,
        input: View<'_, S>,
        target: View<'_, S>,
        backward: Option<Backward<'_, S, T>>,
    ) -> Result<LossOutput<T>> {
        let o = &self.options;
        let w = bcast("weight", &o.weight, input.shape())?;
        let q = bcast("pos_weight", &o.pos_weight, input.shape())?;
        let w = w.as_ref().map(|(v, m)| (*v, m));
        let q = q.as_ref().map(|(v, m)| (*v, m));
        run_elementwise(input, target, o.reduction, o.empty_mean, backward, |e| {
            kernel::run(kernel::BceWithLogits { e, w, q })
        })
    }
}
