//! Overlap losses (Dice, Jaccard, generalized Dice, Tversky) over one block: the per-class sums
//! they are built from, and the gradient once the sums are known.
//!
//! With `p` the activated scores and `g` the one-hot target of a position (both zero where the
//! target is ignored), each loss is a function of three sums per (group, class):
//! ```text
//! tp = sum p g,   P = sum p^ord,   G = sum g      (ord = 2 for squared_pred, else 1)
//! ```
//! so its gradient with respect to `p` is `A g + B ord p^(ord-1)` with `A = dl/dtp` and
//! `B = dl/dP` per (group, class), and the gradient with respect to the logits follows through
//! the activation (softmax over all classes, or sigmoid).

use crate::float::{Float, Label};
use crate::kernel::binary::sigmoid;
use crate::kernel::softmax::max_sumexp;
use crate::par::{Block, ClassOut};
use crate::validate::class_of;

/// The activation applied to the scores before the overlap is measured.
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

/// Adds the block's `(tp, P, G)` into `sums` (`[group][included class][3]`, relative to the
/// block's first group `g0`); `p` is scratch of length `classes`.
pub(crate) fn sums<T: Float, L: Label>(
    x: &[T],
    target: &[L],
    o: &OverlapParams,
    b: Block,
    g0: usize,
    p: &mut [T],
    sums: &mut [f64],
) {
    let ci = o.included();
    for k in 0..b.len {
        let pos = b.p0 + k;
        let Some(t) = o.ignore_index.map_or(Some(target[pos].to_i128() as usize), |ii| class_of(target[pos], ii))
        else {
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

/// Adds the gradient of the block's positions to `grad`, from `ab` (`[group][included class]`
/// pairs `(A, B)`, upstream gradient included); `p` is scratch of length `classes`.
#[allow(clippy::too_many_arguments)] // reason: data, target, options, block, coefficients, scratch, output
pub(crate) fn backward<T: Float, L: Label>(
    x: &[T],
    target: &[L],
    o: &OverlapParams,
    b: Block,
    ab: &[(f64, f64)],
    p: &mut [T],
    dp: &mut [T],
    grad: &mut ClassOut<'_, T>,
) {
    let ci = o.included();
    let two = T::from_f64(2.0);
    for k in 0..b.len {
        let pos = b.p0 + k;
        let Some(t) = o.ignore_index.map_or(Some(target[pos].to_i128() as usize), |ii| class_of(target[pos], ii))
        else {
            continue;
        };
        o.activate(x, &b, k, p);
        let base = o.group(pos) * ci;
        for c in 0..o.classes {
            dp[c] = if c < o.first {
                T::ZERO
            } else {
                let (a, bb) = ab[base + c - o.first];
                let dpow = if o.squared { two * p[c] } else { T::ONE };
                T::from_f64(a) * o.hot::<T>(t, c) + T::from_f64(bb) * dpow
            };
        }
        match o.activation {
            Activation::Softmax if o.classes > 1 => {
                let dot = (0..o.classes).fold(T::ZERO, |s, c| s + dp[c] * p[c]);
                for c in 0..o.classes {
                    grad.add(c, k, p[c] * (dp[c] - dot));
                }
            }
            Activation::Sigmoid => {
                for c in 0..o.classes {
                    grad.add(c, k, dp[c] * p[c] * (T::ONE - p[c]));
                }
            }
            _ => {
                for (c, &d) in dp.iter().enumerate() {
                    grad.add(c, k, d);
                }
            }
        }
    }
}
