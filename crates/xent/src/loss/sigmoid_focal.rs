//! torchvision's sigmoid focal loss (Lin et al. 2017) for dense binary targets.
//!
//! ```text
//! p = sigmoid(x),  ce = binary_cross_entropy_with_logits(x, y),  p_t = p y + (1 - p)(1 - y)
//! l = a_t ce (1 - p_t)^gamma,  a_t = alpha y + (1 - alpha)(1 - y)   (a_t = 1 when alpha < 0)
//! ```
//! PyTorch: `torchvision.ops.sigmoid_focal_loss`. Input and target have the same (any) shape.
//!
//! # Example
//! With `gamma = 0` and no alpha term it is binary cross-entropy with logits:
//! ```
//! use xent::{Loss, Reduction, SigmoidFocalLoss, SigmoidFocalOptions, View};
//! let focal = SigmoidFocalLoss::new(SigmoidFocalOptions { alpha: -1.0, gamma: 0.0, reduction: Reduction::Sum, ..Default::default() })?;
//! let out = focal.forward(View::new(&[0.0f64], &[1])?, View::new(&[1.0], &[1])?)?;
//! assert!((out.scalar().unwrap() - std::f64::consts::LN_2).abs() < 1e-15);
//! # Ok::<(), xent::Error>(())
//! ```

use super::{run_elementwise, Backward, Loss};
use crate::error::{Error, Result};
use crate::float::{Element, Float};
use crate::kernel;
use crate::reduction::{EmptyMean, LossOutput, Reduction};
use crate::validate;
use crate::view::View;

/// Options of [`SigmoidFocalLoss`], torchvision's names and defaults.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(default, deny_unknown_fields))]
pub struct SigmoidFocalOptions {
    /// Weight of the positive class; a negative value turns the alpha term off. Default: 0.25.
    pub alpha: f64,
    /// Focusing exponent, `>= 0`. Default: 2.
    pub gamma: f64,
    /// Default: [`Reduction::None`], as torchvision.
    pub reduction: Reduction,
    /// What a mean over an empty input gives. Default: [`EmptyMean::Nan`].
    pub empty_mean: EmptyMean,
}

impl Default for SigmoidFocalOptions {
    fn default() -> Self {
        SigmoidFocalOptions { alpha: 0.25, gamma: 2.0, reduction: Reduction::None, empty_mean: EmptyMean::Nan }
    }
}

/// The sigmoid focal loss with checked options (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct SigmoidFocalLoss<T> {
    options: SigmoidFocalOptions,
    alpha: T,
    gamma: T,
}

impl<T: Float> SigmoidFocalLoss<T> {
    /// Checks the options once.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] for a non-finite alpha, or a gamma that is negative or not finite.
    pub fn new(options: SigmoidFocalOptions) -> Result<Self> {
        validate::finite_option("alpha", options.alpha)?;
        validate::finite_option("gamma", options.gamma)?;
        if options.gamma < 0.0 {
            return Err(Error::InvalidOption {
                name: "gamma",
                value: options.gamma.to_string(),
                reason: "must be >= 0",
            });
        }
        Ok(SigmoidFocalLoss { alpha: T::from_f64(options.alpha), gamma: T::from_f64(options.gamma), options })
    }
}

super::same_type_targets!(
    SigmoidFocalLoss,
    "Logits `input` for targets of the same shape.\n\n# Errors\nA target shape other than the input's."
);

impl<T: Float> SigmoidFocalLoss<T> {
    fn run<S: Element<Math = T>>(
        &self,
        input: View<'_, S>,
        target: View<'_, S>,
        backward: Option<Backward<'_, S, T>>,
    ) -> Result<LossOutput<T>> {
        let o = &self.options;
        let (alpha, gamma) = (self.alpha, self.gamma);
        run_elementwise(input, target, o.reduction, o.empty_mean, backward, |e| {
            kernel::run(kernel::SigmoidFocal { e, alpha, gamma })
        })
    }
}
