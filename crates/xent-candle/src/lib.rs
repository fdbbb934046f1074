//! # xent-candle: xent's losses on candle tensors, with autograd
//!
//! Every loss of [`xent`], and [`softmax`] / [`log_softmax`], as a function on candle
//! [`Tensor`]s that takes part in candle's autograd (candle 0.11). On the CPU the forward and
//! backward passes are xent's own kernels, run through candle's custom-op mechanism: both read
//! the scores and the targets where candle keeps them (no copy), and the backward pass writes the
//! gradient once with xent's fused kernel. On other devices every loss is a composition of
//! candle ops, so GPU users are not locked out (the `*_composed` functions run it on any device,
//! and the tests check it against the kernels on the CPU); the option sets without a
//! composition (probability targets, soft labels, `[N, C]` overlap inputs, DiceFocal,
//! one-channel DiceCE, `EmptyMean::Zero`, empty inputs) copy the input to the CPU and the
//! gradient back. f32 and f64 are computed as they are. bf16 and f16 scores are computed in f32
//! and give an f32 loss (and softmax), as xent's core and PyTorch's autocast do, with the
//! gradient in the input's type, rounded once: on the CPU every loss and softmax hands the
//! 2-byte values to the core as they are (which widens them once for DiceCE and DiceFocal,
//! whose two gradients add up); `linear_cross_entropy` (whose core widens its arguments once
//! anyway) runs on an f32 copy.
//!
//! Options are xent's option structs, with `f64` class weights; targets are candle integer
//! tensors for class indices (u8, u32 and i64 read in their own type, i16 and i32 converted to
//! i64), and float tensors
//! for probabilities, binary targets and soft labels.
//!
//! # Example: one training step with weighted cross-entropy
//! ```
//! use candle_core::{DType, Device, Tensor, Var};
//! use xent::CrossEntropyOptions;
//! let dev = Device::Cpu;
//! let logits = Var::from_tensor(&Tensor::new(&[[1.0f32, 2.0, 3.0], [0.5, 0.1, -1.0]], &dev)?)?;
//! let target = Tensor::new(&[2u8, 0], &dev)?;
//! let opts = CrossEntropyOptions { weight: Some(vec![3.0, 1.0, 0.5]), ..Default::default() };
//! let loss = xent_candle::cross_entropy(logits.as_tensor(), &target, &opts)?;
//! let grads = loss.backward()?;
//! let g = grads.get(logits.as_tensor()).unwrap();
//! logits.set(&(logits.as_tensor() - (g * 0.1)?)?)?; // a plain SGD step
//! assert_eq!(g.dims(), &[2, 3]);
//! assert_eq!(loss.dtype(), DType::F32);
//! # Ok::<(), candle_core::Error>(())
//! ```
#![deny(missing_docs)]

mod composed;
mod linear;

pub use linear::{linear_cross_entropy, linear_cross_entropy_composed};

use std::sync::Mutex;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Result, Shape, Storage, Tensor};
use xent::*;

/// The contiguous CPU values of a tensor's storage, as `T`, and the guard that keeps them.
macro_rules! cpu_slice {
    ($tensor:expr) => {{
        let (storage, layout) = $tensor.storage_and_layout();
        let (a, b) = offsets(layout)?;
        (storage, a, b)
    }};
}
pub(crate) use cpu_slice;

/// A type the ops read from candle's storage in place: the losses and outputs for it.
trait Stored: Element<Math: candle_core::WithDType> + candle_core::WithDType {
    /// The loss on class indices of type `L`; `None` if it takes float targets.
    fn index_loss<L: Label>(spec: &LossSpec) -> MaybeLoss<Self, L, Self::Math>;
    /// The loss on float targets of this type; `None` if it takes class indices.
    fn float_loss(spec: &LossSpec) -> MaybeLoss<Self, Self, Self::Math>;
    /// The storage's values, if they are of this type.
    fn values(s: &CpuStorage) -> Option<&[Self]>;
    /// `n` zeros for a gradient (fresh memory, see [`fresh`]).
    fn zeros(n: usize) -> Vec<Self>;
}

macro_rules! stored {
    ($t:ty, $variant:ident, $index:ident, $float:ident, $zeros:expr) => {
        impl Stored for $t {
            fn index_loss<L: Label>(spec: &LossSpec) -> MaybeLoss<$t, L, Self::Math> {
                spec.$index::<_, L>()
            }
            fn float_loss(spec: &LossSpec) -> MaybeLoss<$t, $t, Self::Math> {
                spec.$float::<$t>()
            }
            fn values(s: &CpuStorage) -> Option<&[$t]> {
                match s {
                    CpuStorage::$variant(v) => Some(v),
                    _ => None,
                }
            }
            fn zeros(n: usize) -> Vec<$t> {
                $zeros(n)
            }
        }
    };
}
stored!(f32, F32, index_loss, float_loss, fresh::zeros::<f32>);
stored!(f64, F64, index_loss, float_loss, fresh::zeros::<f64>);
stored!(bf16, BF16, half_index_loss, half_float_loss, fresh::filled::<bf16>);
stored!(f16, F16, half_index_loss, half_float_loss, fresh::filled::<f16>);

/// Runs `$body` with `$t` the storage's element type (f32, f64, bf16, f16) and `$v` its values.
macro_rules! by_type {
    ($storage:expr, |$v:ident: $t:ident| $body:expr) => {
        match $storage {
            CpuStorage::F32($v) => {
                type $t = f32;
                $body
            }
            CpuStorage::F64($v) => {
                type $t = f64;
                $body
            }
            CpuStorage::BF16($v) => {
                type $t = bf16;
                $body
            }
            CpuStorage::F16($v) => {
                type $t = f16;
                $body
            }
            s => Err(candle_core::Error::Msg(format!("xent: scores of dtype {:?} are not supported", s.dtype()))),
        }
    };
}

/// The custom op: the loss of its one argument (the scores, f32, f64, or bf16 / f16 where the
/// core takes them) for the targets, a CPU tensor (contiguous, integers in their own type,
/// floats in the scores' type) read in place.
///
/// As [`linear_cross_entropy`]'s op: when the scores take part in autograd and the loss is
/// reduced to one number, the forward pass is the fused one, reading the scores once for the
/// loss and the gradient of an upstream 1 (what `loss.backward()` sends), which `bwd` hands over.
/// For any other upstream gradient `bwd` computes it afresh (one more read of the scores), so
/// the gradient is the core's, bit for bit, whatever the upstream.
struct Op {
    loss: LossSpec,
    target: Tensor,
    /// Compute the gradient (for `grad_output = 1`) with the loss.
    eager: bool,
    /// That gradient.
    grad: Mutex<Option<Tensor>>,
}

fn wrong_target(float: bool) -> xent::Error {
    xent::Error::InvalidOption {
        name: "target",
        value: if float { "a float tensor" } else { "an integer tensor" }.into(),
        reason: if float {
            "this loss takes class indices (an integer tensor)"
        } else {
            "this loss takes float targets"
        },
    }
}

impl Op {
    fn new(loss: LossSpec, target: &Tensor, scores: &Tensor) -> Result<Op> {
        let eager = scores.track_op() && loss.reduction() != Reduction::None;
        Ok(Op { eager, grad: Mutex::new(None), target: cpu_target(target, scores.dtype())?, loss })
    }

    /// The loss of the scores `x`, and its gradient with `back`, through [`xent::Loss`].
    fn run<S: Stored>(
        &self,
        x: &[S],
        shape: &[usize],
        back: Option<(&[S::Math], &mut [S])>,
    ) -> xent::Result<LossOutput<S::Math>> {
        let input = View::new(x, shape)?;
        let back = back.map(|(grad_output, grad_input)| xent::Backward { grad_output, grad_input });
        let (storage, layout) = self.target.storage_and_layout();
        let (Storage::Cpu(cpu), Some((a, b))) = (&*storage, layout.contiguous_offsets()) else {
            unreachable!("the target was made a contiguous CPU tensor when the op was built")
        };
        let tshape = layout.dims();
        macro_rules! index {
            ($v:expr) => {{
                let target = View::new(&$v[a..b], tshape)?;
                S::index_loss(&self.loss)?.ok_or_else(|| wrong_target(false))?.evaluate(input, target, back)
            }};
        }
        match cpu {
            CpuStorage::U8(v) => index!(v),
            CpuStorage::U32(v) => index!(v),
            CpuStorage::I64(v) => index!(v),
            float => {
                let y = S::values(float).expect("float targets were given the scores' type when the op was built");
                let loss = S::float_loss(&self.loss)?.ok_or_else(|| wrong_target(true))?;
                loss.evaluate(input, View::new(&y[a..b], tshape)?, back)
            }
        }
    }

    /// The loss (and with `eager` the gradient, kept) of the scores `x`.
    fn forward<S: Stored>(&self, x: &[S], dims: &[usize]) -> Result<(CpuStorage, Shape)> {
        let out = if self.eager {
            let mut g = S::zeros(x.len());
            let one = [<S::Math as Float>::ONE];
            let out = self.run(x, dims, Some((&one, &mut g))).map_err(wrap)?;
            *self.grad.lock().unwrap_or_else(|p| p.into_inner()) = Some(Tensor::from_vec(g, dims, &Device::Cpu)?);
            out
        } else {
            self.run(x, dims, None).map_err(wrap)?
        };
        Ok((<S::Math as candle_core::WithDType>::to_cpu_storage_owned(out.loss), Shape::from(out.shape)))
    }

    /// The gradient for the upstream `go`, the scores `x` read in place.
    fn backward<S: Stored>(&self, x: &[S], dims: &[usize], go: &Tensor) -> Result<Tensor> {
        let go: Vec<S::Math> = go.flatten_all()?.to_dtype(<S::Math as candle_core::WithDType>::DTYPE)?.to_vec1()?;
        let mut g = S::zeros(x.len());
        self.run(x, dims, Some((&go, &mut g))).map_err(wrap)?;
        Tensor::from_vec(g, dims, &Device::Cpu)
    }
}

/// Where a contiguous tensor's values lie in its storage.
fn offsets(layout: &Layout) -> Result<(usize, usize)> {
    layout.contiguous_offsets().ok_or_else(|| candle_core::Error::Msg("xent: the tensor is not contiguous".into()))
}

fn wrap(e: xent::Error) -> candle_core::Error {
    candle_core::Error::Msg(format!("xent: {e}"))
}

impl CustomOp1 for Op {
    fn name(&self) -> &'static str {
        "xent-loss"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (a, b) = offsets(layout)?;
        by_type!(storage, |v: T| self.forward::<T>(&v[a..b], layout.dims()))
    }

    /// The gradient the forward pass kept, for an upstream 1; otherwise computed now, the
    /// scores read where candle keeps them (no copy) and the gradient written once, with xent's
    /// fused kernel.
    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        if let Some(g) = self.grad.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            if grad_res.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()? == [1.0] {
                return Ok(Some(g));
            }
        }
        let (storage, a, b) = cpu_slice!(arg);
        let Storage::Cpu(cpu) = &*storage else {
            return Err(candle_core::Error::Msg("xent: the scores are not on the CPU".into()));
        };
        by_type!(cpu, |v: T| self.backward::<T>(&v[a..b], arg.dims(), grad_res)).map(Some)
    }
}

/// The target as the op reads it: on the CPU, contiguous, integers as they are and floats in
/// the scores' type `float` (converted only where they are not already so).
fn cpu_target(target: &Tensor, float: DType) -> Result<Tensor> {
    let t = target.to_device(&Device::Cpu)?.contiguous()?;
    match t.dtype() {
        DType::U8 | DType::U32 | DType::I64 => Ok(t),
        // Rare label types: one copy to i64 instead of every kernel built once more for each.
        DType::I16 | DType::I32 => t.to_dtype(DType::I64),
        DType::F32 | DType::F64 | DType::F16 | DType::BF16 => t.to_dtype(float),
        d => Err(candle_core::Error::Msg(format!("xent: target dtype {d:?} is not supported"))),
    }
}

/// Softmax or log-softmax over `dim` (PyTorch's: negative counts from the end).
struct SoftmaxOp {
    dim: i64,
    log: bool,
}

impl SoftmaxOp {
    fn forward<S: Stored>(&self, x: &[S], dims: &[usize]) -> Result<CpuStorage> {
        let v = View::new(x, dims).map_err(wrap)?;
        let y = if self.log { xent::log_softmax(v, self.dim) } else { xent::softmax(v, self.dim) }.map_err(wrap)?;
        Ok(<S::Math as candle_core::WithDType>::to_cpu_storage_owned(y))
    }

    /// The gradient in the input's type `S`, from the output and the upstream gradient (the
    /// maths type, read in place).
    fn backward<S: Stored>(
        &self,
        y: &CpuStorage,
        go: &CpuStorage,
        (ya, yb): (usize, usize),
        (ga, gb): (usize, usize),
        dims: &[usize],
    ) -> Result<Tensor>
    where
        S::Math: Stored,
    {
        let (Some(y), Some(go)) = (<S::Math as Stored>::values(y), <S::Math as Stored>::values(go)) else {
            return Err(candle_core::Error::Msg(
                "xent: softmax's output and gradient are not of one float type".into(),
            ));
        };
        let (y, go) = (View::new(&y[ya..yb], dims).map_err(wrap)?, View::new(&go[ga..gb], dims).map_err(wrap)?);
        let mut g = S::zeros(y.len());
        if self.log {
            xent::log_softmax_backward_into(y, go, self.dim, &mut g)
        } else {
            xent::softmax_backward_into(y, go, self.dim, &mut g)
        }
        .map_err(wrap)?;
        Tensor::from_vec(g, dims, &Device::Cpu)
    }
}

impl CustomOp1 for SoftmaxOp {
    fn name(&self) -> &'static str {
        "xent-softmax"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (a, b) = offsets(layout)?;
        let out = by_type!(storage, |v: T| self.forward::<T>(&v[a..b], layout.dims()))?;
        Ok((out, layout.shape().clone()))
    }

    /// From the output (read in place) and the upstream gradient.
    fn bwd(&self, arg: &Tensor, res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let go = grad_res.to_dtype(res.dtype())?.contiguous()?;
        let (ys, ya, yb) = cpu_slice!(res);
        let (gs, ga, gb) = cpu_slice!(go);
        let (Storage::Cpu(y), Storage::Cpu(g)) = (&*ys, &*gs) else {
            return Err(candle_core::Error::Msg("xent: softmax's output is not on the CPU".into()));
        };
        let dims = res.dims();
        let grad = match arg.dtype() {
            DType::F32 => self.backward::<f32>(y, g, (ya, yb), (ga, gb), dims),
            DType::F64 => self.backward::<f64>(y, g, (ya, yb), (ga, gb), dims),
            DType::BF16 => self.backward::<bf16>(y, g, (ya, yb), (ga, gb), dims),
            DType::F16 => self.backward::<f16>(y, g, (ya, yb), (ga, gb), dims),
            d => Err(candle_core::Error::Msg(format!("xent: softmax of dtype {d:?}"))),
        }?;
        Ok(Some(grad))
    }
}

/// An error unless `dtype` is one of the float types xent computes (f32, f64, bf16, f16).
fn check_float(dtype: DType) -> Result<()> {
    match dtype {
        DType::F32 | DType::F64 | DType::F16 | DType::BF16 => Ok(()),
        d => Err(candle_core::Error::Msg(format!("xent: input dtype {d:?} is not a float type"))),
    }
}

/// `t` as the maths reads it where the kernels do not take it in place: f32 and f64 as they
/// are, bf16 and f16 widened to an f32 copy (computed in f32, as xent's core and PyTorch's
/// autocast).
pub(crate) fn widened(t: &Tensor) -> Result<Tensor> {
    check_float(t.dtype())?;
    match t.dtype() {
        DType::F16 | DType::BF16 => t.to_dtype(DType::F32),
        _ => Ok(t.clone()),
    }
}

/// Softmax (or log-softmax) of `input` over `dim`, as PyTorch's: xent's kernels on the CPU
/// (output and gradient; bf16 and f16 read as they are), candle-nn's ops elsewhere (on an f32
/// copy of half inputs). The output of a half input is f32.
fn softmax_op(input: &Tensor, dim: i64, log: bool) -> Result<Tensor> {
    let rank = input.rank() as i64;
    if !(-rank.max(1)..rank.max(1)).contains(&dim) {
        return Err(candle_core::Error::Msg(format!("xent: dim {dim} is out of range for a {rank}-d input")));
    }
    check_float(input.dtype())?;
    if input.device().is_cpu() {
        return input.contiguous()?.apply_op1(SoftmaxOp { dim, log });
    }
    let x = widened(input)?;
    let d = if dim < 0 { (dim + rank) as usize } else { dim as usize };
    if log {
        candle_nn::ops::log_softmax(&x, d)
    } else {
        candle_nn::ops::softmax(&x, d)
    }
}

/// Softmax over `dim` (`torch.softmax`), with autograd. A bf16 or f16 input gives an f32 output.
///
/// # Errors
/// A `dim` out of range, a non-float input, and candle's own errors.
pub fn softmax(input: &Tensor, dim: i64) -> Result<Tensor> {
    softmax_op(input, dim, false)
}

/// Log-softmax over `dim` (`torch.log_softmax`), with autograd. A bf16 or f16 input gives an f32
/// output.
///
/// # Errors
/// As [`softmax`].
pub fn log_softmax(input: &Tensor, dim: i64) -> Result<Tensor> {
    softmax_op(input, dim, true)
}

/// Runs `loss` on `input` through xent's kernels on the CPU (input moved there and back if
/// needed), or through the composition of candle ops where one exists and the input is
/// elsewhere (or `composed` asks for it). bf16 and f16 scores go to the kernels as they are (the
/// compositions take them as f32); their loss is f32.
fn apply(input: &Tensor, target: &Tensor, loss: LossSpec, composed: bool) -> Result<Tensor> {
    check_float(input.dtype())?;
    let device = input.device().clone();
    if !composed && device.is_cpu() {
        let op = Op::new(loss, target, input)?;
        return input.contiguous()?.apply_op1(op);
    }
    let x = widened(input)?;
    if let Some(t) = composed::loss(&x, target, &loss)? {
        return Ok(t);
    }
    let cpu = x.to_device(&Device::Cpu)?;
    let op = Op::new(loss, target, &cpu)?;
    cpu.contiguous()?.apply_op1(op)?.to_device(&device)
}

macro_rules! losses {
    ($($(#[$doc:meta])* $name:ident, $composed:ident: $opts:ty => $variant:ident;)*) => {$(
        $(#[$doc])*
        ///
        /// # Errors
        /// xent's errors (shapes, targets, options) as a candle error, and candle's own.
        pub fn $name(input: &Tensor, target: &Tensor, options: &$opts) -> Result<Tensor> {
            apply(input, target, LossSpec::$variant(options.clone()), false)
        }

        /// The same loss as a composition of candle ops (the path used off the CPU), or through
        /// the CPU kernels where xent has no composition for it. For tests and other devices.
        ///
        /// # Errors
        /// As the kernel version.
        pub fn $composed(input: &Tensor, target: &Tensor, options: &$opts) -> Result<Tensor> {
            apply(input, target, LossSpec::$variant(options.clone()), true)
        }
    )*};
}

losses! {
    /// Cross-entropy ([`xent::CrossEntropyLoss`]): integer targets are class indices, float targets
    /// probabilities.
    cross_entropy, cross_entropy_composed: CrossEntropyOptions<f64> => CrossEntropy;
    /// Negative log-likelihood of log-probabilities ([`xent::NllLoss`]).
    nll_loss, nll_loss_composed: NllOptions<f64> => Nll;
    /// Binary cross-entropy on probabilities ([`xent::BceLoss`]).
    binary_cross_entropy, binary_cross_entropy_composed: BceOptions<f64> => Bce;
    /// Binary cross-entropy with logits ([`xent::BceWithLogitsLoss`]), stable for any logit.
    binary_cross_entropy_with_logits, binary_cross_entropy_with_logits_composed: BceWithLogitsOptions<f64> => BceWithLogits;
    /// torchvision's sigmoid focal loss ([`xent::SigmoidFocalLoss`]).
    sigmoid_focal_loss, sigmoid_focal_loss_composed: SigmoidFocalOptions => SigmoidFocal;
    /// MONAI's Dice loss ([`xent::DiceLoss`]): integer targets are class indices, float targets
    /// soft labels (MONAI's `soft_label=True`).
    dice_loss, dice_loss_composed: DiceOptions<f64> => Dice;
    /// MONAI's generalized Dice loss ([`xent::GeneralizedDiceLoss`]).
    generalized_dice_loss, generalized_dice_loss_composed: GeneralizedDiceOptions => GeneralizedDice;
    /// MONAI's Tversky loss ([`xent::TverskyLoss`]): integer targets are class indices, float
    /// targets soft labels.
    tversky_loss, tversky_loss_composed: TverskyOptions => Tversky;
    /// MONAI's focal loss ([`xent::FocalLoss`]).
    focal_loss, focal_loss_composed: FocalOptions<f64> => Focal;
    /// Dice plus cross-entropy ([`xent::DiceCeLoss`]).
    dice_ce, dice_ce_composed: DiceCeOptions<f64> => DiceCe;
    /// Dice plus focal ([`xent::DiceFocalLoss`]).
    dice_focal, dice_focal_composed: DiceFocalOptions<f64> => DiceFocal;
}
