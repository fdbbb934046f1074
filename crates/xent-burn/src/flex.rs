//! The Flex backend's path: xent's kernels on the values where Flex keeps them, and the custom
//! backward ops that hand burn-autodiff their gradients.
//!
//! A loss on a tracked input is one op: its forward pass, when the loss is reduced, runs the
//! fused kernel once for the loss and the gradient of an upstream 1 (what `loss.backward()`
//! sends) and keeps that gradient; the backward pass hands it over, or computes the gradient
//! afresh for any other upstream, so the gradient is always the core's, bit for bit.

use std::sync::Arc;

use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::{BalancedCheckpointing, CheckpointStrategy, NoCheckpointing};
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_autodiff::Autodiff;
use burn_backend::tensor::FloatTensor;
use burn_backend::TensorMetadata;
use burn_flex::{Flex, FlexTensor};
use burn_tensor::{DType, IntDType, Tensor, TensorData};
use xent::*;

use crate::recycle::{self, Recycled};
use crate::{Error, Result, Target};

/// A tracked tensor on Flex (burn-autodiff's tensor type; the checkpointing strategy is the op's).
pub(crate) type AutodiffTensor = FloatTensor<Autodiff<Flex>>;

/// A float type xent reads from Flex's storage in place, and its losses.
trait Stored: Element<Math: burn_backend::Element + bytemuck::Pod> + Recycled {
    /// The loss on class indices of type `L`; `None` if it takes float targets.
    fn index_loss<L: Label>(spec: &LossSpec) -> MaybeLoss<Self, L, Self::Math>;
    /// The loss on float targets of this type; `None` if it takes class indices.
    fn float_loss(spec: &LossSpec) -> MaybeLoss<Self, Self, Self::Math>;
}

macro_rules! stored {
    ($t:ty, $index:ident, $float:ident) => {
        impl Stored for $t {
            fn index_loss<L: Label>(spec: &LossSpec) -> MaybeLoss<$t, L, Self::Math> {
                spec.$index::<_, L>()
            }
            fn float_loss(spec: &LossSpec) -> MaybeLoss<$t, $t, Self::Math> {
                spec.$float::<$t>()
            }
        }
    };
}
stored!(f32, index_loss, float_loss);
stored!(f64, index_loss, float_loss);
stored!(bf16, half_index_loss, half_float_loss);
stored!(f16, half_index_loss, half_float_loss);

/// Runs `$body` with `$t` the scores' element type (f32, f64, bf16, f16).
macro_rules! by_type {
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
            DType::BF16 => {
                type $t = bf16;
                $body
            }
            DType::F16 => {
                type $t = f16;
                $body
            }
            d => unreachable!("scores of dtype {d:?} were refused before"),
        }
    };
}

/// A Flex tensor with its values contiguous (no copy where they already are).
pub(crate) fn contiguous(t: FlexTensor) -> FlexTensor {
    if t.is_contiguous() {
        t
    } else {
        t.to_contiguous()
    }
}

pub(crate) fn dims(t: &FlexTensor) -> Vec<usize> {
    t.shape().to_vec()
}

/// A loss's arguments on Flex: the scores, the target (i64 class indices, or floats of the
/// scores' type), both contiguous, and the target's dimensions.
#[derive(Debug)]
struct Args {
    spec: LossSpec,
    x: FlexTensor,
    t: FlexTensor,
    tdims: Vec<usize>,
}

fn wrong_target(float: bool) -> xent::Error {
    xent::Error::InvalidOption {
        name: "target",
        value: if float { "a float tensor" } else { "an integer tensor" }.into(),
        reason: if float { "this loss takes class indices (an Int tensor)" } else { "this loss takes float targets" },
    }
}

impl Args {
    /// The loss, and its gradient with `back`, through [`xent::Loss`].
    fn run<S: Stored>(&self, back: Option<(&[S::Math], &mut [S])>) -> xent::Result<LossOutput<S::Math>> {
        let x = self.x.as_slice::<S>().expect("the scores are contiguous and of type S");
        let shape = dims(&self.x);
        let input = View::new(x, &shape)?;
        let back = back.map(|(grad_output, grad_input)| xent::Backward { grad_output, grad_input });
        macro_rules! index {
            ($l:ty) => {{
                let t = self.t.as_slice::<$l>().expect("the target is contiguous");
                let t = View::new(t, &self.tdims)?;
                S::index_loss::<$l>(&self.spec)?.ok_or_else(|| wrong_target(false))?.evaluate(input, t, back)
            }};
        }
        match self.t.dtype() {
            DType::I64 => index!(i64),
            _ => {
                let y = self.t.as_slice::<S>().expect("float targets were given the scores' type");
                let loss = S::float_loss(&self.spec)?.ok_or_else(|| wrong_target(true))?;
                loss.evaluate(input, View::new(y, &self.tdims)?, back)
            }
        }
    }

    /// The loss as a Flex tensor (`[1]` when reduced, flat otherwise), and with `eager` the
    /// gradient of an upstream 1.
    fn forward<S: Stored>(&self, eager: bool) -> xent::Result<(FlexTensor, Option<FlexTensor>)> {
        let (out, grad) = if eager {
            let mut g = recycle::buffer::<S>(self.x.shape().num_elements());
            let one = [<S::Math as Float>::ONE];
            let out = self.run::<S>(Some((&one, &mut g)))?;
            (out, Some(recycle::tensor(g, dims(&self.x))))
        } else {
            (self.run::<S>(None)?, None)
        };
        let n = out.loss.len();
        Ok((FlexTensor::from_data(TensorData::new(out.loss, [n])), grad))
    }

    /// The gradient for the upstream `go`.
    fn gradient<S: Stored>(&self, go: FlexTensor) -> xent::Result<FlexTensor> {
        let go: Vec<S::Math> = go.into_data().convert::<S::Math>().try_to_vec().expect("converted to the maths type");
        let mut g = recycle::buffer::<S>(self.x.shape().num_elements());
        self.run::<S>(Some((&go, &mut g)))?;
        Ok(recycle::tensor(g, dims(&self.x)))
    }
}

/// What the backward pass needs: the arguments, and the gradient the forward pass kept.
#[derive(Debug, Clone)]
struct LossState {
    args: Arc<Args>,
    kept: Option<FlexTensor>,
}

#[derive(Debug)]
struct LossBackward;

impl Backward<Flex, 1> for LossBackward {
    type State = LossState;

    fn backward(self, ops: Ops<LossState, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let go = grads.consume::<Flex>(&ops.node);
        let [Some(parent)] = ops.parents else { return };
        let LossState { args, kept } = ops.state;
        let one = kept.is_some() && is_one(&go);
        let grad = match kept {
            Some(g) if one => g,
            _ => by_type!(args.x.dtype(), S => args.gradient::<S>(go))
                .expect("the forward pass checked the arguments the gradient takes"),
        };
        grads.register::<Flex>(parent.id, grad);
    }
}

/// Whether the upstream gradient `go` is the one element 1 (what `loss.backward()` sends to a
/// reduced loss), so that a gradient kept by the forward pass is the answer.
pub(crate) fn is_one(go: &FlexTensor) -> bool {
    go.shape().num_elements() == 1
        && go.clone().into_data().convert::<f64>().try_to_vec::<f64>().ok() == Some(vec![1.0])
}

/// The loss op on a tracked input: fused when the loss is reduced.
fn tracked<C: CheckpointStrategy>(
    x: AutodiffTensor,
    args: impl FnOnce(FlexTensor) -> Result<Args>,
) -> Result<AutodiffTensor> {
    let args = args(contiguous(x.primitive().clone()))?;
    let dtype = args.x.dtype();
    match LossBackward.prepare::<C>([x.node()]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let eager = args.spec.reduction() != Reduction::None;
            let (out, kept) = by_type!(dtype, S => args.forward::<S>(eager))?;
            Ok(prep.finish(LossState { args: Arc::new(args), kept }, out))
        }
        OpsKind::UnTracked(prep) => {
            let (out, _) = by_type!(dtype, S => args.forward::<S>(false))?;
            Ok(prep.finish(out))
        }
    }
}

/// The target as the kernels read it, on Flex: integers i64 (burn's default; others converted,
/// rather than every kernel built once more for each type), floats in the scores' type
/// `float`; `None` if it is not on Flex.
pub(crate) fn flex_target(target: &Target, float: DType) -> Option<FlexTensor> {
    let t = match target {
        Target::Index(t, _) => {
            let t = t.clone().inner();
            let t = match t.dtype() {
                DType::I64 => t,
                _ => t.cast(IntDType::I64),
            };
            t.try_into_primitive::<Flex>().ok()?
        }
        Target::Float(t, _) => {
            let t = t.clone().inner();
            let t = if t.dtype() == float { t } else { t.cast(float) };
            t.try_into_primitive::<Flex>().ok()?
        }
    };
    Some(contiguous(t))
}

/// The loss through xent's kernels if `input` lives on Flex; `None` otherwise.
pub(crate) fn loss<const D: usize>(input: &Tensor<D>, target: &Target, spec: &LossSpec) -> Result<Option<Tensor<1>>> {
    let args = |x: FlexTensor| -> Result<Args> {
        let t = flex_target(target, x.dtype())
            .ok_or_else(|| Error::Unsupported("the scores are on Flex but the target is not".into()))?;
        Ok(Args { spec: spec.clone(), x, t, tdims: target.dims().to_vec() })
    };
    if input.is_autodiff() {
        if let Ok(x) = input.clone().try_into_primitive::<Autodiff<Flex, NoCheckpointing>>() {
            let out = tracked::<NoCheckpointing>(x, args)?;
            return Ok(Some(Tensor::from_primitive::<Autodiff<Flex, NoCheckpointing>>(out)));
        }
        if let Ok(x) = input.clone().try_into_primitive::<Autodiff<Flex, BalancedCheckpointing>>() {
            let out = tracked::<BalancedCheckpointing>(x, args)?;
            return Ok(Some(Tensor::from_primitive::<Autodiff<Flex, BalancedCheckpointing>>(out)));
        }
        return Ok(None);
    }
    let Ok(x) = input.clone().try_into_primitive::<Flex>() else { return Ok(None) };
    let args = args(contiguous(x))?;
    let (out, _) = by_type!(args.x.dtype(), S => args.forward::<S>(false))?;
    Ok(Some(Tensor::from_primitive::<Flex>(out)))
}

/// Softmax or log-softmax over `dim`, as the op computes it.
#[derive(Debug, Clone, Copy)]
struct Softmax {
    dim: i64,
    log: bool,
}

impl Softmax {
    fn forward<S: Stored>(self, x: &FlexTensor) -> xent::Result<FlexTensor> {
        let shape = dims(x);
        let v = View::new(x.as_slice::<S>().expect("contiguous scores of type S"), &shape)?;
        let y = if self.log { xent::log_softmax(v, self.dim)? } else { xent::softmax(v, self.dim)? };
        Ok(FlexTensor::from_data(TensorData::new(y, dims(x))))
    }

    /// The gradient in the input's type `S` from the output `y` and the upstream `go`.
    fn backward<S: Stored>(self, y: &FlexTensor, go: FlexTensor) -> xent::Result<FlexTensor> {
        let shape = dims(y);
        let go: Vec<S::Math> = go.into_data().convert::<S::Math>().try_to_vec().expect("converted to the maths type");
        let y = View::new(y.as_slice::<S::Math>().expect("the output is contiguous, of the maths type"), &shape)?;
        let mut g = recycle::buffer::<S>(y.len());
        let go = View::new(&go, &shape)?;
        if self.log {
            xent::log_softmax_backward_into(y, go, self.dim, &mut g)?;
        } else {
            xent::softmax_backward_into(y, go, self.dim, &mut g)?;
        }
        Ok(recycle::tensor(g, shape))
    }
}

#[derive(Debug)]
struct SoftmaxBackward;

impl Backward<Flex, 1> for SoftmaxBackward {
    /// The op, the input's type and the output.
    type State = (Softmax, DType, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let go = grads.consume::<Flex>(&ops.node);
        let [Some(parent)] = ops.parents else { return };
        let (op, dtype, y) = ops.state;
        let grad = by_type!(dtype, S => op.backward::<S>(&y, go)).expect("shapes checked in the forward pass");
        grads.register::<Flex>(parent.id, grad);
    }
}

fn tracked_softmax<C: CheckpointStrategy>(x: AutodiffTensor, op: Softmax) -> Result<AutodiffTensor> {
    let xs = contiguous(x.primitive().clone());
    let dtype = xs.dtype();
    let y = by_type!(dtype, S => op.forward::<S>(&xs))?;
    Ok(match SoftmaxBackward.prepare::<C>([x.node()]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish((op, dtype, y.clone()), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    })
}

/// Softmax through xent's kernels if `input` lives on Flex; `None` otherwise.
pub(crate) fn softmax<const D: usize>(input: &Tensor<D>, dim: i64, log: bool) -> Result<Option<Tensor<D>>> {
    let op = Softmax { dim, log };
    if input.is_autodiff() {
        if let Ok(x) = input.clone().try_into_primitive::<Autodiff<Flex, NoCheckpointing>>() {
            let out = tracked_softmax::<NoCheckpointing>(x, op)?;
            return Ok(Some(Tensor::from_primitive::<Autodiff<Flex, NoCheckpointing>>(out)));
        }
        if let Ok(x) = input.clone().try_into_primitive::<Autodiff<Flex, BalancedCheckpointing>>() {
            let out = tracked_softmax::<BalancedCheckpointing>(x, op)?;
            return Ok(Some(Tensor::from_primitive::<Autodiff<Flex, BalancedCheckpointing>>(out)));
        }
        return Ok(None);
    }
    let Ok(x) = input.clone().try_into_primitive::<Flex>() else { return Ok(None) };
    let x = contiguous(x);
    Ok(Some(Tensor::from_primitive::<Flex>(by_type!(x.dtype(), S => op.forward::<S>(&x))?)))
}
