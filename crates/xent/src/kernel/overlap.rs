//! Overlap losses (Dice, Jaccard, generalized Dice, Tversky) over one block: the per-class sums
//! they are built from, and the gradient once the sums are known.
//!
//! With `p` the activated scores and `g` the target of a position (the one-hot of a class index,
//! both zero where the target is ignored; or a soft label), each loss is a function of three
//! sums per (group, class):
//! ```text
//! class indices:  tp = sum p g,                     P = sum p^ord,  G = sum g
//! soft labels:    tp = sum (|p| + |g| - |p - g|) / 2, P = sum |p|,  G = sum |g|     (ord 1)
//!                 tp = sum p g,                     P = sum p^2,    G = sum g^2   (ord 2)
//! ```
//! (`ord = 2` for squared_pred; MONAI's soft-label form, which equals the other for 0/1
//! targets), so its gradient with respect to `p` is `A dtp/dp + B dP/dp` with `A = dl/dtp` and
//! `B = dl/dP` per (group, class): `A g + B ord p^(ord-1)` for class indices, and
//! `A (sgn p - sgn(p - g)) / 2 + B sgn p` for soft labels of ord 1. The gradient with respect
//! to the logits follows through the activation (softmax over all classes, or sigmoid).

use super::binary::sigmoid;
use super::block::{Block, ClassOut, Lanes};
use super::simd::Kernel;
use super::softmax::{self, max_sumexp};
use super::tile::{labels, Scratch, SMALL, TILE};
use crate::float::{Float, Label};
use std::hint::select_unpredictable;

crate::error::named!(Activation, "activation", { Softmax => "softmax", Sigmoid => "sigmoid", Identity => "none" });

/// The activation applied to the scores (parsed from and printed as `softmax`, `sigmoid`,
/// `none`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Activation {
    /// Softmax over the class dimension (MONAI's `softmax=True`; skipped for one class).
    #[default]
    Softmax,
    /// Element-wise sigmoid (MONAI's `sigmoid=True`).
    Sigmoid,
    /// None: the input already holds probabilities.
    Identity,
}

/// The target of an overlap loss.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Truth<'a, T, L> {
    /// Class indices `[N, d1..dk]`: the one-hot of each position.
    Labels(&'a [L]),
    /// Soft labels `[N, C, d1..dk]`, laid out as the input.
    Soft(&'a [T]),
}

/// `-1`, `0` or `1`, as `torch.sign` (the gradient of `|v|`).
#[inline(always)]
fn sgn<T: Float>(v: T) -> T {
    if v > T::ZERO {
        T::ONE
    } else if v < T::ZERO {
        -T::ONE
    } else {
        T::ZERO
    }
}

/// One position's `(tp, P, G)` terms for a soft label `g`.
#[inline(always)]
fn soft_terms<T: Float>(p: T, g: T, squared: bool) -> (f64, f64, f64) {
    let (p, g) = (p.to_f64(), g.to_f64());
    if squared {
        (p * g, p * p, g * g)
    } else {
        ((p.abs() + g.abs() - (p - g).abs()) * 0.5, p.abs(), g.abs())
    }
}

/// One position's `A dtp/dp + B dP/dp` for a soft label `g`.
#[inline(always)]
fn soft_grad<T: Float>(a: T, b: T, p: T, g: T, squared: bool) -> T {
    if squared {
        a * g + b * (p + p)
    } else {
        let half = T::from_f64(0.5);
        a * half * (sgn(p) - sgn(p - g)) + b * sgn(p)
    }
}

/// What the kernels need besides the data.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OverlapParams {
    pub classes: usize,
    pub class_stride: usize,
    pub inner: usize,
    /// First included class (1 without the background).
    pub first: usize,
    pub activation: Activation,
    pub squared: bool,
    pub ignore_index: Option<i64>,
    /// Reduce over the batch too (one group), or one group per sample.
    pub batch: bool,
}

impl OverlapParams {
    /// Included classes.
    pub fn included(&self) -> usize {
        self.classes - self.first
    }

    /// The group of position `pos`.
    pub fn group(&self, pos: usize) -> usize {
        if self.batch {
            0
        } else {
            pos / self.inner
        }
    }

    /// The one-hot target of class `c` for label `t` (one class: the label itself, 0 or 1).
    #[inline(always)]
    fn hot<T: Float>(&self, t: usize, c: usize) -> T {
        if self.classes == 1 {
            T::from_f64(t as f64)
        } else if t == c {
            T::ONE
        } else {
            T::ZERO
        }
    }

    /// Whether block `b` takes the tile path: strided positions (one group per block), at most
    /// `SMALL` classes.
    fn tiled(&self, b: &Block) -> bool {
        b.lane_stride == 1 && self.class_stride != 1 && self.classes <= SMALL
    }

    /// The activated scores of positions `k0..k0 + n` of `b` into `p` (class `c` at
    /// `c * TILE`), vectorisable.
    #[inline(always)]
    fn activate_tile<T: Float>(&self, x: &[T], b: &Block, k0: usize, n: usize, p: &mut [T]) {
        let (cs, classes) = (self.class_stride, self.classes);
        let xt = b.from(x, k0);
        match self.activation {
            Activation::Softmax if classes > 1 => softmax::tile(xt, cs, classes, n, false, &mut Scratch(p), 0),
            Activation::Sigmoid => {
                for c in 0..classes {
                    let (xs, ps) = (&xt[c * cs..][..n], &mut p[c * TILE..][..n]);
                    for j in 0..n {
                        // sigmoid(x) = 1 / (1 + e) for x >= 0, e / (1 + e) below, e = e^-|x|
                        let e = (-xs[j].abs()).exp_fast();
                        let r = T::ONE / (T::ONE + e);
                        ps[j] = if xs[j] >= T::ZERO { r } else { e * r };
                    }
                }
            }
            _ => {
                for c in 0..classes {
                    p[c * TILE..][..n].copy_from_slice(&xt[c * cs..][..n]);
                }
            }
        }
    }

    /// The one-hot target of class `c` for lane label `l` (0 if ignored).
    #[inline(always)]
    fn hot_lane<T: Float>(&self, l: u32, c: usize) -> T {
        if l == u32::MAX {
            T::ZERO
        } else if self.classes == 1 {
            T::from_f64(l as f64)
        } else if l == c as u32 {
            T::ONE
        } else {
            T::ZERO
        }
    }

    /// Writes the activated scores of position `k` into `p` (length `classes`).
    #[inline(always)]
    pub fn activate<T: Float>(&self, x: &[T], b: &Block, k: usize, p: &mut [T]) {
        let (cs, classes) = (self.class_stride, self.classes);
        match self.activation {
            Activation::Softmax if classes > 1 => {
                let (m, s) = max_sumexp(x, b, k, cs, classes);
                for (c, pc) in p.iter_mut().enumerate() {
                    *pc = (x[b.at(c, k, cs)] - m).exp() / s;
                }
            }
            Activation::Sigmoid => {
                for (c, pc) in p.iter_mut().enumerate() {
                    *pc = sigmoid(x[b.at(c, k, cs)]);
                }
            }
            _ => {
                for (c, pc) in p.iter_mut().enumerate() {
                    *pc = x[b.at(c, k, cs)];
                }
            }
        }
    }
}

/// The block's `(tp, P, G)`, added into `sums` (`[group][included class][3]`, relative to the
/// block's first group `g0`); `p` is scratch of length `classes`.
pub(crate) struct OverlapSums<'a, T, L> {
    pub x: &'a [T],
    pub truth: Truth<'a, T, L>,
    pub o: &'a OverlapParams,
    pub b: Block,
    pub g0: usize,
    pub p: &'a mut [T],
    pub sums: &'a mut [f64],
}

impl<T: Float, L: Label> Kernel for OverlapSums<'_, T, L> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let OverlapSums { x, truth, o, b, g0, p, sums } = self;
        match truth {
            Truth::Labels(target) => overlap_sums(x, target, o, b, g0, p, sums),
            Truth::Soft(y) => soft_sums(x, y, o, b, g0, p, sums),
        }
    }
}

/// The label of position `pos` (`None` if ignored).
#[inline(always)]
fn label_at<L: Label>(o: &OverlapParams, target: &[L], pos: usize) -> Option<usize> {
    o.ignore_index.map_or(Some(target[pos].to_i128() as usize), |ii| target[pos].class_of(ii))
}

/// Class `c`'s `sum p g`, `sum p` (or `p^2`) and `sum g` of at most 16 lanes (`ps`, labels
/// `ls`) added to the lanes of `acc`.
#[inline(always)]
fn add_sums<T: Float>(o: &OverlapParams, c: usize, ps: &[T], ls: &[u32], acc: &mut [[f64; 16]; 3]) {
    let [tp, pp, gg] = acc;
    for j in 0..ps.len() {
        let gc: T = o.hot_lane(ls[j], c);
        let pc = if ls[j] == u32::MAX { T::ZERO } else { ps[j] };
        tp[j] += (pc * gc).to_f64();
        pp[j] += if o.squared { (pc * pc).to_f64() } else { pc.to_f64() };
        gg[j] += gc.to_f64();
    }
}

#[inline(always)]
fn overlap_sums<T: Float, L: Label>(
    x: &[T],
    target: &[L],
    o: &OverlapParams,
    b: Block,
    g0: usize,
    p: &mut [T],
    sums: &mut [f64],
) {
    let ci = o.included();
    if o.tiled(&b) {
        let mut pt = [T::ZERO; SMALL * TILE];
        let base = (o.group(b.p0) - g0) * ci * 3;
        for k0 in (0..b.len).step_by(TILE) {
            let n = TILE.min(b.len - k0);
            o.activate_tile(x, &b, k0, n, &mut pt);
            let lab = labels(o.ignore_index, target, b.p0 + k0, n);
            for c in o.first..o.classes {
                // Sums in 16 lanes of f64, then in order.
                let mut acc = [[0.0f64; 16]; 3];
                for (ps, ls) in pt[c * TILE..][..n].chunks(16).zip(lab[..n].chunks(16)) {
                    // A full chunk with its length a constant: with a variable one (at most
                    // 16), LLVM ran every chunk in the loop's scalar remainder.
                    if ps.len() == 16 {
                        add_sums(o, c, &ps[..16], &ls[..16], &mut acc);
                    } else {
                        add_sums(o, c, ps, ls, &mut acc);
                    }
                }
                add_lanes(&mut sums[base + (c - o.first) * 3..][..3], acc);
            }
        }
        return;
    }
    for k in 0..b.len {
        let pos = b.p0 + k;
        let Some(t) = label_at(o, target, pos) else {
            continue;
        };
        o.activate(x, &b, k, p);
        let base = (o.group(pos) - g0) * ci * 3;
        for c in o.first..o.classes {
            let (pc, gc) = (p[c], o.hot::<T>(t, c));
            let s = &mut sums[base + (c - o.first) * 3..][..3];
            s[0] += (pc * gc).to_f64();
            s[1] += if o.squared { (pc * pc).to_f64() } else { pc.to_f64() };
            s[2] += gc.to_f64();
        }
    }
}

/// Adds 16-lane partial sums to `s`, each in lane order.
#[inline(always)]
fn add_lanes(s: &mut [f64], lanes: [[f64; 16]; 3]) {
    for (k, a) in lanes.iter().enumerate() {
        s[k] += a.iter().sum::<f64>();
    }
}

/// [`add_sums`] for soft labels `gs`.
#[inline(always)]
fn add_soft_sums<T: Float>(ps: &[T], gs: &[T], squared: bool, acc: &mut [[f64; 16]; 3]) {
    let [tp, pp, gg] = acc;
    for j in 0..ps.len() {
        let (t, q, g) = soft_terms(ps[j], gs[j], squared);
        tp[j] += t;
        pp[j] += q;
        gg[j] += g;
    }
}

/// [`overlap_sums`] for soft labels `y` (the input's layout).
#[inline(always)]
fn soft_sums<T: Float>(x: &[T], y: &[T], o: &OverlapParams, b: Block, g0: usize, p: &mut [T], sums: &mut [f64]) {
    let (ci, cs) = (o.included(), o.class_stride);
    if o.tiled(&b) {
        let mut pt = [T::ZERO; SMALL * TILE];
        let base = (o.group(b.p0) - g0) * ci * 3;
        let yt = b.from(y, 0);
        for k0 in (0..b.len).step_by(TILE) {
            let n = TILE.min(b.len - k0);
            o.activate_tile(x, &b, k0, n, &mut pt);
            for c in o.first..o.classes {
                let mut acc = [[0.0f64; 16]; 3];
                for (ps, gs) in pt[c * TILE..][..n].chunks(16).zip(yt[c * cs + k0..][..n].chunks(16)) {
                    // As in `overlap_sums`.
                    if ps.len() == 16 {
                        add_soft_sums(&ps[..16], &gs[..16], o.squared, &mut acc);
                    } else {
                        add_soft_sums(ps, gs, o.squared, &mut acc);
                    }
                }
                add_lanes(&mut sums[base + (c - o.first) * 3..][..3], acc);
            }
        }
        return;
    }
    for k in 0..b.len {
        o.activate(x, &b, k, p);
        let base = (o.group(b.p0 + k) - g0) * ci * 3;
        for c in o.first..o.classes {
            let (t, q, g) = soft_terms(p[c], y[b.at(c, k, cs)], o.squared);
            let s = &mut sums[base + (c - o.first) * 3..][..3];
            s[0] += t;
            s[1] += q;
            s[2] += g;
        }
    }
}

/// The gradient of the block's positions into `grad` (added to what it holds if `accumulate`,
/// else written, 0 at ignored positions), from `ab` (`[group][included class]` pairs `(A, B)`,
/// upstream gradient included); `p` and `dp` are scratch of length `classes`.
pub(crate) struct OverlapBackward<'a, T, L> {
    pub x: &'a [T],
    pub truth: Truth<'a, T, L>,
    pub o: &'a OverlapParams,
    pub b: Block,
    pub ab: &'a [(f64, f64)],
    pub p: &'a mut [T],
    pub dp: &'a mut [T],
    pub grad: ClassOut<'a, T>,
    pub accumulate: bool,
}

impl<T: Float, L: Label> Kernel for OverlapBackward<'_, T, L> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        backward(self);
    }
}

/// `dl/dp` of one tile's class `c` into `ds`, from the scores `ps` and `(A, B)`.
#[inline(always)]
fn tile_dp<T: Float>(
    o: &OverlapParams,
    truth: (&[u32; TILE], Option<&[T]>),
    c: usize,
    (a, bb): (T, T),
    ps: &[T],
    ds: &mut [T],
) {
    let two = T::from_f64(2.0);
    match truth {
        (lab, None) => {
            for j in 0..ps.len() {
                let dpow = if o.squared { two * ps[j] } else { T::ONE };
                ds[j] = a * o.hot_lane::<T>(lab[j], c) + bb * dpow;
            }
        }
        (_, Some(gs)) => {
            for j in 0..ps.len() {
                ds[j] = soft_grad(a, bb, ps[j], gs[j], o.squared);
            }
        }
    }
}

#[inline(always)]
fn backward<T: Float, L: Label>(k: OverlapBackward<'_, T, L>) {
    let OverlapBackward { x, truth, o, b, ab, p, dp, mut grad, accumulate } = k;
    let ci = o.included();
    let cs = o.class_stride;
    let coef = |g: usize, c: usize| {
        let (a, bb) = ab[g * ci + c - o.first];
        (T::from_f64(a), T::from_f64(bb))
    };
    if o.tiled(&b) {
        let (mut pt, mut dt) = ([T::ZERO; SMALL * TILE], [T::ZERO; SMALL * TILE]);
        let g = o.group(b.p0);
        for k0 in (0..b.len).step_by(TILE) {
            let n = TILE.min(b.len - k0);
            o.activate_tile(x, &b, k0, n, &mut pt);
            let (lab, soft) = match truth {
                Truth::Labels(target) => (labels(o.ignore_index, target, b.p0 + k0, n), None),
                Truth::Soft(y) => ([0; TILE], Some(b.from(y, k0))),
            };
            for c in 0..o.classes {
                let (ps, ds) = (&pt[c * TILE..][..n], &mut dt[c * TILE..][..n]);
                if c < o.first {
                    ds.fill(T::ZERO);
                    continue;
                }
                let gs = soft.map(|yt| &yt[c * cs..][..n]);
                tile_dp(o, (&lab, gs), c, coef(g, c), ps, ds);
            }
            let mut dot = [T::ZERO; TILE];
            if o.activation == Activation::Softmax && o.classes > 1 {
                for c in 0..o.classes {
                    let (ps, ds) = (&pt[c * TILE..][..n], &dt[c * TILE..][..n]);
                    for j in 0..n {
                        dot[j] += ds[j] * ps[j];
                    }
                }
            }
            for c in 0..o.classes {
                let (ps, ds) = (&pt[c * TILE..][..n], &dt[c * TILE..][..n]);
                // The activation's branch outside the loops, and the store in a loop of its own.
                let mut v = [T::ZERO; TILE];
                match o.activation {
                    Activation::Softmax if o.classes > 1 => {
                        for j in 0..n {
                            v[j] = ps[j] * (ds[j] - dot[j]);
                        }
                    }
                    Activation::Sigmoid => {
                        for j in 0..n {
                            v[j] = ds[j] * ps[j] * (T::ONE - ps[j]);
                        }
                    }
                    _ => v[..n].copy_from_slice(ds),
                }
                let gs = &mut grad.lanes(c)[k0..k0 + n];
                if accumulate {
                    // Ignored positions are left as they are.
                    for j in 0..n {
                        gs[j] = if lab[j] == u32::MAX { gs[j] } else { gs[j] + v[j] };
                    }
                } else {
                    // `+ 0`: as added to a zeroed gradient (a -0 becomes +0).
                    for j in 0..n {
                        gs[j] = select_unpredictable(lab[j] == u32::MAX, T::ZERO, v[j] + T::ZERO);
                    }
                }
            }
        }
        return;
    }
    let two = T::from_f64(2.0);
    for k in 0..b.len {
        let pos = b.p0 + k;
        let t = match truth {
            Truth::Labels(target) => match label_at(o, target, pos) {
                Some(t) => Some(t),
                None => {
                    if !accumulate {
                        for c in 0..o.classes {
                            grad.set(c, k, T::ZERO);
                        }
                    }
                    continue;
                }
            },
            Truth::Soft(_) => None,
        };
        o.activate(x, &b, k, p);
        let g = o.group(pos);
        for c in 0..o.classes {
            dp[c] = if c < o.first {
                T::ZERO
            } else {
                let (a, bb) = coef(g, c);
                match (t, truth) {
                    (Some(t), _) => a * o.hot::<T>(t, c) + bb * if o.squared { two * p[c] } else { T::ONE },
                    (None, Truth::Soft(y)) => soft_grad(a, bb, p[c], y[b.at(c, k, cs)], o.squared),
                    (None, Truth::Labels(_)) => unreachable!("labels always give a class here"),
                }
            };
        }
        match o.activation {
            Activation::Softmax if o.classes > 1 => {
                let dot = (0..o.classes).fold(T::ZERO, |s, c| s + dp[c] * p[c]);
                for c in 0..o.classes {
                    put(&mut grad, c, k, p[c] * (dp[c] - dot), accumulate);
                }
            }
            Activation::Sigmoid => {
                for c in 0..o.classes {
                    put(&mut grad, c, k, dp[c] * p[c] * (T::ONE - p[c]), accumulate);
                }
            }
            _ => {
                for (c, &d) in dp.iter().enumerate() {
                    put(&mut grad, c, k, d, accumulate);
                }
            }
        }
    }
}

/// Element `(c, k)` of the gradient: `v` added if `accumulate`, else written as added to 0
/// (`+ 0`: a -0 becomes +0).
#[inline(always)]
fn put<T: Float>(grad: &mut ClassOut<'_, T>, c: usize, k: usize, v: T, accumulate: bool) {
    if accumulate {
        grad.add(c, k, v);
    } else {
        grad.set(c, k, v + T::ZERO);
    }
}
