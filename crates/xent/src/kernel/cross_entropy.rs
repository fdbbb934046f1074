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

use super::softmax::max_sumexp;
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

/// Cross-entropy with class-index targets over block `b`; returns the sum of the losses.
pub(crate) fn cross_entropy<T: Float, L: Label>(
    x: &[T],
    target: &[L],
    p: &IndexParams<'_, T>,
    b: Block,
    up: Upstream<'_, T>,
    mut grad: Option<ClassOut<'_, T>>,
    loss: &mut [T],
) -> f64 {
    let (cs, classes) = (p.class_stride, p.classes);
    let e = p.smoothing;
    let e_c = e / T::from_f64(classes as f64);
    let mut sum = 0.0;
    for k in 0..b.len {
        let pos = b.p0 + k;
        let Some(t) = class_of(target[pos], p.ignore_index) else {
            ignored(k, classes, &mut grad, loss);
            continue;
        };
        let (m, s) = max_sumexp(x, &b, k, cs, classes);
        let ls = s.ln();
        let wt = p.w(t);
        let mut l = -(wt * ((x[b.at(t, k, cs)] - m) - ls));
        if e > T::ZERO {
            let mut smooth = T::ZERO;
            for c in 0..classes {
                smooth += ((x[b.at(c, k, cs)] - m) - ls) * p.w(c);
            }
            l = (T::ONE - e) * l + e_c * -smooth;
        }
        sum += l.to_f64();
        if !loss.is_empty() {
            loss[k] = l;
        }
        if let Some(g) = &mut grad {
            let go = up.at(pos);
            let a = go * wt * (T::ONE - e);
            let bc = go * e_c;
            for c in 0..classes {
                let pc = ((x[b.at(c, k, cs)] - m) - ls).exp();
                let hot = if c == t { T::ONE } else { T::ZERO };
                let mut v = a * (pc - hot);
                if e > T::ZERO {
                    v += bc * (p.weight_sum * pc - p.w(c));
                }
                g.set(c, k, v);
            }
        }
    }
    sum
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
    let mut sum = 0.0;
    for k in 0..b.len {
        let pos = b.p0 + k;
        let Some(t) = class_of(target[pos], p.ignore_index) else {
            ignored(k, classes, &mut grad, loss);
            continue;
        };
        let wt = p.w(t);
        let l = -(x[b.at(t, k, cs)] * wt);
        sum += l.to_f64();
        if !loss.is_empty() {
            loss[k] = l;
        }
        if let Some(g) = &mut grad {
            let gt = -(wt * up.at(pos));
            for c in 0..classes {
                g.set(c, k, if c == t { gt } else { T::ZERO });
            }
        }
    }
    sum
}

/// Cross-entropy with probability targets `y` (input-shaped) over block `b`.
pub(crate) fn cross_entropy_probs<T: Float>(
    x: &[T],
    y: &[T],
    p: &IndexParams<'_, T>,
    b: Block,
    up: Upstream<'_, T>,
    mut grad: Option<ClassOut<'_, T>>,
    loss: &mut [T],
) -> f64 {
    let (cs, classes) = (p.class_stride, p.classes);
    let e = p.smoothing;
    let e_c = e / T::from_f64(classes as f64);
    let smooth = |v: T| if e > T::ZERO { v * (T::ONE - e) + e_c } else { v };
    let mut sum = 0.0;
    for k in 0..b.len {
        let pos = b.p0 + k;
        let (m, s) = max_sumexp(x, &b, k, cs, classes);
        let ls = s.ln();
        let mut l = T::ZERO;
        let mut wy = T::ZERO;
        for c in 0..classes {
            let i = b.at(c, k, cs);
            let yc = smooth(y[i]);
            l += ((x[i] - m) - ls) * yc * p.w(c);
            wy += p.w(c) * yc;
        }
        let l = -l;
        sum += l.to_f64();
        if !loss.is_empty() {
            loss[k] = l;
        }
        if let Some(g) = &mut grad {
            let go = up.at(pos);
            for c in 0..classes {
                let i = b.at(c, k, cs);
                let pc = ((x[i] - m) - ls).exp();
                g.set(c, k, go * (pc * wy - p.w(c) * smooth(y[i])));
            }
        }
    }
    sum
}
