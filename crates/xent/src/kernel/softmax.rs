//! Softmax and log-softmax along the class axis of a block.
//!
//! ```text
//! m = max_c x_c,  s = sum_c exp(x_c - m)
//! softmax_c     = exp(x_c - m) / s
//! log_softmax_c = (x_c - m) - ln s
//! ```
//! Shifting by the row's own maximum keeps `exp` from overflowing (logits of +-1e4 are fine).
//! Backward, from the output `y` and the upstream gradient `g`:
//! ```text
//! softmax:     dx_c = y_c * (g_c - sum_k g_k y_k)
//! log_softmax: dx_c = g_c - exp(y_c) * sum_k g_k
//! ```

use crate::float::Float;
use crate::par::{Block, ClassOut};

/// `(m, s)` of position `k` of `b`: the maximum (NaN if any element is NaN) and
/// `sum_c exp(x_c - m)`.
#[inline(always)]
pub(crate) fn max_sumexp<T: Float>(x: &[T], b: &Block, k: usize, cs: usize, classes: usize) -> (T, T) {
    let mut m = T::NEG_INFINITY;
    for c in 0..classes {
        m = m.max_nan(x[b.at(c, k, cs)]);
    }
    let mut s = T::ZERO;
    for c in 0..classes {
        s += (x[b.at(c, k, cs)] - m).exp();
    }
    (m, s)
}

/// Forward of softmax (`log == false`) or log-softmax over one block.
pub(crate) fn forward<T: Float>(x: &[T], b: Block, cs: usize, classes: usize, log: bool, out: &mut ClassOut<'_, T>) {
    for k in 0..b.len {
        let (m, s) = max_sumexp(x, &b, k, cs, classes);
        if log {
            let ls = s.ln();
            for c in 0..classes {
                out.set(c, k, (x[b.at(c, k, cs)] - m) - ls);
            }
        } else {
            for c in 0..classes {
                out.set(c, k, (x[b.at(c, k, cs)] - m).exp() / s);
            }
        }
    }
}

/// Backward of softmax or log-softmax over one block, from the output `y` and upstream `g`.
pub(crate) fn backward<T: Float>(
    y: &[T],
    g: &[T],
    b: Block,
    cs: usize,
    classes: usize,
    log: bool,
    out: &mut ClassOut<'_, T>,
) {
    for k in 0..b.len {
        let mut dot = T::ZERO;
        for c in 0..classes {
            let i = b.at(c, k, cs);
            dot += if log { g[i] } else { g[i] * y[i] };
        }
        for c in 0..classes {
            let i = b.at(c, k, cs);
            let v = if log { g[i] - y[i].exp() * dot } else { y[i] * (g[i] - dot) };
            out.set(c, k, v);
        }
    }
}
