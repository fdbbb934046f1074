//! The engine the overlap losses share (see the [loss module docs](super#the-overlap-losses)):
//! the per-(group, class) sums, the scores, MONAI's shapes, the reduction, and the gradient pass.

use super::{check_grad_len, Backward};
use crate::error::{Error, Result};
use crate::float::{Element, Float, Label};
use crate::kernel::{
    self, in_place, math_block, narrow_out, scratch_out, Activation, Block, OverlapParams, Pooled, Truth,
};
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
    pub(crate) fn at(&self, g: usize, c: usize) -> (f64, f64, f64) {
        let s = &self.data[(g * self.classes + c) * 3..][..3];
        (s[0], s[1], s[2])
    }

    /// All classes of each group pooled into one (MONAI's `[N, C]` inputs without `batch`).
    fn pooled(&self) -> Sums {
        let mut data = vec![0.0; self.groups * 3];
        for (g, d) in data.chunks_mut(3).enumerate() {
            for c in 0..self.classes {
                let (tp, p, gg) = self.at(g, c);
                d[0] += tp;
                d[1] += p;
                d[2] += gg;
            }
        }
        Sums { groups: self.groups, classes: 1, data }
    }
}

/// The target of an overlap loss, as given.
#[derive(Clone, Copy)]
pub(crate) enum Target<'a, T, L> {
    /// Class indices `[N, d1..dk]`.
    Labels(View<'a, L>),
    /// Soft labels in `[0, 1]`, the input's shape `[N, C, d1..dk]` (MONAI's `soft_label=True`).
    Soft(View<'a, T>),
}

/// Block `b`'s scores (and soft labels) as the maths type with the block and parameters that
/// address them: in place for `f32` and `f64`; `bf16` and `f16` widened into `xs` / `ys` (see
/// [`math_block`]).
#[inline(always)]
#[allow(clippy::type_complexity)] // the three views of one block
fn math_view<'v, E: Element<Math = T>, T: Float, L>(
    (x, truth): (&'v [E], Truth<'v, E, L>),
    (xs, ys): (&'v mut Vec<T>, &'v mut Vec<T>),
    o: &OverlapParams,
    b: Block,
) -> (&'v [T], Truth<'v, T, L>, Block, OverlapParams) {
    let (xm, lb, cs) = math_block(x, xs, b, o.class_stride, o.classes);
    let truth = match truth {
        Truth::Labels(t) => Truth::Labels(t),
        Truth::Soft(y) => Truth::Soft(math_block(y, ys, b, o.class_stride, o.classes).0),
    };
    (xm, truth, lb, OverlapParams { class_stride: cs, ..*o })
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
    /// Checks shapes and targets; returns the layout and the kernel parameters.
    pub(crate) fn check<E: Element, L: Label>(
        &self,
        input: View<'_, E>,
        target: Target<'_, E, L>,
    ) -> Result<(Layout, OverlapParams)> {
        let lay = match target {
            Target::Labels(t) => validate::check_segmentation(input, t, self.ignore_index, 0)?,
            Target::Soft(y) => {
                if self.ignore_index.is_some() {
                    return Err(Error::InvalidOption {
                        name: "ignore_index",
                        value: format!("{:?}", self.ignore_index),
                        reason: "needs class-index targets, not soft labels",
                    });
                }
                if input.ndim() < 2 || y.shape() != input.shape() {
                    return Err(Error::ShapeMismatch {
                        what: "target",
                        got: y.shape().to_vec(),
                        expected: format!("{:?}, the input's shape [N, C, d1..dk] (soft labels)", input.shape()),
                    });
                }
                validate::unit_interval("target", y.data())?;
                Layout::classes_of(input.shape())?
            }
        };
        let first = usize::from(!self.include_background && lay.classes > 1);
        // `[N, C]`: MONAI reduces over all axes (no `batch`) or over the batch: one group.
        let batch = self.batch || input.ndim() == 2;
        let params = OverlapParams {
            classes: lay.classes,
            class_stride: lay.class_stride(),
            inner: lay.inner,
            first,
            activation: self.activation,
            squared: self.squared,
            ignore_index: self.ignore_index,
            batch,
        };
        Ok((lay, params))
    }

    /// Pass 1: the sums, combined in block order.
    fn sums<E: Element<Math = T>, T: Float, L: Label>(
        &self,
        lay: Layout,
        o: &OverlapParams,
        x: &[E],
        truth: Truth<'_, E, L>,
    ) -> Sums {
        let groups = if o.batch { 1 } else { lay.outer };
        let ci = o.included();
        let parts = par::for_blocks::<T, f64, _, _>(lay, &mut [], &mut [], |b, _, _| {
            let g0 = o.group(b.p0);
            let span = if b.len == 0 { 1 } else { o.group(b.p0 + b.len - 1) - g0 + 1 };
            let mut s = vec![0.0; span * ci * 3];
            let mut p = vec![T::ZERO; lay.classes];
            let (mut xs, mut ys) = (Pooled::take(), Pooled::take());
            let (x, truth, b, o) = math_view((x, truth), (&mut xs, &mut ys), o, b);
            kernel::run(kernel::OverlapSums { x, truth, o: &o, b, g0, p: &mut p, sums: &mut s });
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

/// A loss built from the sums: its scores, and its coefficients `(dl/dtp, dl/dP)` per (group,
/// class) given the upstream gradient of each score.
pub(crate) trait Scheme {
    /// One score per (group, class) (Dice, Tversky), or one per group (generalized Dice).
    const PER_CLASS: bool;
    /// `none` gives MONAI's broadcastable `[.., 1, ..]` shape (Dice, generalized Dice) rather
    /// than the scores' own (Tversky).
    const BROADCAST: bool;
    fn scores(&self, s: &Sums) -> Vec<f64>;
    fn coefficients(&self, s: &Sums, upstream: &[f64]) -> Vec<(f64, f64)>;
}

/// Runs an overlap loss: checks, sums, scores, class weights (one per included class; `None`
/// for one class), MONAI's shapes, reduction, and the gradient pass. `accumulate` adds the
/// gradient to `grad_input` instead of overwriting it (scores of the maths type only: a half
/// gradient is computed in `f32` a block at a time and rounded once).
#[allow(clippy::too_many_arguments)] // the loss's parts, each used once
pub(crate) fn run<E: Element<Math = T>, T: Float, L: Label, S: Scheme>(
    common: &Common,
    scheme: &S,
    weight: Option<&[f64]>,
    reduction: Reduction,
    input: View<'_, E>,
    target: Target<'_, E, L>,
    backward: Option<Backward<'_, E, T>>,
    accumulate: bool,
) -> Result<LossOutput<T>> {
    let (lay, o) = common.check(input, target)?;
    let truth = match target {
        Target::Labels(t) => Truth::Labels(t.data()),
        Target::Soft(y) => Truth::Soft(y.data()),
    };
    let ci = o.included();
    let no_spatial = input.ndim() == 2;
    if no_spatial && !common.batch && !S::PER_CLASS {
        return Err(Error::InvalidOption {
            name: "batch",
            value: "false".into(),
            reason: "the generalized Dice of [N, C] inputs needs batch = true (MONAI fails there too)",
        });
    }
    let class_sums = common.sums(lay, &o, input.data(), truth);
    // `[N, C]` without `batch`: MONAI sums over every axis, one score for the whole input.
    let pooled = no_spatial && !common.batch;
    let sums = if pooled { class_sums.pooled() } else { class_sums };
    let scores = scheme.scores(&sums);
    // MONAI's score tensor `f`, then the weight's broadcast against it.
    let mut f_shape = match (S::PER_CLASS, o.batch) {
        (true, true) => vec![ci],
        (true, false) => vec![lay.outer, ci],
        (false, true) => vec![1],
        (false, false) => vec![lay.outer, 1],
    };
    if pooled {
        f_shape.clear();
    }
    let entries: Vec<f64> = match weight {
        None => scores.clone(),
        Some(w) if pooled => {
            f_shape = vec![ci];
            w.iter().map(|wc| wc * scores[0]).collect()
        }
        Some(w) => scores.iter().enumerate().map(|(e, v)| v * w[e % ci]).collect(),
    };
    let shape = if S::BROADCAST {
        let mut b: Vec<usize> = f_shape.iter().take(2).copied().collect();
        b.resize(b.len() + input.ndim() - 2, 1);
        b
    } else {
        f_shape
    };
    let reducer = Reducer { reduction, empty: EmptyMean::Nan, denominator: ExactSum::from(entries.len() as f64) };
    if let Some(Backward { grad_output: go, grad_input: grad }) = backward {
        check_grad_len(grad, input.len())?;
        let up = reducer.upstream(go, &shape)?;
        let up_entry = |e: usize| up.at(e).to_f64();
        // The upstream gradient of each score: of its entries, times their weights.
        let upstream: Vec<f64> = match weight {
            None => (0..scores.len()).map(up_entry).collect(),
            Some(w) if pooled => vec![(0..ci).map(|c| up_entry(c) * w[c]).sum()],
            Some(w) => (0..scores.len()).map(|e| up_entry(e) * w[e % ci]).collect(),
        };
        let mut ab = scheme.coefficients(&sums, &upstream);
        if pooled {
            ab = vec![ab[0]; ci];
        }
        debug_assert!(!accumulate || E::as_math(&[]).is_some(), "a half gradient is rounded once");
        par::for_blocks(lay, grad, &mut [] as &mut [f64], |b, g, _| {
            if let Some(mut grad) = g {
                let (mut p, mut dp) = (vec![T::ZERO; lay.classes], vec![T::ZERO; lay.classes]);
                let (mut xs, mut ys) = (Pooled::take(), Pooled::take());
                let (x, truth, lb, lo) = math_view((input.data(), truth), (&mut xs, &mut ys), &o, b);
                let (p, dp, ab) = (&mut p, &mut dp, &ab);
                if let Some(grad) = in_place(&mut grad) {
                    kernel::run(kernel::OverlapBackward { x, truth, o: &lo, b: lb, ab, p, dp, grad, accumulate });
                } else {
                    let mut os = Pooled::zeros(b.len * lay.classes);
                    let scratch = scratch_out(&mut os, grad.rowwise, lay.classes, b.len);
                    kernel::run(kernel::OverlapBackward {
                        x,
                        truth,
                        o: &lo,
                        b: lb,
                        ab,
                        p,
                        dp,
                        grad: scratch,
                        accumulate,
                    });
                    narrow_out(&os, &mut grad, b.len);
                }
            }
        });
    }
    let sum = par::exact_sum(entries.iter().copied());
    Ok(reducer.finish(entries.iter().map(|&v| T::from_f64(v)).collect(), shape, sum))
}

pub(crate) fn check_smooth(nr: f64, dr: f64) -> Result<()> {
    validate::finite_option("smooth_nr", nr)?;
    validate::finite_option("smooth_dr", dr)
}
