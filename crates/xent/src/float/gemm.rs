//! Matrix products for [`LinearCrossEntropy`](crate::loss::linear_cross_entropy), by `faer`
//! (AVX-512 or AVX2 micro-kernels chosen at run time).
//!
//! `faer` splits a product over threads by blocks of the output, each element summed over `k` in
//! an order set by the cache sizes, not by the threads: the same bits on any number of threads
//! (`tests/linear.rs` checks 1, 2 and 3 threads, the golden runner 1 and 4). A machine with other
//! cache sizes may block `k` otherwise, so bits are not promised across machines.

/// A row-major matrix `[rows, cols]`, used as it is or transposed (public only for the sealed
/// `Float` trait; not reachable outside the crate).
#[derive(Debug, Clone, Copy)]
pub struct Operand<'a, T> {
    pub data: &'a [T],
    pub rows: usize,
    pub cols: usize,
    pub transposed: bool,
}

impl<'a, T> Operand<'a, T> {
    /// `data` as a `[rows, cols]` matrix.
    pub fn new(data: &'a [T], rows: usize, cols: usize) -> Self {
        Operand { data, rows, cols, transposed: false }
    }

    /// The transpose, `[cols, rows]`.
    pub fn t(self) -> Self {
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

/// `dst = a b` (or `dst += a b` with `accumulate`), `dst` row-major `[a's rows, b's cols]`.
pub(crate) fn matmul<T: crate::Float>(dst: &mut [T], a: Operand<'_, T>, b: Operand<'_, T>, accumulate: bool) {
    T::matmul(dst, a, b, accumulate)
}
