//! MONAI's generalized Dice loss: see [the overlap losses](crate::loss#the-overlap-losses) for
//! the formulas, shapes and semantics they share.
//!
//! PyTorch users: `monai.losses.GeneralizedDiceLoss(to_onehot_y=True, ...)`.

use super::overlap::{check_smooth, run, Common, Scheme, Sums, Target};
use super::{Backward, Loss};
use crate::error::Result;
use crate::float::{Element, Float, Label};
pub use crate::kernel::Activation;
use crate::reduction::{LossOutput, Reduction};
use crate::view::View;
use std::marker::PhantomData;

/// How the generalized Dice weighs the classes of a group (MONAI's `w_type`; parsed from and
/// printed as `square`, `simple`, `uniform`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightType {
    /// `1 / G_c^2` (Sudre et al. 2017; MONAI's default).
    #[default]
    Square,
    /// `1 / G_c`.
    Simple,
    /// 1.
    Uniform,
}

crate::error::named!(WeightType, "w_type", { Square => "square", Simple => "simple", Uniform => "uniform" });

/// Options of [`GeneralizedDiceLoss`], MONAI's names and defaults.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(default, deny_unknown_fields))]
pub struct GeneralizedDiceOptions {
    /// Default: [`Activation::Softmax`].
    pub activation: Activation,
    /// Keep class 0 in the loss. Default: true.
    pub include_background: bool,
    /// Default: [`WeightType::Square`].
    pub w_type: WeightType,
    /// One group for the whole batch instead of one per sample. Default: false.
    pub batch: bool,
    /// Added to the numerator. Default: 1e-5.
    pub smooth_nr: f64,
    /// Added to the denominator. Default: 1e-5.
    pub smooth_dr: f64,
    /// Positions whose target is this value leave every sum: an extension (MONAI's generalized
    /// Dice has no `ignore_index`) that follows the rule of [`DiceLoss`](crate::DiceLoss).
    /// Default: none.
    pub ignore_index: Option<i64>,
    /// Default: [`Reduction::Mean`] over the groups.
    pub reduction: Reduction,
}

impl Default for GeneralizedDiceOptions {
    fn default() -> Self {
        GeneralizedDiceOptions {
            activation: Activation::Softmax,
            include_background: true,
            w_type: WeightType::Square,
            batch: false,
            smooth_nr: 1e-5,
            smooth_dr: 1e-5,
            ignore_index: None,
            reduction: Reduction::Mean,
        }
    }
}

/// The generalized Dice loss (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct GeneralizedDiceLoss<T> {
    _float: PhantomData<T>,
    options: GeneralizedDiceOptions,
}

struct GeneralizedScheme {
    w_type: WeightType,
    nr: f64,
    dr: f64,
}

impl GeneralizedScheme {
    /// The class weights of group `g`, in `f32` as MONAI computes them.
    fn weights(&self, s: &Sums, g: usize) -> Vec<f64> {
        let w: Vec<f32> = (0..s.classes)
            .map(|c| {
                let gc = s.at(g, c).2 as f32;
                match self.w_type {
                    WeightType::Simple => 1.0 / gc,
                    WeightType::Square => 1.0 / (gc * gc),
                    WeightType::Uniform => 1.0,
                }
            })
            .collect();
        let max = w.iter().filter(|v| v.is_finite()).fold(0.0f32, |m, &v| m.max(v));
        w.iter().map(|&v| if v.is_finite() { v as f64 } else { max as f64 }).collect()
    }
    /// `(numer, denom, w)` of group `g`.
    fn parts(&self, s: &Sums, g: usize) -> (f64, f64, Vec<f64>) {
        let w = self.weights(s, g);
        let (mut num, mut den) = (0.0, 0.0);
        for (c, wc) in w.iter().enumerate() {
            let (tp, p, gg) = s.at(g, c);
            num += tp * wc;
            den += (p + gg) * wc;
        }
        (2.0 * num + self.nr, den + self.dr, w)
    }
}

impl Scheme for GeneralizedScheme {
    const PER_CLASS: bool = false;
    const BROADCAST: bool = true;
    fn scores(&self, s: &Sums) -> Vec<f64> {
        (0..s.groups)
            .map(|g| {
                let (num, den, _) = self.parts(s, g);
                1.0 - num / den
            })
            .collect()
    }
    fn coefficients(&self, s: &Sums, up: &[f64]) -> Vec<(f64, f64)> {
        (0..s.groups)
            .flat_map(|g| {
                let (num, den, w) = self.parts(s, g);
                let u = up[g];
                w.into_iter().map(move |wc| (u * -2.0 * wc / den, u * num * wc / (den * den)))
            })
            .collect()
    }
}

impl<T: Float> GeneralizedDiceLoss<T> {
    /// Checks the options once.
    ///
    /// # Errors
    /// [`Error::InvalidOption`](crate::Error::InvalidOption) for non-finite smoothing terms.
    pub fn new(options: GeneralizedDiceOptions) -> Result<Self> {
        check_smooth(options.smooth_nr, options.smooth_dr)?;
        Ok(GeneralizedDiceLoss { options, _float: PhantomData })
    }
}

super::label_targets!(
    GeneralizedDiceLoss,
    labels,
    "Scores `input` `[N, C, d1..dk]` for class indices `target` `[N, d1..dk]`.\n\n# Errors\n\
     Shapes, labels outside `0..C` (other than `ignore_index`)."
);

impl<T: Float> GeneralizedDiceLoss<T> {
    fn labels<E: Element<Math = T>, L: Label>(
        &self,
        input: View<'_, E>,
        target: View<'_, L>,
        backward: Option<Backward<'_, E, T>>,
    ) -> Result<LossOutput<T>> {
        let o = &self.options;
        let common = Common {
            activation: o.activation,
            include_background: o.include_background,
            squared: false,
            batch: o.batch,
            ignore_index: o.ignore_index,
        };
        let scheme = GeneralizedScheme { w_type: o.w_type, nr: o.smooth_nr, dr: o.smooth_dr };
        run(&common, &scheme, None, o.reduction, input, Target::Labels(target), backward, false)
    }
}
