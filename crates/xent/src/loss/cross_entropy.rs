//! Cross-entropy: log-softmax over the class dimension followed by the negative log-likelihood.
//!
//! ```text
//! class-index target t (ignored when t = ignore_index), smoothing e, C classes, weights w:
//!   l = (1 - e) * -w_t logp_t + e / C * -sum_c w_c logp_c,        logp = log_softmax(x)
//! probability target y (same shape as the input), y' = (1 - e) y + e / C:
//!   l = -sum_c w_c y'_c logp_c
//! ```
//! PyTorch: `torch.nn.functional.cross_entropy` / `torch.nn.CrossEntropyLoss`.
//!
//! # Shapes
//! input `[N, C, d1..dk]` (or unbatched `[C]`); class-index target `[N, d1..dk]` (or `[]`) of any
//! [`Label`] type; probability target the input's shape. Output `[N, d1..dk]` for
//! [`Reduction::None`], else `[]`.
//!
//! # Example
//! The seed's worked number, `CrossEntropyLoss()([[1, 2, 3]], [2]) = 0.4076`:
//! ```
//! use xent::{CrossEntropyLoss, Loss, View};
//! let ce = CrossEntropyLoss::new(Default::default())?;
//! let out = ce.forward(View::new(&[1.0f32, 2.0, 3.0], &[1, 3])?, View::new(&[2i64], &[1])?)?;
//! assert!((out.scalar().unwrap() - 0.4076).abs() < 1e-4);
//! # Ok::<(), xent::Error>(())
//! ```

use super::{Backward, IndexKernel, IndexOptions, Loss};
use crate::error::{Error, Result};
use crate::float::{Element, Float, Label};
use crate::kernel::{self, IndexParams};
use crate::layout::Layout;
use crate::reduction::{EmptyMean, LossOutput, Reducer, Reduction};
use crate::sum::ExactSum;
use crate::validate;
use crate::view::View;

/// Options of [`CrossEntropyLoss`], PyTorch's names and defaults.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(default, deny_unknown_fields))]
pub struct CrossEntropyOptions<T> {
    /// One weight per class, `[C]`, finite. Default: none (every class weighs 1).
    pub weight: Option<Vec<T>>,
    /// Class-index targets equal to this are ignored (any integer). Default: -100.
    pub ignore_index: i64,
    /// Default: [`Reduction::Mean`].
    pub reduction: Reduction,
    /// Label smoothing `e` in `[0, 1]`. Default: 0.
    pub label_smoothing: f64,
    /// What a mean over nothing gives. Default: [`EmptyMean::Nan`], as PyTorch.
    pub empty_mean: EmptyMean,
}

impl<T> Default for CrossEntropyOptions<T> {
    fn default() -> Self {
        CrossEntropyOptions {
            weight: None,
            ignore_index: -100,
            reduction: Reduction::Mean,
            label_smoothing: 0.0,
            empty_mean: EmptyMean::Nan,
        }
    }
}

/// Cross-entropy loss with checked options (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct CrossEntropyLoss<T> {
    options: CrossEntropyOptions<T>,
    smoothing: T,
}

impl<T: Float> CrossEntropyLoss<T> {
    /// Checks the options once.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] for a label smoothing outside `[0, 1]`, [`Error::NonFinite`] for
    /// a NaN or infinite class weight.
    pub fn new(options: CrossEntropyOptions<T>) -> Result<Self> {
        let e = options.label_smoothing;
        if !(0.0..=1.0).contains(&e) {
            return Err(Error::InvalidOption {
                name: "label_smoothing",
                value: e.to_string(),
                reason: "must be between 0.0 and 1.0",
            });
        }
        if let Some(w) = &options.weight {
            validate::finite("weight", w)?;
        }
        Ok(CrossEntropyLoss { smoothing: T::from_f64(e), options })
    }

    /// The options.
    pub fn options(&self) -> &CrossEntropyOptions<T> {
        &self.options
    }

    fn index(&self) -> IndexOptions<'_, T> {
        let o = &self.options;
        IndexOptions {
            weight: o.weight.as_deref(),
            ignore_index: o.ignore_index,
            smoothing: self.smoothing,
            reduction: o.reduction,
            empty_mean: o.empty_mean,
        }
    }

    /// The mean's denominator for these class-index targets: the sum of the class weights of the
    /// non-ignored targets. It reads the targets only (see [`LossOutput`] for its use).
    ///
    /// # Errors
    /// As [`forward`](Self::forward).
    pub fn denominator<L: Label>(&self, input_shape: &[usize], target: View<'_, L>) -> Result<ExactSum> {
        Ok(self.index().check(input_shape, target)?.1)
    }

    fn probs<S: Element<Math = T>>(
        &self,
        input: View<'_, S>,
        target: View<'_, S>,
        backward: Option<Backward<'_, S, T>>,
    ) -> Result<LossOutput<T>> {
        let lay = Layout::classes_of(input.shape())?;
        if self.options.ignore_index >= 0 {
            // PyTorch: "ignore_index is not supported for floating point target"; a negative
            // value (the default -100) matches no class and is accepted.
            return Err(Error::InvalidOption {
                name: "ignore_index",
                value: self.options.ignore_index.to_string(),
                reason: "not supported for probability targets (PyTorch refuses any value >= 0)",
            });
        }
        if target.shape() != input.shape() {
            return Err(Error::ShapeMismatch {
                what: "target",
                got: target.shape().to_vec(),
                expected: format!("{:?}, the input's shape (probability targets)", input.shape()),
            });
        }
        let o = self.index();
        validate::class_weights(o.weight, lay.classes)?;
        let params = IndexParams {
            classes: lay.classes,
            class_stride: lay.class_stride(),
            weight: o.weight,
            weight_sum: T::ZERO,
            ignore_index: o.ignore_index,
            smoothing: o.smoothing,
        };
        let reducer = Reducer {
            reduction: o.reduction,
            empty: o.empty_mean,
            denominator: ExactSum::from(lay.positions() as f64),
        };
        let out_shape = Layout::target_shape(input.shape());
        super::run_blocks(lay, &reducer, out_shape, input.len(), backward, |b, up, grad, loss| {
            kernel::run(kernel::CrossEntropyProbs { x: input.data(), y: target.data(), p: &params, b, up, grad, loss })
        })
    }
}

super::label_targets!(
    CrossEntropyLoss,
    labels,
    "Class-index targets `[N, d1..dk]` (or `[]`), of any [`Label`] type: the loss reads the logits \
     once, keeping the exponentials in the gradient buffer."
);

impl<T: Float> CrossEntropyLoss<T> {
    /// Class-index targets, scores stored as `T` or as a half type (`T = f32`).
    fn labels<E: Element<Math = T>, L: Label>(
        &self,
        input: View<'_, E>,
        target: View<'_, L>,
        backward: Option<Backward<'_, E, T>>,
    ) -> Result<LossOutput<T>> {
        self.index().run(IndexKernel::CrossEntropy, input, target, backward)
    }
}

super::float_targets!(
    CrossEntropyLoss,
    probs,
    "Probability targets, the input's shape (any real values, as in PyTorch): the mean divides by \
     the number of samples `N * d1..dk`. `ignore_index >= 0` is an error, as in PyTorch (a negative \
     one, like the default -100, ignores nothing)."
);

super::half_targets!(CrossEntropyLoss, probs);
