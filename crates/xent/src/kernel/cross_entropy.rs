//! Negative log-likelihood and cross-entropy over one block, forward fused with backward.
//!
//! With `logp = log_softmax(x)` over the classes, class weights `w` (all 1 without weights,
//! `W = sum_c w_c`), label smoothing `e` and `C` classes, a position with class-index target `t`
//! has
//! ```text
//! l      = (1 - e) * -(w_t * logp_t) + e / C * -(sum_c w_c * logp_c)
//! dl/dx_c = (1 - e) * w_t * (p_c - [c = t]) + e / C * (W * p_c - w_c),   p = exp(logp)
//! ```
//! and with a probability target `y` (smoothed: `y' = (1 - e) y + e / C`)
//! ```text
//! l      = -sum_c w_c y'_c logp_c
//! dl/dx_c = p_c * sum_k w_k y'_k - w_c y'_c
//! ```
//! `nll_loss` takes `logp` as its input: `l = -w_t * x_t`, `dl/dx_c = -w_t [c = t]`.
//! Ignored positions have loss 0 and gradient 0.

use super::block::{Block, ClassOut, Lanes, Upstream};
use super::simd::Kernel;
use super::tile::{add_exp, drive_stored, lane_max, row_exp_sum, row_max, sum_lanes, Tile, TileKernel, TILE};
use crate::float::{Element, Float, Targets};
use std::hint::select_unpredictable;

/// Everything a class-index kernel needs besides the data.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IndexParams<'a, T> {
    pub classes: usize,
    pub class_stride: usize,
    pub weight: Option<&'a [T]>,
    /// `W = sum_c w_c` (`C` without weights).
    pub weight_sum: T,
    pub ignore_index: i64,
    /// Label smoothing `e`.
    pub smoothing: T,
}

impl<T: Float> IndexParams<'_, T> {
    #[inline(always)]
    fn w(&self, c: usize) -> T {
        self.weight.map_or(T::ONE, |w| w[c])
    }
}

/// Writes zeros for an ignored position.
#[inline(always)]
fn ignored<S: Element>(k: usize, classes: usize, grad: &mut Option<ClassOut<'_, S>>, loss: &mut [S::Math]) {
    if !loss.is_empty() {
        loss[k] = S::Math::ZERO;
    }
    if let Some(g) = grad {
        for c in 0..classes {
            g.set(c, k, S::narrow(S::Math::ZERO));
        }
    }
}

/// What one position contributes: its loss, and the gradient coefficients
/// `dl/dx_c = e_c * grad_scale - smooth_scale * w_c - [c = t] target_scale` (zero if ignored).
#[derive(Clone, Copy)]
struct Position<T> {
    loss: T,
    keep: bool,
    grad_scale: T,
    smooth_scale: T,
    target_scale: T,
    t: usize,
}

impl<T: Float> IndexParams<'_, T> {
    /// The loss and gradient coefficients of a position from `s = sum e^(x - m)`, `ln s`,
    /// `x_t - m` and `sum_c w_c (x_c - m)` (needed with smoothing only).
    #[inline(always)]
    fn position(&self, t: Option<usize>, s: T, ls: T, xt_m: T, sw: T, go: T) -> Position<T> {
        let Some(t) = t else {
            return Position {
                loss: T::ZERO,
                keep: false,
                grad_scale: T::ZERO,
                smooth_scale: T::ZERO,
                target_scale: T::ZERO,
                t: 0,
            };
        };
        let e = self.smoothing;
        let e_c = e / T::from_f64(self.classes as f64);
        let wt = self.w(t);
        let mut loss = -(wt * (xt_m - ls));
        if e > T::ZERO {
            // sum_c w_c logp_c = sum_c w_c (x_c - m) - W ln s
            loss = (T::ONE - e) * loss + e_c * -(sw - self.weight_sum * ls);
        }
        let a = go * wt * (T::ONE - e);
        let bc = if e > T::ZERO { go * e_c } else { T::ZERO };
        let grad_scale = if e > T::ZERO { (a + bc * self.weight_sum) / s } else { a / s };
        Position { loss, keep: true, grad_scale, smooth_scale: bc, target_scale: a, t }
    }
}

/// A class-index kernel's data over one block: the input (logits, or log-probabilities for
/// [`Nll`]), stored in `S`, the targets, the upstream gradient, and the block's shares of the
/// gradient (stored in `S`) and of the per-position losses (empty: not wanted).
pub(crate) struct Index<'a, S: Element> {
    pub x: &'a [S],
    pub target: Targets<'a>,
    pub p: &'a IndexParams<'a, S::Math>,
    pub b: Block,
    pub up: Upstream<'a, S::Math>,
    pub grad: Option<ClassOut<'a, S>>,
    pub loss: &'a mut [S::Math],
}

/// Cross-entropy with class-index targets over one block; returns the sum of the losses.
///
/// The logits of a tile are read from memory once: one pass for the maxima, one for the
/// exponentials (kept in the gradient buffer), then the gradient is finished in place.
pub(crate) struct CrossEntropy<'a, S: Element>(pub Index<'a, S>);

impl<S: Element<Math = T>, T: Float> Kernel for CrossEntropy<'_, S> {
    type Output = f64;
    #[inline(always)]
    fn run(self) -> f64 {
        let Index { x, target, p, b, up, mut grad, loss } = self.0;
        let shape = (p.class_stride, p.classes);
        // The two-class tile as a driver of its own: one tile code per loop keeps its
        // constants in registers.
        if p.classes == 2 && p.smoothing <= T::ZERO {
            let mut k = CeTiles::<T, true> { target, p, b, up, loss, acc: [0.0; TILE] };
            drive_stored(&mut k, (x, &[]), b, shape, grad.as_mut());
            k.acc.iter().sum()
        } else {
            let mut k = CeTiles::<T, false> { target, p, b, up, loss, acc: [0.0; TILE] };
            drive_stored(&mut k, (x, &[]), b, shape, grad.as_mut());
            k.acc.iter().sum()
        }
    }
}

/// [`CrossEntropy`] as the tile driver runs it: the losses summed in `TILE` lanes; `PAIR`: two
/// classes without smoothing ([`CeTiles::tile2`]).
struct CeTiles<'s, 'a, T, const PAIR: bool> {
    target: Targets<'a>,
    p: &'a IndexParams<'a, T>,
    b: Block,
    up: Upstream<'a, T>,
    loss: &'s mut [T],
    acc: [f64; TILE],
}

impl<T: Float, const PAIR: bool> TileKernel<T> for CeTiles<'_, '_, T, PAIR> {
    const PAIRED: bool = false;

    /// [`CeTiles::tile2`] for two classes without smoothing, else [`CeTiles::tile_any`] (a full
    /// tile as its own copy, with the lane count a constant).
    #[inline(always)]
    fn tile<I: Element<Math = T>, G: Lanes<T>>(&mut self, x: &[I], _: &[I], t: Tile, grad: Option<&mut G>) {
        if PAIR {
            self.tile2(x, t, grad);
        } else if t.n == TILE {
            self.tile_any(x, Tile { n: TILE, ..t }, grad);
        } else {
            self.tile_any(x, t, grad);
        }
    }

    /// A row: its maximum, then its exponentials (kept in the gradient) and sums in `TILE`
    /// lanes, then the gradient finished in place.
    #[inline(always)]
    fn row(&mut self, x: &[T], _: &[T], b: &Block, k: usize, grad: Option<&mut ClassOut<'_, T>>) {
        let (p, classes) = (self.p, self.p.classes);
        let smooth = p.smoothing > T::ZERO;
        let pos = b.p0 + k;
        let row = &x[b.base + k * b.lane_stride..][..classes];
        let t = self.target.class_at(pos, p.ignore_index);
        let m = row_max(row);
        let mut none: [T; 0] = [];
        let mut grad = grad;
        let out: &mut [T] = match (&mut grad, t) {
            (Some(g), Some(_)) => g.row(k),
            _ => &mut none,
        };
        let (s, sw) = row_exp_sum(row, m, out, smooth && t.is_some(), p.weight);
        let xt_m = t.map_or(T::ZERO, |t| row[t] - m);
        let q = p.position(t, s, s.ln(), xt_m, sw, self.up.at(pos));
        self.acc[0] += q.loss.to_f64();
        if !self.loss.is_empty() {
            self.loss[k] = q.loss;
        }
        if let Some(g) = grad {
            let gr = g.row(k);
            if !q.keep {
                gr.fill(T::ZERO);
                return;
            }
            let et = gr[q.t];
            match p.weight {
                Some(w) if smooth => {
                    gr.iter_mut().zip(w).for_each(|(v, &wc)| *v = *v * q.grad_scale - q.smooth_scale * wc)
                }
                _ => gr.iter_mut().for_each(|v| *v = *v * q.grad_scale - q.smooth_scale),
            }
            // As in the tiles: the target's constant in one piece.
            gr[q.t] = et * q.grad_scale - (q.smooth_scale * p.w(q.t) + q.target_scale);
        }
    }
}

/// One position of [`CeTiles::tile2`] (see there).
#[derive(Clone, Copy)]
struct Pair<T> {
    /// The loss, 0 if ignored.
    loss: T,
    e: T,
    /// `x_t = m`.
    top: bool,
    wt: T,
    /// The target is class 1.
    one: bool,
    keep: bool,
}

/// A function, not a closure, so that it inlines into the caller's vector code.
#[inline(always)]
fn pair<T: Float>(a: T, c: T, tc: u32, w0: T, w1: T) -> Pair<T> {
    let (m, lo) = if a > c { (a, c) } else { (c, a) };
    #[allow(clippy::eq_op)] // reason: `m - m` is 0, or NaN for an infinite `m`
    let e = (lo - m).exp_fast() + (m - m);
    let one = tc == 1;
    let xt = if one { c } else { a };
    let wt = if one { w1 } else { w0 };
    let keep = tc != 2;
    let l = wt * ((m - xt) + e.ln_1p_unit());
    Pair { loss: if keep { l } else { T::ZERO }, e, top: xt == m, wt, one, keep }
}

impl<T: Float, const PAIR: bool> CeTiles<'_, '_, T, PAIR> {
    /// A tile of [`CrossEntropy`]; adds the losses to the lanes' sums.
    #[inline(always)]
    fn tile_any<I: Element<Math = T>, G: Lanes<T>>(&mut self, x: &[I], t: Tile, mut grad: Option<&mut G>) {
        let (p, k0, n, at) = (self.p, t.k0, t.n, t.at);
        let (classes, cs) = (p.classes, t.cs);
        let smooth = p.smoothing > T::ZERO;
        let one_e = T::ONE - p.smoothing;
        let e_c = p.smoothing / T::from_f64(classes as f64);
        let off = |c: usize| c * cs;
        // Per lane: the target class (`none`, past the classes, if ignored) and the upstream
        // gradient (`u32` lanes: the caller keeps the classes below `u32::MAX`).
        let none = classes as u32;
        let tc = self.target.bins(none, Some(p.ignore_index), self.b.p0 + k0, n);
        let mut go = [T::ZERO; TILE];
        upstream(self.up, self.b.p0 + k0, n, &mut go);
        // Pass 1: the maxima, and the target's logit and weight, picked as their class goes by
        // (no gathers, so every loop here is a vector loop), as sums: the one class that hits
        // adds its value to 0 (a select of the old value becomes a masked store: see `row_max`).
        let (mut m, mut xt, mut wt) = ([T::NEG_INFINITY; TILE], [T::ZERO; TILE], [T::ZERO; TILE]);
        for c in 0..classes {
            let (xs, cc, wc) = (&x[off(c)..][..n], c as u32, p.w(c));
            for j in 0..n {
                let v = xs[j].widen();
                m[j] = lane_max(v, m[j]); // as in `row_max`
                let hit = tc[j] == cc;
                xt[j] += select_unpredictable(hit, v, T::ZERO);
                wt[j] += select_unpredictable(hit, wc, T::ZERO);
            }
        }
        // Pass 2: the exponentials (kept in the gradient) and their sums.
        let (mut s, mut sw) = ([T::ZERO; TILE], [T::ZERO; TILE]);
        for c in 0..classes {
            let xs = &x[off(c)..][..n];
            add_exp(xs, &m, &mut s, grad.as_mut().map(|g| &mut g.lanes(c)[at..at + n]));
            if smooth {
                let wc = p.w(c);
                for j in 0..n {
                    sw[j] += wc * (xs[j].widen() - m[j]);
                }
            }
        }
        // The loss; then, for the gradient only, its coefficients
        // `dl/dx_c = e_c * gsc - ssc * w_c - [c = t] tsc`.
        let mut lv = [T::ZERO; TILE];
        let mut ls = [T::ZERO; TILE];
        // Three loops, `smooth` outside them: with the logarithm and the branch in one loop,
        // LLVM left it scalar (12% of the f32 seg19 forward in scalar `ln` instructions).
        for j in 0..n {
            ls[j] = s[j].ln_fast();
        }
        let nll = |j: usize| -(wt[j] * ((xt[j] - m[j]) - ls[j]));
        if smooth {
            for j in 0..n {
                // sum_c w_c logp_c = sum_c w_c (x_c - m) - W ln s
                let l = one_e * nll(j) + e_c * -(sw[j] - p.weight_sum * ls[j]);
                lv[j] = select_unpredictable(tc[j] != none, l, T::ZERO);
            }
        } else {
            for j in 0..n {
                lv[j] = select_unpredictable(tc[j] != none, nll(j), T::ZERO);
            }
        }
        let (mut gsc, mut ssc, mut tsc) = ([T::ZERO; TILE], [T::ZERO; TILE], [T::ZERO; TILE]);
        if grad.is_some() {
            if smooth {
                for j in 0..n {
                    let a = go[j] * wt[j] * one_e;
                    let bc = go[j] * e_c;
                    gsc[j] = (a + bc * p.weight_sum) / s[j];
                    // The target's constant in one piece (`a + bc w_t`), so that one class
                    // (`W = w_t`, `p_t = 1`) gives exactly 0, as PyTorch's `p - y` does.
                    let wt_c = if tc[j] != none { p.w(tc[j] as usize) } else { T::ZERO };
                    (ssc[j], tsc[j]) = (bc, a + bc * wt_c);
                }
            } else {
                for j in 0..n {
                    let a = go[j] * wt[j];
                    gsc[j] = a / s[j];
                    tsc[j] = a;
                }
            }
        }
        finish_tile(&lv, n, k0, self.loss, &mut self.acc);
        // Pass 3: the gradient, finished in place.
        if let Some(g) = grad {
            for c in 0..classes {
                let (gs, cc, wc) = (&mut g.lanes(c)[at..at + n], c as u32, p.w(c));
                for j in 0..n {
                    let k = if tc[j] == cc { tsc[j] } else { ssc[j] * wc };
                    let v = gs[j] * gsc[j] - k;
                    gs[j] = if tc[j] != none { v } else { T::ZERO };
                }
            }
        }
    }

    /// [`CeTiles::tile_any`] for two classes without smoothing, in one pass: with `m = max(x_0, x_1)`,
    /// `lo = min(x_0, x_1)`, `e = e^(lo - m)` and `o` the class that is not the target,
    /// ```text
    /// l       = w_t (m - x_t + ln(1 + e))
    /// dl/dx_o = w_t p_o = w_t (x_t = m ? e : 1) / (1 + e),   dl/dx_t = -dl/dx_o
    /// ```
    /// one exponential and one `ln(1 + e)` (`e` in `[0, 1]`) a position instead of two and a `ln`.
    /// `e` is made NaN when `m` is infinite (`m - m`), as `log_softmax` makes it.
    #[inline(always)]
    fn tile2<I: Element<Math = T>, G: Lanes<T>>(&mut self, x: &[I], t: Tile, grad: Option<&mut G>) {
        let (p, k0, n, at) = (self.p, t.k0, t.n, t.at);
        let (x0, x1) = (&x[..n], &x[t.cs..][..n]);
        let tc = self.target.bins(2, Some(p.ignore_index), self.b.p0 + k0, n);
        let (w0, w1) = (p.w(0), p.w(1));
        let mut lv = [T::ZERO; TILE];
        match grad {
            Some(g) => {
                let (g0, g1) = g.lanes2();
                let (g0, g1) = (&mut g0[at..at + n], &mut g1[at..at + n]);
                let mut go = [T::ZERO; TILE];
                upstream(self.up, self.b.p0 + k0, n, &mut go);
                for j in 0..n {
                    let q = pair(x0[j].widen(), x1[j].widen(), tc[j], w0, w1);
                    lv[j] = q.loss;
                    let num = if q.top { q.e } else { T::ONE };
                    let d = go[j] * q.wt * (num / (T::ONE + q.e));
                    let d = if q.keep { d } else { T::ZERO };
                    (g0[j], g1[j]) = if q.one { (d, -d) } else { (-d, d) };
                }
            }
            None => {
                for j in 0..n {
                    lv[j] = pair(x0[j].widen(), x1[j].widen(), tc[j], w0, w1).loss;
                }
            }
        }
        finish_tile(&lv, n, k0, self.loss, &mut self.acc);
    }
}

/// Negative log-likelihood over one block (the input holds log-probabilities); returns the
/// sum of the losses.
pub(crate) struct Nll<'a, S: Element>(pub Index<'a, S>);

impl<S: Element<Math = T>, T: Float> Kernel for Nll<'_, S> {
    type Output = f64;
    #[inline(always)]
    fn run(self) -> f64 {
        let Index { x, target, p, b, up, mut grad, loss } = self.0;
        let (cs, classes) = (p.class_stride, p.classes);
        // Strided positions write their gradient a tile of lanes per class (vector stores), not
        // one position's classes at a time.
        let lanes = b.lane_stride == 1 && cs != 1 && classes < u32::MAX as usize;
        let mut sum = 0.0;
        for k in 0..b.len {
            let pos = b.p0 + k;
            let Some(t) = target.class_at(pos, p.ignore_index) else {
                if !lanes {
                    ignored(k, classes, &mut grad, loss);
                } else if !loss.is_empty() {
                    loss[k] = T::ZERO;
                }
                continue;
            };
            let wt = p.w(t);
            let l = -(x[b.at(t, k, cs)].widen() * wt);
            sum += l.to_f64();
            if !loss.is_empty() {
                loss[k] = l;
            }
            if let (Some(g), false) = (&mut grad, lanes) {
                let gt = -(wt * up.at(pos));
                for c in 0..classes {
                    g.set(c, k, S::narrow(if c == t { gt } else { T::ZERO }));
                }
            }
        }
        if let (Some(g), true) = (&mut grad, lanes) {
            for k0 in (0..b.len).step_by(TILE) {
                let n = TILE.min(b.len - k0);
                // Per lane: the target class (`classes` if ignored) and `-w_t go`.
                let tc = target.bins(classes as u32, Some(p.ignore_index), b.p0 + k0, n);
                let mut d = [T::ZERO; TILE];
                for j in (0..n).filter(|&j| tc[j] != classes as u32) {
                    d[j] = -(p.w(tc[j] as usize) * up.at(b.p0 + k0 + j));
                }
                for c in 0..classes {
                    let (gs, cc) = (&mut g.lanes(c)[k0..k0 + n], c as u32);
                    for j in 0..n {
                        gs[j] = S::narrow(if tc[j] == cc { d[j] } else { T::ZERO });
                    }
                }
            }
        }
        sum
    }
}

/// Cross-entropy with probability targets `y` (input-shaped) over one block; returns the sum
/// of the losses. With `A = sum_c w_c y'_c (x_c - m)`, `wy = sum_c w_c y'_c` and
/// `s = sum_c e^(x_c - m)`: `l = -(A - wy ln s)`, `dl/dx_c = go (e^(x_c - m) wy / s - w_c y'_c)`.
pub(crate) struct CrossEntropyProbs<'a, S: Element> {
    pub x: &'a [S],
    pub y: &'a [S],
    pub p: &'a IndexParams<'a, S::Math>,
    pub b: Block,
    pub up: Upstream<'a, S::Math>,
    pub grad: Option<ClassOut<'a, S>>,
    pub loss: &'a mut [S::Math],
}

impl<S: Element<Math = T>, T: Float> Kernel for CrossEntropyProbs<'_, S> {
    type Output = f64;
    #[inline(always)]
    fn run(self) -> f64 {
        let CrossEntropyProbs { x, y, p, b, up, mut grad, loss } = self;
        let mut k = ProbsTiles { p, b, up, loss, acc: [0.0; TILE] };
        drive_stored(&mut k, (x, y), b, (p.class_stride, p.classes), grad.as_mut());
        k.acc.iter().sum()
    }
}

/// [`CrossEntropyProbs`] as the tile driver runs it.
struct ProbsTiles<'s, 'a, T> {
    p: &'a IndexParams<'a, T>,
    b: Block,
    up: Upstream<'a, T>,
    loss: &'s mut [T],
    acc: [f64; TILE],
}

impl<T: Float> TileKernel<T> for ProbsTiles<'_, '_, T> {
    const PAIRED: bool = true;

    /// The lanes' maxima; then `e^(x - m)` (kept in the gradient), `s`, `A` and `wy`; then
    /// the losses and the gradient.
    #[inline(always)]
    fn tile<I: Element<Math = T>, G: Lanes<T>>(&mut self, x: &[I], y: &[I], t: Tile, mut grad: Option<&mut G>) {
        let (p, cs, n, at) = (self.p, t.cs, t.n, t.at);
        let mut go = [T::ZERO; TILE];
        upstream(self.up, self.b.p0 + t.k0, n, &mut go);
        let mut m = [T::NEG_INFINITY; TILE];
        for c in 0..p.classes {
            let xs = &x[c * cs..][..n];
            for j in 0..n {
                m[j] = lane_max(xs[j].widen(), m[j]); // as in `row_max`
            }
        }
        let (mut s, mut a, mut wy) = ([T::ZERO; TILE], [T::ZERO; TILE], [T::ZERO; TILE]);
        for c in 0..p.classes {
            let (xs, ys, wc) = (&x[c * cs..][..n], &y[c * cs..][..n], p.w(c));
            // The target's sums in a loop of their own: with the gradient's store in the same
            // loop as five other arrays, LLVM left it scalar (two thirds of the probs19
            // forward+backward in scalar instructions).
            add_exp(xs, &m, &mut s, grad.as_mut().map(|g| &mut g.lanes(c)[at..at + n]));
            for j in 0..n {
                let wyc = wc * smoothed(p, ys[j].widen());
                a[j] += wyc * (xs[j].widen() - m[j]);
                wy[j] += wyc;
            }
        }
        let mut lv = [T::ZERO; TILE];
        for j in 0..n {
            // Without classes, s = 0 and the loss is the empty sum (not 0 * -inf).
            let lws = if wy[j] == T::ZERO { T::ZERO } else { wy[j] * s[j].ln_fast() };
            lv[j] = -(a[j] - lws);
        }
        if let Some(g) = grad {
            let mut r = [T::ZERO; TILE];
            for j in 0..n {
                r[j] = go[j] * wy[j] / s[j];
            }
            for c in 0..p.classes {
                let (ys, wc, gs) = (&y[c * cs..][..n], p.w(c), &mut g.lanes(c)[at..at + n]);
                for j in 0..n {
                    gs[j] = gs[j] * r[j] - go[j] * (wc * smoothed(p, ys[j].widen()));
                }
            }
        }
        finish_tile(&lv, n, t.k0, self.loss, &mut self.acc);
    }

    #[inline(always)]
    fn row(&mut self, x: &[T], y: &[T], b: &Block, k: usize, grad: Option<&mut ClassOut<'_, T>>) {
        let classes = self.p.classes;
        let at = b.base + k * classes;
        let (row, yr) = (&x[at..][..classes], &y[at..][..classes]);
        let l = match grad {
            Some(g) => probs_row(row, yr, self.p, self.up.at(b.p0 + k), g.row(k)),
            None => probs_row(row, yr, self.p, T::ZERO, &mut []),
        };
        if !self.loss.is_empty() {
            self.loss[k] = l;
        }
        self.acc[0] += l.to_f64();
    }
}

/// The upstream gradients of positions `p0..p0 + n` into `go`.
#[inline(always)]
fn upstream<T: Float>(up: Upstream<'_, T>, p0: usize, n: usize, go: &mut [T; TILE]) {
    match up {
        Upstream::All(g) => go[..n].fill(g),
        Upstream::Each(g) | Upstream::PerSample(g) => go[..n].copy_from_slice(&g[p0..][..n]),
    }
}

/// Adds a tile's losses to the lanes' sums, and writes them if wanted.
#[inline(always)]
fn finish_tile<T: Float>(lv: &[T; TILE], n: usize, k0: usize, loss: &mut [T], acc: &mut [f64; TILE]) {
    for j in 0..n {
        acc[j] += lv[j].to_f64();
    }
    if !loss.is_empty() {
        loss[k0..k0 + n].copy_from_slice(&lv[..n]);
    }
}

/// `y' = (1 - e) y + e / C` (`y` without smoothing).
#[inline(always)]
fn smoothed<T: Float>(p: &IndexParams<'_, T>, v: T) -> T {
    if p.smoothing > T::ZERO {
        v * (T::ONE - p.smoothing) + p.smoothing / T::from_f64(p.classes as f64)
    } else {
        v
    }
}

/// One row of [`CrossEntropyProbs`] (contiguous classes), its gradient into `g` if not
/// empty; returns the loss. Sums in `TILE` lanes.
#[inline(always)]
fn probs_row<T: Float>(x: &[T], y: &[T], p: &IndexParams<'_, T>, go: T, g: &mut [T]) -> T {
    let m = row_max(x);
    let (mut s, mut a, mut wy) = ([T::ZERO; TILE], [T::ZERO; TILE], [T::ZERO; TILE]);
    for (i, (xc, yc)) in x.chunks(TILE).zip(y.chunks(TILE)).enumerate() {
        let c0 = i * TILE;
        for j in 0..xc.len() {
            let d = xc[j] - m;
            let e = d.exp_fast();
            if !g.is_empty() {
                g[c0 + j] = e;
            }
            s[j] += e;
            let wyc = p.w(c0 + j) * smoothed(p, yc[j]);
            a[j] += wyc * d;
            wy[j] += wyc;
        }
    }
    let used = x.len().min(TILE);
    let (s, a, wy) = (sum_lanes(&s[..used]), sum_lanes(&a[..used]), sum_lanes(&wy[..used]));
    if !g.is_empty() {
        let r = go * wy / s;
        for (c, (gc, &yc)) in g.iter_mut().zip(y).enumerate() {
            *gc = *gc * r - go * (p.w(c) * smoothed(p, yc));
        }
    }
    -(a - wy * s.ln_fast())
}
