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

use super::tile::{from_columns, row_exp_sum, row_max, sum_lanes, to_columns, Lanes, Scratch, SMALL, TILE};
use crate::float::{Float, Label};
use crate::par::{Block, ClassOut};
use crate::reduction::Upstream;
use crate::validate::class_of;

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
fn ignored<T: Float>(k: usize, classes: usize, grad: &mut Option<ClassOut<'_, T>>, loss: &mut [T]) {
    if !loss.is_empty() {
        loss[k] = T::ZERO;
    }
    if let Some(g) = grad {
        for c in 0..classes {
            g.set(c, k, T::ZERO);
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

/// Cross-entropy with class-index targets over block `b`; returns the sum of the losses.
///
/// The logits of a tile are read from memory once: one pass for the maxima, one for the
/// exponentials (kept in the gradient buffer), then the gradient is finished in place.
#[inline(always)]
pub(crate) fn cross_entropy<T: Float, L: Label>(
    x: &[T],
    target: &[L],
    p: &IndexParams<'_, T>,
    b: Block,
    up: Upstream<'_, T>,
    mut grad: Option<ClassOut<'_, T>>,
    loss: &mut [T],
) -> f64 {
    let classes = p.classes;
    let smooth = p.smoothing > T::ZERO;
    let mut sum = 0.0;
    if b.lane_stride == classes && p.class_stride == 1 && (1..=SMALL).contains(&classes) {
        // Short rows: a tile of them is turned into the strided layout in a scratch buffer.
        return small_rows(x, target, p, b, up, grad, loss);
    }
    if b.lane_stride != 1 || p.class_stride == 1 || classes >= u32::MAX as usize {
        // Rows: the classes of a position are contiguous.
        for k in 0..b.len {
            let pos = b.p0 + k;
            let row = &x[b.base + k * b.lane_stride..][..classes];
            let t = class_of(target[pos], p.ignore_index);
            let m = row_max(row);
            let mut none: [T; 0] = [];
            let out: &mut [T] = match (&mut grad, t) {
                (Some(g), Some(_)) => g.row(k),
                _ => &mut none,
            };
            let (s, sw) = row_exp_sum(row, m, out, smooth && t.is_some(), p.weight);
            let xt_m = t.map_or(T::ZERO, |t| row[t] - m);
            let q = p.position(t, s, s.ln(), xt_m, sw, up.at(pos));
            sum += q.loss.to_f64();
            if !loss.is_empty() {
                loss[k] = q.loss;
            }
            if let Some(g) = &mut grad {
                let gr = g.row(k);
                if !q.keep {
                    gr.fill(T::ZERO);
                    continue;
                }
                match p.weight {
                    Some(w) if smooth => {
                        gr.iter_mut().zip(w).for_each(|(v, &wc)| *v = *v * q.grad_scale - q.smooth_scale * wc)
                    }
                    _ => gr.iter_mut().for_each(|v| *v = *v * q.grad_scale - q.smooth_scale),
                }
                gr[q.t] -= q.target_scale;
            }
        }
        return sum;
    }
    // Tiles of consecutive positions (the vector lanes), looping over the classes. A full
    // tile is its own copy of the code, with the lane count a constant.
    let mut acc = [0.0f64; TILE];
    for k0 in (0..b.len).step_by(TILE) {
        let n = TILE.min(b.len - k0);
        any_tile(x, target, p, b, up, &mut grad, loss, k0, n, &mut acc);
    }
    acc.iter().sum()
}

/// The tile kernel for these parameters: [`tile2`] for two classes without smoothing, else
/// [`tile`] (a full tile as its own copy, with the lane count a constant).
#[allow(clippy::too_many_arguments)] // reason: the kernel's arguments and the tile's place
#[inline(always)]
fn any_tile<T: Float, L: Label, G: Lanes<T>>(
    x: &[T],
    target: &[L],
    p: &IndexParams<'_, T>,
    b: Block,
    up: Upstream<'_, T>,
    grad: &mut Option<G>,
    loss: &mut [T],
    k0: usize,
    n: usize,
    acc: &mut [f64; TILE],
) {
    if p.classes == 2 && p.smoothing <= T::ZERO {
        tile2(x, target, p, b, up, grad, loss, k0, n, acc);
    } else if n == TILE {
        tile(x, target, p, b, up, grad, loss, k0, TILE, acc);
    } else {
        tile(x, target, p, b, up, grad, loss, k0, n, acc);
    }
}

/// [`cross_entropy`] on rows of at most [`SMALL`] classes (`[N, C]`): each tile of `TILE` rows
/// is copied class-major into a scratch buffer on the stack (`C x TILE`, in L1), run through
/// the tile kernel with the rows as its lanes, and its gradient copied back. Summed in the same
/// `TILE` lanes as the tiles, so the bits depend only on the shape.
#[inline(always)]
fn small_rows<T: Float, L: Label>(
    x: &[T],
    target: &[L],
    p: &IndexParams<'_, T>,
    b: Block,
    up: Upstream<'_, T>,
    mut grad: Option<ClassOut<'_, T>>,
    loss: &mut [T],
) -> f64 {
    let classes = p.classes;
    let (mut xs, mut gs) = ([T::ZERO; SMALL * TILE], [T::ZERO; SMALL * TILE]);
    let mut acc = [0.0f64; TILE];
    // The scratch as a block: lanes consecutive, classes `TILE` apart.
    let q = IndexParams { class_stride: TILE, ..*p };
    for k0 in (0..b.len).step_by(TILE) {
        let n = TILE.min(b.len - k0);
        let rows = &x[b.base + k0 * classes..][..n * classes];
        to_columns(rows, &mut xs, classes);
        let sb = Block { p0: b.p0 + k0, len: n, base: 0, lane_stride: 1 };
        let mut sg = grad.is_some().then(|| Scratch(&mut gs[..]));
        let lo = if loss.is_empty() { &mut [][..] } else { &mut loss[k0..k0 + n] };
        any_tile(&xs, target, &q, sb, up, &mut sg, lo, 0, n, &mut acc);
        if let Some(g) = &mut grad {
            let out = g.rows(k0, n);
            from_columns(&gs, out, classes);
        }
    }
    acc.iter().sum()
}

/// Positions `k0..k0 + n` of block `b` (`n <= TILE`) for [`cross_entropy`]; adds the losses
/// to `acc`.
#[allow(clippy::too_many_arguments)] // reason: the kernel's arguments and the tile's place
#[inline(always)]
fn tile<T: Float, L: Label, G: Lanes<T>>(
    x: &[T],
    target: &[L],
    p: &IndexParams<'_, T>,
    b: Block,
    up: Upstream<'_, T>,
    grad: &mut Option<G>,
    loss: &mut [T],
    k0: usize,
    n: usize,
    acc: &mut [f64; TILE],
) {
    let (classes, cs) = (p.classes, p.class_stride);
    let smooth = p.smoothing > T::ZERO;
    let one_e = T::ONE - p.smoothing;
    let e_c = p.smoothing / T::from_f64(classes as f64);
    let at = |c: usize| b.base + c * cs + k0;
    // Per lane: the target class (`none`, past the classes, if ignored) and the upstream
    // gradient (`u32` lanes: the caller keeps the classes below `u32::MAX`).
    let none = classes as u32;
    let (mut tc, mut go) = ([none; TILE], [T::ZERO; TILE]);
    let targets = &target[b.p0 + k0..][..n];
    for j in 0..n {
        tc[j] = targets[j].bin(none, Some(p.ignore_index));
    }
    upstream(up, b.p0 + k0, n, &mut go);
    // Pass 1: the maxima, and the target's logit and weight, picked as their class goes by
    // (no gathers, so every loop here is a vector loop).
    let (mut m, mut xt, mut wt) = ([T::NEG_INFINITY; TILE], [T::ZERO; TILE], [T::ZERO; TILE]);
    for c in 0..classes {
        let (xs, cc, wc) = (&x[at(c)..][..n], c as u32, p.w(c));
        for j in 0..n {
            m[j] = if xs[j] > m[j] { xs[j] } else { m[j] }; // as in `row_max`
            let hit = tc[j] == cc;
            xt[j] = if hit { xs[j] } else { xt[j] };
            wt[j] = if hit { wc } else { wt[j] };
        }
    }
    // Pass 2: the exponentials (kept in the gradient) and their sums.
    let (mut s, mut sw) = ([T::ZERO; TILE], [T::ZERO; TILE]);
    for c in 0..classes {
        let xs = &x[at(c)..][..n];
        match grad {
            Some(g) => {
                let gs = &mut g.lanes(c)[k0..k0 + n];
                for j in 0..n {
                    let e = (xs[j] - m[j]).exp_fast();
                    gs[j] = e;
                    s[j] += e;
                }
            }
            None => {
                for j in 0..n {
                    s[j] += (xs[j] - m[j]).exp_fast();
                }
            }
        }
        if smooth {
            let wc = p.w(c);
            for j in 0..n {
                sw[j] += wc * (xs[j] - m[j]);
            }
        }
    }
    // The loss; then, for the gradient only, its coefficients
    // `dl/dx_c = e_c * gsc - ssc * w_c - [c = t] tsc`.
    let mut lv = [T::ZERO; TILE];
    let mut ls = [T::ZERO; TILE];
    for j in 0..n {
        ls[j] = s[j].ln_fast();
        let nll = -(wt[j] * ((xt[j] - m[j]) - ls[j]));
        // sum_c w_c logp_c = sum_c w_c (x_c - m) - W ln s
        let l = if smooth { one_e * nll + e_c * -(sw[j] - p.weight_sum * ls[j]) } else { nll };
        lv[j] = if tc[j] != none { l } else { T::ZERO };
    }
    let (mut gsc, mut ssc, mut tsc) = ([T::ZERO; TILE], [T::ZERO; TILE], [T::ZERO; TILE]);
    if grad.is_some() {
        if smooth {
            for j in 0..n {
                let a = go[j] * wt[j] * one_e;
                let bc = go[j] * e_c;
                gsc[j] = (a + bc * p.weight_sum) / s[j];
                (ssc[j], tsc[j]) = (bc, a);
            }
        } else {
            for j in 0..n {
                let a = go[j] * wt[j];
                gsc[j] = a / s[j];
                tsc[j] = a;
            }
        }
    }
    finish_tile(&lv, n, k0, loss, acc);
    // Pass 3: the gradient, finished in place.
    if let Some(g) = grad {
        for c in 0..classes {
            let (gs, cc, wc) = (&mut g.lanes(c)[k0..k0 + n], c as u32, p.w(c));
            for j in 0..n {
                let v = gs[j] * gsc[j] - ssc[j] * wc;
                let v = if tc[j] == cc { v - tsc[j] } else { v };
                gs[j] = if tc[j] != none { v } else { T::ZERO };
            }
        }
    }
}

/// One position of [`tile2`] (see there).
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

/// [`tile`] for two classes without smoothing, in one pass: with `m = max(x_0, x_1)`,
/// `lo = min(x_0, x_1)`, `e = e^(lo - m)` and `o` the class that is not the target,
/// ```text
/// l       = w_t (m - x_t + ln(1 + e))
/// dl/dx_o = w_t p_o = w_t (x_t = m ? e : 1) / (1 + e),   dl/dx_t = -dl/dx_o
/// ```
/// one exponential and one `ln(1 + e)` (`e` in `[0, 1]`) a position instead of two and a `ln`.
/// `e` is made NaN when `m` is infinite (`m - m`), as `log_softmax` makes it.
#[allow(clippy::too_many_arguments)] // reason: the kernel's arguments and the tile's place
#[inline(always)]
fn tile2<T: Float, L: Label, G: Lanes<T>>(
    x: &[T],
    target: &[L],
    p: &IndexParams<'_, T>,
    b: Block,
    up: Upstream<'_, T>,
    grad: &mut Option<G>,
    loss: &mut [T],
    k0: usize,
    n: usize,
    acc: &mut [f64; TILE],
) {
    let (x0, x1) = (&x[b.base + k0..][..n], &x[b.base + p.class_stride + k0..][..n]);
    let tc = &target[b.p0 + k0..][..n];
    let ignore = Some(p.ignore_index);
    let (w0, w1) = (p.w(0), p.w(1));
    let mut lv = [T::ZERO; TILE];
    match grad {
        Some(g) => {
            let (g0, g1) = g.lanes2();
            let (g0, g1) = (&mut g0[k0..k0 + n], &mut g1[k0..k0 + n]);
            let mut go = [T::ZERO; TILE];
            upstream(up, b.p0 + k0, n, &mut go);
            for j in 0..n {
                let q = pair(x0[j], x1[j], tc[j].bin(2, ignore), w0, w1);
                lv[j] = q.loss;
                let num = if q.top { q.e } else { T::ONE };
                let d = go[j] * q.wt * (num / (T::ONE + q.e));
                let d = if q.keep { d } else { T::ZERO };
                (g0[j], g1[j]) = if q.one { (d, -d) } else { (-d, d) };
            }
        }
        None => {
            for j in 0..n {
                lv[j] = pair(x0[j], x1[j], tc[j].bin(2, ignore), w0, w1).loss;
            }
        }
    }
    finish_tile(&lv, n, k0, loss, acc);
}

/// Negative log-likelihood over block `b` (the input holds log-probabilities).
pub(crate) fn nll<T: Float, L: Label>(
    x: &[T],
    target: &[L],
    p: &IndexParams<'_, T>,
    b: Block,
    up: Upstream<'_, T>,
    mut grad: Option<ClassOut<'_, T>>,
    loss: &mut [T],
) -> f64 {
    let (cs, classes) = (p.class_stride, p.classes);
    // Strided positions write their gradient a tile of lanes per class (vector stores), not
    // one position's classes at a time.
    let lanes = b.lane_stride == 1 && cs != 1 && classes < u32::MAX as usize;
    let mut sum = 0.0;
    for k in 0..b.len {
        let pos = b.p0 + k;
        let Some(t) = class_of(target[pos], p.ignore_index) else {
            if !lanes {
                ignored(k, classes, &mut grad, loss);
            } else if !loss.is_empty() {
                loss[k] = T::ZERO;
            }
            continue;
        };
        let wt = p.w(t);
        let l = -(x[b.at(t, k, cs)] * wt);
        sum += l.to_f64();
        if !loss.is_empty() {
            loss[k] = l;
        }
        if let (Some(g), false) = (&mut grad, lanes) {
            let gt = -(wt * up.at(pos));
            for c in 0..classes {
                g.set(c, k, if c == t { gt } else { T::ZERO });
            }
        }
    }
    if let (Some(g), true) = (&mut grad, lanes) {
        for k0 in (0..b.len).step_by(TILE) {
            let n = TILE.min(b.len - k0);
            // Per lane: the target class (`classes` if ignored) and `-w_t go`.
            let (mut tc, mut d) = ([classes as u32; TILE], [T::ZERO; TILE]);
            for j in 0..n {
                let pos = b.p0 + k0 + j;
                if let Some(t) = class_of(target[pos], p.ignore_index) {
                    (tc[j], d[j]) = (t as u32, -(p.w(t) * up.at(pos)));
                }
            }
            for c in 0..classes {
                let (gs, cc) = (&mut g.lanes(c)[k0..k0 + n], c as u32);
                for j in 0..n {
                    gs[j] = if tc[j] == cc { d[j] } else { T::ZERO };
                }
            }
        }
    }
    sum
}

/// Cross-entropy with probability targets `y` (input-shaped) over block `b`; returns the sum
/// of the losses. Laid out like [`cross_entropy`]: strided positions in tiles, rows of at most
/// `SMALL` classes through scratch tiles (of `x`, `y` and the gradient), longer rows one at a
/// time in `TILE` lanes. With `A = sum_c w_c y'_c (x_c - m)`, `wy = sum_c w_c y'_c` and
/// `s = sum_c e^(x_c - m)`: `l = -(A - wy ln s)`, `dl/dx_c = go (e^(x_c - m) wy / s - w_c y'_c)`.
#[inline(always)]
pub(crate) fn cross_entropy_probs<T: Float>(
    x: &[T],
    y: &[T],
    p: &IndexParams<'_, T>,
    b: Block,
    up: Upstream<'_, T>,
    mut grad: Option<ClassOut<'_, T>>,
    loss: &mut [T],
) -> f64 {
    let classes = p.classes;
    let mut acc = [0.0f64; TILE];
    let mut go = [T::ZERO; TILE];
    let mut lv = [T::ZERO; TILE];
    if b.lane_stride == 1 && p.class_stride != 1 {
        for k0 in (0..b.len).step_by(TILE) {
            let n = TILE.min(b.len - k0);
            upstream(up, b.p0 + k0, n, &mut go);
            let (xt, yt) = (&x[b.base + k0..], &y[b.base + k0..]);
            probs_tile(xt, yt, p, p.class_stride, &go, n, &mut grad, k0, &mut lv);
            finish_tile(&lv, n, k0, loss, &mut acc);
        }
    } else if (1..=SMALL).contains(&classes) {
        let (mut xs, mut ys, mut gs) = ([T::ZERO; SMALL * TILE], [T::ZERO; SMALL * TILE], [T::ZERO; SMALL * TILE]);
        for k0 in (0..b.len).step_by(TILE) {
            let n = TILE.min(b.len - k0);
            upstream(up, b.p0 + k0, n, &mut go);
            to_columns(&x[b.base + k0 * classes..][..n * classes], &mut xs, classes);
            to_columns(&y[b.base + k0 * classes..][..n * classes], &mut ys, classes);
            let mut sg = grad.is_some().then(|| Scratch(&mut gs[..]));
            probs_tile(&xs, &ys, p, TILE, &go, n, &mut sg, 0, &mut lv);
            finish_tile(&lv, n, k0, loss, &mut acc);
            if let Some(g) = &mut grad {
                from_columns(&gs, g.rows(k0, n), classes);
            }
        }
    } else {
        for k in 0..b.len {
            let (row, yr) = (&x[b.base + k * classes..][..classes], &y[b.base + k * classes..][..classes]);
            let l = match &mut grad {
                Some(g) => probs_row(row, yr, p, up.at(b.p0 + k), g.row(k)),
                None => probs_row(row, yr, p, T::ZERO, &mut []),
            };
            if !loss.is_empty() {
                loss[k] = l;
            }
            acc[0] += l.to_f64();
        }
    }
    acc.iter().sum()
}

/// The upstream gradients of positions `p0..p0 + n` into `go`.
#[inline(always)]
fn upstream<T: Float>(up: Upstream<'_, T>, p0: usize, n: usize, go: &mut [T; TILE]) {
    match up {
        Upstream::All(g) => go[..n].fill(g),
        Upstream::Each(g) => go[..n].copy_from_slice(&g[p0..][..n]),
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

/// `n` positions of [`cross_entropy_probs`], `x` and `y` from the tile's first with classes
/// `cs` apart, upstream gradients `go`; the losses into `lv`.
#[allow(clippy::too_many_arguments)] // reason: the kernel's arguments and the tile's place
#[inline(always)]
fn probs_tile<T: Float, G: Lanes<T>>(
    x: &[T],
    y: &[T],
    p: &IndexParams<'_, T>,
    cs: usize,
    go: &[T; TILE],
    n: usize,
    grad: &mut Option<G>,
    k0: usize,
    lv: &mut [T; TILE],
) {
    let mut m = [T::NEG_INFINITY; TILE];
    for c in 0..p.classes {
        let xs = &x[c * cs..][..n];
        for j in 0..n {
            m[j] = if xs[j] > m[j] { xs[j] } else { m[j] }; // as in `row_max`
        }
    }
    let (mut s, mut a, mut wy) = ([T::ZERO; TILE], [T::ZERO; TILE], [T::ZERO; TILE]);
    for c in 0..p.classes {
        let (xs, ys, wc) = (&x[c * cs..][..n], &y[c * cs..][..n], p.w(c));
        let mut none: [T; 0] = [];
        let gs: &mut [T] = match grad {
            Some(g) => &mut g.lanes(c)[k0..k0 + n],
            None => &mut none,
        };
        for j in 0..n {
            let d = xs[j] - m[j];
            let e = d.exp_fast();
            if !gs.is_empty() {
                gs[j] = e;
            }
            s[j] += e;
            let wyc = wc * smoothed(p, ys[j]);
            a[j] += wyc * d;
            wy[j] += wyc;
        }
    }
    for j in 0..n {
        lv[j] = -(a[j] - wy[j] * s[j].ln_fast());
    }
    if let Some(g) = grad {
        let mut r = [T::ZERO; TILE];
        for j in 0..n {
            r[j] = go[j] * wy[j] / s[j];
        }
        for c in 0..p.classes {
            let (ys, wc, gs) = (&y[c * cs..][..n], p.w(c), &mut g.lanes(c)[k0..k0 + n]);
            for j in 0..n {
                gs[j] = gs[j] * r[j] - go[j] * (wc * smoothed(p, ys[j]));
            }
        }
    }
}

/// One row of [`cross_entropy_probs`] (contiguous classes), its gradient into `g` if not
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
