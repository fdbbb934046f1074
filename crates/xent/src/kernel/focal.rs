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

use super::binary::{pow_zero, sigmoid};
use super::block::{Block, ClassOut, Lanes, Upstream};
use super::simd::Kernel;
use super::tile::{add_exp, drive_stored, lane_max, Tile, TileKernel, TILE};
use crate::float::{Element, Float, Targets};
use std::hint::select_unpredictable;

/// The alpha term of the focal loss. With the `serde` feature: `null`, a number, or a list.
#[derive(Debug, Clone, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(untagged))]
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

impl<T: Float> FocalParams<'_, T> {
    #[inline(always)]
    fn w(&self, c: usize) -> T {
        self.weight.map_or(T::ONE, |w| w[c - self.first])
    }
}

/// What the focal kernel reads: the scores (stored in `S`, the maths in `S::Math`), the
/// targets, the options, the block, and the upstream gradient (`None`: no gradient; `Each`: per
/// element of the `[N, C', d..]` output; `PerSample`: per sample).
pub(crate) struct FocalData<'a, S: Element> {
    pub x: &'a [S],
    pub target: Targets<'a>,
    pub o: &'a FocalParams<'a, S::Math>,
    pub b: Block,
    pub up: Option<Upstream<'a, S::Math>>,
}

impl<S: Element> Clone for FocalData<'_, S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S: Element> Copy for FocalData<'_, S> {}

/// The focal loss over one block: the gradient (into `grad`, stored in the scores' type, if
/// given) and the class-shaped loss (into `loss`, if given); adds the losses of each sample the
/// block touches to `sums`, from the block's first sample. Strided positions go `TILE` at a
/// time (softmax through the tile driver, sigmoid by [`sigmoid_strided`]), with softmax also
/// rows of at most `SMALL` classes through the driver's scratch tile; the rest one position at
/// a time. Half scores are read and the gradient rounded as
/// [`drive_stored`](super::tile::drive_stored) does (sigmoid: widened a tile at a time).
pub(crate) struct Focal<'a, S: Element> {
    pub d: FocalData<'a, S>,
    pub grad: Option<ClassOut<'a, S>>,
    pub loss: Option<ClassOut<'a, S::Math>>,
    pub sums: &'a mut [f64],
}

impl<S: Element<Math = T>, T: Float> Kernel for Focal<'_, S> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let Focal { d, mut grad, mut loss, sums } = self;
        let o = d.o;
        if !o.softmax && o.classes >= 2 && d.b.lane_stride == 1 {
            return sigmoid_strided(d, grad, loss, sums);
        }
        if o.softmax && o.classes >= 2 && (grad.is_none() || loss.is_none()) {
            let shape = (o.class_stride, o.classes);
            let mut k = FocalTiles { d, grad: grad.is_some(), sums };
            return match (grad.as_mut(), loss.as_mut()) {
                (Some(g), _) => drive_stored(&mut k, (d.x, &[]), d.b, shape, Some(g)),
                (None, l) => drive_stored(&mut k, (d.x, &[]), d.b, shape, l),
            };
        }
        for k in 0..d.b.len {
            position(&d, k, grad.as_mut(), loss.as_mut(), sums);
        }
    }
}

/// The softmax focal loss with one output (the gradient if `grad`, else the class-shaped
/// loss) as the tile driver runs it. The driver hands the tiles their scores in the maths type;
/// rows go [`position`] by position from the stored scores.
struct FocalTiles<'s, 'a, S: Element> {
    d: FocalData<'a, S>,
    grad: bool,
    sums: &'s mut [f64],
}

impl<S: Element<Math = T>, T: Float> TileKernel<T> for FocalTiles<'_, '_, S> {
    const PAIRED: bool = false;

    /// Strided positions (`inner > 1`) all lie in one sample; rows (`inner == 1`) are a sample
    /// each.
    #[inline(always)]
    fn tile<I: Element<Math = T>, G: Lanes<T>>(&mut self, x: &[I], _: &[I], t: Tile, out: Option<&mut G>) {
        let (o, b, n) = (self.d.o, self.d.b, t.n);
        let lab = self.d.target.lanes(o.ignore_index, b.p0 + t.k0, n);
        if o.inner > 1 {
            let (n0, j0) = (b.p0 / o.inner, b.p0 % o.inner);
            let u = upstream(o, self.d.up, &lab, n, (n0, 0), (j0 + t.k0, 1));
            // A full tile as its own copy, with the lane count a constant.
            let lt = if n == TILE {
                softmax_tile(x, Tile { n: TILE, ..t }, &lab, o, &u, out, self.grad)
            } else {
                softmax_tile(x, t, &lab, o, &u, out, self.grad)
            };
            for &l in &lt[..n] {
                self.sums[0] += l.to_f64();
            }
        } else {
            let u = upstream(o, self.d.up, &lab, n, (b.p0 + t.k0, 1), (0, 0));
            let lt = softmax_tile(x, t, &lab, o, &u, out, self.grad);
            for (s, &l) in self.sums[t.k0..t.k0 + n].iter_mut().zip(&lt[..n]) {
                *s += l.to_f64();
            }
        }
    }

    #[inline(always)]
    fn row(&mut self, _: &[T], _: &[T], _: &Block, k: usize, out: Option<&mut ClassOut<'_, T>>) {
        let (grad, loss) = if self.grad { (out, None) } else { (None, out) };
        position(&self.d, k, grad, loss, self.sums);
    }
}

/// Position `k` of the block, one at a time, with libm's `exp`, `ln` and `powf`; the gradient
/// stored in `G` (the scores' type, or the maths type of the driver's scratch).
#[inline(always)]
fn position<S: Element<Math = T>, T: Float, G: Element<Math = T>>(
    d: &FocalData<'_, S>,
    k: usize,
    mut grad: Option<&mut ClassOut<'_, G>>,
    mut loss: Option<&mut ClassOut<'_, T>>,
    sums: &mut [f64],
) {
    let (o, b, up) = (d.o, d.b, d.up);
    let cs = o.class_stride;
    let ci = o.classes - o.first;
    let n0 = b.p0 / o.inner;
    let g = o.gamma;
    let two = T::from_f64(2.0);
    let pos = b.p0 + k;
    let (n, j) = (pos / o.inner, pos % o.inner);
    let t = match d.target.lanes(o.ignore_index, pos, 1)[0] {
        u32::MAX => None,
        t => Some(t as usize),
    };
    let Some(t) = t else {
        // Ignored: loss and gradient stay 0.
        for c in 0..o.classes {
            if let Some(gr) = &mut grad {
                gr.set(c, k, G::narrow(T::ZERO));
            }
            if let Some(l) = &mut loss {
                l.set(c, k, T::ZERO);
            }
        }
        return;
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
        Some(Upstream::Each(go)) => go[(n * ci + c - o.first) * o.inner + j],
        Some(Upstream::PerSample(s)) => s[n],
        Some(Upstream::All(g)) => g,
        None => T::ZERO,
    };
    let mut total = 0.0;
    if let Some(gr) = &mut grad {
        for c in 0..o.first {
            gr.set(c, k, G::narrow(T::ZERO));
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
            m = m.max_nan(d.x[b.at(c, k, cs)].widen());
        }
        let mut s = T::ZERO;
        for c in o.first..o.classes {
            s += (d.x[b.at(c, k, cs)].widen() - m).exp();
        }
        let lse = s.ln();
        // Only the target class has a loss (when it is included).
        let (lt, dls) = if t >= o.first && t < o.classes {
            let ls = (d.x[b.at(t, k, cs)].widen() - m) - lse;
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
                let q = ((d.x[b.at(c, k, cs)].widen() - m) - lse).exp();
                // Only the target class has a loss; with one class the label may be 1,
                // which has no channel (its loss and gradient are 0).
                let tc = t.clamp(o.first, o.classes - 1);
                gr.set(c, k, G::narrow((hot(c) - q) * dls * upat(tc)));
            }
        }
    } else {
        for c in o.first..o.classes {
            let (xi, ti) = (d.x[b.at(c, k, cs)].widen(), hot(c));
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
                gr.set(c, k, G::narrow(a * d * upat(c)));
            }
        }
    }
    sums[n - n0] += total;
}

/// Per lane, the upstream gradient of the loss of its target class (0 if ignored): lane `j`
/// is sample `s0 + ds j`, inner position `i0 + di j`.
#[inline(always)]
fn upstream<T: Float>(
    o: &FocalParams<'_, T>,
    up: Option<Upstream<'_, T>>,
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
            Upstream::All(g) => g,
            Upstream::Each(go) => {
                // Only the target class has a loss (clamped as in the position loop).
                let tc = (lab[j] as usize).clamp(o.first, o.classes - 1);
                go[(sample * ci + tc - o.first) * o.inner + i0 + di * j]
            }
            Upstream::PerSample(s) => s[sample],
        };
    }
    u
}

/// Softmax focal loss of a tile's positions as lanes: the
/// lanes' maxima over the included classes (picking the target's logit and `alpha weight` as
/// its class goes by), `ln sum e^(x - m)`, then per lane `ls_t`, `q_t = e^ls_t`,
/// `(1 - q_t)^gamma = e^(gamma ln(1 - q_t))` and `(1 - q_t)^(gamma - 1)` as that over
/// `1 - q_t` (`0^(gamma - 1)` where `q_t = 1`). Writes the gradient (`grad`; each class's
/// `e^(x - m)` kept in its lanes by the sum pass, so `q = e / s` there) or the class-shaped loss
/// into `out`'s lanes if given; returns the losses.
#[inline(always)]
fn softmax_tile<I: Element<Math = T>, T: Float, G: Lanes<T>>(
    x: &[I],
    t: Tile,
    lab: &[u32; TILE],
    o: &FocalParams<'_, T>,
    up: &[T; TILE],
    mut out: Option<&mut G>,
    grad: bool,
) -> [T; TILE] {
    let (cs, n, k0) = (t.cs, t.n, t.at);
    let (first, classes, g) = (o.first, o.classes, o.gamma);
    let mut m = [T::NEG_INFINITY; TILE];
    // The target's logit and factor, picked as sums (one class adds; see `row_max`).
    let mut xt = [T::ZERO; TILE];
    let mut fa = [T::ZERO; TILE];
    for c in first..classes {
        let xs = &x[c * cs..][..n];
        let fc = o.alpha_pos.map_or(T::ONE, |a| a[c - first]) * o.w(c);
        for j in 0..n {
            let v = xs[j].widen();
            m[j] = lane_max(v, m[j]); // NaN skipped: it reaches the sum
            let hit = lab[j] == c as u32;
            xt[j] += select_unpredictable(hit, v, T::ZERO);
            fa[j] += select_unpredictable(hit, fc, T::ZERO);
        }
    }
    // The sums of e^(x - m); for the gradient each e is kept in its output lane.
    let mut lse = [T::ZERO; TILE];
    for c in first..classes {
        let ol = out.as_mut().filter(|_| grad).map(|o| &mut o.lanes(c)[k0..k0 + n]);
        add_exp(&x[c * cs..][..n], &m, &mut lse, ol);
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
        // Lanes whose target is ignored or excluded keep no loss (their xt is 0: they take
        // `m` instead, so that `ls <= 0` there too).
        let inc = lab[j] >= first as u32 && lab[j] < classes as u32;
        let ls = (select_unpredictable(inc, xt[j], m[j]) - m[j]) - lse[j];
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
/// gradient's `sigmoid(x)` and `sigmoid(-z)`. Half scores are widened a class's lanes at a time
/// into a tile on the stack, and their gradient rounded from one.
#[inline(always)]
fn sigmoid_strided<'a, S: Element<Math = T>, T: Float>(
    d: FocalData<'_, S>,
    mut grad: Option<ClassOut<'a, S>>,
    mut loss: Option<ClassOut<'a, T>>,
    sums: &mut [f64],
) {
    let (x, target, o, b, up) = (d.x, d.target, d.o, d.b, d.up);
    let (n0, j0) = (b.p0 / o.inner, b.p0 % o.inner);
    let (g, two) = (o.gamma, T::from_f64(2.0));
    let ci = o.classes - o.first;
    let (mut lv, mut gv, mut ub, mut xw) = ([T::ZERO; TILE], [T::ZERO; TILE], [T::ZERO; TILE], [T::ZERO; TILE]);
    for k0 in (0..b.len).step_by(TILE) {
        let n = TILE.min(b.len - k0);
        let lab = target.lanes(o.ignore_index, b.p0 + k0, n);
        let mut tot = [0.0f64; TILE];
        for c in 0..o.first {
            if let Some(out) = &mut grad {
                out.lanes(c)[k0..k0 + n].fill(S::narrow(T::ZERO));
            }
            if let Some(out) = &mut loss {
                out.lanes(c)[k0..k0 + n].fill(T::ZERO);
            }
        }
        for c in o.first..o.classes {
            let xs = &x[b.base + c * o.class_stride + k0..][..n];
            let xs = match S::as_math(xs) {
                Some(xs) => xs,
                None => {
                    S::widen_slice(xs, &mut xw[..n]);
                    &xw[..n]
                }
            };
            match up {
                Some(Upstream::Each(go)) => {
                    ub[..n].copy_from_slice(&go[(n0 * ci + c - o.first) * o.inner + j0 + k0..][..n])
                }
                Some(Upstream::PerSample(s)) => ub[..n].fill(s[n0]),
                Some(Upstream::All(g)) => ub[..n].fill(g),
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
                (true, true) => sigmoid_lanes::<T, true, true>(xs, (&lab, c32), (g, pos, neg), &ub, (l, gl)),
                (true, false) => sigmoid_lanes::<T, true, false>(xs, (&lab, c32), (g, pos, neg), &ub, (l, gl)),
                (false, true) => sigmoid_lanes::<T, false, true>(xs, (&lab, c32), (g, pos, neg), &ub, (l, gl)),
                (false, false) => sigmoid_lanes::<T, false, false>(xs, (&lab, c32), (g, pos, neg), &ub, (l, gl)),
            }
            for j in 0..n {
                tot[j] += lv[j].to_f64();
            }
            if let Some(out) = &mut grad {
                S::narrow_slice(&gv[..n], &mut out.lanes(c)[k0..k0 + n]);
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
#[inline(always)]
fn sigmoid_lanes<T: Float, const SQUARE: bool, const GRAD: bool>(
    xs: &[T],
    (lab, c): (&[u32; TILE], u32),
    (g, pos, neg): (T, T, T),
    ub: &[T; TILE],
    (lv, gv): (&mut [T], &mut [T]),
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
