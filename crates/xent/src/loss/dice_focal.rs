//! Dice plus focal (MONAI's `DiceFocalLoss`).
//!
//! ```text
//! l = lambda_dice * dice(x, t) + lambda_focal * focal(x, t)
//! ```
//! The Dice part takes the Dice options and the activation; the focal part is always the
//! sigmoid focal loss on the raw scores (MONAI passes it no `use_softmax`), with `gamma` and a
//! scalar `alpha`; `weight` (one number, or one per included class) goes to both, and so does
//! `include_background`. Beyond MONAI: `ignore_index` reaches both parts, each with MONAI's rule
//! for it (see [`DiceLoss`] and [`FocalLoss`]). With [`Reduction::None`] the Dice part, `[N, C', 1, ..]` (`[C', 1, ..]`
//! with `batch`), is broadcast onto the focal part's `[N, C', d1..dk]`.
//!
//! PyTorch users: `monai.losses.DiceFocalLoss(to_onehot_y=True, ...)`.
//!
//! # Example
//! ```
//! use xent::{DiceFocalLoss, DiceFocalOptions, Loss, View};
//! let loss = DiceFocalLoss::new(DiceFocalOptions::default())?;
//! let x = [2.0f32, -1.0, 0.5, -2.0, 1.0, 0.0]; // [N=1, C=2, H=1, W=3]
//! let out = loss.forward(View::new(&x, &[1, 2, 1, 3])?, View::new(&[0u8, 1, 0], &[1, 1, 3])?)?;
//! assert!(out.scalar().unwrap() > 0.0);
//! # Ok::<(), xent::Error>(())
//! ```

use super::dice::{self, DiceLoss, DiceOptions};
use super::dice_ce::check_lambdas;
use super::focal::{FocalLoss, FocalOptions};
use super::overlap::Target;
use super::{Backward, ClassWeight, Loss};
use crate::error::Result;
use crate::float::{Float, Label};
pub use crate::kernel::Activation;
use crate::kernel::FocalAlpha;
use crate::reduction::{LossOutput, Reduction};
use crate::sum::ExactSum;
use crate::view::View;

/// Options of [`DiceFocalLoss`], MONAI's names and defaults (except the activation, softmax).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(default, deny_unknown_fields))]
pub struct DiceFocalOptions<T> {
    /// Of the Dice part. Default: [`Activation::Softmax`].
    pub activation: Activation,
    /// Keep class 0 in both parts. Default: true.
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
    /// The focal part's exponent, `>= 0`. Default: 2.
    pub gamma: f64,
    /// The focal part's scalar alpha. Default: none.
    pub alpha: Option<f64>,
    /// Both parts' class weight. Default: none.
    pub weight: Option<ClassWeight<T>>,
    /// Weight of the Dice part, `>= 0`. Default: 1.
    pub lambda_dice: f64,
    /// Weight of the focal part, `>= 0`. Default: 1.
    pub lambda_focal: f64,
    /// Beyond MONAI: positions with this target leave both parts. Default: none.
    pub ignore_index: Option<i64>,
    /// Default: [`Reduction::Mean`], for both parts.
    pub reduction: Reduction,
}

impl<T> Default for DiceFocalOptions<T> {
    fn default() -> Self {
        DiceFocalOptions {
            activation: Activation::Softmax,
            include_background: true,
            squared_pred: false,
            jaccard: false,
            batch: false,
            smooth_nr: 1e-5,
            smooth_dr: 1e-5,
            gamma: 2.0,
            alpha: None,
            weight: None,
            lambda_dice: 1.0,
            lambda_focal: 1.0,
            ignore_index: None,
            reduction: Reduction::Mean,
        }
    }
}

impl<T: Clone> DiceFocalOptions<T> {
    /// The options of the Dice part.
    pub fn dice_part(&self) -> DiceOptions<T> {
        DiceOptions {
            activation: self.activation,
            include_background: self.include_background,
            squared_pred: self.squared_pred,
            jaccard: self.jaccard,
            batch: self.batch,
            smooth_nr: self.smooth_nr,
            smooth_dr: self.smooth_dr,
            weight: self.weight.clone(),
            ignore_index: self.ignore_index,
            reduction: self.reduction,
        }
    }

    /// The options of the focal part: the sigmoid focal loss on the raw scores.
    pub fn focal_part(&self) -> FocalOptions<T> {
        FocalOptions {
            include_background: self.include_background,
            gamma: self.gamma,
            alpha: self.alpha.map_or(FocalAlpha::None, FocalAlpha::Scalar),
            weight: self.weight.clone(),
            activation: Activation::Sigmoid,
            ignore_index: self.ignore_index,
            reduction: self.reduction,
        }
    }
}

/// Dice plus focal (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct DiceFocalLoss<T> {
    dice: DiceLoss<T>,
    focal: FocalLoss<T>,
    batch: bool,
    reduction: Reduction,
    lambda_dice: T,
    lambda_focal: T,
}

impl<T: Float> DiceFocalLoss<T> {
    /// Checks the options once.
    ///
    /// # Errors
    /// Either part's errors; [`Error::InvalidOption`](crate::Error::InvalidOption) for a lambda that is negative or not
    /// finite.
    pub fn new(o: DiceFocalOptions<T>) -> Result<Self> {
        check_lambdas(&[("lambda_dice", o.lambda_dice), ("lambda_focal", o.lambda_focal)])?;
        let (dice, focal) = (DiceLoss::new(o.dice_part())?, FocalLoss::new(o.focal_part())?);
        Ok(DiceFocalLoss {
            dice,
            focal,
            batch: o.batch,
            reduction: o.reduction,
            lambda_dice: T::from_f64(o.lambda_dice),
            lambda_focal: T::from_f64(o.lambda_focal),
        })
    }

    /// The Dice entry each element of the focal part's `[N, C', ..]` output adds.
    fn dice_entry(&self, i: usize, classes: usize, inner: usize) -> usize {
        let (n, c) = (i / (inner * classes), (i / inner) % classes);
        if self.batch {
            c
        } else {
            n * classes + c
        }
    }
}

/// Scores `input` `[N, C, d1..dk]` (k >= 1) for class indices `target` `[N, d1..dk]` (with
/// `C = 1`, a binary mask of 0 and 1).
///
/// # Errors
/// Either part's errors, and gradient buffers of the wrong length.
impl<T: Float, L: Label> Loss<T, L> for DiceFocalLoss<T> {
    fn evaluate(
        &self,
        input: View<'_, T>,
        target: View<'_, L>,
        backward: Option<Backward<'_, T>>,
    ) -> Result<LossOutput<T>> {
        let (ld, lf) = (self.lambda_dice, self.lambda_focal);
        if self.reduction != Reduction::None {
            let focal = |b: Option<Backward<'_, T>>| self.focal.evaluate(input, target, b);
            return dice::plus(&self.dice, ld, lf, input, target, backward, focal);
        }
        let d = self.dice.forward(input, target)?;
        let classes_inner = |f: &LossOutput<T>| (f.shape[1], f.shape[2..].iter().product::<usize>());
        let f = match backward {
            None => self.focal.forward(input, target)?,
            Some(Backward { grad_output, grad_input }) => {
                // The focal part checks both buffers' lengths and writes the gradient first; its
                // output is the loss itself, whatever the upstream gradient.
                let up: Vec<T> = grad_output.iter().map(|&g| g * lf).collect();
                let f = self.focal.evaluate(input, target, Some(Backward { grad_output: &up, grad_input }))?;
                let (classes, inner) = classes_inner(&f);
                let mut up = vec![T::ZERO; d.loss.len()];
                for (i, &g) in grad_output.iter().enumerate() {
                    up[self.dice_entry(i, classes, inner)] += g;
                }
                up.iter_mut().for_each(|g| *g *= ld);
                self.dice.run(input, Target::Labels(target), Some(Backward { grad_output: &up, grad_input }), true)?;
                f
            }
        };
        let (classes, inner) = classes_inner(&f);
        let loss: Vec<T> =
            f.loss.iter().enumerate().map(|(i, &v)| lf * v + ld * d.loss[self.dice_entry(i, classes, inner)]).collect();
        let sum = crate::par::exact_sum(loss.iter().map(|v| v.to_f64()));
        Ok(LossOutput { shape: f.shape, weighted_sum: sum, denominator: ExactSum::from(1.0), loss })
    }
}

super::half_composite!(DiceFocalLoss);
