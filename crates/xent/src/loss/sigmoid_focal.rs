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
//! use xent::{SigmoidFocal, SigmoidFocalOptions, Reduction, View};
//! let focal = SigmoidFocal::new(SigmoidFocalOptions { alpha: -1.0, gamma: 0.0, reduction: Reduction::Sum, ..Default::default() })?;
//! let out = focal.forward(View::new(&[0.0f64], &[1])?, View::new(&[1.0], &[1])?)?;
//! assert!((out.scalar().unwrap() - std::f64::consts::LN_2).abs() < 1e-15);
//! # Ok::<(), xent::Error>(())
//! ```

use super::{run_elementwise, Backward};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::kernel::simd;
use crate::reduction::{EmptyMean, LossOutput, Reduction};
use crate::validate;
use crate::view::View;

/// Options of [`SigmoidFocal`], torchvision's names and defaults.
#[derive(Debug, Clone, PartialEq)]
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
pub struct SigmoidFocal<T> {
    options: SigmoidFocalOptions,
    alpha: T,
    gamma: T,
}

impl<T: Float> SigmoidFocal<T> {
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
        Ok(SigmoidFocal { alpha: T::from_f64(options.alpha), gamma: T::from_f64(options.gamma), options })
    }

    /// The loss.
    ///
    /// # Errors
    /// A target shape other than the input's.
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
        run_elementwise(input, target, o.reduction, o.empty_mean, backward, |r, up, g, l| {
            simd::sigmoid_focal(input.data(), target.data(), self.alpha, self.gamma, r, up, g, l)
        })
    }
}
