//! MONAI's Dice loss (and Jaccard): see [the overlap losses](crate::loss#the-overlap-losses) for the
//! formulas, shapes and semantics they share.
//!
//! PyTorch users: `monai.losses.DiceLoss(to_onehot_y=True, ...)`.

use super::overlap::{check_smooth, run, Common, Scheme, Sums, Target};
use super::{Backward, ClassWeight, Loss};
use crate::error::Result;
use crate::float::{Element, Float, Label};
pub use crate::kernel::Activation;
use crate::reduction::{LossOutput, Reduction};
use crate::view::View;

/// Options of [`DiceLoss`], MONAI's names and defaults.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(default, deny_unknown_fields))]
pub struct DiceOptions<T> {
    /// Default: [`Activation::Softmax`].
    pub activation: Activation,
    /// Keep class 0 in the loss. Default: true.
    pub include_background: bool,
    /// Sum `p^2` instead of `p` in the denominator. Default: false.
    pub squared_pred: bool,
    /// The Jaccard (IoU) form instead of Dice. Default: false.
    pub jaccard: bool,
    /// One group for the whole batch instead of one per sample. Default: false.
    pub batch: bool,
    /// Added to the numerator. Default: 1e-5.
    pub smooth_nr: f64,
    /// Added to the denominator. Default: 1e-5.
    pub smooth_dr: f64,
    /// Class weight, `>= 0`: one for all, or one per included class (`C`, `C - 1` without the
    /// background); ignored for a single included class, as MONAI. Default: none.
    pub weight: Option<ClassWeight<T>>,
    /// Positions whose target is this value leave every sum (MONAI's rule: see [the overlap
    /// losses](crate::loss#the-overlap-losses)). Default: none.
    pub ignore_index: Option<i64>,
    /// Default: [`Reduction::Mean`] over the (group, class) losses.
    pub reduction: Reduction,
}

impl<T> Default for DiceOptions<T> {
    fn default() -> Self {
        DiceOptions {
            activation: Activation::Softmax,
            include_background: true,
            squared_pred: false,
            jaccard: false,
            batch: false,
            smooth_nr: 1e-5,
            smooth_dr: 1e-5,
            weight: None,
            ignore_index: None,
            reduction: Reduction::Mean,
        }
    }
}

/// The Dice (or Jaccard) loss (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct DiceLoss<T> {
    options: DiceOptions<T>,
}

struct DiceScheme {
    jaccard: bool,
    squared: bool,
    /// Soft labels: no float32 one-hot, so none of its rounding.
    soft: bool,
    nr: f64,
    dr: f64,
}

impl DiceScheme {
    /// `(num, den, dden/dtp, dden/dP)`
    fn parts(&self, (tp, p, g): (f64, f64, f64)) -> (f64, f64, f64, f64) {
        let (tp, g) = if self.squared && !self.soft {
            // MONAI's squared form takes G as the square of the f32 norm of its float32 one-hot
            // target, and tp as (P + G - sum (p - g)^2) / 2: follow it to the last bit.
            let r = (g as f32).sqrt();
            let g32 = (r * r) as f64;
            (tp + (g32 - g) / 2.0, g32)
        } else {
            (tp, g)
        };
        let num = 2.0 * tp + self.nr;
        if self.jaccard {
            (num, 2.0 * (p + g - tp) + self.dr, -2.0, 2.0)
        } else {
            (num, p + g + self.dr, 0.0, 1.0)
        }
    }
}

impl Scheme for DiceScheme {
    const PER_CLASS: bool = true;
    const BROADCAST: bool = true;
    fn scores(&self, s: &Sums) -> Vec<f64> {
        (0..s.groups * s.classes)
            .map(|e| {
                let (num, den, _, _) = self.parts(s.at(e / s.classes, e % s.classes));
                1.0 - num / den
            })
            .collect()
    }
    fn coefficients(&self, s: &Sums, up: &[f64]) -> Vec<(f64, f64)> {
        (0..s.groups * s.classes)
            .map(|e| {
                let (num, den, dt, dp) = self.parts(s.at(e / s.classes, e % s.classes));
                // l = 1 - num/den, dnum/dtp = 2
                (up[e] * -(2.0 * den - num * dt) / (den * den), up[e] * num * dp / (den * den))
            })
            .collect()
    }
}

impl<T: Float> DiceLoss<T> {
    /// Checks the options once.
    ///
    /// # Errors
    /// [`Error::InvalidOption`](crate::Error::InvalidOption) for non-finite smoothing terms, [`Error::NonFinite`](crate::Error::NonFinite) or a
    /// negative class weight.
    pub fn new(options: DiceOptions<T>) -> Result<Self> {
        check_smooth(options.smooth_nr, options.smooth_dr)?;
        if let Some(w) = &options.weight {
            w.check()?;
        }
        Ok(DiceLoss { options })
    }

    pub(crate) fn run<E: Element<Math = T>, L: Label>(
        &self,
        input: View<'_, E>,
        target: Target<'_, E, L>,
        backward: Option<Backward<'_, E, T>>,
        accumulate: bool,
    ) -> Result<LossOutput<T>> {
        let o = &self.options;
        let classes = input.shape().get(1).copied().unwrap_or(0);
        let included = classes - usize::from(!o.include_background && classes > 1);
        let weight = match &o.weight {
            Some(w) if included != 1 => Some(w.expand(included)?.iter().map(|v| v.to_f64()).collect::<Vec<_>>()),
            _ => None,
        };
        let scheme = DiceScheme {
            jaccard: o.jaccard,
            squared: o.squared_pred,
            soft: matches!(target, Target::Soft(_)),
            nr: o.smooth_nr,
            dr: o.smooth_dr,
        };
        let common = Common {
            activation: o.activation,
            include_background: o.include_background,
            squared: o.squared_pred,
            batch: o.batch,
            ignore_index: o.ignore_index,
        };
        run(&common, &scheme, weight.as_deref(), o.reduction, input, target, backward, accumulate)
    }
}

impl<T: Float> DiceLoss<T> {
    fn soft<E: Element<Math = T>>(
        &self,
        input: View<'_, E>,
        target: View<'_, E>,
        backward: Option<Backward<'_, E, T>>,
    ) -> Result<LossOutput<T>> {
        self.run::<E, u8>(input, Target::Soft(target), backward, false)
    }

    fn labels<E: Element<Math = T>, L: Label>(
        &self,
        input: View<'_, E>,
        target: View<'_, L>,
        backward: Option<Backward<'_, E, T>>,
    ) -> Result<LossOutput<T>> {
        self.run(input, Target::Labels(target), backward, false)
    }
}

super::label_targets!(
    DiceLoss,
    labels,
    "Scores `input` `[N, C, d1..dk]` for class indices `target` `[N, d1..dk]`.\n\n# Errors\n\
     Shapes, labels outside `0..C` (other than `ignore_index`), a weight of the wrong length."
);

super::float_targets!(
    DiceLoss,
    soft,
    "Soft labels (MONAI's `soft_label=True`): `target` in `[0, 1]`, the input's shape \
     `[N, C, d1..dk]`; equal to the class-index loss for 0/1 targets."
);
super::half_targets!(DiceLoss, soft);

/// `lambda_dice * dice + lambda_other * other`, both reduced to scalars: the other part writes
/// the gradient first, the Dice part adds its own. The output's `weighted_sum` is the loss and
/// its `denominator` 1.
#[allow(clippy::too_many_arguments)] // the two parts, their lambdas, and one call's arguments
pub(crate) fn plus<T: Float, L: Label>(
    dice: &DiceLoss<T>,
    lambda_dice: T,
    lambda_other: T,
    input: View<'_, T>,
    target: View<'_, L>,
    backward: Option<Backward<'_, T>>,
    other: impl FnOnce(Option<Backward<'_, T>>) -> Result<LossOutput<T>>,
) -> Result<LossOutput<T>> {
    // The Dice part's arguments are checked before the other part writes the gradient.
    let d = dice.forward(input, target)?;
    let Some(Backward { grad_output, grad_input }) = backward else {
        return Ok(LossOutput::combine(&[(lambda_dice, &d), (lambda_other, &other(None)?)]));
    };
    let go = match grad_output {
        [g] => *g,
        _ => {
            return Err(crate::error::Error::ShapeMismatch {
                what: "grad_output",
                got: vec![grad_output.len()],
                expected: "one element (the loss is reduced)".into(),
            })
        }
    };
    let up = [go * lambda_other];
    let o = other(Some(Backward { grad_output: &up, grad_input }))?;
    let up = [go * lambda_dice];
    dice.run(input, Target::Labels(target), Some(Backward { grad_output: &up, grad_input }), true)?;
    Ok(LossOutput::combine(&[(lambda_dice, &d), (lambda_other, &o)]))
}
