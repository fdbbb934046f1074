//! MONAI's Dice loss (and Jaccard): see [the overlap losses](crate::loss#the-overlap-losses) for the
//! formulas, shapes and semantics they share.
//!
//! PyTorch users: `monai.losses.DiceLoss(to_onehot_y=True, ...)`.

use super::overlap::{check_class_weight, check_smooth, run, Common, Scheme, Sums};
use super::{Backward, Loss};
use crate::error::{Error, Result};
use crate::float::{Float, Label};
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
    /// Per-class weight (`C` values, `C - 1` without the background), `>= 0`; ignored for a
    /// single class, as MONAI. Default: none.
    pub weight: Option<Vec<T>>,
    /// Target pixels with this value leave every sum. Default: none.
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

struct DiceScheme<'a> {
    jaccard: bool,
    squared: bool,
    nr: f64,
    dr: f64,
    weight: Option<&'a [f64]>,
}

impl DiceScheme<'_> {
    fn w(&self, c: usize) -> f64 {
        self.weight.map_or(1.0, |w| w[c])
    }
    /// `(num, den, dden/dtp, dden/dP)`
    fn parts(&self, (tp, p, g): (f64, f64, f64)) -> (f64, f64, f64, f64) {
        let (tp, g) = if self.squared {
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

impl Scheme for DiceScheme<'_> {
    fn per_group(&self, classes: usize) -> usize {
        classes
    }
    fn entries(&self, s: &Sums) -> Vec<f64> {
        (0..s.groups * s.classes)
            .map(|e| {
                let (num, den, _, _) = self.parts(s.at(e / s.classes, e % s.classes));
                (1.0 - num / den) * self.w(e % s.classes)
            })
            .collect()
    }
    fn coefficients(&self, s: &Sums, up: &[f64]) -> Vec<(f64, f64)> {
        (0..s.groups * s.classes)
            .map(|e| {
                let (num, den, dt, dp) = self.parts(s.at(e / s.classes, e % s.classes));
                let u = up[e] * self.w(e % s.classes);
                // l = 1 - num/den, dnum/dtp = 2
                (u * -(2.0 * den - num * dt) / (den * den), u * num * dp / (den * den))
            })
            .collect()
    }
}

impl<T: Float> DiceLoss<T> {
    /// Checks the options once.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] for non-finite smoothing terms, [`Error::NonFinite`] or a
    /// negative class weight.
    pub fn new(options: DiceOptions<T>) -> Result<Self> {
        check_smooth(options.smooth_nr, options.smooth_dr)?;
        if let Some(w) = &options.weight {
            check_class_weight(w)?;
        }
        Ok(DiceLoss { options })
    }

    fn common(&self) -> Common {
        let o = &self.options;
        Common {
            activation: o.activation,
            include_background: o.include_background,
            squared: o.squared_pred,
            batch: o.batch,
            ignore_index: o.ignore_index,
        }
    }

    pub(crate) fn run<L: Label>(
        &self,
        input: View<'_, T>,
        target: View<'_, L>,
        backward: Option<Backward<'_, T>>,
        accumulate: bool,
    ) -> Result<LossOutput<T>> {
        let o = &self.options;
        let weight: Option<Vec<f64>> = o.weight.as_ref().map(|w| w.iter().map(|v| v.to_f64()).collect());
        let classes = input.shape().get(1).copied().unwrap_or(0);
        let included = classes - usize::from(!o.include_background && classes > 1);
        let weight = match weight {
            Some(w) if included != 1 => {
                if w.len() != included {
                    return Err(Error::ShapeMismatch {
                        what: "weight",
                        got: vec![w.len()],
                        expected: format!("[{included}], one per included class"),
                    });
                }
                Some(w)
            }
            _ => None,
        };
        let scheme = DiceScheme {
            jaccard: o.jaccard,
            squared: o.squared_pred,
            nr: o.smooth_nr,
            dr: o.smooth_dr,
            weight: weight.as_deref(),
        };
        run(&self.common(), &scheme, o.reduction, input, target, backward, accumulate)
    }
}

/// Scores `input` `[N, C, d1..dk]` for class indices `target` `[N, d1..dk]`.
///
/// # Errors
/// Shapes, labels outside `0..C` (other than `ignore_index`), a weight of the wrong length.
impl<T: Float, L: Label> Loss<T, L> for DiceLoss<T> {
    fn evaluate(
        &self,
        input: View<'_, T>,
        target: View<'_, L>,
        backward: Option<Backward<'_, T>>,
    ) -> Result<LossOutput<T>> {
        self.run(input, target, backward, false)
    }
}
