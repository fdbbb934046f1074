//! [`linear_cross_entropy`]: PyTorch 2.15's fused projection and cross-entropy on burn tensors.
//!
//! On Flex, one burn-autodiff op over `(input, weight)` or `(input, weight, bias)` runs xent's
//! chunked kernel ([`xent::LinearCrossEntropy`], which never forms the `[N, C]` logits); as for
//! the other losses, a reduced loss on tracked arguments computes the three gradients in the
//! forward pass and hands them to `backward()` when the upstream is 1, and any other upstream
//! recomputes them. Elsewhere the logits are formed by `matmul` and go through the composed
//! cross-entropy.

use std::sync::Arc;

use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::{BalancedCheckpointing, CheckpointStrategy, NoCheckpointing};
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_autodiff::Autodiff;
use burn_backend::TensorMetadata;
use burn_flex::{Flex, FlexTensor};
use burn_tensor::{DType, Tensor, TensorData};
use xent::*;

use crate::flex::{contiguous, dims, flex_target, is_one, AutodiffTensor};
use crate::recycle::{self, Recycled};
use crate::{composed, Error, Result, Target};

/// The loss of `cross_entropy(input @ weight^T + bias, target)` without forming the logits
/// ([`xent::LinearCrossEntropy`], PyTorch 2.15's `linear_cross_entropy`), with autodiff for
/// `input`, `weight` and `bias`.
///
/// Shapes (PyTorch's): `input` `[N, D]` or `[D]`; `weight` `[C, D]` or `[C, d1..dk, D]` (burn's
/// `nn::Linear` keeps its weight as `[D, C]`: pass `weight.transpose()`); `bias` flattened,
/// `[C]` or `[C * d1 * .. * dk]`; `Int` targets `[N]` (`[N, d1..dk]`) are class indices, float
/// targets `[N, C]` (`[N, C, d1..dk]`) probabilities. The loss is `[1]` when reduced, else the
/// per-row losses flattened. On Flex, xent's chunked kernels: the extra memory is one chunk of
/// logits, not `N x C`; elsewhere [`linear_cross_entropy_composed`], which forms the logits.
/// bf16 and f16 arguments are computed in f32 (burn's cast) and give an f32 loss, with their
/// gradients in their own type.
///
/// ```
/// use burn_tensor::{Device, Int, Tensor};
/// let device = Device::flex().autodiff();
/// let x = Tensor::<2>::from_floats([[1.0, 0.0], [0.0, 1.0]], &device).require_grad();
/// let w = Tensor::<2>::from_floats([[1.0, 2.0], [3.0, 0.5], [0.0, 0.0]], &device).require_grad();
/// let t = Tensor::<1, Int>::from_ints([2, 0], &device);
/// let loss = xent_burn::linear_cross_entropy(x, w.clone(), None, t, &Default::default())?;
/// let grads = loss.clone().backward();
/// assert_eq!(w.grad(&grads).unwrap().dims(), [3, 2]);
/// assert!((loss.into_scalar::<f32>() - 1.7381).abs() < 1e-4);
/// # Ok::<(), xent_burn::Error>(())
/// ```
///
/// # Errors
/// xent's errors (shapes, targets, options), arguments of different dtypes or devices.
pub fn linear_cross_entropy<const D: usize, const K: usize>(
    input: Tensor<D>,
    weight: Tensor<K>,
    bias: Option<Tensor<1>>,
    target: impl Into<Target>,
    options: &LinearCrossEntropyOptions<f64>,
) -> Result<Tensor<1>> {
    apply(input, weight, bias, target.into(), options, false)
}

/// [`linear_cross_entropy`] as a composition of burn ops (the path used off Flex): the logits by
/// `matmul`, then the composed cross-entropy. It forms the `[N, C]` logits.
///
/// # Errors
/// As [`linear_cross_entropy`].
pub fn linear_cross_entropy_composed<const D: usize, const K: usize>(
    input: Tensor<D>,
    weight: Tensor<K>,
    bias: Option<Tensor<1>>,
    target: impl Into<Target>,
    options: &LinearCrossEntropyOptions<f64>,
) -> Result<Tensor<1>> {
    apply(input, weight, bias, target.into(), options, true)
}

fn apply<const D: usize, const K: usize>(
    input: Tensor<D>,
    weight: Tensor<K>,
    bias: Option<Tensor<1>>,
    target: Target,
    options: &LinearCrossEntropyOptions<f64>,
    composed: bool,
) -> Result<Tensor<1>> {
    let dtype = input.dtype();
    for d in [Some(dtype), Some(weight.dtype()), bias.as_ref().map(Tensor::dtype)].into_iter().flatten() {
        crate::check_float(d)?;
        if d != dtype {
            return Err(Error::Unsupported(format!(
                "input, linear_weight and linear_bias must have one dtype, got {dtype:?} and {d:?}"
            )));
        }
    }
    let ws = weight.dims();
    let width = ws[..K.saturating_sub(1)].iter().product::<usize>();
    if let Some(b) = &bias {
        if b.dims()[0] != width {
            return Err(xent::Error::ShapeMismatch {
                what: "linear_bias",
                got: b.dims().to_vec(),
                expected: format!("[{width}] (linear_weight {ws:?} without D, flattened)"),
            }
            .into());
        }
    }
    // Half arguments are computed in f32 (burn's cast gives their gradients their own type).
    let (x, w, b) = (composed::widened(input), composed::widened(weight), bias.map(composed::widened));
    if !composed {
        if let Some(out) = flex(&x, &w, b.as_ref(), &target, options)? {
            return Ok(out);
        }
    }
    compose(x, w, b, target, options)
}

/// The composition: logits by `matmul`, viewed `[N, C, S]`, through the composed cross-entropy.
fn compose<const D: usize, const K: usize>(
    x: Tensor<D>,
    w: Tensor<K>,
    b: Option<Tensor<1>>,
    target: Target,
    o: &LinearCrossEntropyOptions<f64>,
) -> Result<Tensor<1>> {
    let (xs, ws) = (x.dims(), w.dims());
    let bad = |what, got: &[usize], expected: String| {
        Err(xent::Error::ShapeMismatch { what, got: got.to_vec(), expected }.into())
    };
    if D == 0 || D > 2 {
        return bad("input", &xs, "[N, D] or [D]".into());
    }
    let d = xs[D - 1];
    if K < 2 || ws[K - 1] != d {
        return bad("linear_weight", &ws, format!("[C, .., {d}] (D = {d}, the input's last dimension)"));
    }
    if D == 1 && K > 2 {
        return bad("linear_weight", &ws, "[C, D]: a K-dimensional weight needs batched input".into());
    }
    let probabilities = matches!(target, Target::Float(..));
    if let (true, Some(i)) = (probabilities, o.ignore_index) {
        return Err(xent::Error::InvalidOption {
            name: "ignore_index",
            value: i.to_string(),
            reason: "cannot be specified when the targets are probabilities (as in PyTorch)",
        }
        .into());
    }
    let out = &ws[..K - 1];
    let (c, s) = (out[0], out[1..].iter().product::<usize>());
    let spec = LossSpec::CrossEntropy(o.cross_entropy_part());
    let none =
        || Error::Unsupported("linear_cross_entropy with these options has no composition of burn ops yet".into());
    let w2 = w.reshape([c * s, d]);
    if D == 1 {
        let z = w2.matmul(x.reshape([d, 1])).reshape([c]);
        let z = match b {
            Some(b) => z + b,
            None => z,
        };
        return composed::loss(z, target, &spec)?.ok_or_else(none);
    }
    let n = xs[0];
    let mut z = x.reshape([n, d]).matmul(w2.transpose());
    if let Some(b) = b {
        z = z + b.reshape([1, c * s]);
    }
    let z = z.reshape([n, c, s]);
    // The target as the `[N, C, S]` logits read it, after checking it against `[N, C, d1..dk]`.
    let mut want = vec![n];
    want.extend_from_slice(if probabilities { out } else { &out[1..] });
    if target.dims() != want {
        let kind = if probabilities { "[N, C, d1..dk], probabilities" } else { "[N, d1..dk], class indices" };
        return bad("target", target.dims(), format!("{want:?} ({kind})"));
    }
    let target = match target {
        Target::Index(t, _) => Target::Index(t, vec![n, s]),
        Target::Float(t, _) => Target::Float(t, vec![n, c, s]),
    };
    composed::loss(z, target, &spec)?.ok_or_else(none)
}

/// The arguments on Flex, contiguous and of one type (f32 or f64), the bias flat.
#[derive(Debug)]
struct Args {
    options: LinearCrossEntropyOptions<f64>,
    x: FlexTensor,
    w: FlexTensor,
    b: Option<FlexTensor>,
    t: FlexTensor,
    tdims: Vec<usize>,
}

/// The gradients of input, weight and bias.
type Grads = (FlexTensor, FlexTensor, Option<FlexTensor>);

/// Runs `$body` with `$t` the arguments' type (f32 or f64: halves were cast before).
macro_rules! wide {
    ($dtype:expr, $t:ident => $body:expr) => {
        match $dtype {
            DType::F32 => {
                type $t = f32;
                $body
            }
            DType::F64 => {
                type $t = f64;
                $body
            }
            d => unreachable!("arguments of dtype {d:?} were cast to f32 before"),
        }
    };
}

impl Args {
    /// The loss, and with the upstream `go` the three gradients.
    fn run<S>(&self, go: Option<&[S]>) -> xent::Result<(FlexTensor, Option<Grads>)>
    where
        S: Float + LinearTarget<S> + Recycled,
        CrossEntropyLoss<S>: Loss<S, S> + Loss<S, i64>,
    {
        let o = &self.options;
        let lce = LinearCrossEntropy::new(o.cast::<S>())?;
        fn of<S: burn_backend::Element + bytemuck::Pod>(t: &FlexTensor) -> &[S] {
            t.as_slice::<S>().expect("contiguous, of the arguments' type")
        }
        let (xd, wd) = (dims(&self.x), dims(&self.w));
        let out = &wd[..wd.len().saturating_sub(1)];
        let linear = Linear {
            input: View::new(of::<S>(&self.x), &xd)?,
            weight: View::new(of::<S>(&self.w), &wd)?,
            bias: self.b.as_ref().map(|b| View::new(of::<S>(b), out)).transpose()?,
        };
        let buffer = |t: &FlexTensor| recycle::buffer::<S>(t.shape().num_elements());
        let mut g = go.map(|_| (buffer(&self.x), buffer(&self.w), self.b.as_ref().map(buffer)));
        let grads = match (&mut g, go) {
            (Some((gx, gw, gb)), Some(go)) => {
                Some(LinearGrads { grad_output: go, input: gx, weight: gw, bias: gb.as_deref_mut() })
            }
            _ => None,
        };
        let loss = match self.t.dtype() {
            DType::I64 => {
                let t = View::new(self.t.as_slice::<i64>().expect("contiguous class indices"), &self.tdims)?;
                lce.evaluate(linear, t, grads)
            }
            _ => lce.evaluate(linear, View::new(of::<S>(&self.t), &self.tdims)?, grads),
        }?
        .loss;
        let n = loss.len();
        let g = g.map(|(gx, gw, gb)| {
            use recycle::tensor;
            (tensor(gx, xd), tensor(gw, wd.clone()), gb.map(|gb| tensor(gb, vec![out.iter().product()])))
        });
        Ok((FlexTensor::from_data(TensorData::new(loss, vec![n])), g))
    }

    /// The loss, and with `eager` the gradients of an upstream 1.
    fn forward<S>(&self, eager: bool) -> xent::Result<(FlexTensor, Option<Grads>)>
    where
        S: Float + LinearTarget<S> + Recycled,
        CrossEntropyLoss<S>: Loss<S, S> + Loss<S, i64>,
    {
        self.run::<S>(eager.then_some(&[S::ONE][..]))
    }

    /// The gradients for the upstream `go`.
    fn gradient<S>(&self, go: FlexTensor) -> xent::Result<Grads>
    where
        S: Float + LinearTarget<S> + Recycled,
        CrossEntropyLoss<S>: Loss<S, S> + Loss<S, i64>,
    {
        let go: Vec<S> = go.into_data().convert::<S>().try_to_vec().expect("converted to the arguments' type");
        Ok(self.run::<S>(Some(&go))?.1.expect("gradients were asked for"))
    }
}

/// What the backward pass needs: the arguments, and the gradients the forward pass kept.
#[derive(Debug, Clone)]
struct State {
    args: Arc<Args>,
    kept: Option<Grads>,
}

#[derive(Debug)]
struct LinearBackward;

impl<const N: usize> Backward<Flex, N> for LinearBackward {
    type State = State;

    fn backward(self, ops: Ops<State, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let go = grads.consume::<Flex>(&ops.node);
        let State { args, kept } = ops.state;
        let one = kept.is_some() && is_one(&go);
        let (gx, gw, gb) = match kept {
            Some(g) if one => g,
            _ => wide!(args.x.dtype(), S => args.gradient::<S>(go))
                .expect("the forward pass checked the arguments the gradients take"),
        };
        for (parent, g) in ops.parents.into_iter().zip([Some(gx), Some(gw), gb]) {
            if let (Some(p), Some(g)) = (parent, g) {
                grads.register::<Flex>(p.id, g);
            }
        }
    }
}

/// The op on tracked arguments (`[input, weight]` or `[input, weight, bias]`).
fn tracked<C: CheckpointStrategy, const N: usize>(parents: [AutodiffTensor; N], args: Args) -> Result<AutodiffTensor> {
    let dtype = args.x.dtype();
    let prep =
        <LinearBackward as Backward<Flex, N>>::prepare::<C>(LinearBackward, parents.each_ref().map(|p| p.node()));
    match prep.compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let eager = args.options.reduction != Reduction::None;
            let (out, kept) = wide!(dtype, S => args.forward::<S>(eager))?;
            Ok(prep.finish(State { args: Arc::new(args), kept }, out))
        }
        OpsKind::UnTracked(prep) => {
            let (out, _) = wide!(dtype, S => args.forward::<S>(false))?;
            Ok(prep.finish(out))
        }
    }
}

fn one_device() -> Error {
    Error::Unsupported("input, linear_weight and linear_bias must be on one device (and all tracked or none)".into())
}

impl Args {
    fn new(
        options: &LinearCrossEntropyOptions<f64>,
        x: FlexTensor,
        w: FlexTensor,
        b: Option<FlexTensor>,
        target: &Target,
    ) -> Result<Args> {
        let t = flex_target(target, x.dtype())
            .ok_or_else(|| Error::Unsupported("the arguments are on Flex but the target is not".into()))?;
        Ok(Args {
            options: options.clone(),
            x: contiguous(x),
            w: contiguous(w),
            b: b.map(contiguous),
            t,
            tdims: target.dims().to_vec(),
        })
    }
}

/// The loss through xent's kernels if the arguments live on Flex; `None` otherwise.
fn flex<const D: usize, const K: usize>(
    x: &Tensor<D>,
    w: &Tensor<K>,
    b: Option<&Tensor<1>>,
    target: &Target,
    options: &LinearCrossEntropyOptions<f64>,
) -> Result<Option<Tensor<1>>> {
    // The arguments' primitives on backend `$b`, if the input is there.
    macro_rules! on {
        ($b:ty) => {
            match x.clone().try_into_primitive::<$b>() {
                Ok(xp) => {
                    let wp = w.clone().try_into_primitive::<$b>().map_err(|_| one_device())?;
                    let bp = b.map(|b| b.clone().try_into_primitive::<$b>().map_err(|_| one_device())).transpose()?;
                    Some((xp, wp, bp))
                }
                Err(_) => None,
            }
        };
    }
    // The op on tracked arguments with checkpointing strategy `$c`, if they are there.
    macro_rules! tracked {
        ($c:ty) => {
            if let Some((xp, wp, bp)) = on!(Autodiff<Flex, $c>) {
                let bf = bp.as_ref().map(|b: &AutodiffTensor| b.primitive().clone());
                let args = Args::new(options, xp.primitive().clone(), wp.primitive().clone(), bf, target)?;
                let out = match bp {
                    Some(bp) => tracked::<$c, 3>([xp, wp, bp], args)?,
                    None => tracked::<$c, 2>([xp, wp], args)?,
                };
                return Ok(Some(Tensor::from_primitive::<Autodiff<Flex, $c>>(out)));
            }
        };
    }
    if x.is_autodiff() {
        tracked!(NoCheckpointing);
        tracked!(BalancedCheckpointing);
        return Ok(None);
    }
    let Some((xp, wp, bp)) = on!(Flex) else { return Ok(None) };
    let args = Args::new(options, xp, wp, bp, target)?;
    let (out, _) = wide!(args.x.dtype(), S => args.forward::<S>(false))?;
    Ok(Some(Tensor::from_primitive::<Flex>(out)))
}
