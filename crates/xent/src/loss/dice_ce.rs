//! Dice plus cross-entropy, the common segmentation combination (MONAI's `DiceCELoss`).
//!
//! ```text
//! l = lambda_dice * dice(x, t) + lambda_ce * cross_entropy(x, t)
//! ```
//! Both parts must reduce to a scalar (`mean` or `sum`); each keeps all its own options (class
//! weights, `ignore_index`, label smoothing, ...). The gradient is written in one buffer: the
//! cross-entropy's first, then the Dice part added to it.
//!
//! # Example
//! ```
//! use xent::loss::dice_ce::{DiceCeLoss, DiceCeOptions};
//! use xent::{Loss, View};
//! let loss = DiceCeLoss::new(DiceCeOptions::default())?;
//! let x = [2.0f32, -1.0, 0.5, -2.0, 1.0, 0.0]; // [N=1, C=2, H=1, W=3]
//! let mut grad = [0.0f32; 6];
//! let out = loss.forward_backward(View::new(&x, &[1, 2, 1, 3])?, View::new(&[0u8, 1, 0], &[1, 1, 3])?, &[1.0], &mut grad)?;
//! assert!(out.scalar().unwrap() > 0.0);
//! # Ok::<(), xent::Error>(())
//! ```

use super::cross_entropy::{CrossEntropyLoss, CrossEntropyOptions};
use super::dice::{DiceLoss, DiceOptions};
use super::{Backward, Loss};
use crate::error::{Error, Result};
use crate::float::{Float, Label};
use crate::reduction::{LossOutput, Reduction};
use crate::validate;
use crate::view::View;

/// Options of [`DiceCeLoss`].
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(default, deny_unknown_fields))]
pub struct DiceCeOptions<T> {
    /// The Dice part. Default: [`DiceOptions::default`] (softmax, mean).
    pub dice: DiceOptions<T>,
    /// The cross-entropy part. Default: [`CrossEntropyOptions::default`] (mean).
    pub ce: CrossEntropyOptions<T>,
    /// Weight of the Dice part, `>= 0`. Default: 1.
    pub lambda_dice: f64,
    /// Weight of the cross-entropy part, `>= 0`. Default: 1.
    pub lambda_ce: f64,
}

impl<T> Default for DiceCeOptions<T> {
    fn default() -> Self {
        DiceCeOptions {
            dice: DiceOptions::default(),
            ce: CrossEntropyOptions::default(),
            lambda_dice: 1.0,
            lambda_ce: 1.0,
        }
    }
}

/// Dice plus cross-entropy (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct DiceCeLoss<T> {
    dice: DiceLoss<T>,
    ce: CrossEntropyLoss<T>,
    lambda_dice: T,
    lambda_ce: T,
}

impl<T: Float> DiceCeLoss<T> {
    /// Checks the options once.
    ///
    /// # Errors
    /// Either part's errors; [`Error::InvalidOption`] for a reduction `none` or a lambda that is
    /// negative or not finite.
    pub fn new(options: DiceCeOptions<T>) -> Result<Self> {
        for (name, v) in [("lambda_dice", options.lambda_dice), ("lambda_ce", options.lambda_ce)] {
            validate::finite_option(name, v)?;
            if v < 0.0 {
                return Err(Error::InvalidOption { name, value: v.to_string(), reason: "must be >= 0" });
            }
        }
        if options.dice.reduction == Reduction::None || options.ce.reduction == Reduction::None {
            return Err(Error::InvalidOption {
                name: "reduction",
                value: "none".into(),
                reason: "both parts of DiceCeLoss must reduce to a scalar (mean or sum)",
            });
        }
        Ok(DiceCeLoss {
            lambda_dice: T::from_f64(options.lambda_dice),
            lambda_ce: T::from_f64(options.lambda_ce),
            dice: DiceLoss::new(options.dice)?,
            ce: CrossEntropyLoss::new(options.ce)?,
        })
    }
}

/// Scores `input` `[N, C, d1..dk]` for class indices `target` `[N, d1..dk]`. The output's
/// `weighted_sum` is the loss itself and its `denominator` 1.
///
/// # Errors
/// Either part's errors, and for gradient buffers of the wrong length.
impl<T: Float, L: Label> Loss<T, L> for DiceCeLoss<T> {
    fn evaluate(
        &self,
        input: View<'_, T>,
        target: View<'_, L>,
        backward: Option<Backward<'_, T>>,
    ) -> Result<LossOutput<T>> {
        let (ld, lc) = (self.lambda_dice, self.lambda_ce);
        let Some(Backward { grad_output, grad_input }) = backward else {
            let dice = self.dice.forward(input, target)?;
            return Ok(LossOutput::combine(&[(ld, &dice), (lc, &self.ce.forward(input, target)?)]));
        };
        let go = match grad_output {
            [g] => *g,
            _ => {
                return Err(Error::ShapeMismatch {
                    what: "grad_output",
                    got: vec![grad_output.len()],
                    expected: "one element (the loss is reduced)".into(),
                })
            }
        };
        // Check the Dice part's arguments before the cross-entropy writes the gradient.
        let dice = self.dice.forward(input, target)?;
        let ce = self.ce.forward_backward(input, target, &[go * lc], grad_input)?;
        let up = [go * ld];
        self.dice.run(input, target, Some(Backward { grad_output: &up, grad_input }), true)?;
        Ok(LossOutput::combine(&[(ld, &dice), (lc, &ce)]))
    }
}
