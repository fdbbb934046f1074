//! Overlap losses with MONAI's semantics: Dice (and Jaccard), generalized Dice, Tversky.
//!
//! Scores `x` `[N, C, d1..dk]` (k >= 1) are activated to `p` (softmax over C, sigmoid, or used
//! as they are), the class-index target `[N, d1..dk]` becomes the one-hot `g`, and per group
//! (one per sample, or one for the whole batch with `batch`) and class:
//! ```text
//! tp = sum p g,   P = sum p^ord (ord 2 with squared_pred),   G = sum g
//! dice:        l = 1 - (2 tp + s_nr) / (P + G + s_dr)                 (times weight_c)
//! jaccard:     l = 1 - (2 tp + s_nr) / (2 (P + G - tp) + s_dr)
//! tversky:     l = 1 - (tp + s_nr) / (tp + alpha (P - tp) + beta (G - tp) + s_dr)
//! generalized: l = 1 - (2 sum_c w_c tp_c + s_nr) / (sum_c w_c (P_c + G_c) + s_dr)   per group,
//!              w_c = 1 / G_c (simple), 1 / G_c^2 (square) or 1 (uniform); a class absent from
//!              the group (G_c = 0) takes the group's largest finite w.
//! ```
//! `include_background = false` drops class 0 from the sums (softmax still runs over all
//! classes). A class absent from a group has `tp = G = 0`: its Dice is `1 - s_nr / (P + s_dr)`,
//! close to 1 unless the prediction is empty too, where the smoothing terms make it 0.
//! Pixels whose target is `ignore_index` leave every sum and get a zero gradient. Reductions
//! average or add the losses of all (group, class) pairs (the groups for the generalized Dice);
//! [`Reduction::None`] returns them, `[N, C']` (`[C']` with `batch`), `[N]` (`[1]`) for the
//! generalized Dice.
//!
//! PyTorch ecosystem: `monai.losses.DiceLoss`, `GeneralizedDiceLoss`, `TverskyLoss` with
//! `to_onehot_y=True`. The weights of the generalized Dice are computed in `f32`, as MONAI does.
//!
//! # Example
//! A perfect one-hot prediction has a Dice loss of (nearly) zero:
//! ```
//! use xent::loss::overlap::{Activation, DiceLoss, DiceOptions};
//! use xent::View;
//! let dice = DiceLoss::new(DiceOptions { activation: Activation::Identity, ..Default::default() })?;
//! // [N=1, C=2, H=1, W=3] probabilities and the matching labels
//! let p = [1.0f64, 0.0, 1.0, /* class 1: */ 0.0, 1.0, 0.0];
//! let out = dice.forward(View::new(&p, &[1, 2, 1, 3])?, View::new(&[0u8, 1, 0], &[1, 1, 3])?)?;
//! assert!(out.scalar().unwrap().abs() < 1e-5);
//! # Ok::<(), xent::Error>(())
//! ```

use super::check_grad_len;
use crate::error::{Error, Result};
use crate::float::{Float, Label};
pub use crate::kernel::overlap::Activation;
use crate::kernel::overlap::OverlapParams;
use crate::kernel::simd;
use crate::layout::Layout;
use crate::par;
use crate::reduction::{EmptyMean, LossOutput, Reducer, Reduction};
use crate::sum::ExactSum;
use crate::validate;
use crate::view::View;

/// The per-(group, class) sums `(tp, P, G)`.
pub(crate) struct Sums {
    pub groups: usize,
    pub classes: usize,
    pub data: Vec<f64>,
}

impl Sums {
    fn at(&self, g: usize, c: usize) -> (f64, f64, f64) {
        let s = &self.data[(g * self.classes + c) * 3..][..3];
        (s[0], s[1], s[2])
    }
}

/// Checks the scores `[N, C, d1..dk]` (k >= 1) and the class indices `[N, d1..dk]` of the
/// segmentation losses (with one class, the target is a binary mask of 0 and 1, as MONAI uses
/// it without one-hot); returns the layout.
pub(crate) fn check_segmentation<T, L: Label>(
    input: View<'_, T>,
    target: View<'_, L>,
    ignore_index: Option<i64>,
) -> Result<Layout> {
    if input.ndim() < 3 {
        return Err(Error::ShapeMismatch {
            what: "input",
            got: input.shape().to_vec(),
            expected: "[N, C, d1, ..., dk] with k >= 1".into(),
        });
    }
    let lay = Layout::classes_of(input.shape())?;
    validate::target_shape(input.shape(), target.shape(), &Layout::target_shape(input.shape()))?;
    let labels = if lay.classes == 1 { 2 } else { lay.classes };
    validate::index_targets::<f64, L>(target.data(), labels, ignore_index, None)?;
    Ok(lay)
}

/// What every overlap loss shares: the activation, the classes, the groups, the target.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Common {
    pub activation: Activation,
    pub include_background: bool,
    pub squared: bool,
    pub batch: bool,
    pub ignore_index: Option<i64>,
}

impl Common {
    /// Checks shapes and labels; returns the layout and the kernel parameters.
    fn check<T, L: Label>(&self, input: View<'_, T>, target: View<'_, L>) -> Result<(Layout, OverlapParams)> {
        let lay = check_segmentation(input, target, self.ignore_index)?;
        let first = usize::from(!self.include_background && lay.classes > 1);
        let params = OverlapParams {
            classes: lay.classes,
            class_stride: lay.class_stride(),
            inner: lay.inner,
            first,
            activation: self.activation,
            squared: self.squared,
            ignore_index: self.ignore_index,
            batch: self.batch,
        };
        Ok((lay, params))
    }

    /// Pass 1: the sums, combined in block order.
    fn sums<T: Float, L: Label>(&self, lay: Layout, o: &OverlapParams, x: &[T], target: &[L]) -> Sums {
        let groups = if o.batch { 1 } else { lay.outer };
        let ci = o.included();
        let parts = par::for_blocks::<T, _, _>(lay, &mut [], &mut [], |b, _, _| {
            let g0 = o.group(b.p0);
            let span = if b.len == 0 { 1 } else { o.group(b.p0 + b.len - 1) - g0 + 1 };
            let mut s = vec![0.0; span * ci * 3];
            let mut p = vec![T::ZERO; lay.classes];
            simd::overlap_sums(x, target, o, b, g0, &mut p, &mut s);
            (g0, s)
        });
        let mut data = vec![0.0; groups * ci * 3];
        for (g0, s) in parts {
            for (d, v) in data[g0 * ci * 3..].iter_mut().zip(s) {
                *d += v;
            }
        }
        Sums { groups, classes: ci, data }
    }
}

/// A loss built from the sums: its entries, and its coefficients `(dl/dtp, dl/dP)` per (group,
/// class) given the upstream gradient of each entry.
pub(crate) trait Scheme {
    /// Entries per group: one per included class, or one.
    fn per_group(&self, classes: usize) -> usize;
    fn entries(&self, s: &Sums) -> Vec<f64>;
    fn coefficients(&self, s: &Sums, upstream: &[f64]) -> Vec<(f64, f64)>;
}

/// Runs an overlap loss: checks, sums, entries, reduction, and the gradient pass.
/// `accumulate` adds the gradient to `grad_input` instead of overwriting it.
pub(crate) fn run<T: Float, L: Label, S: Scheme>(
    common: &Common,
    scheme: &S,
    reduction: Reduction,
    input: View<'_, T>,
    target: View<'_, L>,
    backward: super::Backward<'_, T>,
    accumulate: bool,
) -> Result<LossOutput<T>> {
    let (lay, o) = common.check(input, target)?;
    let sums = common.sums(lay, &o, input.data(), target.data());
    let entries = scheme.entries(&sums);
    let per = scheme.per_group(sums.classes);
    let shape = match (per, common.batch) {
        (1, _) => vec![sums.groups],
        (c, true) => vec![c],
        (c, false) => vec![sums.groups, c],
    };
    let reducer = Reducer { reduction, empty: EmptyMean::Nan, denominator: ExactSum::from(entries.len() as f64) };
    if let Some((go, grad)) = backward {
        check_grad_len(grad, input.len())?;
        let up = reducer.upstream(go, &shape)?;
        let upstream: Vec<f64> = (0..entries.len()).map(|e| up.at(e).to_f64()).collect();
        let ab = scheme.coefficients(&sums, &upstream);
        if !accumulate {
            grad.fill(T::ZERO);
        }
        par::for_blocks(lay, grad, &mut [], |b, g, _| {
            if let Some(mut g) = g {
                let (mut p, mut dp) = (vec![T::ZERO; lay.classes], vec![T::ZERO; lay.classes]);
                simd::overlap_backward(input.data(), target.data(), &o, b, &ab, &mut p, &mut dp, &mut g);
            }
        });
    }
    let sum = par::exact_sum(entries.iter().copied());
    Ok(reducer.finish(entries.iter().map(|&v| T::from_f64(v)).collect(), shape, sum))
}

fn check_smooth(nr: f64, dr: f64) -> Result<()> {
    validate::finite_option("smooth_nr", nr)?;
    validate::finite_option("smooth_dr", dr)
}

/// Options of [`DiceLoss`], MONAI's names and defaults.
#[derive(Debug, Clone, PartialEq)]
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
        backward: super::Backward<'_, T>,
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

    /// The loss of scores `input` `[N, C, d1..dk]` for class indices `target` `[N, d1..dk]`.
    ///
    /// # Errors
    /// Shapes, labels outside `0..C` (other than `ignore_index`), a weight of the wrong length.
    pub fn forward<L: Label>(&self, input: View<'_, T>, target: View<'_, L>) -> Result<LossOutput<T>> {
        self.run(input, target, None, false)
    }

    /// The loss and `d(sum(loss * grad_output)) / d(input)` into `grad_input`.
    ///
    /// # Errors
    /// As [`forward`](Self::forward), and for gradient buffers of the wrong length.
    pub fn forward_backward<L: Label>(
        &self,
        input: View<'_, T>,
        target: View<'_, L>,
        grad_output: &[T],
        grad_input: &mut [T],
    ) -> Result<LossOutput<T>> {
        self.run(input, target, Some((grad_output, grad_input)), false)
    }
}

fn check_class_weight<T: Float>(w: &[T]) -> Result<()> {
    validate::finite("weight", w)?;
    match w.iter().position(|v| *v < T::ZERO) {
        Some(i) => Err(Error::InvalidOption {
            name: "weight",
            value: format!("{} at index {i}", w[i]),
            reason: "class weights must be >= 0",
        }),
        None => Ok(()),
    }
}

/// How the generalized Dice weighs the classes of a group.
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

/// Options of [`GeneralizedDiceLoss`], MONAI's names and defaults.
#[derive(Debug, Clone, PartialEq)]
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
    /// Target pixels with this value leave every sum. Default: none.
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
pub struct GeneralizedDiceLoss {
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
    fn per_group(&self, _: usize) -> usize {
        1
    }
    fn entries(&self, s: &Sums) -> Vec<f64> {
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

impl GeneralizedDiceLoss {
    /// Checks the options once.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] for non-finite smoothing terms.
    pub fn new(options: GeneralizedDiceOptions) -> Result<Self> {
        check_smooth(options.smooth_nr, options.smooth_dr)?;
        Ok(GeneralizedDiceLoss { options })
    }

    fn run<T: Float, L: Label>(
        &self,
        input: View<'_, T>,
        target: View<'_, L>,
        backward: super::Backward<'_, T>,
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
        run(&common, &scheme, o.reduction, input, target, backward, false)
    }

    /// The loss of scores `input` `[N, C, d1..dk]` for class indices `target` `[N, d1..dk]`.
    ///
    /// # Errors
    /// Shapes, labels outside `0..C` (other than `ignore_index`).
    pub fn forward<T: Float, L: Label>(&self, input: View<'_, T>, target: View<'_, L>) -> Result<LossOutput<T>> {
        self.run(input, target, None)
    }

    /// The loss and `d(sum(loss * grad_output)) / d(input)` into `grad_input`.
    ///
    /// # Errors
    /// As [`forward`](Self::forward), and for gradient buffers of the wrong length.
    pub fn forward_backward<T: Float, L: Label>(
        &self,
        input: View<'_, T>,
        target: View<'_, L>,
        grad_output: &[T],
        grad_input: &mut [T],
    ) -> Result<LossOutput<T>> {
        self.run(input, target, Some((grad_output, grad_input)))
    }
}

/// Options of [`TverskyLoss`], MONAI's names and defaults.
#[derive(Debug, Clone, PartialEq)]
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
    /// Target pixels with this value leave every sum. Default: none.
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
pub struct TverskyLoss {
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
    fn per_group(&self, classes: usize) -> usize {
        classes
    }
    fn entries(&self, s: &Sums) -> Vec<f64> {
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

impl TverskyLoss {
    /// Checks the options once.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] for a non-finite alpha, beta or smoothing term.
    pub fn new(options: TverskyOptions) -> Result<Self> {
        check_smooth(options.smooth_nr, options.smooth_dr)?;
        validate::finite_option("alpha", options.alpha)?;
        validate::finite_option("beta", options.beta)?;
        Ok(TverskyLoss { options })
    }

    fn run<T: Float, L: Label>(
        &self,
        input: View<'_, T>,
        target: View<'_, L>,
        backward: super::Backward<'_, T>,
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
        run(&common, &scheme, o.reduction, input, target, backward, false)
    }

    /// The loss of scores `input` `[N, C, d1..dk]` for class indices `target` `[N, d1..dk]`.
    ///
    /// # Errors
    /// Shapes, labels outside `0..C` (other than `ignore_index`).
    pub fn forward<T: Float, L: Label>(&self, input: View<'_, T>, target: View<'_, L>) -> Result<LossOutput<T>> {
        self.run(input, target, None)
    }

    /// The loss and `d(sum(loss * grad_output)) / d(input)` into `grad_input`.
    ///
    /// # Errors
    /// As [`forward`](Self::forward), and for gradient buffers of the wrong length.
    pub fn forward_backward<T: Float, L: Label>(
        &self,
        input: View<'_, T>,
        target: View<'_, L>,
        grad_output: &[T],
        grad_input: &mut [T],
    ) -> Result<LossOutput<T>> {
        self.run(input, target, Some((grad_output, grad_input)))
    }
}
