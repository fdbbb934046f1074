//! Negative log-likelihood: picks `-x[target]` from log-probabilities.
//!
//! ```text
//! l = -w_t x_t   (0 where t = ignore_index)
//! ```
//! PyTorch: `torch.nn.functional.nll_loss` / `torch.nn.NLLLoss`. Shapes as
//! [`CrossEntropyLoss`](crate::CrossEntropyLoss) with class-index targets.
//!
//! # Example
//! The seed's worked numbers, `NLLLoss()([[1, 2, 3]], [k]) = -(k + 1)`:
//! ```
//! use xent::{Loss, NllLoss, View};
//! let nll = NllLoss::new(Default::default())?;
//! for k in 0..3i64 {
//!     let out = nll.forward(View::new(&[1.0f64, 2.0, 3.0], &[1, 3])?, View::new(&[k], &[1])?)?;
//!     assert_eq!(out.scalar(), Some(-(k as f64 + 1.0)));
//! }
//! # Ok::<(), xent::Error>(())
//! ```

use super::cross_entropy::CrossEntropyOptions;
use super::{Backward, IndexKernel, IndexOptions, Loss};
use crate::error::Result;
use crate::float::{Element, Float, Label};
use crate::reduction::{EmptyMean, LossOutput, Reduction};
use crate::sum::ExactSum;
use crate::validate;
use crate::view::View;

/// Options of [`NllLoss`], PyTorch's names and defaults.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(default, deny_unknown_fields))]
pub struct NllOptions<T> {
    /// One weight per class, `[C]`, finite. Default: none (every class weighs 1).
    pub weight: Option<Vec<T>>,
    /// Targets equal to this are ignored (any integer). Default: -100.
    pub ignore_index: i64,
    /// Default: [`Reduction::Mean`] (divided by the sum of the weights of the non-ignored targets).
    pub reduction: Reduction,
    /// What a mean over nothing gives. Default: [`EmptyMean::Nan`], as PyTorch.
    pub empty_mean: EmptyMean,
}

impl<T: Clone> NllOptions<T> {
    /// These options as cross-entropy's, without label smoothing: the compositions compute
    /// nll as their cross-entropy on log-probabilities, with the log-softmax left out.
    pub fn as_cross_entropy(&self) -> CrossEntropyOptions<T> {
        CrossEntropyOptions {
            weight: self.weight.clone(),
            ignore_index: self.ignore_index,
            reduction: self.reduction,
            label_smoothing: 0.0,
            empty_mean: self.empty_mean,
        }
    }
}

impl<T> Default for NllOptions<T> {
    fn default() -> Self {
        NllOptions { weight: None, ignore_index: -100, reduction: Reduction::Mean, empty_mean: EmptyMean::Nan }
    }
}

/// The negative log-likelihood loss with checked options (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct NllLoss<T> {
    options: NllOptions<T>,
}

impl<T: Float> NllLoss<T> {
    /// Checks the options once.
    ///
    /// # Errors
    /// [`Error::NonFinite`](crate::Error::NonFinite) for a NaN or infinite class weight.
    pub fn new(options: NllOptions<T>) -> Result<Self> {
        if let Some(w) = &options.weight {
            validate::finite("weight", w)?;
        }
        Ok(NllLoss { options })
    }

    fn index(&self) -> IndexOptions<'_, T> {
        let o = &self.options;
        IndexOptions {
            weight: o.weight.as_deref(),
            ignore_index: o.ignore_index,
            smoothing: T::ZERO,
            reduction: o.reduction,
            empty_mean: o.empty_mean,
        }
    }

    /// The mean's denominator for these targets (see
    /// [`CrossEntropyLoss::denominator`](crate::CrossEntropyLoss::denominator)).
    ///
    /// # Errors
    /// As [`Loss::evaluate`].
    pub fn denominator<L: Label>(&self, input_shape: &[usize], target: View<'_, L>) -> Result<ExactSum> {
        Ok(self.index().check(input_shape, target)?.1)
    }
}

super::label_targets!(
    NllLoss,
    labels,
    "Log-probabilities `input` `[N, C, d1..dk]` for class-index targets `[N, d1..dk]`."
);

impl<T: Float> NllLoss<T> {
    /// Class-index targets, scores stored as `T` or as a half type (`T = f32`).
    fn labels<E: Element<Math = T>, L: Label>(
        &self,
        input: View<'_, E>,
        target: View<'_, L>,
        backward: Option<Backward<'_, E, T>>,
    ) -> Result<LossOutput<T>> {
        self.index().run(IndexKernel::Nll, input, target, backward)
    }
}
