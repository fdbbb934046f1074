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

use super::block::{Block, ClassOut, Lanes};
use super::simd::Kernel;
use super::tile::{
    add_exp, drive_stored, in_place, lane_max, narrow_out, row_exp_sum, row_max, scratch_out, sum_lanes, Pooled, Tile,
    TileKernel, TILE,
};
use crate::float::{Element, Float};

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

/// Softmax (`log == false`) or log-softmax, forward (`g` empty: the outputs of `x`) or
/// backward (`x` is the forward's output `y`, `g` the upstream gradient), over one block whose
/// classes are `cs` apart, into `out`. NaN anywhere in a position makes all its outputs NaN, as
/// does `+inf` (`inf - inf`), as in PyTorch. Inputs are stored in `I`, the output in `O`: the
/// forward pass reads `bf16` / `f16` inputs, the backward pass writes `bf16` / `f16` gradients
/// (its `y` and `g` are in the maths type).
pub(crate) struct Softmax<'a, I, O> {
    pub x: &'a [I],
    pub g: &'a [I],
    pub b: Block,
    pub cs: usize,
    pub classes: usize,
    pub log: bool,
    pub out: ClassOut<'a, O>,
}

impl<I: Element<Math = T>, O: Element<Math = T>, T: Float> Kernel for Softmax<'_, I, O> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let Softmax { x, g, b, cs, classes, log, mut out } = self;
        if !g.is_empty() {
            let (y, g) = (I::as_math(x).expect("backward reads y in the maths type"), I::as_math(g).expect("and g"));
            if let Some(mut o) = in_place(&mut out) {
                return backward(y, g, b, (cs, classes), log, &mut o);
            }
            let mut os = Pooled::zeros(b.len * classes);
            backward(y, g, b, (cs, classes), log, &mut scratch_out(&mut os, out.rowwise, classes, b.len));
            return narrow_out(&os, &mut out, b.len);
        }
        drive_stored(&mut Forward { classes, log }, (x, &[]), b, (cs, classes), Some(&mut out));
    }
}

/// The forward pass as the tile driver runs it.
struct Forward {
    classes: usize,
    log: bool,
}

impl<T: Float> TileKernel<T> for Forward {
    const PAIRED: bool = false;

    #[inline(always)]
    fn tile<I: Element<Math = T>, G: Lanes<T>>(&mut self, x: &[I], _: &[I], t: Tile, out: Option<&mut G>) {
        if let Some(out) = out {
            // A full tile as its own copy, with the lane count a constant.
            if t.n == TILE {
                tile(x, t.cs, self.classes, TILE, self.log, out, t.at);
            } else {
                tile(x, t.cs, self.classes, t.n, self.log, out, t.at);
            }
        }
    }

    #[inline(always)]
    fn row(&mut self, x: &[T], _: &[T], b: &Block, k: usize, out: Option<&mut ClassOut<'_, T>>) {
        let Some(out) = out else { return };
        let classes = self.classes;
        let row = &x[b.base + k * classes..][..classes];
        let o = out.row(k);
        let m = row_max(row);
        let (s, _) = row_exp_sum(row, m, o, false, None);
        if self.log {
            let ls = s.ln_fast();
            o.iter_mut().zip(row).for_each(|(o, &v)| *o = (v - m) - ls);
        } else {
            let r = T::ONE / s;
            o.iter_mut().for_each(|o| *o *= r);
        }
    }
}

/// Positions `k0..k0 + n` (`n <= TILE`) of a block, `x` starting at the tile's first position
/// with classes `cs` apart, into `out`'s lanes `k0..k0 + n`: the maxima, then `e^(x - m)`
/// and their sums `s`, then `e / s` (as `e * (1 / s)`) or `(x - m) - ln s`.
#[inline(always)]
pub(crate) fn tile<I: Element<Math = T>, T: Float, G: Lanes<T>>(
    x: &[I],
    cs: usize,
    classes: usize,
    n: usize,
    log: bool,
    out: &mut G,
    k0: usize,
) {
    let mut m = [T::NEG_INFINITY; TILE];
    for c in 0..classes {
        let xs = &x[c * cs..][..n];
        for j in 0..n {
            m[j] = lane_max(xs[j].widen(), m[j]); // as in `row_max`
        }
    }
    let mut s = [T::ZERO; TILE];
    for c in 0..classes {
        add_exp(&x[c * cs..][..n], &m, &mut s, Some(&mut out.lanes(c)[k0..k0 + n]));
    }
    if log {
        let mut ls = [T::ZERO; TILE];
        for j in 0..n {
            ls[j] = s[j].ln_fast();
        }
        for c in 0..classes {
            let (xs, o) = (&x[c * cs..][..n], &mut out.lanes(c)[k0..k0 + n]);
            for j in 0..n {
                o[j] = (xs[j].widen() - m[j]) - ls[j];
            }
        }
    } else {
        let mut r = [T::ZERO; TILE];
        for j in 0..n {
            r[j] = T::ONE / s[j];
        }
        for c in 0..classes {
            let o = &mut out.lanes(c)[k0..k0 + n];
            for j in 0..n {
                o[j] *= r[j];
            }
        }
    }
}

/// Backward of softmax or log-softmax over one block, from the output `y` and upstream `g`:
/// strided positions in tiles of `TILE` lanes, rows one at a time with `TILE`-lane sums.
#[inline(always)]
fn backward<T: Float>(y: &[T], g: &[T], b: Block, (cs, classes): (usize, usize), log: bool, out: &mut ClassOut<'_, T>) {
    if b.lane_stride == 1 && cs != 1 {
        for k0 in (0..b.len).step_by(TILE) {
            let n = TILE.min(b.len - k0);
            let (yt, gt, t) = (b.from(y, k0), b.from(g, k0), Tile { cs, k0, n, at: k0 });
            if n == TILE {
                backward_tile(yt, gt, Tile { n: TILE, ..t }, (classes, log), out);
            } else {
                backward_tile(yt, gt, t, (classes, log), out);
            }
        }
    } else {
        for k in 0..b.len {
            let (yr, gr) = (&y[b.base + k * classes..][..classes], &g[b.base + k * classes..][..classes]);
            let mut acc = [T::ZERO; TILE];
            for (yc, gc) in yr.chunks(TILE).zip(gr.chunks(TILE)) {
                for j in 0..yc.len() {
                    acc[j] += if log { gc[j] } else { gc[j] * yc[j] };
                }
            }
            let dot = sum_lanes(&acc[..classes.min(TILE)]);
            let o = out.row(k);
            if !log {
                for c in 0..classes {
                    o[c] = yr[c] * (gr[c] - dot);
                }
            } else if yr.iter().all(|&v| v <= T::ZERO) {
                for c in 0..classes {
                    o[c] = gr[c] - yr[c].exp_fast() * dot;
                }
            } else {
                for c in 0..classes {
                    o[c] = gr[c] - yr[c].exp() * dot;
                }
            }
        }
    }
}

/// A tile for [`backward`] (`y` and `g` from the tile's first position): `dot = sum_c g_c` (log) or `sum_c g_c y_c`, then `g - e^y dot` or `y (g - dot)`.
/// `e^y` is the polynomial when every `y` of the tile is at most 0 (log-softmax's outputs are),
/// libm's otherwise.
#[inline(always)]
fn backward_tile<T: Float>(y: &[T], g: &[T], t: Tile, (classes, log): (usize, bool), out: &mut ClassOut<'_, T>) {
    let (cs, n, k0) = (t.cs, t.n, t.at);
    let mut dot = [T::ZERO; TILE];
    let mut fast = true;
    for c in 0..classes {
        let (ys, gs) = (&y[c * cs..][..n], &g[c * cs..][..n]);
        for j in 0..n {
            dot[j] += if log { gs[j] } else { gs[j] * ys[j] };
        }
        fast &= ys.iter().all(|&v| v <= T::ZERO);
    }
    for c in 0..classes {
        let (ys, gs, o) = (&y[c * cs..][..n], &g[c * cs..][..n], &mut out.lanes(c)[k0..k0 + n]);
        if !log {
            for j in 0..n {
                o[j] = ys[j] * (gs[j] - dot[j]);
            }
        } else if fast {
            for j in 0..n {
                o[j] = gs[j] - ys[j].exp_fast() * dot[j];
            }
        } else {
            for j in 0..n {
                o[j] = gs[j] - ys[j].exp() * dot[j];
            }
        }
    }
}
