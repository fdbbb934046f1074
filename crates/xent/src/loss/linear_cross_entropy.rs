//! Linear cross-entropy: the cross-entropy of a linear layer's output, without the logits.
//!
//! ```text
//! z = x W^T + b                          x [N, D], W [C, D], b [C]: logits [N, C]
//! l = cross_entropy(z, t)                every option of cross-entropy
//! dl/dx = dz W,   dl/dW = dz^T x,   dl/db = sum_n dz_n,   dz = dl/dz (the fused kernel's)
//! ```
//! PyTorch 2.15: `torch.nn.functional.linear_cross_entropy(input, linear_weight, target,
//! linear_bias=, weight=, reduction=, ignore_index=, label_smoothing=)`, the language-model head,
//! where `[N, C]` (C the vocabulary) is the largest tensor of a training step.
//!
//! The logits are never stored whole: rows are taken in chunks, each chunk's logits by a
//! matrix product (blocks of 1024 classes, one thread each), its loss and logit gradient by the
//! fused [cross-entropy](super::cross_entropy) kernel, then the two gradient products (`dW`
//! accumulated chunk after chunk). Extra memory is one chunk of logits, about [`CHUNK_BYTES`],
//! plus the products' packing buffers (a few MiB a thread); the chunks and blocks depend on the
//! shape only, so the result is the same bits for any thread count.
//!
//! # Shapes
//! `input` `[N, D]` or unbatched `[D]`; `linear_weight` `[C, D]`, or `[C, d1..dk, D]` for
//! logits `[N, C, d1..dk]` (batched input only); `linear_bias` the weight's shape without `D`;
//! targets as [`CrossEntropyLoss`] takes them for those logits: class indices `[N, d1..dk]`
//! (`[]` unbatched) of any [`Label`] type, or probabilities of the logits' shape. Output `[N,
//! d1..dk]` for [`Reduction::None`], else `[]`.
//!
//! # Example
//! ```
//! use xent::{Linear, LinearCrossEntropy, View};
//! let lce = LinearCrossEntropy::new(Default::default())?;
//! // two tokens of D = 2 features, a vocabulary of 3
//! let x = [1.0f32, 0.0, 0.0, 1.0];
//! let w = [1.0f32, 2.0, 3.0, 0.5, 0.0, 0.0];
//! let linear = Linear { input: View::new(&x, &[2, 2])?, weight: View::new(&w, &[3, 2])?, bias: None };
//! let (mut dx, mut dw) = ([0.0f32; 4], [0.0f32; 6]);
//! let grads = xent::LinearGrads { grad_output: &[1.0], input: &mut dx, weight: &mut dw, bias: None };
//! let out = lce.evaluate(linear, View::new(&[2i64, 0], &[2])?, Some(grads))?;
//! // cross_entropy of the logits x W^T = [[1, 3, 0], [2, 0.5, 0]] for targets [2, 0]
//! assert!((out.scalar().unwrap() - 1.7381).abs() < 1e-4);
//! // d loss / d x[0][0] = (1/2) sum_c (p_c - [c = 2]) W[c][0], p = softmax([1, 3, 0])
//! assert!((dx[0] - 0.5 * (0.1142 * 1.0 + 0.8438 * 3.0)).abs() < 1e-3);
//! # Ok::<(), xent::Error>(())
//! ```

use super::{Backward, Loss};
use crate::error::{Error, Result};
use crate::float::gemm::{logits, matmul, weight_grad, BlockProduct, Operand};
use crate::float::{Element, Float, Label};
use crate::kernel::Upstream;
use crate::layout::Layout;
use crate::loss::cross_entropy::{CrossEntropyLoss, CrossEntropyOptions};
use crate::par::map_ordered;
use crate::reduction::{EmptyMean, LossOutput, Reducer, Reduction};
use crate::sum::ExactSum;
use crate::view::View;

/// About the bytes of a chunk of logits (which their gradient then replaces): a chunk has
/// `max(1, CHUNK_BYTES / (C' size_of::<T>()))` rows, `C' = C d1..dk`.
pub const CHUNK_BYTES: usize = 32 << 20;

/// About the bytes of logits the cross-entropy kernel takes in one pass (the gradient of a pass
/// goes to a buffer this size, then over the pass's logits).
const PASS_BYTES: usize = 1 << 20;

/// Options of [`LinearCrossEntropy`], PyTorch's names and defaults.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(default, deny_unknown_fields))]
pub struct LinearCrossEntropyOptions<T> {
    /// One weight per class, `[C]`, finite. Default: none.
    pub weight: Option<Vec<T>>,
    /// Class-index targets equal to this are ignored. `None` (the default) means -100, as
    /// PyTorch's `None`; with probability targets it must be `None` (PyTorch refuses any value).
    pub ignore_index: Option<i64>,
    /// Default: [`Reduction::Mean`].
    pub reduction: Reduction,
    /// Label smoothing in `[0, 1]`. Default: 0.
    pub label_smoothing: f64,
    /// What a mean over nothing gives. Default: [`EmptyMean::Nan`], as PyTorch.
    pub empty_mean: EmptyMean,
}

impl<T> Default for LinearCrossEntropyOptions<T> {
    fn default() -> Self {
        LinearCrossEntropyOptions {
            weight: None,
            ignore_index: None,
            reduction: Reduction::Mean,
            label_smoothing: 0.0,
            empty_mean: EmptyMean::Nan,
        }
    }
}

impl<T: Clone> LinearCrossEntropyOptions<T> {
    /// The cross-entropy of the logits that these options describe (`ignore_index` `None` is
    /// -100): what a composition of a matrix product and a cross-entropy takes.
    pub fn cross_entropy_part(&self) -> CrossEntropyOptions<T> {
        CrossEntropyOptions {
            weight: self.weight.clone(),
            ignore_index: self.ignore_index.unwrap_or(-100),
            reduction: self.reduction,
            label_smoothing: self.label_smoothing,
            empty_mean: self.empty_mean,
        }
    }
}

impl LinearCrossEntropyOptions<f64> {
    /// The same options with the class weights in `T` (the adapters keep `f64` options).
    pub fn cast<T: Float>(&self) -> LinearCrossEntropyOptions<T> {
        LinearCrossEntropyOptions {
            weight: self.weight.as_ref().map(|w| w.iter().map(|&v| T::from_f64(v)).collect()),
            ignore_index: self.ignore_index,
            reduction: self.reduction,
            label_smoothing: self.label_smoothing,
            empty_mean: self.empty_mean,
        }
    }
}

/// The linear layer: `input` `[N, D]` (or `[D]`), `weight` `[C, (d1..dk,) D]`, `bias` the
/// weight's shape without `D`.
#[derive(Debug, Clone, Copy)]
pub struct Linear<'a, T> {
    /// The features, `[N, D]` or `[D]`.
    pub input: View<'a, T>,
    /// The projection, `[C, D]` or `[C, d1..dk, D]`.
    pub weight: View<'a, T>,
    /// The bias, `[C]` or `[C, d1..dk]`.
    pub bias: Option<View<'a, T>>,
}

/// The gradient half of [`LinearCrossEntropy::evaluate`]: the upstream gradient (the output's
/// shape) and the buffers that receive `d(sum(loss * grad_output))` with respect to the input,
/// the weight and (if wanted) the bias, each the length of its argument (overwritten).
#[derive(Debug)]
///
/// `S` is the arguments' type and `M` the maths type (`S` for `f32` and `f64`; `f32` for the
/// `bf16` / `f16` arguments of [`LinearCrossEntropy::evaluate_half`]).
pub struct LinearGrads<'g, S, M = S> {
    /// The upstream gradient, the output's shape.
    pub grad_output: &'g [M],
    /// d/d input.
    pub input: &'g mut [S],
    /// d/d weight.
    pub weight: &'g mut [S],
    /// d/d bias; `None`: not wanted (or no bias).
    pub bias: Option<&'g mut [S]>,
}

/// What a target of [`LinearCrossEntropy`] is: class indices (any [`Label`] type) or
/// probabilities (the float type itself).
pub trait LinearTarget<T: Float>: Copy + Send + Sync {
    /// The mean's denominator of these targets, after checking them against the logits' shape:
    /// the weight of the non-ignored class indices, or the number of positions.
    #[doc(hidden)]
    fn denominator(ce: &CrossEntropyLoss<T>, logits: &[usize], target: View<'_, Self>) -> Result<ExactSum>;
    /// Whether these are probabilities.
    #[doc(hidden)]
    const PROBABILITIES: bool;
}

impl<T: Float, L: Label> LinearTarget<T> for L {
    const PROBABILITIES: bool = false;
    fn denominator(ce: &CrossEntropyLoss<T>, logits: &[usize], target: View<'_, L>) -> Result<ExactSum> {
        ce.denominator(logits, target)
    }
}

macro_rules! probability_target {
    ($t:ty) => {
        impl LinearTarget<$t> for $t {
            const PROBABILITIES: bool = true;
            fn denominator(_: &CrossEntropyLoss<$t>, logits: &[usize], target: View<'_, $t>) -> Result<ExactSum> {
                if target.shape() != logits {
                    return Err(Error::ShapeMismatch {
                        what: "target",
                        got: target.shape().to_vec(),
                        expected: format!("{logits:?}, the logits' shape (probability targets)"),
                    });
                }
                Ok(ExactSum::from(Layout::classes_of(logits)?.positions() as f64))
            }
        }
    };
}
probability_target!(f32);
probability_target!(f64);

/// Linear cross-entropy with checked options (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct LinearCrossEntropy<T> {
    options: LinearCrossEntropyOptions<T>,
    /// Cross-entropy of one chunk: the options, reduced by `sum` (`none` for `none`).
    chunk: CrossEntropyLoss<T>,
}

impl LinearCrossEntropy<f32> {
    /// [`evaluate`](Self::evaluate) for `bf16` or `f16` arguments and class-index targets: the
    /// matrix products run in `f32` on the exact values (the input, `weight` and `bias` are
    /// widened once: `C D` floats of memory beside the half `weight`), the loss is `f32`, and
    /// each gradient is accumulated in `f32` and rounded once to the arguments' type.
    ///
    /// # Errors
    /// As [`evaluate`](Self::evaluate).
    pub fn evaluate_half<H: Element<Math = f32>, L: Label>(
        &self,
        linear: Linear<'_, H>,
        target: View<'_, L>,
        backward: Option<LinearGrads<'_, H, f32>>,
    ) -> Result<LossOutput<f32>> {
        self.widened(linear, target, backward)
    }

    /// [`evaluate_half`](Self::evaluate_half) with probability targets of the arguments' type.
    ///
    /// # Errors
    /// As [`evaluate`](Self::evaluate).
    pub fn evaluate_half_probabilities<H: Element<Math = f32>>(
        &self,
        linear: Linear<'_, H>,
        target: View<'_, H>,
        backward: Option<LinearGrads<'_, H, f32>>,
    ) -> Result<LossOutput<f32>> {
        let mut t = vec![0f32; target.len()];
        H::widen_slice(target.data(), &mut t);
        self.widened(linear, View::new(&t, target.shape())?, backward)
    }

    fn widened<H: Element<Math = f32>, Y: LinearTarget<f32>>(
        &self,
        linear: Linear<'_, H>,
        target: View<'_, Y>,
        backward: Option<LinearGrads<'_, H, f32>>,
    ) -> Result<LossOutput<f32>>
    where
        CrossEntropyLoss<f32>: Loss<f32, Y>,
    {
        let wide = |v: &View<'_, H>| {
            let mut o = vec![0f32; v.len()];
            H::widen_slice(v.data(), &mut o);
            o
        };
        let (x, w, b) = (wide(&linear.input), wide(&linear.weight), linear.bias.as_ref().map(wide));
        let lin = Linear {
            input: View::new(&x, linear.input.shape())?,
            weight: View::new(&w, linear.weight.shape())?,
            bias: match (&b, &linear.bias) {
                (Some(b), Some(v)) => Some(View::new(b, v.shape())?),
                _ => None,
            },
        };
        let Some(g) = backward else { return self.evaluate(lin, target, None) };
        for (what, got, want) in [("input", g.input.len(), x.len()), ("weight", g.weight.len(), w.len())]
            .into_iter()
            .chain(g.bias.as_ref().map(|gb| ("bias", gb.len(), b.as_ref().map_or(0, Vec::len))))
        {
            if got != want {
                return Err(Error::ShapeMismatch {
                    what,
                    got: vec![got],
                    expected: format!("{want} elements, the argument's (its gradient buffer)"),
                });
            }
        }
        let (mut gx, mut gw) = (vec![0f32; x.len()], vec![0f32; w.len()]);
        let mut gb = g.bias.as_ref().map(|gb| vec![0f32; gb.len()]);
        let grads =
            LinearGrads { grad_output: g.grad_output, input: &mut gx, weight: &mut gw, bias: gb.as_deref_mut() };
        let out = self.evaluate(lin, target, Some(grads))?;
        H::narrow_slice(&gx, g.input);
        H::narrow_slice(&gw, g.weight);
        if let (Some(dst), Some(src)) = (g.bias, &gb) {
            H::narrow_slice(src, dst);
        }
        Ok(out)
    }
}

/// The shapes of one call.
struct Dims {
    rows: usize,
    features: usize,
    /// `C d1..dk`: logits per row.
    width: usize,
    /// The logits' shape.
    logits: Vec<usize>,
    batched: bool,
}

impl<T: Float> LinearCrossEntropy<T> {
    /// Checks the options once.
    ///
    /// # Errors
    /// As [`CrossEntropyLoss::new`].
    pub fn new(options: LinearCrossEntropyOptions<T>) -> Result<Self> {
        let chunk = CrossEntropyLoss::new(CrossEntropyOptions {
            reduction: if options.reduction == Reduction::None { Reduction::None } else { Reduction::Sum },
            ..options.cross_entropy_part()
        })?;
        Ok(LinearCrossEntropy { options, chunk })
    }

    /// The options.
    pub fn options(&self) -> &LinearCrossEntropyOptions<T> {
        &self.options
    }

    /// The loss.
    ///
    /// # Errors
    /// As [`evaluate`](Self::evaluate).
    pub fn forward<Y: LinearTarget<T>>(&self, linear: Linear<'_, T>, target: View<'_, Y>) -> Result<LossOutput<T>>
    where
        CrossEntropyLoss<T>: Loss<T, Y>,
    {
        self.evaluate(linear, target, None)
    }

    /// The loss, and with `backward` the gradients of `input`, `weight` and `bias`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] for shapes that do not fit (input not 1-D or 2-D, weight not at
    /// least 2-D, different `D`, a bias or target of the wrong shape, a K-dimensional weight with
    /// unbatched input, gradient buffers of the wrong length), [`Error::InvalidOption`] for an
    /// `ignore_index` with probability targets; else as [`CrossEntropyLoss`].
    pub fn evaluate<Y: LinearTarget<T>>(
        &self,
        linear: Linear<'_, T>,
        target: View<'_, Y>,
        backward: Option<LinearGrads<'_, T>>,
    ) -> Result<LossOutput<T>>
    where
        CrossEntropyLoss<T>: Loss<T, Y>,
    {
        if Y::PROBABILITIES {
            if let Some(i) = self.options.ignore_index {
                return Err(Error::InvalidOption {
                    name: "ignore_index",
                    value: i.to_string(),
                    reason: "cannot be specified when the targets are probabilities (as in PyTorch)",
                });
            }
        }
        let d = dims(&linear)?;
        let reducer = Reducer {
            reduction: self.options.reduction,
            empty: self.options.empty_mean,
            denominator: Y::denominator(&self.chunk, &d.logits, target)?,
        };
        let out_shape = Layout::target_shape(&d.logits);
        let mut backward = backward;
        let up = match &mut backward {
            Some(g) => {
                check_len("grad_input", g.input.len(), linear.input.len())?;
                check_len("grad_weight", g.weight.len(), linear.weight.len())?;
                match (&g.bias, linear.bias) {
                    (Some(gb), Some(b)) => check_len("grad_bias", gb.len(), b.len())?,
                    (Some(_), None) => {
                        return Err(Error::ShapeMismatch {
                            what: "grad_bias",
                            got: vec![],
                            expected: "no buffer: the layer has no bias".into(),
                        })
                    }
                    _ => {}
                }
                Some(reducer.upstream(g.grad_output, &out_shape)?)
            }
            None => None,
        };
        let (x, w) = (linear.input.data(), linear.weight.data());
        let per_row_targets = target.len() / d.rows.max(1);
        let per_row_out = out_shape.iter().skip(1).product::<usize>();
        let row_bytes = d.width.max(1) * std::mem::size_of::<T>();
        let chunk_rows = (CHUNK_BYTES / row_bytes).clamp(1, d.rows.max(1));
        let pass_rows = (PASS_BYTES / row_bytes).clamp(1, chunk_rows);
        let mut z = vec![T::ZERO; chunk_rows * d.width];
        let mut pass = if backward.is_some() { vec![T::ZERO; pass_rows * d.width] } else { vec![] };
        if let Some(g) = &mut backward {
            if d.rows == 0 {
                g.weight.fill(T::ZERO); // (else the first chunk's product overwrites it)
            }
            if let Some(gb) = &mut g.bias {
                gb.fill(T::ZERO);
            }
        }
        let mut per =
            Vec::with_capacity(if self.options.reduction == Reduction::None { d.rows * per_row_out } else { 0 });
        let mut sum = ExactSum::default();
        let wm = Operand::new(w, d.width, d.features);
        let mut r0 = 0;
        while r0 < d.rows {
            let m = chunk_rows.min(d.rows - r0);
            let xm = Operand::new(&x[r0 * d.features..(r0 + m) * d.features], m, d.features);
            let zc = &mut z[..m * d.width];
            // (`width` is 0 for a weight of no classes: then there are no logits, and no rows.)
            if let Some(b) = linear.bias {
                zc.chunks_exact_mut(d.width.max(1)).for_each(|row| row.copy_from_slice(b.data()));
            }
            map_ordered(logits(zc, xm, wm, linear.bias.is_some()), BlockProduct::run);
            // The chunk's loss, a pass of rows at a time; with gradients, each pass's logit
            // gradient replaces its logits, so that one buffer holds the chunk.
            let mut p0 = 0;
            while p0 < m {
                let k = pass_rows.min(m - p0);
                let rows = r0 + p0..r0 + p0 + k;
                let zp = &mut zc[p0 * d.width..(p0 + k) * d.width];
                let mut shape = d.logits.clone();
                let mut tshape = target.shape().to_vec();
                if d.batched {
                    (shape[0], tshape[0]) = (k, k);
                }
                let tp = View::new(&target.data()[rows.start * per_row_targets..rows.end * per_row_targets], &tshape)?;
                let out = match up {
                    Some(up) => {
                        let one;
                        let go = match up {
                            Upstream::All(s) => {
                                one = [s];
                                &one[..]
                            }
                            // (`upstream` gives `Each` for `none`, never `PerSample`)
                            Upstream::Each(go) | Upstream::PerSample(go) => {
                                &go[rows.start * per_row_out..rows.end * per_row_out]
                            }
                        };
                        let dzp = &mut pass[..k * d.width];
                        let out = self.chunk.evaluate(
                            View::new(zp, &shape)?,
                            tp,
                            Some(Backward { grad_output: go, grad_input: dzp }),
                        )?;
                        zp.copy_from_slice(dzp);
                        out
                    }
                    None => self.chunk.evaluate(View::new(zp, &shape)?, tp, None)?,
                };
                sum.merge(&out.weighted_sum);
                if self.options.reduction == Reduction::None {
                    per.extend_from_slice(&out.loss);
                }
                p0 += k;
            }
            if let Some(g) = &mut backward {
                let dzm = Operand::new(&*zc, m, d.width);
                matmul(&mut g.input[r0 * d.features..(r0 + m) * d.features], dzm, wm, false);
                map_ordered(weight_grad(g.weight, dzm, xm, r0 > 0), BlockProduct::run);
                if let Some(gb) = &mut g.bias {
                    for row in zc.chunks_exact(d.width.max(1)) {
                        gb.iter_mut().zip(row).for_each(|(a, &b)| *a += b);
                    }
                }
            }
            r0 += m;
        }
        Ok(reducer.finish(per, out_shape, sum))
    }
}

fn check_len(what: &'static str, got: usize, want: usize) -> Result<()> {
    if got == want {
        return Ok(());
    }
    Err(Error::ShapeMismatch { what, got: vec![got], expected: format!("{want} elements, its argument's") })
}

/// Checks the layer's shapes (PyTorch's rules) and returns the call's dimensions.
fn dims<T>(l: &Linear<'_, T>) -> Result<Dims> {
    let (xs, ws) = (l.input.shape(), l.weight.shape());
    if xs.is_empty() || xs.len() > 2 {
        return Err(Error::ShapeMismatch {
            what: "input",
            got: xs.to_vec(),
            expected: "[N, D] or [D] (dimensionality 1 or 2)".into(),
        });
    }
    if ws.len() < 2 {
        return Err(Error::ShapeMismatch {
            what: "linear_weight",
            got: ws.to_vec(),
            expected: "[C, D] or [C, d1..dk, D] (dimensionality at least 2)".into(),
        });
    }
    let features = ws[ws.len() - 1];
    if xs[xs.len() - 1] != features {
        return Err(Error::ShapeMismatch {
            what: "linear_weight",
            got: ws.to_vec(),
            expected: format!("last dimension {} (in_features), the input's", xs[xs.len() - 1]),
        });
    }
    let out = &ws[..ws.len() - 1];
    if let Some(b) = &l.bias {
        if b.shape() != out {
            return Err(Error::ShapeMismatch {
                what: "linear_bias",
                got: b.shape().to_vec(),
                expected: format!("{out:?}, the weight's shape without D"),
            });
        }
    }
    let batched = xs.len() == 2;
    if !batched && out.len() > 1 {
        return Err(Error::ShapeMismatch {
            what: "input",
            got: xs.to_vec(),
            expected: format!("[N, {features}]: a K-dimensional linear_weight {ws:?} needs batched input"),
        });
    }
    let rows = if batched { xs[0] } else { 1 };
    let mut logits = out.to_vec();
    if batched {
        logits.insert(0, rows);
    }
    Ok(Dims { rows, features, width: out.iter().product(), logits, batched })
}
