//! Shared checks of data and options, run before any kernel writes an output.

use crate::error::{Error, Result};
use crate::float::{Element, Float, Label};
use crate::kernel;
use crate::layout::Layout;
use crate::par::{map_ordered, BLOCK_ELEMS};
use crate::sum::ExactSum;
use crate::view::View;

/// Every value finite.
pub(crate) fn finite<T: Float>(what: &'static str, values: &[T]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(Error::NonFinite { what, index, value: values[index].to_f64() }),
        None => Ok(()),
    }
}

/// A finite option value.
pub(crate) fn finite_option(name: &'static str, v: f64) -> Result<()> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(Error::InvalidOption { name, value: v.to_string(), reason: "must be finite" })
    }
}

/// Every value in `[0, 1]` (NaN is not).
pub(crate) fn unit_interval<S: Element>(what: &'static str, values: &[S]) -> Result<()> {
    let bad = |v: &S| {
        let v = v.widen();
        !(v >= S::Math::ZERO && v <= S::Math::ONE)
    };
    let parts = map_ordered(values.chunks(BLOCK_ELEMS).enumerate().collect(), |(i, chunk)| {
        chunk.iter().position(bad).map(|k| i * BLOCK_ELEMS + k)
    });
    match parts.into_iter().flatten().next() {
        Some(index) => Err(Error::NotAProbability { what, index, value: values[index].widen().to_f64() }),
        None => Ok(()),
    }
}

/// Class weights: one finite value per class.
pub(crate) fn class_weights<T: Float>(weight: Option<&[T]>, classes: usize) -> Result<()> {
    let Some(w) = weight else { return Ok(()) };
    if w.len() != classes {
        return Err(Error::ShapeMismatch {
            what: "weight",
            got: vec![w.len()],
            expected: format!("[{classes}], one weight per class"),
        });
    }
    finite("weight", w)
}

/// The shape of a class-index target against the input's.
pub(crate) fn target_shape(input: &[usize], target: &[usize], expected: &[usize]) -> Result<()> {
    if target == expected {
        return Ok(());
    }
    Err(Error::ShapeMismatch {
        what: "target",
        got: target.to_vec(),
        expected: format!("{expected:?} for input {input:?} (the input's shape without the class dimension)"),
    })
}

/// Checks every class-index target and returns the mean's denominator: the sum of the class
/// weights of the non-ignored targets (their count without weights), exactly, from per-class
/// counts, so that it does not depend on how the targets are split.
pub(crate) fn index_targets<T: Float, L: Label>(
    target: &[L],
    classes: usize,
    ignore_index: Option<i64>,
    weight: Option<&[T]>,
) -> Result<ExactSum> {
    // Per-class counts (chunks long enough to amortise the count vector).
    let per = BLOCK_ELEMS.max(4 * classes);
    let parts = map_ordered(target.chunks(per).enumerate().collect(), |(i, chunk)| {
        let mut counts = vec![0u64; classes];
        kernel::tally(chunk, ignore_index, &mut counts).map_err(|k| Error::TargetOutOfRange {
            what: "target",
            index: i * per + k,
            value: chunk[k].to_i128(),
            classes,
            ignore_index,
        })?;
        Ok(counts)
    });
    let mut total = vec![0u64; classes];
    for p in parts {
        total.iter_mut().zip(p?).for_each(|(a, b)| *a += b);
    }
    let mut den = ExactSum::default();
    match weight {
        Some(w) => w.iter().zip(&total).for_each(|(w, &n)| den.add_product(w.to_f64(), n as f64)),
        None => den.add(total.iter().sum::<u64>() as f64),
    }
    Ok(den)
}

/// Checks the scores `[N, C, d1..dk]` (k >= `min_spatial`) and the class indices `[N, d1..dk]` of the
/// segmentation losses (with one class, the target is a binary mask of 0 and 1, as MONAI uses
/// it without one-hot); returns the layout.
pub(crate) fn check_segmentation<T, L: Label>(
    input: View<'_, T>,
    target: View<'_, L>,
    ignore_index: Option<i64>,
    min_spatial: usize,
) -> Result<Layout> {
    if input.ndim() < 2 + min_spatial {
        return Err(Error::ShapeMismatch {
            what: "input",
            got: input.shape().to_vec(),
            expected: format!("[N, C, d1, ..., dk] with k >= {min_spatial}"),
        });
    }
    let lay = Layout::classes_of(input.shape())?;
    target_shape(input.shape(), target.shape(), &Layout::target_shape(input.shape()))?;
    let labels = if lay.classes == 1 { 2 } else { lay.classes };
    index_targets::<f64, L>(target.data(), labels, ignore_index, None)?;
    Ok(lay)
}
