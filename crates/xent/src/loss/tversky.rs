//! MONAI's Tversky loss: see [the overlap losses](crate::loss#the-overlap-losses) for the
//! formulas, shapes and semantics they share.
//!
//! PyTorch users: `monai.losses.TverskyLoss(to_onehot_y=True, ...)`.

use super::overlap::{check_smooth, run, Common, Scheme, Sums, Target};
use super::{Backward, Loss};
use crate::error::Result;
use crate::float::{Element, Float, Label};
pub use crate::kernel::Activation;
use crate::reduction::{LossOutput, Reduction};
use crate::validate;
use crate::view::View;
use std::marker::PhantomData;

/// Options of [`TverskyLoss`], MONAI's names and defaults.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(default, deny_unknown_fields))]
pub struct TverskyOptions {
    /// Default: [`Activation::Softmax`].
    pub activation: Activation,
    /// Keep class 0 in the loss. Default: true.
    pub include_background: bool,
    /// Weight of the false positives. Default: 0.5.
    pub alpha: f64,
    /// Weight of the false negatives. Default: 0.5.
    pub beta: f64,
    /// One group for the whole batch instead of one per sample. Default: false.
    pub batch: bool,
    /// Added to the numerator. Default: 1e-5.
    pub smooth_nr: f64,
    /// Added to the denominator. Default: 1e-5.
    pub smooth_dr: f64,
    /// Positions whose target is this value leave every sum (MONAI's rule: see [the overlap
    /// losses](crate::loss#the-overlap-losses)). Default: none.
    pub ignore_index: Option<i64>,
    /// Default: [`Reduction::Mean`] over the (group, class) losses.
    pub reduction: Reduction,
}

impl Default for TverskyOptions {
    fn default() -> Self {
        TverskyOptions {
            activation: Activation::Softmax,
            include_background: true,
            alpha: 0.5,
            beta: 0.5,
            batch: false,
            smooth_nr: 1e-5,
            smooth_dr: 1e-5,
            ignore_index: None,
            reduction: Reduction::Mean,
        }
    }
}

/// The Tversky loss (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct TverskyLoss<T> {
    _float: PhantomData<T>,
    options: TverskyOptions,
}

struct TverskyScheme {
    alpha: f64,
    beta: f64,
    nr: f64,
    dr: f64,
}

impl TverskyScheme {
    /// `(num, den)` with `fp = P - tp`, `fn = G - tp`.
    fn parts(&self, (tp, p, g): (f64, f64, f64)) -> (f64, f64) {
        (tp + self.nr, tp + self.alpha * (p - tp) + self.beta * (g - tp) + self.dr)
    }
}

impl Scheme for TverskyScheme {
    const PER_CLASS: bool = true;
    const BROADCAST: bool = false;
    fn scores(&self, s: &Sums) -> Vec<f64> {
        (0..s.groups * s.classes)
            .map(|e| {
                let (num, den) = self.parts(s.at(e / s.classes, e % s.classes));
                1.0 - num / den
            })
            .collect()
    }
    fn coefficients(&self, s: &Sums, up: &[f64]) -> Vec<(f64, f64)> {
        (0..s.groups * s.classes)
            .map(|e| {
                let (num, den) = self.parts(s.at(e / s.classes, e % s.classes));
                let dt = 1.0 - self.alpha - self.beta;
                (up[e] * -(den - num * dt) / (den * den), up[e] * num * self.alpha / (den * den))
            })
            .collect()
    }
}

impl<T: Float> TverskyLoss<T> {
    /// Checks the options once.
    ///
    /// # Errors
    /// [`Error::InvalidOption`](crate::Error::InvalidOption) for a non-finite alpha, beta or smoothing term.
    pub fn new(options: TverskyOptions) -> Result<Self> {
        check_smooth(options.smooth_nr, options.smooth_dr)?;
        validate::finite_option("alpha", options.alpha)?;
        validate::finite_option("beta", options.beta)?;
        Ok(TverskyLoss { options, _float: PhantomData })
    }
}

impl<T: Float> TverskyLoss<T> {
    fn run<E: Element<Math = T>, L: Label>(
        &self,
        input: View<'_, E>,
        target: Target<'_, E, L>,
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
        let scheme = TverskyScheme { alpha: o.alpha, beta: o.beta, nr: o.smooth_nr, dr: o.smooth_dr };
        run(&common, &scheme, None, o.reduction, input, target, backward, false)
    }

    fn soft<E: Element<Math = T>>(
        &self,
        input: View<'_, E>,
        target: View<'_, E>,
        backward: Option<Backward<'_, E, T>>,
    ) -> Result<LossOutput<T>> {
        self.run::<E, u8>(input, Target::Soft(target), backward)
    }

    fn labels<E: Element<Math = T>, L: Label>(
        &self,
        input: View<'_, E>,
        target: View<'_, L>,
        backward: Option<Backward<'_, E, T>>,
    ) -> Result<LossOutput<T>> {
        self.run(input, Target::Labels(target), backward)
    }
}

super::label_targets!(
    TverskyLoss,
    labels,
    "Scores `input` `[N, C, d1..dk]` for class indices `target` `[N, d1..dk]`.\n\n# Errors\n\
     Shapes, labels outside `0..C` (other than `ignore_index`)."
);

super::float_targets!(
    TverskyLoss,
    soft,
    "Soft labels (MONAI's `soft_label=True`): `target` in `[0, 1]`, the input's shape \
     `[N, C, d1..dk]`; equal to the class-index loss for 0/1 targets."
);
super::half_targets!(TverskyLoss, soft);
