//! One file per loss: options -> `new()` -> `forward` / `forward_backward`.

pub mod binary_cross_entropy;
pub mod cross_entropy;
pub mod dice_ce;
pub mod focal;
pub mod nll;
pub mod overlap;
pub mod sigmoid_focal;
pub mod softmax;

use crate::error::{Error, Result};
use crate::float::{Float, Label};
use crate::kernel::cross_entropy::IndexParams;
use crate::layout::Layout;
use crate::par::{self, Block, ClassOut};
use crate::reduction::{EmptyMean, LossOutput, Reducer, Reduction, Upstream};
use crate::sum::ExactSum;
use crate::validate;
use crate::view::{numel, View};

/// An owned tensor: the values of a `weight` or `pos_weight` that broadcasts against the input.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor<T> {
    values: Vec<T>,
    shape: Vec<usize>,
}

impl<T: Float> Tensor<T> {
    /// A tensor of `shape` (row-major).
    ///
    /// # Errors
    /// [`Error::DataLength`] or [`Error::ShapeOverflow`] if `values` does not fill `shape`,
    /// [`Error::NonFinite`] for a NaN or infinite value.
    pub fn new(values: Vec<T>, shape: Vec<usize>) -> Result<Self> {
        View::new(&values, &shape)?;
        validate::finite("weight", &values)?;
        Ok(Tensor { values, shape })
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

/// The gradient half of a fused call: the upstream gradient and the buffer for d(loss)/d(input).
pub(crate) type Backward<'g, T> = Option<(&'g [T], &'g mut [T])>;

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
pub(crate) type IndexKernel<T, L> =
    fn(&[T], &[L], &IndexParams<'_, T>, Block, Upstream<'_, T>, Option<ClassOut<'_, T>>, &mut [T]) -> f64;

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
    pub fn run<L: Label>(
        &self,
        kernel: IndexKernel<T, L>,
        input: View<'_, T>,
        target: View<'_, L>,
        backward: Backward<'_, T>,
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
        run_blocks(lay, &reducer, Layout::target_shape(input.shape()), input.len(), backward, |b, up, g, l| {
            kernel(input.data(), target.data(), &params, b, up, g, l)
        })
    }
}

/// Drives a class-axis kernel over the blocks of `lay`: checks the gradient arguments, builds
/// the outputs, sums the per-block losses in order.
pub(crate) fn run_blocks<T, F>(
    lay: Layout,
    reducer: &Reducer,
    out_shape: Vec<usize>,
    input_len: usize,
    backward: Backward<'_, T>,
    f: F,
) -> Result<LossOutput<T>>
where
    T: Float,
    F: Fn(Block, Upstream<'_, T>, Option<ClassOut<'_, T>>, &mut [T]) -> f64 + Sync + Send,
{
    let (up, grad): (Upstream<'_, T>, &mut [T]) = match backward {
        Some((go, gi)) => {
            check_grad_len(gi, input_len)?;
            (reducer.upstream(go, &out_shape)?, gi)
        }
        None => (Upstream::All(T::ZERO), &mut []),
    };
    let mut per = vec![T::ZERO; reducer.per_element_len(lay.positions())];
    let sums = par::for_blocks(lay, grad, &mut per, |b, g, l| f(b, up, g, l));
    Ok(reducer.finish(per, out_shape, par::exact_sum(sums)))
}

/// Drives an element-wise kernel over fixed runs of the input.
pub(crate) fn run_elementwise<T, F>(
    input: View<'_, T>,
    target: View<'_, T>,
    reduction: Reduction,
    empty_mean: EmptyMean,
    backward: Backward<'_, T>,
    f: F,
) -> Result<LossOutput<T>>
where
    T: Float,
    F: Fn(std::ops::Range<usize>, Upstream<'_, T>, &mut [T], &mut [T]) -> f64 + Sync + Send,
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
    let (up, grad): (Upstream<'_, T>, &mut [T]) = match backward {
        Some((go, gi)) => {
            check_grad_len(gi, input.len())?;
            (reducer.upstream(go, &shape)?, gi)
        }
        None => (Upstream::All(T::ZERO), &mut []),
    };
    let mut per = vec![T::ZERO; reducer.per_element_len(input.len())];
    let sums = par::for_runs(input.len(), grad, &mut per, |r, g, l| f(r, up, g, l));
    Ok(reducer.finish(per, shape, par::exact_sum(sums)))
}
