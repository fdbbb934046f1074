//! Dice plus cross-entropy, the common segmentation combination (MONAI's `DiceCELoss`).
//!
//! ```text
//! l = lambda_dice * dice(x, t) + lambda_ce * cross_entropy(x, t)
//! ```
//! with MONAI's options: the cross-entropy over all `C` channels with `weight` (`C` values) and
//! `label_smoothing`; the Dice part with the Dice options and `weight[1..]` without the
//! background. With one output channel the cross-entropy part is
//! `binary_cross_entropy_with_logits(x, t)` with `pos_weight = weight` (no label smoothing), and
//! the Dice part skips softmax and one-hot, as MONAI does. Both parts reduce to a scalar (`mean`
//! or `sum`). Beyond MONAI: `ignore_index` reaches both parts (the cross-entropy's rule and
//! MONAI's Dice rule), with more than one channel. The gradient is written in one buffer: the
//! cross-entropy's first, then the Dice part added to it.
//!
//! PyTorch users: `monai.losses.DiceCELoss(to_onehot_y=True, ...)`.
//!
//! # Example
//! ```
//! use xent::{DiceCeLoss, DiceCeOptions, Loss, View};
//! let loss = DiceCeLoss::new(DiceCeOptions::default())?;
//! let x = [2.0f32, -1.0, 0.5, -2.0, 1.0, 0.0]; // [N=1, C=2, H=1, W=3]
//! let mut grad = [0.0f32; 6];
//! let out = loss.forward_backward(View::new(&x, &[1, 2, 1, 3])?, View::new(&[0u8, 1, 0], &[1, 1, 3])?, &[1.0], &mut grad)?;
//! assert!(out.scalar().unwrap() > 0.0);
//! # Ok::<(), xent::Error>(())
//! ```

use super::binary_cross_entropy::{BceWithLogitsLoss, BceWithLogitsOptions};
use super::cross_entropy::{CrossEntropyLoss, CrossEntropyOptions};
use super::dice::{self, DiceLoss, DiceOptions};
use super::{Backward, ClassWeight, Loss, WeightTensor};
use crate::error::{Error, Result};
use crate::float::{Float, Label};
pub use crate::kernel::Activation;
use crate::reduction::{LossOutput, Reduction};
use crate::validate;
use crate::view::View;

/// Options of [`DiceCeLoss`], MONAI's names and defaults (except the activation, softmax).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(default, deny_unknown_fields))]
pub struct DiceCeOptions<T> {
    /// Of the Dice part. Default: [`Activation::Softmax`].
    pub activation: Activation,
    /// Keep class 0 in the Dice part. Default: true.
    pub include_background: bool,
    /// As [`DiceOptions::squared_pred`]. Default: false.
    pub squared_pred: bool,
    /// As [`DiceOptions::jaccard`]. Default: false.
    pub jaccard: bool,
    /// As [`DiceOptions::batch`]. Default: false.
    pub batch: bool,
    /// Default: 1e-5.
    pub smooth_nr: f64,
    /// Default: 1e-5.
    pub smooth_dr: f64,
    /// One weight per class (`C` values): the cross-entropy's class weight, the Dice part's
    /// (without class 0 if the background is excluded); with one channel the `pos_weight` of the
    /// binary cross-entropy. Default: none.
    pub weight: Option<Vec<T>>,
    /// Weight of the Dice part, `>= 0`. Default: 1.
    pub lambda_dice: f64,
    /// Weight of the cross-entropy part, `>= 0`. Default: 1.
    pub lambda_ce: f64,
    /// The cross-entropy's label smoothing (not with one channel). Default: 0.
    pub label_smoothing: f64,
    /// Beyond MONAI: positions with this target leave both parts. Default: none.
    pub ignore_index: Option<i64>,
    /// [`Reduction::Mean`] (default) or [`Reduction::Sum`], for both parts.
    pub reduction: Reduction,
}

impl<T> Default for DiceCeOptions<T> {
    fn default() -> Self {
        DiceCeOptions {
            activation: Activation::Softmax,
            include_background: true,
            squared_pred: false,
            jaccard: false,
            batch: false,
            smooth_nr: 1e-5,
            smooth_dr: 1e-5,
            weight: None,
            lambda_dice: 1.0,
            lambda_ce: 1.0,
            label_smoothing: 0.0,
            ignore_index: None,
            reduction: Reduction::Mean,
        }
    }
}

impl<T: Clone> DiceCeOptions<T> {
    /// The options of the Dice part: the Dice options, `weight[1..]` without the background.
    pub fn dice_part(&self) -> DiceOptions<T> {
        let skip = usize::from(!self.include_background);
        DiceOptions {
            activation: self.activation,
            include_background: self.include_background,
            squared_pred: self.squared_pred,
            jaccard: self.jaccard,
            batch: self.batch,
            smooth_nr: self.smooth_nr,
            smooth_dr: self.smooth_dr,
            weight: self.weight.as_ref().map(|w| ClassWeight::PerClass(w.get(skip..).unwrap_or(&[]).to_vec())),
            ignore_index: self.ignore_index,
            reduction: self.reduction,
        }
    }

    /// The options of the cross-entropy part (more than one channel).
    pub fn cross_entropy_part(&self) -> CrossEntropyOptions<T> {
        CrossEntropyOptions {
            weight: self.weight.clone(),
            ignore_index: self.ignore_index.unwrap_or(-100),
            label_smoothing: self.label_smoothing,
            reduction: self.reduction,
            ..Default::default()
        }
    }
}

/// Dice plus cross-entropy (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct DiceCeLoss<T> {
    dice: DiceLoss<T>,
    ce: CrossEntropyLoss<T>,
    bce: BceWithLogitsLoss<T>,
    ignore_index: Option<i64>,
    lambda_dice: T,
    lambda_ce: T,
}

/// Checks a combination's lambdas.
pub(crate) fn check_lambdas(lambdas: &[(&'static str, f64)]) -> Result<()> {
    for &(name, v) in lambdas {
        validate::finite_option(name, v)?;
        if v < 0.0 {
            return Err(Error::InvalidOption { name, value: v.to_string(), reason: "must be >= 0" });
        }
    }
    Ok(())
}

impl<T: Float> DiceCeLoss<T> {
    /// Checks the options once.
    ///
    /// # Errors
    /// Either part's errors; [`Error::InvalidOption`] for a reduction `none` or a lambda that is
    /// negative or not finite.
    pub fn new(o: DiceCeOptions<T>) -> Result<Self> {
        check_lambdas(&[("lambda_dice", o.lambda_dice), ("lambda_ce", o.lambda_ce)])?;
        if o.reduction == Reduction::None {
            return Err(Error::InvalidOption {
                name: "reduction",
                value: "none".into(),
                reason: "DiceCeLoss reduces to a scalar: mean or sum (MONAI refuses none too)",
            });
        }
        let dice = DiceLoss::new(o.dice_part())?;
        let ce = CrossEntropyLoss::new(o.cross_entropy_part())?;
        let pos_weight = o.weight.map(|w| WeightTensor::new(w.clone(), vec![w.len()])).transpose()?;
        let bce =
            BceWithLogitsLoss::new(BceWithLogitsOptions { pos_weight, reduction: o.reduction, ..Default::default() })?;
        Ok(DiceCeLoss {
            dice,
            ce,
            bce,
            ignore_index: o.ignore_index,
            lambda_dice: T::from_f64(o.lambda_dice),
            lambda_ce: T::from_f64(o.lambda_ce),
        })
    }
}

/// Scores `input` `[N, C, d1..dk]` for class indices `target` `[N, d1..dk]` (with `C = 1`, a
/// binary mask of 0 and 1). The output's `weighted_sum` is the loss itself and its
/// `denominator` 1.
///
/// # Errors
/// Either part's errors, `ignore_index` with one channel, and gradient buffers of the wrong
/// length.
impl<T: Float, L: Label> Loss<T, L> for DiceCeLoss<T> {
    fn evaluate(
        &self,
        input: View<'_, T>,
        target: View<'_, L>,
        backward: Option<Backward<'_, T>>,
    ) -> Result<LossOutput<T>> {
        let (ld, lc) = (self.lambda_dice, self.lambda_ce);
        if input.shape().get(1) != Some(&1) {
            let ce = |b: Option<Backward<'_, T>>| self.ce.evaluate(input, target, b);
            return dice::plus(&self.dice, ld, lc, input, target, backward, ce);
        }
        if self.ignore_index.is_some() {
            return Err(Error::InvalidOption {
                name: "ignore_index",
                value: format!("{:?}", self.ignore_index),
                reason: "not with one output channel (the binary cross-entropy part has none)",
            });
        }
        // One channel: the labels (checked to be 0 or 1 by the Dice part) as the binary target.
        self.dice.forward(input, target)?;
        let y: Vec<T> = target.data().iter().map(|t| T::from_f64(t.to_i128() as f64)).collect();
        let y = View::new(&y, input.shape())?;
        let bce = |b: Option<Backward<'_, T>>| self.bce.evaluate(input, y, b);
        dice::plus(&self.dice, ld, lc, input, target, backward, bce)
    }
}

super::half_composite!(DiceCeLoss);
