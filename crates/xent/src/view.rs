//! Borrowed, shape-checked views over slices: the vocabulary of every call.

use crate::error::{Error, Result};

/// A row-major tensor borrowed from a slice, with its shape.
///
/// The constructor checks once that `data.len()` equals the product of `shape` (and that the
/// product does not overflow), so nothing downstream checks again.
///
/// ```
/// use xent::View;
/// let x = View::new(&[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?;
/// assert_eq!(x.shape(), &[2, 3]);
/// assert!(View::new(&[1.0f32, 2.0], &[3]).is_err());
/// # Ok::<(), xent::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct View<'a, T> {
    data: &'a [T],
    shape: &'a [usize],
}

/// The number of elements of `shape`, or an error if the product overflows `usize`
/// (a shape with a zero dimension has 0 elements, whatever the others).
pub fn numel(shape: &[usize]) -> Result<usize> {
    if shape.contains(&0) {
        return Ok(0);
    }
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d).ok_or_else(|| Error::ShapeOverflow { shape: shape.to_vec() }))
}

impl<'a, T> View<'a, T> {
    /// A view of `data` with `shape` (row-major). A scalar has shape `&[]` and one element.
    ///
    /// # Errors
    /// [`Error::ShapeOverflow`] if the element count overflows, [`Error::DataLength`] if it differs
    /// from `data.len()`.
    pub fn new(data: &'a [T], shape: &'a [usize]) -> Result<Self> {
        let expected = numel(shape)?;
        if expected != data.len() {
            return Err(Error::DataLength { len: data.len(), shape: shape.to_vec(), expected });
        }
        Ok(View { data, shape })
    }

    /// The elements, row-major.
    pub fn data(&self) -> &'a [T] {
        self.data
    }

    /// The shape.
    pub fn shape(&self) -> &'a [usize] {
        self.shape
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the view has no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The number of dimensions.
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }
}

#[cfg(feature = "ndarray")]
impl<'a, T> View<'a, T> {
    /// A view of an `ndarray` array in standard (row-major, contiguous) layout.
    ///
    /// ```
    /// let a = ndarray::array![[1.0f32, 2.0, 3.0]];
    /// let x = xent::View::from_ndarray(&a)?;
    /// assert_eq!(x.shape(), &[1, 3]);
    /// # Ok::<(), xent::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::NotContiguous`] for a transposed or sliced array: call `.as_standard_layout()` first.
    pub fn from_ndarray<S, D>(array: &'a ndarray::ArrayBase<S, D>) -> Result<Self>
    where
        S: ndarray::Data<Elem = T>,
        D: ndarray::Dimension,
    {
        let data = array.as_slice().ok_or(Error::NotContiguous { what: "array" })?;
        View::new(data, array.shape())
    }
}
