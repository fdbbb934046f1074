//! Matrix products for [`LinearCrossEntropy`](crate::loss::linear_cross_entropy), by `faer`
//! (AVX-512 or AVX2 micro-kernels chosen at run time).
//!
//! `faer` splits a product over threads by blocks of the output, each element summed over `k` in
//! an order set by the cache sizes, not by the threads: the same bits on any number of threads
//! (`tests/linear.rs` checks 1, 2 and 3 threads, the golden runner 1 and 4). A machine with other
//! cache sizes may block `k` otherwise, so bits are not promised across machines.
//!
//! The two products whose output has a class axis (a chunk's logits, and d/d weight) are cut
//! into blocks of [`CLASS_BLOCK`] classes instead, each block one thread's product. `faer`'s own
//! split of these shapes waits at a barrier after every step of `k` and packs the weight into
//! an L3-sized buffer (28 MiB touched, against about 2 MiB a thread for a block): for one chunk
//! of 131 rows on the 2-core AVX2 EPYC, logits 71 ms against 58-63 by blocks, d/d weight 70
//! against 62-65 (BENCHMARKS.md). The blocks depend on the shape only, and each element is
//! still summed over `k` in `faer`'s order, so the bits do not depend on the threads.

/// A row-major matrix `[rows, cols]`, used as it is or transposed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Operand<'a, T> {
    data: &'a [T],
    rows: usize,
    cols: usize,
    transposed: bool,
}

impl<'a, T> Operand<'a, T> {
    /// `data` as a `[rows, cols]` matrix.
    pub(crate) fn new(data: &'a [T], rows: usize, cols: usize) -> Self {
        Operand { data, rows, cols, transposed: false }
    }

    /// The transpose, `[cols, rows]`.
    pub(crate) fn t(self) -> Self {
        Operand { transposed: !self.transposed, ..self }
    }

    pub(crate) fn faer(self) -> faer::MatRef<'a, T> {
        let m = faer::MatRef::from_row_major_slice(self.data, self.rows, self.cols);
        if self.transposed {
            m.transpose()
        } else {
            m
        }
    }
}

/// The threads `faer` may use: rayon's current pool.
pub(crate) fn par() -> faer::Par {
    #[cfg(feature = "rayon")]
    {
        match rayon::current_num_threads() {
            0 | 1 => faer::Par::Seq,
            n => faer::Par::rayon(n),
        }
    }
    #[cfg(not(feature = "rayon"))]
    faer::Par::Seq
}

/// `dst = a b` (or `dst += a b` with `accumulate`), `dst` row-major `[a's rows, b's cols]`, on
/// `faer`'s split over the threads.
pub(crate) fn matmul<T: crate::Float>(dst: &mut [T], a: Operand<'_, T>, b: Operand<'_, T>, accumulate: bool) {
    let (a, b) = (a.faer(), b.faer());
    let dst = faer::MatMut::from_row_major_slice_mut(dst, a.nrows(), b.ncols());
    T::matmul(dst, a, b, accumulate, par())
}

/// Classes of a block of [`logits`] and [`weight_grad`].
pub(crate) const CLASS_BLOCK: usize = 1024;

/// One block's product, `dst = a b` (or `dst += a b`), for one thread: what [`logits`] and
/// [`weight_grad`] cut their products into, to be run in order over the threads
/// (`par::map_ordered(blocks, BlockProduct::run)`).
pub(crate) struct BlockProduct<'a, T> {
    dst: faer::MatMut<'a, T>,
    a: faer::MatRef<'a, T>,
    b: faer::MatRef<'a, T>,
    accumulate: bool,
}

impl<T: crate::Float> BlockProduct<'_, T> {
    /// The product, on this thread.
    pub(crate) fn run(self) {
        T::matmul(self.dst, self.a, self.b, self.accumulate, faer::Par::Seq)
    }
}

/// `z = x w^T` (or `z += x w^T`): `x` `[m, D]`, `w` `[C, D]`, `z` row-major `[m, C]`, as blocks
/// of [`CLASS_BLOCK`] classes.
pub(crate) fn logits<'a, T: crate::Float>(
    z: &'a mut [T],
    x: Operand<'a, T>,
    w: Operand<'a, T>,
    accumulate: bool,
) -> Vec<BlockProduct<'a, T>> {
    let (x, wt) = (x.faer(), w.t().faer());
    let z = faer::MatMut::from_row_major_slice_mut(z, x.nrows(), wt.ncols());
    by_classes(z, x, wt, accumulate)
}

/// `dw = dz^T x` (or `dw += dz^T x`): `dz` `[m, C]`, `x` `[m, D]`, `dw` row-major `[C, D]`, as
/// blocks of [`CLASS_BLOCK`] classes.
pub(crate) fn weight_grad<'a, T: crate::Float>(
    dw: &'a mut [T],
    dz: Operand<'a, T>,
    x: Operand<'a, T>,
    accumulate: bool,
) -> Vec<BlockProduct<'a, T>> {
    let (dz, x) = (dz.faer(), x.faer());
    // dw^T = x^T dz: the classes are the columns of both.
    let dwt = faer::MatMut::from_row_major_slice_mut(dw, dz.ncols(), x.ncols()).transpose_mut();
    by_classes(dwt, x.transpose(), dz, accumulate)
}

/// `dst = a b` with the columns of `dst` and `b` cut into blocks of [`CLASS_BLOCK`].
fn by_classes<'a, T: crate::Float>(
    dst: faer::MatMut<'a, T>,
    a: faer::MatRef<'a, T>,
    b: faer::MatRef<'a, T>,
    accumulate: bool,
) -> Vec<BlockProduct<'a, T>> {
    let (mut dst, mut b, mut blocks) = (dst, b, Vec::new());
    while dst.ncols() > 0 {
        let k = CLASS_BLOCK.min(dst.ncols());
        let ((d0, d1), (b0, b1)) = (dst.split_at_col_mut(k), b.split_at_col(k));
        blocks.push(BlockProduct { dst: d0, a, b: b0, accumulate });
        (dst, b) = (d1, b1);
    }
    blocks
}
