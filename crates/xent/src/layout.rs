//! PyTorch's `[N, C, d1..dk]` seen as `(outer, classes, inner)`.
//!
//! Element `(n, c, j)` of the input lies at `n * classes * inner + c * inner + j`. A *position*
//! is one `(n, j)` pair, numbered `n * inner + j`: the row-major order of a class-index target.

use crate::error::{Error, Result};
use crate::view::numel;

/// `(outer, classes, inner)` of a tensor reduced along one dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Product of the dimensions before the reduced one.
    pub outer: usize,
    /// Size of the reduced (class) dimension.
    pub classes: usize,
    /// Product of the dimensions after the reduced one.
    pub inner: usize,
}

impl Layout {
    /// Layout of `shape` reduced along `dim` (PyTorch's negative dims allowed; a 0-d tensor is
    /// treated as `[1]` with dims `0` and `-1`).
    pub fn along(shape: &[usize], dim: i64) -> Result<(Layout, usize)> {
        let ndim = shape.len().max(1);
        let d = if dim < 0 { dim + ndim as i64 } else { dim };
        if d < 0 || d >= ndim as i64 {
            return Err(Error::DimOutOfRange { dim, ndim: shape.len() });
        }
        let d = d as usize;
        if shape.is_empty() {
            return Ok((Layout { outer: 1, classes: 1, inner: 1 }, 0));
        }
        // Checked: with a zero elsewhere in the shape, a part can overflow while the whole does not.
        let outer = numel(&shape[..d])?;
        let inner = numel(&shape[d + 1..])?;
        if outer.checked_mul(inner).and_then(|p| p.checked_mul(shape[d])).is_none() {
            return Err(Error::ShapeOverflow { shape: shape.to_vec() });
        }
        Ok((Layout { outer, classes: shape[d], inner }, d))
    }

    /// Layout of a loss input: class dimension 1 for `[N, C, d1..dk]`, 0 for unbatched `[C]`.
    pub fn classes_of(input: &[usize]) -> Result<Layout> {
        match input.len() {
            0 => {
                Err(Error::ShapeMismatch { what: "input", got: vec![], expected: "[C] or [N, C, d1, ..., dk]".into() })
            }
            1 => Ok(Layout { outer: 1, classes: input[0], inner: 1 }),
            _ => Ok(Self::along(input, 1)?.0),
        }
    }

    /// The shape of a class-index target for `input`: the input's shape without the class dim.
    pub fn target_shape(input: &[usize]) -> Vec<usize> {
        match input.len() {
            0 | 1 => vec![],
            _ => [&input[..1], &input[2..]].concat(),
        }
    }

    /// Number of positions, `outer * inner`.
    pub fn positions(&self) -> usize {
        self.outer * self.inner
    }

    /// Stride between consecutive classes of one position.
    pub fn class_stride(&self) -> usize {
        self.inner
    }
}

/// Index map of a tensor broadcast against a larger one by NumPy's rules (trailing dims align;
/// a dim of 1 repeats).
#[derive(Debug, Clone)]
pub(crate) struct Broadcast {
    /// The target shape's dims.
    dims: Vec<usize>,
    /// For each target dim, the stride in the broadcast tensor (0 where it repeats).
    strides: Vec<usize>,
}

impl Broadcast {
    /// How `shape` broadcasts to `input`, or an error naming `what`.
    pub fn new(what: &'static str, shape: &[usize], input: &[usize]) -> Result<Broadcast> {
        let err = || Error::Broadcast { what, shape: shape.to_vec(), input: input.to_vec() };
        if shape.len() > input.len() {
            return Err(err());
        }
        let lead = input.len() - shape.len();
        let mut strides = vec![0; input.len()];
        let mut stride = 1;
        for d in (0..shape.len()).rev() {
            let (s, i) = (shape[d], input[lead + d]);
            if s == i {
                strides[lead + d] = if s == 1 { 0 } else { stride };
            } else if s != 1 {
                return Err(err());
            }
            stride *= s;
        }
        Ok(Broadcast { dims: input.to_vec(), strides })
    }

    /// Whether one value covers every element (a scalar, or every dimension broadcast).
    pub fn is_constant(&self) -> bool {
        self.strides.iter().all(|&s| s == 0)
    }

    /// The broadcast tensor's values at the input's flat indices `r`, in order: a multi-index
    /// is stepped like an odometer, so there is no division per element.
    pub fn gather<T: Copy>(&self, v: &[T], r: std::ops::Range<usize>) -> Vec<T> {
        if r.is_empty() {
            return vec![];
        }
        let nd = self.dims.len();
        let mut idx = vec![0usize; nd];
        let mut rest = r.start;
        for d in (0..nd).rev() {
            idx[d] = rest % self.dims[d];
            rest /= self.dims[d];
        }
        let mut at: usize = idx.iter().zip(&self.strides).map(|(i, s)| i * s).sum();
        let mut out = Vec::with_capacity(r.len());
        for _ in r {
            out.push(v[at]);
            for d in (0..nd).rev() {
                idx[d] += 1;
                at += self.strides[d];
                if idx[d] < self.dims[d] {
                    break;
                }
                at -= self.strides[d] * self.dims[d];
                idx[d] = 0;
            }
        }
        out
    }
}
