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
//! Alpha: a scalar gives `[1 - alpha, alpha, alpha, ...]` per class with softmax and
//! `alpha t + (1 - alpha)(1 - t)` with sigmoid; a vector gives `alpha_c` (with sigmoid, on
//! positives only).

use crate::float::{Float, Label};
use crate::kernel::binary::sigmoid;
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
/// `b`; returns the sum of the losses of each sample the block touches, from sample `n0`.
#[allow(clippy::too_many_arguments)] // reason: data, target, options, block, upstream, outputs, sums
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
