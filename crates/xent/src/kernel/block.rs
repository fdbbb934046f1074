//! What a kernel is handed: a block of positions, its share of a class-shaped output, and the
//! upstream gradient.

/// A run of consecutive positions handled together.
///
/// Element `(c, k)`, class `c` of the block's `k`-th position, lies at
/// `base + c * class_stride + k * lane_stride` in the input.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Block {
    /// First position (index into a class-index target).
    pub p0: usize,
    /// Number of positions.
    pub len: usize,
    /// Input offset of class 0 of the first position.
    pub base: usize,
    /// Input offset between consecutive positions: `classes` if `inner == 1`, else 1.
    pub lane_stride: usize,
}

impl Block {
    #[inline(always)]
    pub fn at(&self, c: usize, k: usize, class_stride: usize) -> usize {
        self.base + c * class_stride + k * self.lane_stride
    }

    /// A strided block's input from its `k`-th position on: empty when there is none (an input
    /// of zero classes, whose positions still form blocks).
    #[inline(always)]
    pub fn from<'x, T>(&self, x: &'x [T], k: usize) -> &'x [T] {
        x.get(self.base + k..).unwrap_or(&[])
    }
}

/// A block's share of a class-shaped output (same shape as the input).
pub(crate) struct ClassOut<'a, T> {
    /// Rowwise: one slice of `len * classes` values. Otherwise: one slice per class, of `len`.
    pub(crate) segs: Vec<&'a mut [T]>,
    pub(crate) rowwise: bool,
    pub(crate) classes: usize,
}

impl<T: Copy> ClassOut<'_, T> {
    /// Sets element `(c, k)`.
    #[inline(always)]
    pub fn set(&mut self, c: usize, k: usize, v: T) {
        if self.rowwise {
            self.segs[0][k * self.classes + c] = v;
        } else {
            self.segs[c][k] = v;
        }
    }
}

impl<T> ClassOut<'_, T> {
    /// The `classes` values of position `k` (rowwise only).
    #[inline(always)]
    pub fn row(&mut self, k: usize) -> &mut [T] {
        &mut self.segs[0][k * self.classes..(k + 1) * self.classes]
    }

    /// The `n` rows of positions `k..k + n` (rowwise only).
    #[inline(always)]
    pub fn rows(&mut self, k: usize, n: usize) -> &mut [T] {
        &mut self.segs[0][k * self.classes..(k + n) * self.classes]
    }
}

/// Where a tile writes: the lanes of class `c`, from the tile's first.
pub(crate) trait Lanes<T> {
    /// The lanes of class `c`.
    fn lanes(&mut self, c: usize) -> &mut [T];
    /// The lanes of classes 0 and 1.
    fn lanes2(&mut self) -> (&mut [T], &mut [T]);
}

impl<T> Lanes<T> for ClassOut<'_, T> {
    /// The block's lanes of class `c` (not rowwise).
    #[inline(always)]
    fn lanes(&mut self, c: usize) -> &mut [T] {
        self.segs[c]
    }
    #[inline(always)]
    fn lanes2(&mut self) -> (&mut [T], &mut [T]) {
        let (a, b) = self.segs.split_at_mut(1);
        (a[0], b[0])
    }
}

/// The upstream gradient of each output element, with the mean's `1 / D` already applied.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Upstream<'a, T> {
    /// One value for all elements.
    All(T),
    /// One value per element of the output ([`Reduction::None`](crate::Reduction::None)).
    Each(&'a [T]),
    /// One value per sample (the first dimension): MONAI's focal loss summed per sample.
    PerSample(&'a [T]),
}

impl<T: Copy> Upstream<'_, T> {
    /// The value of output element `i` (`All` or `Each`).
    #[inline(always)]
    pub fn at(&self, i: usize) -> T {
        match self {
            Upstream::All(g) => *g,
            Upstream::Each(g) | Upstream::PerSample(g) => g[i],
        }
    }
}

impl<T: Copy + std::ops::AddAssign> ClassOut<'_, T> {
    /// Adds `v` to element `(c, k)`.
    #[inline(always)]
    pub fn add(&mut self, c: usize, k: usize, v: T) {
        if self.rowwise {
            self.segs[0][k * self.classes + c] += v;
        } else {
            self.segs[c][k] += v;
        }
    }
}
