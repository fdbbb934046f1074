//! MONAI's focal loss over one block, forward fused with backward.
//!
//! With the one-hot target `t` over the included classes, class weight `cw_c` and alpha factor
//! `a`:
//! ```text
//! softmax: ls = log_softmax over the included classes, q_c = e^(ls_c)
//!   l_c   = -a_c cw_c (1 - q_c)^gamma ls_c t_c
//!   dl/dls_t = -a_t cw_t ((1 - q_t)^gamma - gamma (1 - q_t)^(gamma-1) q_t ls_t),
//!   dx_c  = ([c = t] - q_c) dl/dls_t
//! sigmoid: z = x (1 - 2t), m = e^(gamma ln sigmoid(z)) = sigmoid(z)^gamma
//!   ce    = x - x t - ln sigmoid(x)
//!   l     = a cw m ce
//!   dl/dx = a cw ((sigmoid(x) - t) m + ce m gamma sigmoid(-z) (1 - 2t))
//! ```
//! Strided positions go `TILE` at a time as vector lanes (with softmax also rows of at most
//! `SMALL` classes, through a class-major scratch tile), with the vectorisable `exp` and `ln`:
//! softmax's `(1 - q)^gamma = e^(gamma ln(1 - q))` and `(1 - q)^(gamma - 1)` as that over
//! `1 - q` (`0^(gamma - 1)` where `q = 1`); sigmoid's `m` from one `e^-|x|` and one
//! `ln(1 + e^-|x|)` shared by both log-sigmoids. Other blocks go a position at a time.
//!
//! Alpha: a scalar gives `[1 - alpha, alpha, alpha, ...]` per class with softmax and
//! `alpha t + (1 - alpha)(1 - t)` with sigmoid; a vector gives `alpha_c` (with sigmoid, on
//! positives only).

use crate::float::{Float, Label};
use crate::kernel::binary::{pow_zero, sigmoid};
use crate::kernel::tile::{from_columns, labels, to_columns, Lanes, Scratch, SMALL, TILE};
use crate::par::{Block, ClassOut};
use crate::validate::class_of;

/// The alpha term of the focal loss.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum FocalAlpha<T> {
    /// No alpha term (MONAI's default).
    #[default]
    None,
    /// One value: the weight of the foreground classes (see the module docs).
    Scalar(f64),
    /// One value per included class.
    PerClass(Vec<T>),
}

/// What the kernel needs besides the data.
#[derive(Debug, Clone)]
pub(crate) struct FocalParams<'a, T> {
    pub classes: usize,
    pub class_stride: usize,
    pub inner: usize,
    pub first: usize,
    pub softmax: bool,
    pub gamma: T,
    /// Per included class: the softmax alpha factor, or the sigmoid alpha on positives.
    pub alpha_pos: Option<&'a [T]>,
    /// Sigmoid, scalar alpha: the factor of negatives (`1 - alpha`).
    pub alpha_neg: Option<T>,
    pub weight: Option<&'a [T]>,
    pub ignore_index: Option<i64>,
}

/// Upstream gradient: per element of the `[N, C', d..]` output, or per sample.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FocalUp<'a, T> {
    Each(&'a [T]),
    PerSample(&'a [T]),
}

impl<T: Float> FocalParams<'_, T> {
    #[inline(always)]
    fn w(&self, c: usize) -> T {
        self.weight.map_or(T::ONE, |w| w[c - self.first])
    }
}

/// Loss (into `loss`, class-shaped, if given) and gradient (into `grad`, if given) of block
/// `b`; adds the losses of each sample the block touches to `sums`, from the block's first
/// sample. Strided positions go `TILE` at a time (softmax: [`softmax_tile`]; sigmoid:
/// [`sigmoid_strided`]), with softmax also rows of at most `SMALL` classes through a
/// class-major scratch tile; the rest one position at a time.
#[allow(clippy::too_many_arguments)] // reason: data, target, options, block, upstream, outputs, sums
#[inline(always)]
pub(crate) fn focal<T: Float, L: Label>(
    x: &[T],
    target: &[L],
    o: &FocalParams<'_, T>,
    b: Block,
    up: Option<FocalUp<'_, T>>,
    mut grad: Option<ClassOut<'_, T>>,
    mut loss: Option<ClassOut<'_, T>>,
    sums: &mut [f64],
) {
    let cs = o.class_stride;
    let ci = o.classes - o.first;
    let n0 = b.p0 / o.inner;
    let g = o.gamma;
    let two = T::from_f64(2.0);
    if !o.softmax && o.classes >= 2 && b.lane_stride == 1 {
        return sigmoid_strided(x, target, o, b, up, grad, loss, sums);
    }
    if o.softmax && o.classes >= 2 && (grad.is_none() || loss.is_none()) {
        let is_grad = grad.is_some();
        if b.lane_stride == 1 {
            return softmax_strided(x, target, o, b, up, grad.or(loss), is_grad, sums);
        }
        if o.classes <= SMALL {
            return softmax_rows(x, target, o, b, up, grad.or(loss), is_grad, sums);
        }
    }
    for k in 0..b.len {
        let pos = b.p0 + k;
        let (n, j) = (pos / o.inner, pos % o.inner);
        let t = match o.ignore_index {
            Some(ii) => class_of(target[pos], ii),
            None => Some(target[pos].to_i128() as usize),
        };
        let Some(t) = t else {
            // Ignored: loss and gradient stay 0.
            for c in 0..o.classes {
                if let Some(gr) = &mut grad {
                    gr.set(c, k, T::ZERO);
                }
                if let Some(l) = &mut loss {
                    l.set(c, k, T::ZERO);
                }
            }
            continue;
        };
        let hot = |c: usize| {
            if o.classes == 1 {
                T::from_f64(t as f64)
            } else if c == t {
                T::ONE
            } else {
                T::ZERO
            }
        };
        let upat = |c: usize| match up {
            Some(FocalUp::Each(go)) => go[(n * ci + c - o.first) * o.inner + j],
            Some(FocalUp::PerSample(s)) => s[n],
            None => T::ZERO,
        };
        let mut total = 0.0;
        if let Some(gr) = &mut grad {
            for c in 0..o.first {
                gr.set(c, k, T::ZERO);
            }
        }
        if let Some(l) = &mut loss {
            for c in 0..o.first {
                l.set(c, k, T::ZERO);
            }
        }
        if o.softmax {
            let mut m = T::NEG_INFINITY;
            for c in o.first..o.classes {
                m = m.max_nan(x[b.at(c, k, cs)]);
            }
            let mut s = T::ZERO;
            for c in o.first..o.classes {
                s += (x[b.at(c, k, cs)] - m).exp();
            }
            let lse = s.ln();
            // Only the target class has a loss (when it is included).
            let (lt, dls) = if t >= o.first && t < o.classes {
                let ls = (x[b.at(t, k, cs)] - m) - lse;
                let q = ls.exp();
                let a = o.alpha_pos.map_or(T::ONE, |a| a[t - o.first]) * o.w(t);
                let mq = (T::ONE - q).powf(g);
                let mut d = mq;
                if g != T::ZERO {
                    d -= g * (T::ONE - q).powf(g - T::ONE) * q * ls;
                }
                (-(mq * ls) * a, -(a * d))
            } else {
                (T::ZERO, T::ZERO)
            };
            total += lt.to_f64();
            for c in o.first..o.classes {
                if let Some(l) = &mut loss {
                    l.set(c, k, if c == t { lt } else { T::ZERO });
                }
                if let Some(gr) = &mut grad {
                    let q = ((x[b.at(c, k, cs)] - m) - lse).exp();
                    // Only the target class has a loss; with one class the label may be 1,
                    // which has no channel (its loss and gradient are 0).
                    let tc = t.clamp(o.first, o.classes - 1);
                    gr.set(c, k, (hot(c) - q) * dls * upat(tc));
                }
            }
        } else {
            for c in o.first..o.classes {
                let (xi, ti) = (x[b.at(c, k, cs)], hot(c));
                let z = xi * (T::ONE - two * ti);
                let lsz = z.min(T::ZERO) - (-z.abs()).exp().ln_1p();
                let mm = (g * lsz).exp();
                let lsx = xi.min(T::ZERO) - (-xi.abs()).exp().ln_1p();
                let ce = xi - xi * ti - lsx;
                let a = match (o.alpha_pos, o.alpha_neg) {
                    (Some(a), Some(neg)) => ti * a[c - o.first] + (T::ONE - ti) * neg,
                    (Some(a), None) => {
                        if ti == T::ONE {
                            a[c - o.first]
                        } else {
                            T::ONE
                        }
                    }
                    _ => T::ONE,
                } * o.w(c);
                let l = a * (mm * ce);
                total += l.to_f64();
                if let Some(lo) = &mut loss {
                    lo.set(c, k, l);
                }
                if let Some(gr) = &mut grad {
                    let mut d = (sigmoid(xi) - ti) * mm;
                    if g != T::ZERO {
                        d += ce * mm * g * sigmoid(-z) * (T::ONE - two * ti);
                    }
                    gr.set(c, k, a * d * upat(c));
                }
            }
        }
        sums[n - n0] += total;
    }
}

/// Softmax focal loss of a strided block (`inner > 1`, positions consecutive): `TILE`
/// positions at a time, all in one sample.
#[allow(clippy::too_many_arguments)] // reason: `focal`'s arguments, the two outputs as one
#[inline(always)]
fn softmax_strided<T: Float, L: Label>(
    x: &[T],
    target: &[L],
    o: &FocalParams<'_, T>,
    b: Block,
    up: Option<FocalUp<'_, T>>,
    mut out: Option<ClassOut<'_, T>>,
    grad: bool,
    sums: &mut [f64],
) {
    let (n0, j0) = (b.p0 / o.inner, b.p0 % o.inner);
    for k0 in (0..b.len).step_by(TILE) {
        let n = TILE.min(b.len - k0);
        let lab = labels(o.ignore_index, target, b.p0 + k0, n);
        let u = upstream(o, up, &lab, n, (n0, 0), (j0 + k0, 1));
        let xt = &x[b.base + k0..];
        let lt = if n == TILE {
            softmax_tile(xt, o.class_stride, &lab, TILE, o, &u, out.as_mut(), grad, k0)
        } else {
            softmax_tile(xt, o.class_stride, &lab, n, o, &u, out.as_mut(), grad, k0)
        };
        for &l in &lt[..n] {
            sums[0] += l.to_f64();
        }
    }
}

/// Softmax focal loss of a block of rows (`inner == 1`, each row a sample) of at most `SMALL`
/// classes: `TILE` rows at a time through a class-major scratch tile.
#[allow(clippy::too_many_arguments)] // reason: `focal`'s arguments, the two outputs as one
#[inline(always)]
fn softmax_rows<T: Float, L: Label>(
    x: &[T],
    target: &[L],
    o: &FocalParams<'_, T>,
    b: Block,
    up: Option<FocalUp<'_, T>>,
    mut out: Option<ClassOut<'_, T>>,
    grad: bool,
    sums: &mut [f64],
) {
    let classes = o.classes;
    let (mut xs, mut os) = ([T::ZERO; SMALL * TILE], [T::ZERO; SMALL * TILE]);
    for k0 in (0..b.len).step_by(TILE) {
        let n = TILE.min(b.len - k0);
        to_columns(&x[b.base + k0 * classes..][..n * classes], &mut xs, classes);
        let lab = labels(o.ignore_index, target, b.p0 + k0, n);
        let u = upstream(o, up, &lab, n, (b.p0 + k0, 1), (0, 0));
        let mut scratch = Scratch(&mut os);
        let lt = softmax_tile(&xs, TILE, &lab, n, o, &u, out.is_some().then_some(&mut scratch), grad, 0);
        if let Some(out) = &mut out {
            from_columns(&os, out.rows(k0, n), classes);
        }
        for (s, &l) in sums[k0..k0 + n].iter_mut().zip(&lt[..n]) {
            *s += l.to_f64();
        }
    }
}

/// Per lane, the upstream gradient of the loss of its target class (0 if ignored): lane `j`
/// is sample `s0 + ds j`, inner position `i0 + di j`.
#[inline(always)]
fn upstream<T: Float>(
    o: &FocalParams<'_, T>,
    up: Option<FocalUp<'_, T>>,
    lab: &[u32; TILE],
    n: usize,
    (s0, ds): (usize, usize),
    (i0, di): (usize, usize),
) -> [T; TILE] {
    let mut u = [T::ZERO; TILE];
    let Some(up) = up else { return u };
    let ci = o.classes - o.first;
    for j in 0..n {
        if lab[j] == u32::MAX {
            continue;
        }
        let sample = s0 + ds * j;
        u[j] = match up {
            FocalUp::Each(go) => {
                // Only the target class has a loss (clamped as in the position loop).
                let tc = (lab[j] as usize).clamp(o.first, o.classes - 1);
                go[(sample * ci + tc - o.first) * o.inner + i0 + di * j]
            }
            FocalUp::PerSample(s) => s[sample],
        };
    }
    u
}

/// Softmax focal loss of `n <= TILE` positions as lanes, classes `cs` apart from `x`: the
/// lanes' maxima over the included classes (picking the target's logit and `alpha weight` as
/// its class goes by), `ln sum e^(x - m)`, then per lane `ls_t`, `q_t = e^ls_t`,
/// `(1 - q_t)^gamma = e^(gamma ln(1 - q_t))` and `(1 - q_t)^(gamma - 1)` as that over
/// `1 - q_t` (`0^(gamma - 1)` where `q_t = 1`). Writes the gradient (`grad`; each class's
/// `e^(x - m)` kept in its lanes by the sum pass, so `q = e / s` there) or the class-shaped loss
/// into `out`'s lanes `k0..k0 + n` if given; returns the losses.
#[allow(clippy::too_many_arguments)] // reason: data, labels, options, upstream, output and where
#[inline(always)]
fn softmax_tile<T: Float, G: Lanes<T>>(
    x: &[T],
    cs: usize,
    lab: &[u32; TILE],
    n: usize,
    o: &FocalParams<'_, T>,
    up: &[T; TILE],
    mut out: Option<&mut G>,
    grad: bool,
    k0: usize,
) -> [T; TILE] {
    let (first, classes, g) = (o.first, o.classes, o.gamma);
    let mut m = [T::NEG_INFINITY; TILE];
    let mut xt = [T::NEG_INFINITY; TILE];
    let mut fa = [T::ZERO; TILE];
    for c in first..classes {
        let xs = &x[c * cs..][..n];
        let fc = o.alpha_pos.map_or(T::ONE, |a| a[c - first]) * o.w(c);
        for j in 0..n {
            m[j] = if xs[j] > m[j] { xs[j] } else { m[j] }; // NaN skipped: it reaches the sum
            let hit = lab[j] == c as u32;
            xt[j] = if hit { xs[j] } else { xt[j] };
            fa[j] = if hit { fc } else { fa[j] };
        }
    }
    // The sums of e^(x - m); for the gradient each e is kept in its output lane.
    let mut lse = [T::ZERO; TILE];
    for c in first..classes {
        let xs = &x[c * cs..][..n];
        match out.as_mut() {
            Some(o) if grad => {
                let ol = &mut o.lanes(c)[k0..k0 + n];
                for j in 0..n {
                    let e = (xs[j] - m[j]).exp_fast();
                    ol[j] = e;
                    lse[j] += e;
                }
            }
            _ => {
                for j in 0..n {
                    lse[j] += (xs[j] - m[j]).exp_fast();
                }
            }
        }
    }
    let mut rs = [T::ZERO; TILE];
    if grad {
        for j in 0..n {
            rs[j] = T::ONE / lse[j];
        }
    }
    for v in &mut lse[..n] {
        *v = v.ln_fast();
    }
    // Where q_t = 1: 0^(gamma - 1).
    let zero_pow = pow_zero(g - T::ONE);
    let (mut lt, mut dls) = ([T::ZERO; TILE], [T::ZERO; TILE]);
    for j in 0..n {
        // Lanes whose target is ignored or excluded keep no loss (xt = -inf there).
        let inc = lab[j] >= first as u32 && lab[j] < classes as u32;
        let ls = (xt[j] - m[j]) - lse[j];
        let q = ls.exp_fast();
        let r = T::ONE - q;
        let (mq, d) = if g == T::ZERO {
            (T::ONE, T::ONE)
        } else {
            let mq = (g * r.ln_fast()).exp_fast();
            let pm1 = if r > T::ZERO { mq / r } else { zero_pow };
            (mq, mq - g * pm1 * q * ls)
        };
        lt[j] = if inc { -(mq * ls) * fa[j] } else { T::ZERO };
        dls[j] = if inc { -(fa[j] * d) } else { T::ZERO };
    }
    if let Some(out) = out {
        for c in 0..first {
            out.lanes(c)[k0..k0 + n].fill(T::ZERO);
        }
        for c in first..classes {
            let ol = &mut out.lanes(c)[k0..k0 + n];
            if grad {
                for j in 0..n {
                    let q = ol[j] * rs[j]; // e / s
                    let hot = if lab[j] == c as u32 { T::ONE } else { T::ZERO };
                    let d = (hot - q) * dls[j] * up[j];
                    ol[j] = if lab[j] == u32::MAX { T::ZERO } else { d };
                }
            } else {
                for j in 0..n {
                    ol[j] = if lab[j] == c as u32 { lt[j] } else { T::ZERO };
                }
            }
        }
    }
    lt
}

/// Sigmoid focal loss of a strided block (`inner > 1`, at least two classes, so each target
/// is 0 or 1): `TILE` positions at a time, a class at a time, element-wise. One `e^-|x|` and
/// one `ln(1 + e^-|x|)` serve both `ln sigmoid(x)` and `ln sigmoid(z)` (`|z| = |x|`), and the
/// gradient's `sigmoid(x)` and `sigmoid(-z)`.
#[allow(clippy::too_many_arguments)] // reason: `focal`'s arguments
#[inline(always)]
fn sigmoid_strided<'a, T: Float, L: Label>(
    x: &[T],
    target: &[L],
    o: &FocalParams<'_, T>,
    b: Block,
    up: Option<FocalUp<'_, T>>,
    mut grad: Option<ClassOut<'a, T>>,
    mut loss: Option<ClassOut<'a, T>>,
    sums: &mut [f64],
) {
    let (n0, j0) = (b.p0 / o.inner, b.p0 % o.inner);
    let (g, two) = (o.gamma, T::from_f64(2.0));
    let ci = o.classes - o.first;
    let (mut lv, mut gv, mut ub) = ([T::ZERO; TILE], [T::ZERO; TILE], [T::ZERO; TILE]);
    for k0 in (0..b.len).step_by(TILE) {
        let n = TILE.min(b.len - k0);
        let lab = labels(o.ignore_index, target, b.p0 + k0, n);
        let mut tot = [0.0f64; TILE];
        for c in 0..o.first {
            for out in [&mut grad, &mut loss].into_iter().flatten() {
                out.lanes(c)[k0..k0 + n].fill(T::ZERO);
            }
        }
        for c in o.first..o.classes {
            let xs = &x[b.base + c * o.class_stride + k0..][..n];
            match up {
                Some(FocalUp::Each(go)) => {
                    ub[..n].copy_from_slice(&go[(n0 * ci + c - o.first) * o.inner + j0 + k0..][..n])
                }
                Some(FocalUp::PerSample(s)) => ub[..n].fill(s[n0]),
                None => {}
            }
            // alpha t + (1 - alpha)(1 - t) (or alpha on positives only), times the weight.
            let pos = o.alpha_pos.map_or(T::ONE, |a| a[c - o.first]) * o.w(c);
            let neg = match (o.alpha_pos, o.alpha_neg) {
                (Some(_), Some(neg)) => neg,
                _ => T::ONE,
            } * o.w(c);
            let (c32, l, gl) = (c as u32, &mut lv[..n], &mut gv[..n]);
            // One copy of the lane loop per case, so that none computes what it does not need.
            match (g == two, grad.is_some()) {
                (true, true) => sigmoid_lanes::<T, true, true>(xs, &lab, c32, g, (pos, neg), &ub, l, gl),
                (true, false) => sigmoid_lanes::<T, true, false>(xs, &lab, c32, g, (pos, neg), &ub, l, gl),
                (false, true) => sigmoid_lanes::<T, false, true>(xs, &lab, c32, g, (pos, neg), &ub, l, gl),
                (false, false) => sigmoid_lanes::<T, false, false>(xs, &lab, c32, g, (pos, neg), &ub, l, gl),
            }
            for j in 0..n {
                tot[j] += lv[j].to_f64();
            }
            if let Some(out) = &mut grad {
                out.lanes(c)[k0..k0 + n].copy_from_slice(&gv[..n]);
            }
            if let Some(out) = &mut loss {
                out.lanes(c)[k0..k0 + n].copy_from_slice(&lv[..n]);
            }
        }
        for &t in &tot[..n] {
            sums[0] += t;
        }
    }
}

/// [`sigmoid_strided`]'s losses (and with `GRAD` its gradient, by the upstream `ub`) of class
/// `c`'s lanes; `SQUARE`: gamma is 2 (MONAI's default), `m = sigmoid(z)^2` by a multiplication
/// instead of `e^(2 ln sigmoid(z))`.
#[allow(clippy::too_many_arguments)] // reason: the lanes, their labels and class, options, upstream, outputs
#[inline(always)]
fn sigmoid_lanes<T: Float, const SQUARE: bool, const GRAD: bool>(
    xs: &[T],
    lab: &[u32; TILE],
    c: u32,
    g: T,
    (pos, neg): (T, T),
    ub: &[T; TILE],
    lv: &mut [T],
    gv: &mut [T],
) {
    let two = T::from_f64(2.0);
    for j in 0..lv.len() {
        let xi = xs[j];
        let hot = lab[j] == c;
        let ti = if hot { T::ONE } else { T::ZERO };
        let e = (-xi.abs()).exp_fast();
        let l1 = e.ln_1p_unit();
        let z = if hot { -xi } else { xi }; // x (1 - 2t)
                                            // sigmoid(x) and sigmoid(-z) from e = e^-|x| and one division.
        let r1 = if SQUARE || GRAD { T::ONE / (T::ONE + e) } else { T::ZERO };
        let mm = if SQUARE {
            let sz = if z <= T::ZERO { e * r1 } else { r1 }; // sigmoid(z)
            sz * sz
        } else {
            (g * (z.min(T::ZERO) - l1)).exp_fast()
        };
        let ce = xi - xi * ti - (xi.min(T::ZERO) - l1);
        let a = if hot { pos } else { neg };
        let ignored = lab[j] == u32::MAX;
        lv[j] = if ignored { T::ZERO } else { a * (mm * ce) };
        if GRAD {
            let sx = if xi >= T::ZERO { r1 } else { e * r1 };
            let smz = if z <= T::ZERO { r1 } else { e * r1 };
            let mut d = (sx - ti) * mm;
            if g != T::ZERO {
                d += ce * mm * g * smz * (T::ONE - two * ti);
            }
            gv[j] = if ignored { T::ZERO } else { a * d * ub[j] };
        }
    }
}
