//! The [`Loss`] trait, and one file per loss: options -> `new()` -> [`Loss::evaluate`].
//!
//! # The overlap losses
//! Overlap losses with MONAI 1.6.1's semantics: Dice (and Jaccard), generalized Dice, Tversky.
//!
//! Scores `x` `[N, C, d1..dk]` (k >= 0) are activated to `p` (softmax over C, sigmoid, or used
//! as they are), the class-index target `[N, d1..dk]` becomes the one-hot `g` (one class: the
//! 0/1 label itself), and per group (one per sample, or one for the whole batch with `batch`)
//! and class:
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
//! close to 1 unless the prediction is empty too, where the smoothing terms make it 0. Dice's
//! `weight` is one number for every class or one per included class (ignored for a single
//! included class, as MONAI).
//!
//! **Soft labels** (Dice, Tversky; MONAI's `soft_label=True`): a float target in `[0, 1]` of the
//! input's shape, with MONAI's formulas `tp = (|p|_1 + |g|_1 - |p - g|_1) / 2`, `P = |p|_1`,
//! `G = |g|_1` (with `squared_pred`, the squared L2 norms), which equal the above for 0/1
//! targets.
//!
//! **`ignore_index`**, MONAI's rule: a position whose label is `ignore_index` leaves every
//! channel's sums and gets a zero gradient. An `ignore_index` inside `0..C` removes that class's
//! positions, yet keeps its channel in the loss (with an empty target) and in the mean's count;
//! all positions ignored gives `1 - s_nr / s_dr` per entry. MONAI's generalized Dice has no
//! `ignore_index`; xent's follows the same rule.
//!
//! **`[N, C]` inputs** (no spatial dimensions): MONAI sums over every axis, so without `batch`
//! there is one score for the whole input (a `weight` then spreads it into `C'` entries); with
//! `batch`, one per class. The generalized Dice of `[N, C]` needs `batch`.
//!
//! Reductions average or add the entries; [`Reduction::None`] returns them in MONAI's shapes:
//! Dice `[N, C', 1, ..]` (`[C', 1, ..]` with `batch`), generalized Dice `[N, 1, 1, ..]`
//! (`[1, 1, ..]`), Tversky `[N, C']` (`[C']`); `[N, C]` inputs drop the ones.
//!
//! PyTorch ecosystem: `monai.losses.DiceLoss`, `GeneralizedDiceLoss`, `TverskyLoss` with
//! `to_onehot_y=True`. The weights of the generalized Dice are computed in `f32`, as MONAI does.
//!
//! # Example
//! A perfect one-hot prediction has a Dice loss of (nearly) zero:
//! ```
//! use xent::{Activation, DiceLoss, DiceOptions};
//! use xent::{Loss, View};
//! let dice = DiceLoss::new(DiceOptions { activation: Activation::Identity, ..Default::default() })?;
//! // [N=1, C=2, H=1, W=3] probabilities and the matching labels
//! let p = [1.0f64, 0.0, 1.0, /* class 1: */ 0.0, 1.0, 0.0];
//! let out = dice.forward(View::new(&p, &[1, 2, 1, 3])?, View::new(&[0u8, 1, 0], &[1, 1, 3])?)?;
//! assert!(out.scalar().unwrap().abs() < 1e-5);
//! # Ok::<(), xent::Error>(())
//! ```

/// `impl Loss<T, T>` for `f32` and `f64` (float targets: probabilities, soft labels) through the
/// loss's own `$method(input, target, backward)`, documented by `$doc`.
macro_rules! float_targets {
    ($loss:ident, $method:ident, $doc:literal) => {
        $crate::loss::float_targets!(@one $loss, $method, $doc, f32);
        $crate::loss::float_targets!(@one $loss, $method, $doc, f64);
    };
    (@one $loss:ident, $method:ident, $doc:literal, $t:ty) => {
        #[doc = $doc]
        impl Loss<$t, $t> for $loss<$t> {
            fn evaluate(
                &self,
                input: View<'_, $t>,
                target: View<'_, $t>,
                backward: Option<Backward<'_, $t>>,
            ) -> Result<LossOutput<$t>> {
                self.$method(input, target, backward)
            }
        }
    };
}
pub(crate) use float_targets;

/// `impl Loss<bf16, bf16, f32>` and `Loss<f16, f16, f32>` for `$loss<f32>` (targets of the
/// input's type) through the loss's own generic `$method(input, target, backward)`.
macro_rules! half_targets {
    ($loss:ident, $method:ident) => {
        $crate::loss::half_targets!(@one $loss, $method, $crate::float::bf16);
        $crate::loss::half_targets!(@one $loss, $method, $crate::float::f16);
    };
    (@one $loss:ident, $method:ident, $t:ty) => {
        /// Half-precision inputs and targets (maths and loss in `f32`, the gradient rounded once
        /// to the input's type).
        impl Loss<$t, $t, f32> for $loss<f32> {
            fn evaluate(
                &self,
                input: View<'_, $t>,
                target: View<'_, $t>,
                backward: Option<Backward<'_, $t, f32>>,
            ) -> Result<LossOutput<f32>> {
                self.$method(input, target, backward)
            }
        }
    };
}
pub(crate) use half_targets;

/// `impl<T: Float, L: Label> Loss<T, L>` for `$loss<T>` (class-index targets, documented by
/// `$doc`) and `Loss<bf16, L, f32>` / `Loss<f16, L, f32>` for `$loss<f32>`, all through the
/// loss's own generic `$method(input, target, backward)`.
macro_rules! label_targets {
    ($loss:ident, $method:ident, $doc:literal) => {
        #[doc = $doc]
        impl<T: Float, L: Label> Loss<T, L> for $loss<T> {
            fn evaluate(
                &self,
                input: View<'_, T>,
                target: View<'_, L>,
                backward: Option<Backward<'_, T>>,
            ) -> Result<LossOutput<T>> {
                self.$method(input, target, backward)
            }
        }
        $crate::loss::label_targets!(@half $loss, $method, $crate::float::bf16);
        $crate::loss::label_targets!(@half $loss, $method, $crate::float::f16);
    };
    (@half $loss:ident, $method:ident, $t:ty) => {
        /// Half-precision inputs (maths and loss in `f32`, the gradient rounded once to the
        /// input's type).
        impl<L: Label> Loss<$t, L, f32> for $loss<f32> {
            fn evaluate(
                &self,
                input: View<'_, $t>,
                target: View<'_, L>,
                backward: Option<Backward<'_, $t, f32>>,
            ) -> Result<LossOutput<f32>> {
                self.$method(input, target, backward)
            }
        }
    };
}
pub(crate) use label_targets;

/// `impl<L: Label> Loss<bf16, L, f32>` and `Loss<f16, L, f32>` for the composite `$loss<f32>`
/// (Dice plus another loss, both writing one gradient) through [`widened`].
macro_rules! half_composite {
    ($loss:ident) => {
        impl $loss<f32> {
            /// Half scores widened to `f32` once (the two parts' gradients add up in `f32`).
            fn widened_labels<H: $crate::float::Element<Math = f32>, L: Label>(
                &self,
                input: View<'_, H>,
                target: View<'_, L>,
                backward: Option<Backward<'_, H, f32>>,
            ) -> Result<LossOutput<f32>> {
                $crate::loss::widened(input, backward, |x, b| self.evaluate(x, target, b))
            }
        }
        $crate::loss::label_targets!(@half $loss, widened_labels, $crate::float::bf16);
        $crate::loss::label_targets!(@half $loss, widened_labels, $crate::float::f16);
    };
}
pub(crate) use half_composite;

/// A loss of `f32` scores run on half scores `input`: the scores widened into an `f32` copy,
/// the gradient computed in `f32` and rounded once into `grad_input`. For the composites, whose
/// two parts add into one gradient: rounding each part's would round twice.
pub(crate) fn widened<H: Element<Math = f32>>(
    input: View<'_, H>,
    backward: Option<Backward<'_, H, f32>>,
    f: impl FnOnce(View<'_, f32>, Option<Backward<'_, f32>>) -> Result<LossOutput<f32>>,
) -> Result<LossOutput<f32>> {
    let mut x = vec![0.0; input.len()];
    H::widen_slice(input.data(), &mut x);
    let x = View::new(&x, input.shape())?;
    let Some(Backward { grad_output, grad_input }) = backward else { return f(x, None) };
    check_grad_len(grad_input, input.len())?;
    let mut g = vec![0.0; input.len()];
    let out = f(x, Some(Backward { grad_output, grad_input: &mut g }))?;
    H::narrow_slice(&g, grad_input);
    Ok(out)
}

/// `impl<T: Float> Loss<T, T>` for `$loss<T>` (documented by `$doc`) and the half types of
/// [`half_targets`], all through the loss's own generic `run(input, target, backward)`.
macro_rules! same_type_targets {
    ($loss:ident, $doc:literal) => {
        #[doc = $doc]
        impl<T: Float> Loss<T, T> for $loss<T> {
            fn evaluate(
                &self,
                input: View<'_, T>,
                target: View<'_, T>,
                backward: Option<Backward<'_, T>>,
            ) -> Result<LossOutput<T>> {
                self.run(input, target, backward)
            }
        }
        $crate::loss::half_targets!($loss, run);
    };
}
pub(crate) use same_type_targets;

pub mod binary_cross_entropy;
pub mod cross_entropy;
pub mod dice;
pub mod dice_ce;
pub mod dice_focal;
pub mod focal;
pub mod generalized_dice;
pub mod linear_cross_entropy;
pub mod nll;
mod overlap;
pub mod sigmoid_focal;
pub mod softmax;
pub mod spec;
pub mod tversky;

pub use crate::kernel::Activation;

use crate::error::{Error, Result};
use crate::float::{Element, Float, Label};
use crate::kernel::{self, Block, ClassOut, IndexParams, Upstream};
use crate::layout::Layout;
use crate::par;
use crate::reduction::{EmptyMean, LossOutput, Reducer, Reduction};
use crate::sum::ExactSum;
use crate::validate;
use crate::view::{numel, View};

/// The gradient half of a fused call: the upstream gradient `d(total)/d(loss)` (the output's
/// shape: one element for a reduced loss, `[1.0]` for the plain gradient; in the maths type)
/// and the buffer that receives `d(sum(loss * grad_output)) / d(input)` (the input's length and
/// type; overwritten, a `bf16` / `f16` gradient rounded once from `f32`).
/// `S` is the input's type and `M` the maths type (`S` itself for `f32` and `f64`; `f32` for
/// `bf16` and `f16`).
#[derive(Debug)]
pub struct Backward<'g, S, M = S> {
    /// The upstream gradient, the output's shape.
    pub grad_output: &'g [M],
    /// The input gradient, written in place.
    pub grad_input: &'g mut [S],
}

/// A loss of scores `input` (type `T`) for targets of element type `Y`: class indices (any
/// [`Label`] type) or values of `T` (probabilities, binary targets).
///
/// One required method, [`evaluate`](Loss::evaluate); [`forward`](Loss::forward) and
/// [`forward_backward`](Loss::forward_backward) call it. Every loss of xent implements it,
/// [`CrossEntropyLoss`](crate::CrossEntropyLoss) for both kinds of target, so adapters and tests
/// are written once for all of them.
///
/// ```
/// use xent::{CrossEntropyLoss, Loss, View};
/// let ce = CrossEntropyLoss::new(Default::default())?;
/// let x = View::new(&[1.0f32, 2.0, 3.0], &[1, 3])?;
/// let by_index = ce.forward(x, View::new(&[2u8], &[1])?)?;                 // class indices
/// let by_probs = ce.forward(x, View::new(&[0.0f32, 0.0, 1.0], &[1, 3])?)?; // probabilities
/// assert!((by_index.scalar().unwrap() - by_probs.scalar().unwrap()).abs() < 1e-6);
/// # Ok::<(), xent::Error>(())
/// ```
///
/// `S` is what the input and its gradient are stored in and `M` the type of the maths and the
/// loss: `S` itself for `f32` and `f64` (the default), `f32` for the `bf16` / `f16` inputs of
/// the losses that take them (`Loss<bf16, i64, f32>`).
pub trait Loss<S: Element<Math = M>, Y: Copy, M: Float = S> {
    /// The loss, and with `backward` its input gradient, reading the input once.
    ///
    /// # Errors
    /// Each loss's own (shapes, targets out of range, weights of the wrong length); with
    /// `backward`, also a `grad_output` or `grad_input` of the wrong length.
    fn evaluate(
        &self,
        input: View<'_, S>,
        target: View<'_, Y>,
        backward: Option<Backward<'_, S, M>>,
    ) -> Result<LossOutput<M>>;

    /// The loss.
    ///
    /// # Errors
    /// As [`evaluate`](Loss::evaluate).
    fn forward(&self, input: View<'_, S>, target: View<'_, Y>) -> Result<LossOutput<M>> {
        self.evaluate(input, target, None)
    }

    /// The loss, and `d(sum(loss * grad_output)) / d(input)` written into `grad_input` (see
    /// [`Backward`]).
    ///
    /// # Errors
    /// As [`evaluate`](Loss::evaluate).
    fn forward_backward(
        &self,
        input: View<'_, S>,
        target: View<'_, Y>,
        grad_output: &[M],
        grad_input: &mut [S],
    ) -> Result<LossOutput<M>> {
        self.evaluate(input, target, Some(Backward { grad_output, grad_input }))
    }
}

/// An owned weight tensor: the values of a `weight` or `pos_weight` that broadcasts against the
/// input (NumPy's rules). With the `serde` feature, `{"values": [..], "shape": [..]}`, checked
/// as [`new`](Self::new) checks it.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(try_from = "RawWeightTensor<T>", bound(deserialize = "T: Float + serde::Deserialize<'de>"))
)]
pub struct WeightTensor<T> {
    values: Vec<T>,
    shape: Vec<usize>,
}

/// [`WeightTensor`] as it is read, before the checks.
#[cfg(feature = "serde")]
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWeightTensor<T> {
    values: Vec<T>,
    shape: Vec<usize>,
}

#[cfg(feature = "serde")]
impl<T: Float> TryFrom<RawWeightTensor<T>> for WeightTensor<T> {
    type Error = Error;
    fn try_from(r: RawWeightTensor<T>) -> Result<Self> {
        WeightTensor::new(r.values, r.shape)
    }
}

impl<T: Float> WeightTensor<T> {
    /// A tensor of `shape` (row-major).
    ///
    /// # Errors
    /// [`Error::DataLength`] or [`Error::ShapeOverflow`] if `values` does not fill `shape`,
    /// [`Error::NonFinite`] for a NaN or infinite value.
    pub fn new(values: Vec<T>, shape: Vec<usize>) -> Result<Self> {
        View::new(&values, &shape)?;
        validate::finite("weight", &values)?;
        Ok(WeightTensor { values, shape })
    }

    /// The values, row-major.
    pub fn values(&self) -> &[T] {
        &self.values
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
}

/// A class weight of the MONAI losses (`weight=`): one value for every class, or one per
/// included class. With the `serde` feature: a number or a list.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(untagged))]
pub enum ClassWeight<T> {
    /// The same weight for every class (MONAI's scalar `weight`).
    Uniform(T),
    /// One weight per included class (`C`, or `C - 1` without the background).
    PerClass(Vec<T>),
}

impl<T> From<Vec<T>> for ClassWeight<T> {
    fn from(w: Vec<T>) -> Self {
        ClassWeight::PerClass(w)
    }
}

impl<T> From<T> for ClassWeight<T> {
    fn from(w: T) -> Self {
        ClassWeight::Uniform(w)
    }
}

impl<T: Float> ClassWeight<T> {
    /// Finite and `>= 0`.
    pub(crate) fn check(&self) -> Result<()> {
        let v = match self {
            ClassWeight::Uniform(w) => std::slice::from_ref(w),
            ClassWeight::PerClass(w) => w,
        };
        validate::finite("weight", v)?;
        match v.iter().position(|w| *w < T::ZERO) {
            Some(i) => Err(Error::InvalidOption {
                name: "weight",
                value: format!("{} at index {i}", v[i]),
                reason: "class weights must be >= 0",
            }),
            None => Ok(()),
        }
    }

    /// One weight per included class (`included` of them).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] for a list whose length is not `included`.
    pub fn expand(&self, included: usize) -> Result<Vec<T>> {
        match self {
            ClassWeight::Uniform(w) => Ok(vec![*w; included]),
            ClassWeight::PerClass(w) if w.len() == included => Ok(w.clone()),
            ClassWeight::PerClass(w) => Err(Error::ShapeMismatch {
                what: "weight",
                got: vec![w.len()],
                expected: format!("[{included}], one per included class (without the background if it is excluded)"),
            }),
        }
    }
}

/// Checks the input-gradient buffer's length.
pub(crate) fn check_grad_len<T>(grad_input: &[T], input_len: usize) -> Result<()> {
    if grad_input.len() == input_len {
        return Ok(());
    }
    Err(Error::ShapeMismatch {
        what: "grad_input",
        got: vec![grad_input.len()],
        expected: format!("{input_len} elements, the input's"),
    })
}

/// A class-index kernel: cross-entropy or nll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IndexKernel {
    CrossEntropy,
    Nll,
}

/// The options every class-index loss shares.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IndexOptions<'a, T> {
    pub weight: Option<&'a [T]>,
    pub ignore_index: i64,
    pub smoothing: T,
    pub reduction: Reduction,
    pub empty_mean: EmptyMean,
}

impl<T: Float> IndexOptions<'_, T> {
    /// Checks input, target and weight; returns the layout and the mean's denominator.
    pub fn check<L: Label>(&self, input: &[usize], target: View<'_, L>) -> Result<(Layout, ExactSum)> {
        let lay = Layout::classes_of(input)?;
        validate::target_shape(input, target.shape(), &Layout::target_shape(input))?;
        validate::class_weights(self.weight, lay.classes)?;
        let den = validate::index_targets(target.data(), lay.classes, Some(self.ignore_index), self.weight)?;
        Ok((lay, den))
    }

    /// Runs `kernel` over every block: the loss, and the gradient if `backward` is given.
    pub fn run<S: Element<Math = T>, L: Label>(
        &self,
        kernel: IndexKernel,
        input: View<'_, S>,
        target: View<'_, L>,
        backward: Option<Backward<'_, S, T>>,
    ) -> Result<LossOutput<T>> {
        let (lay, denominator) = self.check(input.shape(), target)?;
        let weight_sum = match self.weight {
            Some(w) => w.iter().fold(T::ZERO, |a, &b| a + b),
            None => T::from_f64(lay.classes as f64),
        };
        let params = IndexParams {
            classes: lay.classes,
            class_stride: lay.class_stride(),
            weight: self.weight,
            weight_sum,
            ignore_index: self.ignore_index,
            smoothing: self.smoothing,
        };
        let reducer = Reducer { reduction: self.reduction, empty: self.empty_mean, denominator };
        run_blocks(lay, &reducer, Layout::target_shape(input.shape()), input.len(), backward, |b, up, grad, loss| {
            let k = kernel::Index { x: input.data(), target: L::erase(target.data()), p: &params, b, up, grad, loss };
            match kernel {
                IndexKernel::CrossEntropy => kernel::run(kernel::CrossEntropy(k)),
                IndexKernel::Nll => kernel::run(kernel::Nll(k)),
            }
        })
    }
}

/// Drives a class-axis kernel over the blocks of `lay`: checks the gradient arguments, builds
/// the outputs, sums the per-block losses in order.
pub(crate) fn run_blocks<S, T, F>(
    lay: Layout,
    reducer: &Reducer,
    out_shape: Vec<usize>,
    input_len: usize,
    backward: Option<Backward<'_, S, T>>,
    f: F,
) -> Result<LossOutput<T>>
where
    S: Element<Math = T>,
    T: Float,
    F: Fn(Block, Upstream<'_, T>, Option<ClassOut<'_, S>>, &mut [T]) -> f64 + Sync + Send,
{
    let (up, grad): (Upstream<'_, T>, &mut [S]) = match backward {
        Some(Backward { grad_output: go, grad_input: gi }) => {
            check_grad_len(gi, input_len)?;
            (reducer.upstream(go, &out_shape)?, gi)
        }
        None => (Upstream::All(T::ZERO), &mut []),
    };
    let mut per = vec![T::ZERO; reducer.per_element_len(lay.positions())];
    let sums = par::for_blocks(lay, grad, &mut per, |b, g, l| f(b, up, g, l));
    Ok(reducer.finish(per, out_shape, par::exact_sum(sums)))
}

/// Drives an element-wise kernel over fixed runs of the input: `f32` / `f64` in place, `bf16` /
/// `f16` widened a run at a time ([`par::BLOCK_ELEMS`] values) into `f32` and the run's gradient
/// rounded back once.
pub(crate) fn run_elementwise<S, T, F>(
    input: View<'_, S>,
    target: View<'_, S>,
    reduction: Reduction,
    empty_mean: EmptyMean,
    backward: Option<Backward<'_, S, T>>,
    f: F,
) -> Result<LossOutput<T>>
where
    S: Element<Math = T>,
    T: Float,
    F: Fn(kernel::Elementwise<'_, T>) -> f64 + Sync + Send,
{
    if target.shape() != input.shape() {
        return Err(Error::ShapeMismatch {
            what: "target",
            got: target.shape().to_vec(),
            expected: format!("{:?}, the input's shape", input.shape()),
        });
    }
    let shape = input.shape().to_vec();
    let reducer = Reducer { reduction, empty: empty_mean, denominator: ExactSum::from(numel(&shape)? as f64) };
    let (up, grad): (Upstream<'_, T>, &mut [S]) = match backward {
        Some(Backward { grad_output: go, grad_input: gi }) => {
            check_grad_len(gi, input.len())?;
            (reducer.upstream(go, &shape)?, gi)
        }
        None => (Upstream::All(T::ZERO), &mut []),
    };
    let mut per = vec![T::ZERO; reducer.per_element_len(input.len())];
    let (x, y) = (input.data(), target.data());
    let sums = par::for_runs(input.len(), grad, &mut per, |r, grad, loss| {
        let (xr, yr) = (&x[r.clone()], &y[r.clone()]);
        if let (Some(x), Some(y)) = (S::as_math(xr), S::as_math(yr)) {
            let grad = S::as_math_mut(grad).expect("stored as the maths type");
            return f(kernel::Elementwise { x, y, r, up, grad, loss });
        }
        let (mut xs, mut ys, mut gs) = (vec![T::ZERO; r.len()], vec![T::ZERO; r.len()], vec![T::ZERO; grad.len()]);
        S::widen_slice(xr, &mut xs);
        S::widen_slice(yr, &mut ys);
        let sum = f(kernel::Elementwise { x: &xs, y: &ys, r, up, grad: &mut gs, loss });
        S::narrow_slice(&gs, grad);
        sum
    });
    Ok(reducer.finish(per, shape, par::exact_sum(sums)))
}
