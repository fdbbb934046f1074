//! Element-wise binary losses over one run of elements, forward fused with backward.
//!
//! With input `x`, target `y`, element weight `w` (1 if absent) and upstream gradient `g`:
//! ```text
//! binary_cross_entropy (x a probability; each log clamped at -100):
//!   l     = -w (y max(ln x, -100) + (1 - y) max(ln(1 - x), -100))
//!   dl/dx = w (x - y) / max(x (1 - x), 1e-12)
//! binary_cross_entropy_with_logits (pos_weight q, 1 if absent; ls(x) = ln sigmoid(x)):
//!   ls(x) = min(x, 0) - ln(1 + e^-|x|)                       (stable for any x)
//!   l     = w ((1 - y) x - (1 + (q - 1) y) ls(x))
//!   dl/dx = w ((q y + 1 - y) sigmoid(x) - q y)
//! sigmoid_focal_loss (torchvision; p = sigmoid(x), ce = bce_with_logits(x, y)):
//!   r     = p + y - 2 p y                                     (1 - p_t)
//!   l     = a ce r^gamma,  a = alpha y + (1 - alpha)(1 - y)   (a = 1 if alpha < 0)
//!   dl/dx = a ((p - y) r^gamma + ce gamma r^(gamma-1) p (1 - p)(1 - 2y))
//! ```

use super::block::Upstream;
use super::simd::Kernel;
use crate::float::Float;
use crate::layout::Broadcast;
use std::borrow::Cow;
use std::ops::Range;

/// A tensor broadcast against the input.
pub(crate) type Bcast<'a, T> = Option<(&'a [T], &'a Broadcast)>;

/// An element-wise kernel's data: the run `r` of elements to compute, its input `x` and target
/// `y` (the run's values), the upstream gradient, and the run's shares of the gradient and of
/// the per-element losses (empty: not wanted).
pub(crate) struct Elementwise<'a, T> {
    pub x: &'a [T],
    pub y: &'a [T],
    pub r: Range<usize>,
    pub up: Upstream<'a, T>,
    pub grad: &'a mut [T],
    pub loss: &'a mut [T],
}

/// Binary cross-entropy on probabilities, with an element weight; returns the sum of the
/// losses.
pub(crate) struct Bce<'a, T> {
    pub e: Elementwise<'a, T>,
    pub w: Bcast<'a, T>,
}

/// Binary cross-entropy with logits, with an element weight and `pos_weight`; returns the sum.
pub(crate) struct BceWithLogits<'a, T> {
    pub e: Elementwise<'a, T>,
    pub w: Bcast<'a, T>,
    pub q: Bcast<'a, T>,
}

/// torchvision's sigmoid focal loss; returns the sum.
pub(crate) struct SigmoidFocal<'a, T> {
    pub e: Elementwise<'a, T>,
    pub alpha: T,
    pub gamma: T,
}

impl<T: Float> Kernel for Bce<'_, T> {
    type Output = f64;
    #[inline(always)]
    fn run(self) -> f64 {
        bce(self)
    }
}

impl<T: Float> Kernel for BceWithLogits<'_, T> {
    type Output = f64;
    #[inline(always)]
    fn run(self) -> f64 {
        bce_with_logits(self)
    }
}

impl<T: Float> Kernel for SigmoidFocal<'_, T> {
    type Output = f64;
    #[inline(always)]
    fn run(self) -> f64 {
        sigmoid_focal(self)
    }
}

/// Numerically stable logistic function.
#[inline(always)]
pub(crate) fn sigmoid<T: Float>(x: T) -> T {
    if x >= T::ZERO {
        T::ONE / (T::ONE + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::ONE + e)
    }
}

/// `ln(sigmoid(x))` without overflow.
#[inline(always)]
fn log_sigmoid<T: Float>(x: T) -> T {
    x.min(T::ZERO) - (-x.abs()).exp().ln_1p()
}

/// Writes `l` and the gradient `d` of element `i` of run `r`, and returns `l` for the sum.
#[inline(always)]
fn put<T: Float>(r: &Range<usize>, i: usize, l: T, d: impl FnOnce() -> T, grad: &mut [T], loss: &mut [T]) -> f64 {
    if !loss.is_empty() {
        loss[i - r.start] = l;
    }
    if !grad.is_empty() {
        grad[i - r.start] = d();
    }
    l.to_f64()
}

/// Lanes of the element-wise kernels: each lane sums its elements in `f64`, in a fixed order
/// (full chunks of `LANES` elements in quarters first).
const LANES: usize = 64;

/// Per-element values over a run, `LANES` elements at a time: a slice of the run (the upstream
/// gradient, or a broadcast tensor gathered), or one value for all.
struct RunLanes<'a, T: Float> {
    each: Option<Cow<'a, [T]>>,
    all: [T; LANES],
}

impl<'a, T: Float> RunLanes<'a, T> {
    /// The upstream gradient over run `r`.
    #[inline(always)]
    fn upstream(up: Upstream<'a, T>, r: &Range<usize>) -> Self {
        let each = match up {
            Upstream::Each(g) | Upstream::PerSample(g) => Some(Cow::Borrowed(&g[r.clone()])),
            Upstream::All(_) => None,
        };
        RunLanes { each, all: [up.at(0); LANES] }
    }

    /// A broadcast tensor over run `r`: one value when it covers every element (1 without a
    /// tensor), else its values gathered.
    fn broadcast(b: &Bcast<'_, T>, r: &Range<usize>) -> Self {
        let (each, one) = match b {
            Some((v, map)) if map.is_constant() && !v.is_empty() => (None, v[0]),
            Some((v, map)) => (Some(Cow::Owned(map.gather(v, r.clone()))), T::ONE),
            None => (None, T::ONE),
        };
        RunLanes { each, all: [one; LANES] }
    }

    /// Whether every value is 1.
    fn is_one(&self) -> bool {
        self.each.is_none() && self.all[0] == T::ONE
    }

    /// The values of elements `k0..k0 + n` of the run.
    #[inline(always)]
    fn at(&self, k0: usize, n: usize) -> &[T] {
        self.each.as_deref().map_or(&self.all[..n], |g| &g[k0..k0 + n])
    }
}

/// Adds a chunk's losses to the lanes' sums: a full chunk its four quarters in `T` first (two
/// conversions to `f64` and two `f64` additions per 16 lanes fewer), a partial one lane by lane.
#[inline(always)]
fn add_losses<T: Float>(acc: &mut [f64; LANES], lv: &[T]) {
    if let Ok(l) = <&[T; LANES]>::try_from(lv) {
        const Q: usize = LANES / 4;
        for j in 0..Q {
            acc[j] += ((l[j] + l[j + Q]) + (l[j + 2 * Q] + l[j + 3 * Q])).to_f64();
        }
    } else {
        for (a, &l) in acc.iter_mut().zip(lv) {
            *a += l.to_f64();
        }
    }
}

/// Writes a chunk's values `v` into `out` from element `k0`, unless `out` is empty (not wanted).
#[inline(always)]
fn store<T: Copy>(out: &mut [T], k0: usize, v: &[T]) {
    if !out.is_empty() {
        out[k0..k0 + v.len()].copy_from_slice(v);
    }
}

/// `0^e`: 0 for `e > 0`, 1 for `e = 0`, `inf` below (the factor `r^(gamma - 1)` at `r = 0`).
#[inline(always)]
pub(crate) fn pow_zero<T: Float>(e: T) -> T {
    if e > T::ZERO {
        T::ZERO
    } else if e == T::ZERO {
        T::ONE
    } else {
        -T::NEG_INFINITY
    }
}

/// Binary cross-entropy on probabilities over run `r`; returns the sum of the losses. `LANES`
/// elements at a time with the vectorisable `ln x` and `ln(1 - x)` (as PyTorch's `log1p(-x)`).
#[inline(always)]
fn bce<T: Float>(k: Bce<'_, T>) -> f64 {
    let Bce { e: Elementwise { x, y, r, up, grad, loss }, w } = k;
    let floor = T::from_f64(-100.0);
    // PyTorch's EPSILON is the f32 constant 1e-12, also for f64 inputs.
    let eps = T::from_f64(1e-12f32 as f64);
    let (xs, ys) = (x, y);
    let (ws, ups) = (RunLanes::broadcast(&w, &r), RunLanes::upstream(up, &r));
    let mut acc = [0.0f64; LANES];
    let (mut lv, mut gv) = ([T::ZERO; LANES], [T::ZERO; LANES]);
    for k0 in (0..xs.len()).step_by(LANES) {
        let n = LANES.min(xs.len() - k0);
        let (x, y) = (&xs[k0..k0 + n], &ys[k0..k0 + n]);
        let (w, go) = (ws.at(k0, n), ups.at(k0, n));
        for j in 0..n {
            let (xi, yi) = (x[j], y[j]);
            lv[j] = ((yi - T::ONE) * xi.ln_1m_unit().max_nan(floor) - yi * xi.ln_fast().max_nan(floor)) * w[j];
        }
        if !grad.is_empty() {
            for j in 0..n {
                let (xi, yi) = (x[j], y[j]);
                gv[j] = go[j] * (xi - yi) / ((T::ONE - xi) * xi).max_nan(eps) * w[j];
            }
            store(grad, k0, &gv[..n]);
        }
        add_losses(&mut acc, &lv[..n]);
        store(loss, k0, &lv[..n]);
    }
    acc.iter().sum()
}

/// `(1 - y) x - b ls` with `b = 1 + (q - 1) y`, in three fused multiply-adds (`x - y x`, `b`,
/// then the difference).
#[inline(always)]
fn bce_logit_loss<T: Float>(x: T, y: T, q: T, ls: T) -> T {
    let a = (-y).mul_add(x, x);
    let b = (q - T::ONE).mul_add(y, T::ONE);
    (-b).mul_add(ls, a)
}

/// The losses and gradient of a chunk of [`bce_with_logits`]. A function of its own so that its
/// slices are parameters: the loop then knows that `g` is none of the inputs (reached through
/// the kernel's struct, it does not, and the chunk runs about 10% slower).
#[inline(always)]
fn logits_grad<T: Float>(x: &[T], y: &[T], q: &[T], w: &[T], go: &[T], g: &mut [T], lv: &mut [T]) {
    for j in 0..lv.len() {
        let e = (-x[j].abs()).exp_fast();
        let ls = x[j].min(T::ZERO) - e.ln_1p_unit();
        lv[j] = bce_logit_loss(x[j], y[j], q[j], ls);
        // sigmoid(x) = 1 / (1 + e) for x >= 0, e / (1 + e) below: one division.
        let r1 = T::ONE / (T::ONE + e);
        let s = if x[j] >= T::ZERO { r1 } else { e * r1 };
        // (q y + 1 - y) sigmoid(x) - q y, in PyTorch's order and roundings (no fused
        // multiply-add). For a large logit with a large pos_weight the two terms cancel: a fused
        // form is nearer the exact value there, but further from PyTorch's than the f32
        // tolerance (pos_weight 31.9, x = 9.73: exact -1.96665e-3, PyTorch -1.96889e-3, fused
        // -1.96735e-3).
        let t = q[j] * y[j];
        g[j] = ((t + T::ONE - y[j]) * s - t) * go[j] * w[j];
    }
}

/// Binary cross-entropy with logits over run `r`.
#[inline(always)]
fn bce_with_logits<T: Float>(k: BceWithLogits<'_, T>) -> f64 {
    let BceWithLogits { e: Elementwise { x, y, r, up, grad, loss }, w, q } = k;
    let (xs, ys) = (x, y);
    let (ws, qs, ups) = (RunLanes::broadcast(&w, &r), RunLanes::broadcast(&q, &r), RunLanes::upstream(up, &r));
    // Without weights the losses are not multiplied by 1 (the same bits, one operation less).
    let weighted = !ws.is_one();
    let mut acc = [0.0f64; LANES];
    let mut lv = [T::ZERO; LANES];
    for k0 in (0..xs.len()).step_by(LANES) {
        let n = LANES.min(xs.len() - k0);
        let (x, y) = (&xs[k0..k0 + n], &ys[k0..k0 + n]);
        let (w, q) = (ws.at(k0, n), qs.at(k0, n));
        if grad.is_empty() {
            for j in 0..n {
                // ln sigmoid(x) = min(x, 0) - ln(1 + e^-|x|)
                let e = (-x[j].abs()).exp_fast();
                let ls = x[j].min(T::ZERO) - e.ln_1p_unit();
                lv[j] = bce_logit_loss(x[j], y[j], q[j], ls);
            }
        } else {
            logits_grad(x, y, q, w, ups.at(k0, n), &mut grad[k0..k0 + n], &mut lv[..n]);
        }
        if weighted {
            for j in 0..n {
                lv[j] *= w[j];
            }
        }
        add_losses(&mut acc, &lv[..n]);
        store(loss, k0, &lv[..n]);
    }
    acc.iter().sum()
}

/// torchvision's sigmoid focal loss over run `r` (`alpha < 0`: no alpha term). With every
/// target in `[0, 1]` (so `0 <= r <= 1`), `LANES` elements at a time with the vectorisable
/// `exp` and `ln`: `r^gamma = e^(gamma ln r)`, `r^(gamma-1)` as that over `r` (`0^(gamma-1)` at
/// `r = 0`), one `e^-|x|` for both `sigmoid(x)` and `ln sigmoid(x)`; else element by element
/// with libm's `powf`.
#[inline(always)]
fn sigmoid_focal<T: Float>(k: SigmoidFocal<'_, T>) -> f64 {
    let (xs, ys) = (k.e.x, k.e.y);
    // A NaN target fails this too, and takes the element loop.
    let mut unit = true;
    for &v in ys {
        unit &= v >= T::ZERO && v <= T::ONE;
    }
    if !unit {
        return sigmoid_focal_each(k);
    }
    let SigmoidFocal { e: Elementwise { r, up, grad, loss, .. }, alpha, gamma } = k;
    // r^(gamma - 1) where r = 0.
    let zero_pow = pow_zero(gamma - T::ONE);
    let mode = if gamma == T::ZERO {
        GAMMA_0
    } else if gamma == T::from_f64(2.0) {
        GAMMA_2
    } else {
        GAMMA_ANY
    };
    let ups = RunLanes::upstream(up, &r);
    let mut acc = [0.0f64; LANES];
    let (mut lv, mut gv) = ([T::ZERO; LANES], [T::ZERO; LANES]);
    for k0 in (0..xs.len()).step_by(LANES) {
        let n = LANES.min(xs.len() - k0);
        let (x, y, go) = (&xs[k0..k0 + n], &ys[k0..k0 + n], ups.at(k0, n));
        let (l, g) = (&mut lv[..n], &mut gv[..n]);
        // One copy of the lane loop per case, so that none computes what it does not need.
        match (mode, grad.is_empty()) {
            (GAMMA_0, true) => focal_lanes::<T, GAMMA_0, false>((x, y, go), (alpha, gamma, zero_pow), (l, g)),
            (GAMMA_2, true) => focal_lanes::<T, GAMMA_2, false>((x, y, go), (alpha, gamma, zero_pow), (l, g)),
            (_, true) => focal_lanes::<T, GAMMA_ANY, false>((x, y, go), (alpha, gamma, zero_pow), (l, g)),
            (GAMMA_0, false) => focal_lanes::<T, GAMMA_0, true>((x, y, go), (alpha, gamma, zero_pow), (l, g)),
            (GAMMA_2, false) => focal_lanes::<T, GAMMA_2, true>((x, y, go), (alpha, gamma, zero_pow), (l, g)),
            (_, false) => focal_lanes::<T, GAMMA_ANY, true>((x, y, go), (alpha, gamma, zero_pow), (l, g)),
        }
        add_losses(&mut acc, &lv[..n]);
        store(grad, k0, &gv[..n]);
        store(loss, k0, &lv[..n]);
    }
    acc.iter().sum()
}

/// The cases of `r^gamma` in [`focal_lanes`]: `gamma = 0` (1), `gamma = 2` (the default of
/// torchvision and MONAI: `r r`, one rounding), any other (`e^(gamma ln r)`).
const GAMMA_0: u8 = 0;
const GAMMA_2: u8 = 2;
const GAMMA_ANY: u8 = 1;

/// [`sigmoid_focal`]'s losses (and with `GRAD` its gradient, by the upstream `go`) of a chunk.
#[inline(always)]
fn focal_lanes<T: Float, const MODE: u8, const GRAD: bool>(
    (x, y, go): (&[T], &[T], &[T]),
    (alpha, g, zero_pow): (T, T, T),
    (lv, gv): (&mut [T], &mut [T]),
) {
    let two = T::from_f64(2.0);
    for j in 0..lv.len() {
        let (xi, yi) = (x[j], y[j]);
        let e = (-xi.abs()).exp_fast();
        let r1 = T::ONE / (T::ONE + e);
        let p = if xi >= T::ZERO { r1 } else { e * r1 };
        let ce = (T::ONE - yi) * xi - (xi.min(T::ZERO) - e.ln_1p_unit());
        let rr = p + yi - two * p * yi;
        let (modu, pm1) = match MODE {
            GAMMA_0 => (T::ONE, T::ZERO),
            GAMMA_2 => (rr * rr, rr),
            _ => {
                // gamma ln r <= 0 (an ulp above 0 from rounding taken as 0; NaN kept).
                let t = g * rr.ln_fast();
                let modu = (if t > T::ZERO { T::ZERO } else { t }).exp_fast();
                (modu, if rr > T::ZERO { modu / rr } else { zero_pow })
            }
        };
        let a = if alpha >= T::ZERO { alpha * yi + (T::ONE - alpha) * (T::ONE - yi) } else { T::ONE };
        lv[j] = a * (ce * modu);
        if GRAD {
            // In autograd's order (the upstream `a go` first, then through the product, the
            // power and the sigmoid), so that it overflows where PyTorch does: a logit near the
            // type's largest value gives PyTorch's NaN or 0, not another number.
            let u = a * go[j];
            let mut d = u * modu * (p - yi);
            if MODE != GAMMA_0 {
                d += (u * ce) * (g * pm1) * (T::ONE - two * yi) * (p * (T::ONE - p));
            }
            gv[j] = d;
        }
    }
}

/// [`sigmoid_focal`] element by element, with libm's `powf` (targets outside `[0, 1]`).
fn sigmoid_focal_each<T: Float>(k: SigmoidFocal<'_, T>) -> f64 {
    let SigmoidFocal { e: Elementwise { x, y, r, up, grad, loss }, alpha, gamma } = k;
    let two = T::from_f64(2.0);
    let mut sum = 0.0;
    for i in r.clone() {
        let (xi, yi) = (x[i - r.start], y[i - r.start]);
        let p = sigmoid(xi);
        let ce = (T::ONE - yi) * xi - log_sigmoid(xi);
        let rr = p + yi - two * p * yi;
        let modu = rr.powf(gamma);
        let a = if alpha >= T::ZERO { alpha * yi + (T::ONE - alpha) * (T::ONE - yi) } else { T::ONE };
        let l = a * (ce * modu);
        let d = || {
            // As in `focal_lanes`: autograd's order.
            let u = a * up.at(i);
            let mut d = u * modu * (p - yi);
            if gamma != T::ZERO {
                d += (u * ce) * (gamma * rr.powf(gamma - T::ONE)) * (T::ONE - two * yi) * (p * (T::ONE - p));
            }
            d
        };
        sum += put(&r, i, l, d, grad, loss);
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Binary cross-entropy on f32 probabilities agrees with libm's `ln` and `ln_1p(-x)` in f64,
    /// loss and gradient: subnormal inputs (not clamped at -100 before `e^-100`), inputs an ulp
    /// from 0 and 1, and the ends themselves (clamped).
    #[test]
    fn bce_lanes_match_libm() {
        let xs = [0.0f32, 1.4e-45, 1e-40, 1.1e-38, 1e-30, 5.9e-8, 1e-3, 0.3, 0.5, 0.7, 0.999, 0.999_999_94, 1.0];
        let ys = [0.0f32, 1.0, 0.3];
        let (x, y): (Vec<f32>, Vec<f32>) = xs.iter().flat_map(|&x| ys.iter().map(move |&y| (x, y))).unzip();
        let n = x.len();
        let (mut g, mut l) = (vec![0.0f32; n], vec![0.0f32; n]);
        let e = Elementwise { x: &x, y: &y, r: 0..n, up: Upstream::All(1.0), grad: &mut g, loss: &mut l };
        bce(Bce { e, w: None });
        for i in 0..n {
            let (xv, yv) = (x[i] as f64, y[i] as f64);
            let want = -(yv * xv.ln().max(-100.0) + (1.0 - yv) * (-xv).ln_1p().max(-100.0));
            assert!((l[i] as f64 - want).abs() <= 2e-7 * want.abs() + 1e-30, "bce({xv}, {yv}) = {}, want {want}", l[i]);
            let dwant = (xv - yv) / (xv * (1.0 - xv)).max(1e-12f32 as f64);
            assert!(
                (g[i] as f64 - dwant).abs() <= 3e-7 * dwant.abs() + 1e-30,
                "grad({xv}, {yv}) = {}, want {dwant}",
                g[i]
            );
        }
    }

    /// The vectorised sigmoid focal loss in f32 agrees with the element loop (libm's `powf`) in
    /// f64, loss and gradient, from extreme logits to 0 and for soft and hard targets.
    #[test]
    fn sigmoid_focal_lanes_match_libm() {
        let mut rng = crate::testing::Rng::new(11);
        let mut next = || rng.uniform();
        let n = 1000;
        let x: Vec<f64> = (0..n)
            .map(|i| match i % 50 {
                0 => 0.0,
                1 => 95.0,
                2 => -95.0,
                _ => (next() - 0.5) * 30.0,
            })
            .collect();
        let y: Vec<f64> = (0..n).map(|i| if i % 2 == 0 { next() } else { f64::from(u8::from(next() < 0.5)) }).collect();
        let (x32, y32): (Vec<f32>, Vec<f32>) =
            (x.iter().map(|&v| v as f32).collect(), y.iter().map(|&v| v as f32).collect());
        let up: Vec<f64> = (0..n).map(|i| 0.5 + (i % 7) as f64 / 7.0).collect();
        let up32: Vec<f32> = up.iter().map(|&v| v as f32).collect();
        for (alpha, gamma) in [(0.25, 2.0), (-1.0, 0.5), (0.75, 1.0), (0.4, 0.0), (0.25, 3.5)] {
            let (mut g, mut l) = (vec![0.0f32; n], vec![0.0f32; n]);
            let (mut gw, mut lw) = (vec![0.0f64; n], vec![0.0f64; n]);
            let x32v = x32.iter().map(|&v| v as f64).collect::<Vec<_>>();
            let y32v = y32.iter().map(|&v| v as f64).collect::<Vec<_>>();
            let e = Elementwise { x: &x32, y: &y32, r: 0..n, up: Upstream::Each(&up32), grad: &mut g, loss: &mut l };
            sigmoid_focal(SigmoidFocal { e, alpha: alpha as f32, gamma: gamma as f32 });
            let e = Elementwise { x: &x32v, y: &y32v, r: 0..n, up: Upstream::Each(&up), grad: &mut gw, loss: &mut lw };
            sigmoid_focal_each(SigmoidFocal { e, alpha, gamma });
            for i in 0..n {
                // In f32, 1 - p_t = p + y - 2 p y, p - y and ce = (1 - y) x - ln sigmoid(x)
                // cancel: their rounding grows by (p + y) / |1 - p_t|, (p + y) / |p - y| and
                // (|(1 - y) x| + |ln sigmoid(x)|) / ce (PyTorch's formulas do the same).
                let (xv, y) = (x32v[i], y32v[i]);
                let p = 1.0 / (1.0 + (-xv).exp());
                let ls = xv.min(0.0) - (-xv.abs()).exp().ln_1p();
                let cond = (p + y) / (p + y - 2.0 * p * y).abs()
                    + (p + y) / (p - y).abs()
                    + ((1.0 - y) * xv).abs().max(ls.abs()) / ((1.0 - y) * xv - ls).abs();
                let tol = 2e-6 + 8.0 * f32::EPSILON as f64 * (gamma + 2.0) * cond;
                let close = |a: f32, b: f64| {
                    a as f64 == b || (a.is_nan() && b.is_nan()) || (a as f64 - b).abs() <= tol * b.abs() + 1e-30
                };
                let at = format!("alpha {alpha} gamma {gamma} x {} y {}", x32[i], y32[i]);
                assert!(close(l[i], lw[i]), "{at}: loss {} want {}", l[i], lw[i]);
                assert!(close(g[i], gw[i]), "{at}: grad {} want {}", g[i], gw[i]);
            }
        }
    }
}
