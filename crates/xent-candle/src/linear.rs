//! [`linear_cross_entropy`]: PyTorch 2.15's fused projection and cross-entropy on candle tensors.

use super::{cpu_slice, fresh, offsets, wrap, Stored};
use candle_core::{CpuStorage, CustomOp2, CustomOp3, DType, Device, Layout, Result, Shape, Storage, Tensor};
use std::sync::Mutex;
use xent::*;

/// The op over `(input, weight)` or `(input, weight, bias)`; the target is read in place.
struct LinearOp {
    options: LinearCrossEntropyOptions<f64>,
    target: Tensor,
    /// Compute the gradients (for `grad_output = 1`) with the loss, for `bwd` to scale:
    /// a reduced loss whose arguments want gradients.
    eager: bool,
    /// Those gradients (input, weight, bias).
    grads: Mutex<Option<Grads>>,
}

type Grads = (Tensor, Tensor, Option<Tensor>);

/// The three gradients' values (input, weight, bias).
type Values<T> = (Vec<T>, Vec<T>, Option<Vec<T>>);

/// A float argument's contiguous values and shape.
type Arg<'a, T> = (&'a [T], &'a [usize]);

impl LinearOp {
    /// The loss, and with `grad_output` the three gradients.
    fn run<T: Float + Stored + LinearTarget<T>>(
        &self,
        x: Arg<'_, T>,
        w: Arg<'_, T>,
        b: Option<Arg<'_, T>>,
        grad_output: Option<&[T]>,
    ) -> xent::Result<(LossOutput<T>, Option<Values<T>>)>
    where
        CrossEntropyLoss<T>: xent::Loss<T, T>,
    {
        let o = &self.options;
        let lce = LinearCrossEntropy::new(o.cast::<T>())?;
        let linear = Linear {
            input: View::new(x.0, x.1)?,
            weight: View::new(w.0, w.1)?,
            bias: b.map(|b| View::new(b.0, b.1)).transpose()?,
        };
        let mut g =
            grad_output.map(|_| (fresh::zeros(x.0.len()), fresh::zeros(w.0.len()), b.map(|b| fresh::zeros(b.0.len()))));
        let grads = match (&mut g, grad_output) {
            (Some((gx, gw, gb)), Some(go)) => {
                Some(LinearGrads { grad_output: go, input: gx, weight: gw, bias: gb.as_deref_mut() })
            }
            _ => None,
        };
        let (storage, layout) = self.target.storage_and_layout();
        let (Storage::Cpu(cpu), Some((a, e))) = (&*storage, layout.contiguous_offsets()) else {
            unreachable!("the target was made a contiguous CPU tensor when the op was built")
        };
        let tshape = layout.dims();
        macro_rules! index {
            ($v:expr, $l:ty) => {
                lce.evaluate::<$l>(linear, View::new(&$v[a..e], tshape)?, grads)
            };
        }
        let out = match cpu {
            CpuStorage::U8(v) => index!(v, u8),
            CpuStorage::U32(v) => index!(v, u32),
            CpuStorage::I64(v) => index!(v, i64),
            float => {
                let y = T::values(float).expect("float targets were given the input's type when the op was built");
                lce.evaluate::<T>(linear, View::new(&y[a..e], tshape)?, grads)
            }
        }?;
        Ok((out, g))
    }

    /// The forward pass on the CPU storages; keeps the gradients when `eager`.
    fn fwd(
        &self,
        x: (&CpuStorage, &Layout),
        w: (&CpuStorage, &Layout),
        b: Option<(&CpuStorage, &Layout)>,
    ) -> Result<(CpuStorage, Shape)> {
        macro_rules! typed {
            ($variant:ident, $t:ty) => {{
                fn arg<'a>((s, l): (&'a CpuStorage, &'a Layout)) -> Result<Arg<'a, $t>> {
                    let (a, e) = offsets(l)?;
                    match s {
                        CpuStorage::$variant(v) => Ok((&v[a..e], l.dims())),
                        _ => Err(candle_core::Error::Msg("xent: input, weight and bias must have one dtype".into())),
                    }
                }
                let (xa, wa, ba) = (arg(x)?, arg(w)?, b.map(arg).transpose()?);
                let one: [$t; 1] = [1.0];
                let (out, g) = self.run::<$t>(xa, wa, ba, self.eager.then_some(&one[..])).map_err(wrap)?;
                if let Some((gx, gw, gb)) = g {
                    let cpu = Device::Cpu;
                    let gb = match (gb, ba) {
                        (Some(g), Some(ba)) => Some(Tensor::from_vec(g, ba.1, &cpu)?),
                        _ => None,
                    };
                    let grads = (Tensor::from_vec(gx, xa.1, &cpu)?, Tensor::from_vec(gw, wa.1, &cpu)?, gb);
                    *self.grads.lock().unwrap_or_else(|p| p.into_inner()) = Some(grads);
                }
                Ok((CpuStorage::$variant(out.loss), Shape::from(out.shape)))
            }};
        }
        match x.0 {
            CpuStorage::F32(_) => typed!(F32, f32),
            CpuStorage::F64(_) => typed!(F64, f64),
            _ => Err(candle_core::Error::Msg("xent: the input is not f32 or f64".into())),
        }
    }

    /// The gradients: those kept by the forward pass for an upstream 1, or computed now from the
    /// storages for the upstream gradient (not the kept ones scaled: that rounds differently
    /// from the core, and a weight gradient summed over rows can lose digits to it).
    fn bwd(&self, x: &Tensor, w: &Tensor, b: Option<&Tensor>, grad_res: &Tensor) -> Result<Grads> {
        if let Some(g) = self.grads.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            if grad_res.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()? == [1.0] {
                return Ok(g);
            }
        }
        let (xs, xa, xe) = cpu_slice!(x);
        let (ws, wa, we) = cpu_slice!(w);
        let bs = b.map(|b| -> Result<_> { Ok((cpu_slice!(b), b.dims())) }).transpose()?;
        macro_rules! typed {
            ($variant:ident, $t:ty) => {{
                let (Storage::Cpu(CpuStorage::$variant(xv)), Storage::Cpu(CpuStorage::$variant(wv))) = (&*xs, &*ws)
                else {
                    return Err(candle_core::Error::Msg("xent: input and weight must be f32 or f64 on the CPU".into()));
                };
                let bv = match &bs {
                    Some(((s, a, e), dims)) => match &**s {
                        Storage::Cpu(CpuStorage::$variant(v)) => Some((&v[*a..*e], *dims)),
                        _ => return Err(candle_core::Error::Msg("xent: the bias must have the input's dtype".into())),
                    },
                    None => None,
                };
                let go = grad_res.flatten_all()?.to_vec1::<$t>()?;
                let (_, g) =
                    self.run::<$t>((&xv[xa..xe], x.dims()), (&wv[wa..we], w.dims()), bv, Some(&go)).map_err(wrap)?;
                let (gx, gw, gb) = g.expect("gradients were asked for");
                let cpu = Device::Cpu;
                let gb = match (gb, b) {
                    (Some(g), Some(b)) => Some(Tensor::from_vec(g, b.dims(), &cpu)?),
                    _ => None,
                };
                Ok((Tensor::from_vec(gx, x.dims(), &cpu)?, Tensor::from_vec(gw, w.dims(), &cpu)?, gb))
            }};
        }
        match x.dtype() {
            DType::F32 => typed!(F32, f32),
            _ => typed!(F64, f64),
        }
    }
}

impl CustomOp2 for LinearOp {
    fn name(&self) -> &'static str {
        "xent-linear-cross-entropy"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        self.fwd((s1, l1), (s2, l2), None)
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (gx, gw, _) = LinearOp::bwd(self, x, w, None, grad_res)?;
        Ok((Some(gx), Some(gw)))
    }
}

impl CustomOp3 for LinearOp {
    fn name(&self) -> &'static str {
        "xent-linear-cross-entropy"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.fwd((s1, l1), (s2, l2), Some((s3, l3)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (gx, gw, gb) = LinearOp::bwd(self, x, w, Some(b), grad_res)?;
        Ok((Some(gx), Some(gw), gb))
    }
}

/// The loss of `cross_entropy(input @ weight^T + bias, target)` without forming the logits
/// ([`xent::LinearCrossEntropy`], PyTorch 2.15's `linear_cross_entropy`), with autograd for
/// `input`, `weight` and `bias`.
///
/// Shapes: `input` `[N, D]` or `[D]`, `weight` `[C, D]` or `[C, d1..dk, D]`, `bias` the weight's
/// shape without `D`; integer targets are class indices, float targets probabilities. On the
/// CPU, xent's chunked kernels; with a reduced loss whose arguments want gradients, the forward
/// pass computes the gradients too (three matrix products in all), and `backward()` hands them
/// over for an upstream 1; any other upstream, and `Reduction::None`, computes them in `backward()`. Elsewhere the composition
/// [`linear_cross_entropy_composed`], which forms the logits. bf16 and f16 arguments are
/// computed in f32 and give an f32 loss; their gradients come back in their own types.
///
/// ```
/// use candle_core::{Device, Tensor, Var};
/// let dev = Device::Cpu;
/// let x = Var::from_tensor(&Tensor::new(&[[1.0f32, 0.0], [0.0, 1.0]], &dev)?)?;
/// let w = Var::from_tensor(&Tensor::new(&[[1.0f32, 2.0], [3.0, 0.5], [0.0, 0.0]], &dev)?)?;
/// let t = Tensor::new(&[2u32, 0], &dev)?;
/// let loss = xent_candle::linear_cross_entropy(x.as_tensor(), w.as_tensor(), None, &t, &Default::default())?;
/// let grads = loss.backward()?;
/// assert_eq!(grads.get(w.as_tensor()).unwrap().dims(), &[3, 2]);
/// assert!((loss.to_scalar::<f32>()? - 1.7381).abs() < 1e-4);
/// # Ok::<(), candle_core::Error>(())
/// ```
///
/// # Errors
/// xent's errors (shapes, targets, options) as a candle error, and candle's own.
pub fn linear_cross_entropy(
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    target: &Tensor,
    options: &LinearCrossEntropyOptions<f64>,
) -> Result<Tensor> {
    if !input.device().is_cpu() {
        return linear_cross_entropy_composed(input, weight, bias, target, options);
    }
    let float = |t: &Tensor| super::widened(t)?.contiguous();
    let (x, w, b) = (float(input)?, float(weight)?, bias.map(float).transpose()?);
    let eager = options.reduction != Reduction::None
        && (input.track_op() || weight.track_op() || bias.is_some_and(Tensor::track_op));
    let op = LinearOp {
        options: options.clone(),
        target: super::cpu_target(target, x.dtype())?,
        eager,
        grads: Mutex::new(None),
    };
    match &b {
        Some(b) => x.apply_op3(&w, b, op),
        None => x.apply_op2(&w, op),
    }
}

/// [`linear_cross_entropy`] as a composition of candle ops (the path used off the CPU): the
/// logits by `matmul`, then [`cross_entropy_composed`](super::cross_entropy_composed). It forms
/// the `[N, C]` logits.
///
/// # Errors
/// As [`linear_cross_entropy`].
pub fn linear_cross_entropy_composed(
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    target: &Tensor,
    options: &LinearCrossEntropyOptions<f64>,
) -> Result<Tensor> {
    let ws = weight.dims();
    let xs = input.dims();
    let bad = |m: String| Err(candle_core::Error::Msg(format!("xent: {m}")));
    if xs.is_empty() || xs.len() > 2 || ws.len() < 2 || xs[xs.len() - 1] != ws[ws.len() - 1] {
        return bad(format!("input {xs:?} and linear_weight {ws:?} do not fit ([N, D] or [D], and [C, .., D])"));
    }
    let out = &ws[..ws.len() - 1];
    if xs.len() == 1 && out.len() > 1 {
        return bad(format!("a K-dimensional linear_weight {ws:?} needs batched input, got {xs:?}"));
    }
    if let Some(b) = bias {
        if b.dims() != out {
            return bad(format!("linear_bias has shape {:?}, expected {out:?}", b.dims()));
        }
    }
    let probabilities = matches!(target.dtype(), DType::F16 | DType::BF16 | DType::F32 | DType::F64);
    if probabilities && options.ignore_index.is_some() {
        return bad("ignore_index cannot be specified when the targets are probabilities".into());
    }
    // Half arguments are computed in f32, as on the CPU.
    let (input, weight, bias) =
        (super::widened(input)?, super::widened(weight)?, bias.map(super::widened).transpose()?);
    let (width, d) = (out.iter().product::<usize>(), ws[ws.len() - 1]);
    let x2 = if xs.len() == 2 { input.clone() } else { input.unsqueeze(0)? };
    let mut z = x2.matmul(&weight.reshape((width, d))?.t()?)?;
    if let Some(b) = &bias {
        z = z.broadcast_add(&b.reshape(width)?)?;
    }
    let mut logits_shape = vec![x2.dims()[0]];
    logits_shape.extend_from_slice(out);
    let z = z.reshape(logits_shape)?;
    let z = if xs.len() == 2 { z } else { z.squeeze(0)? };
    super::cross_entropy_composed(&z, target, &options.cross_entropy_part())
}
