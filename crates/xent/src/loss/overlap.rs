//! The engine the overlap losses share (see the [loss module docs](super#the-overlap-losses)):
//! the per-(group, class) sums, the reduction, and the gradient pass.

use super::{check_grad_len, Backward};
use crate::error::{Error, Result};
use crate::float::{Float, Label};
use crate::kernel::{self, Activation, OverlapParams};
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
    pub(crate) fn check<T, L: Label>(
        &self,
        input: View<'_, T>,
        target: View<'_, L>,
    ) -> Result<(Layout, OverlapParams)> {
        let lay = validate::check_segmentation(input, target, self.ignore_index)?;
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
            kernel::run(kernel::OverlapSums { x, target, o, b, g0, p: &mut p, sums: &mut s });
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
    backward: Option<Backward<'_, T>>,
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
    if let Some(Backward { grad_output: go, grad_input: grad }) = backward {
        check_grad_len(grad, input.len())?;
        let up = reducer.upstream(go, &shape)?;
        let upstream: Vec<f64> = (0..entries.len()).map(|e| up.at(e).to_f64()).collect();
        let ab = scheme.coefficients(&sums, &upstream);
        if !accumulate {
            grad.fill(T::ZERO);
        }
        par::for_blocks(lay, grad, &mut [], |b, g, _| {
            if let Some(grad) = g {
                let (mut p, mut dp) = (vec![T::ZERO; lay.classes], vec![T::ZERO; lay.classes]);
                let (x, target) = (input.data(), target.data());
                kernel::run(kernel::OverlapBackward { x, target, o: &o, b, ab: &ab, p: &mut p, dp: &mut dp, grad });
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

pub(crate) fn check_class_weight<T: Float>(w: &[T]) -> Result<()> {
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
