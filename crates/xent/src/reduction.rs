//! Reductions, the loss output type, and the upstream gradient a backward pass scales by.

use crate::error::{Error, Result};
use crate::float::Float;
use crate::kernel::Upstream;
use crate::sum::ExactSum;
use crate::view::numel;

/// How per-element losses are combined, as PyTorch's `reduction` argument; parsed from and
/// printed as PyTorch's names `none`, `mean`, `sum` (`"sum".parse::<Reduction>()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reduction {
    /// No reduction: one loss per element (per position for class-index losses).
    None,
    /// The weighted mean: `sum_i l_i / D`.
    ///
    /// `D` is the sum of the class weights of the non-ignored targets for `nll_loss` and
    /// `cross_entropy` with class-index targets (the count of non-ignored targets without
    /// weights), and the number of elements (samples) for every other loss. `D = 0` gives NaN,
    /// as in PyTorch, unless [`EmptyMean::Zero`] is chosen.
    #[default]
    Mean,
    /// The sum `sum_i l_i`.
    Sum,
}

crate::error::named!(Reduction, "reduction", { None => "none", Mean => "mean", Sum => "sum" });

crate::error::named!(EmptyMean, "empty_mean", { Nan => "nan", Zero => "zero" });

/// What a [`Reduction::Mean`] with a zero denominator (every target ignored, or an empty
/// input) returns (`nan`, `zero`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EmptyMean {
    /// NaN (`0 / 0`) and a zero gradient for ignored targets, as PyTorch does.
    #[default]
    Nan,
    /// 0, with a zero gradient.
    Zero,
}

/// The result of a loss's forward pass.
///
/// Besides the loss, it reports the weighted sum and the denominator of the mean as
/// [`ExactSum`]s, so that gradient accumulation over micro-batches, or data-parallel workers,
/// can form the exact global mean: merge the `denominator`s of all micro-batches into `D` (the
/// class-index losses' `denominator` method reads the targets only; for the other losses it is
/// the element count), run each micro-batch with [`Reduction::Sum`] and
/// `grad_output = [1 / D.value()]`; the accumulated gradient is then the gradient of the global
/// mean, and the merged `weighted_sum`s divided by `D` its value. Merging is exact, so the
/// result does not depend on how the batch was split.
#[derive(Debug, Clone, PartialEq)]
pub struct LossOutput<T> {
    /// The loss: one value per element for [`Reduction::None`], else one value.
    pub loss: Vec<T>,
    /// Shape of `loss`: `[]` for a reduced loss.
    pub shape: Vec<usize>,
    /// `sum_i l_i` over all elements: per-block sums in `f64`, added exactly.
    pub weighted_sum: ExactSum,
    /// The denominator `D` of [`Reduction::Mean`] (see there), whatever the reduction.
    pub denominator: ExactSum,
}

impl<T: Float> LossOutput<T> {
    /// A weighted sum of reduced losses `sum_i lambda_i l_i` (DiceCE's, DiceFocal's): a scalar
    /// whose `weighted_sum` is the value itself and whose `denominator` is 1.
    pub(crate) fn combine(terms: &[(T, &LossOutput<T>)]) -> LossOutput<T> {
        let mut v = terms[0].0 * terms[0].1.loss[0];
        for (lambda, out) in &terms[1..] {
            v += *lambda * out.loss[0];
        }
        LossOutput {
            loss: vec![v],
            shape: vec![],
            weighted_sum: ExactSum::from(v.to_f64()),
            denominator: ExactSum::from(1.0),
        }
    }

    /// The loss as one number, if it is a scalar (a reduced loss, or an unbatched one).
    pub fn scalar(&self) -> Option<T> {
        match self.loss.as_slice() {
            [v] if self.shape.is_empty() => Some(*v),
            _ => None,
        }
    }
}

/// Settles a reduction: the upstream gradient scale, and how to build the output.
#[derive(Debug, Clone)]
pub(crate) struct Reducer {
    pub reduction: Reduction,
    pub empty: EmptyMean,
    pub denominator: ExactSum,
}

impl Reducer {
    /// Checks `grad_output` (shape of the output) and turns it into per-element scales.
    pub fn upstream<'a, T: Float>(&self, grad_output: &'a [T], out_shape: &[usize]) -> Result<Upstream<'a, T>> {
        let want = match self.reduction {
            Reduction::None => numel(out_shape)?,
            _ => 1,
        };
        if grad_output.len() != want {
            let expected = match self.reduction {
                Reduction::None => format!("{want} elements, the output shape {out_shape:?}"),
                _ => "one element (the loss is reduced)".to_string(),
            };
            return Err(Error::ShapeMismatch { what: "grad_output", got: vec![grad_output.len()], expected });
        }
        Ok(match self.reduction {
            Reduction::None => Upstream::Each(grad_output),
            Reduction::Sum => Upstream::All(grad_output[0]),
            Reduction::Mean => Upstream::All(match (self.denominator.value() == 0.0, self.empty) {
                // g / 0: ignored elements get 0, weight-0 ones NaN, as in PyTorch.
                (true, EmptyMean::Nan) => T::from_f64(grad_output[0].to_f64() / 0.0),
                _ => T::from_f64(self.mean_of(grad_output[0].to_f64())),
            }),
        })
    }

    /// `v / D`; for `D = 0`, NaN (as PyTorch, whose weighted mean is `0 / 0` there even when a
    /// smoothing term is not 0) or 0 under [`EmptyMean::Zero`].
    fn mean_of(&self, v: f64) -> f64 {
        let d = self.denominator.value();
        match (d == 0.0, self.empty) {
            (false, _) => v / d,
            (true, EmptyMean::Nan) => f64::NAN,
            (true, EmptyMean::Zero) => 0.0,
        }
    }

    /// The output: `per_element` (kept only for [`Reduction::None`]) or the reduced value.
    pub fn finish<T: Float>(&self, per_element: Vec<T>, shape: Vec<usize>, sum: ExactSum) -> LossOutput<T> {
        let (loss, shape) = match self.reduction {
            Reduction::None => (per_element, shape),
            Reduction::Sum => (vec![T::from_f64(sum.value())], vec![]),
            Reduction::Mean => (vec![T::from_f64(self.mean_of(sum.value()))], vec![]),
        };
        LossOutput { loss, shape, weighted_sum: sum, denominator: self.denominator.clone() }
    }

    /// MONAI's focal loss under [`Reduction::Sum`]: the sum over samples of each sample's loss
    /// sum divided by its count of non-ignored positions (0 for a sample with none); the
    /// output still reports the total and this reducer's denominator.
    pub fn finish_sample_means<T: Float>(
        &self,
        per_sample: &[f64],
        counts: &[usize],
        total: ExactSum,
    ) -> LossOutput<T> {
        let s: f64 = per_sample.iter().zip(counts).map(|(&v, &c)| if c == 0 { 0.0 } else { v / c as f64 }).sum();
        LossOutput {
            loss: vec![T::from_f64(s)],
            shape: vec![],
            weighted_sum: total,
            denominator: self.denominator.clone(),
        }
    }

    /// Length of the per-element buffer a kernel should fill (empty unless [`Reduction::None`]).
    pub fn per_element_len(&self, n: usize) -> usize {
        if self.reduction == Reduction::None {
            n
        } else {
            0
        }
    }
}
