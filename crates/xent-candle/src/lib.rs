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
//! gradient back. f32 and f64 are computed as they are; f16 and bf16 in f32.
//!
//! Options are xent's option structs, with `f64` class weights; targets are candle integer
//! tensors (u8, u32, i16, i32, i64) for class indices, read in their own type, and float tensors
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
mod fresh;
mod linear;

pub use linear::{linear_cross_entropy, linear_cross_entropy_composed};

use std::sync::Mutex;

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

/// A loss and its options (class weights in `f64`, cast to the input's type).
#[derive(Debug, Clone)]
enum Spec {
    CrossEntropy(CrossEntropyOptions<f64>),
    Nll(NllOptions<f64>),
    Bce(BceOptions<f64>),
    BceWithLogits(BceWithLogitsOptions<f64>),
    SigmoidFocal(SigmoidFocalOptions),
    Dice(DiceOptions<f64>),
    GeneralizedDice(GeneralizedDiceOptions),
    Tversky(TverskyOptions),
    Focal(FocalOptions<f64>),
    DiceCe(DiceCeOptions<f64>),
    DiceFocal(DiceFocalOptions<f64>),
}

fn cast<T: Float>(v: &[f64]) -> Vec<T> {
    v.iter().map(|&x| T::from_f64(x)).collect()
}

fn cast_tensor<T: Float>(t: &Option<xent::WeightTensor<f64>>) -> xent::Result<Option<xent::WeightTensor<T>>> {
    t.as_ref().map(|t| xent::WeightTensor::new(cast(t.values()), t.shape().to_vec())).transpose()
}

fn ce_opts<T: Float>(o: &CrossEntropyOptions<f64>) -> CrossEntropyOptions<T> {
    CrossEntropyOptions {
        weight: o.weight.as_deref().map(cast),
        ignore_index: o.ignore_index,
        reduction: o.reduction,
        label_smoothing: o.label_smoothing,
        empty_mean: o.empty_mean,
    }
}

fn dice_opts<T: Float>(o: &DiceOptions<f64>) -> DiceOptions<T> {
    DiceOptions {
        activation: o.activation,
        include_background: o.include_background,
        squared_pred: o.squared_pred,
        jaccard: o.jaccard,
        batch: o.batch,
        smooth_nr: o.smooth_nr,
        smooth_dr: o.smooth_dr,
        weight: class_weight(&o.weight),
        ignore_index: o.ignore_index,
        reduction: o.reduction,
    }
}

fn class_weight<T: Float>(w: &Option<ClassWeight<f64>>) -> Option<ClassWeight<T>> {
    w.as_ref().map(|w| match w {
        ClassWeight::Uniform(v) => ClassWeight::Uniform(T::from_f64(*v)),
        ClassWeight::PerClass(v) => ClassWeight::PerClass(cast(v)),
    })
}

fn focal_opts<T: Float>(o: &FocalOptions<f64>) -> FocalOptions<T> {
    let alpha = match &o.alpha {
        FocalAlpha::None => FocalAlpha::None,
        FocalAlpha::Scalar(a) => FocalAlpha::Scalar(*a),
        FocalAlpha::PerClass(a) => FocalAlpha::PerClass(cast(a)),
    };
    FocalOptions {
        include_background: o.include_background,
        gamma: o.gamma,
        alpha,
        weight: class_weight(&o.weight),
        activation: o.activation,
        ignore_index: o.ignore_index,
        reduction: o.reduction,
    }
}

/// The loss of `spec` on class-index targets of type `L`; `None` if it takes float targets.
fn index_loss<T: Float, L: Label>(spec: &Spec) -> xent::Result<Option<Box<dyn xent::Loss<T, L>>>> {
    Ok(Some(match spec {
        Spec::CrossEntropy(o) => Box::new(CrossEntropyLoss::<T>::new(ce_opts(o))?),
        Spec::Nll(o) => Box::new(NllLoss::<T>::new(NllOptions {
            weight: o.weight.as_deref().map(cast),
            ignore_index: o.ignore_index,
            reduction: o.reduction,
            empty_mean: o.empty_mean,
        })?),
        Spec::Dice(o) => Box::new(DiceLoss::<T>::new(dice_opts(o))?),
        Spec::GeneralizedDice(o) => Box::new(GeneralizedDiceLoss::<T>::new(o.clone())?),
        Spec::Tversky(o) => Box::new(TverskyLoss::<T>::new(o.clone())?),
        Spec::Focal(o) => Box::new(FocalLoss::<T>::new(focal_opts(o))?),
        Spec::DiceCe(o) => Box::new(DiceCeLoss::<T>::new(DiceCeOptions {
            activation: o.activation,
            include_background: o.include_background,
            squared_pred: o.squared_pred,
            jaccard: o.jaccard,
            batch: o.batch,
            smooth_nr: o.smooth_nr,
            smooth_dr: o.smooth_dr,
            weight: o.weight.as_deref().map(cast),
            lambda_dice: o.lambda_dice,
            lambda_ce: o.lambda_ce,
            label_smoothing: o.label_smoothing,
            ignore_index: o.ignore_index,
            reduction: o.reduction,
        })?),
        Spec::DiceFocal(o) => Box::new(DiceFocalLoss::<T>::new(DiceFocalOptions {
            activation: o.activation,
            include_background: o.include_background,
            squared_pred: o.squared_pred,
            jaccard: o.jaccard,
            batch: o.batch,
            smooth_nr: o.smooth_nr,
            smooth_dr: o.smooth_dr,
            gamma: o.gamma,
            alpha: o.alpha,
            weight: class_weight(&o.weight),
            lambda_dice: o.lambda_dice,
            lambda_focal: o.lambda_focal,
            ignore_index: o.ignore_index,
            reduction: o.reduction,
        })?),
        _ => return Ok(None),
    }))
}

/// The loss of `spec` on float targets (probabilities, binary targets, soft labels); `None` if
/// it takes class indices.
fn float_loss<T: Float>(spec: &Spec) -> xent::Result<Option<Box<dyn xent::Loss<T, T>>>>
where
    CrossEntropyLoss<T>: xent::Loss<T, T>,
    DiceLoss<T>: xent::Loss<T, T>,
    TverskyLoss<T>: xent::Loss<T, T>,
{
    Ok(Some(match spec {
        Spec::CrossEntropy(o) => Box::new(CrossEntropyLoss::<T>::new(ce_opts(o))?),
        Spec::Bce(o) => Box::new(BceLoss::<T>::new(BceOptions {
            weight: cast_tensor(&o.weight)?,
            reduction: o.reduction,
            empty_mean: o.empty_mean,
        })?),
        Spec::BceWithLogits(o) => Box::new(BceWithLogitsLoss::<T>::new(BceWithLogitsOptions {
            weight: cast_tensor(&o.weight)?,
            pos_weight: cast_tensor(&o.pos_weight)?,
            reduction: o.reduction,
            empty_mean: o.empty_mean,
        })?),
        Spec::SigmoidFocal(o) => Box::new(SigmoidFocalLoss::<T>::new(o.clone())?),
        Spec::Dice(o) => Box::new(DiceLoss::<T>::new(dice_opts(o))?),
        Spec::Tversky(o) => Box::new(TverskyLoss::<T>::new(o.clone())?),
        _ => return Ok(None),
    }))
}

impl Spec {
    fn reduction(&self) -> Reduction {
        match self {
            Spec::CrossEntropy(o) => o.reduction,
            Spec::Nll(o) => o.reduction,
            Spec::Bce(o) => o.reduction,
            Spec::BceWithLogits(o) => o.reduction,
            Spec::SigmoidFocal(o) => o.reduction,
            Spec::Dice(o) => o.reduction,
            Spec::GeneralizedDice(o) => o.reduction,
            Spec::Tversky(o) => o.reduction,
            Spec::Focal(o) => o.reduction,
            Spec::DiceCe(o) => o.reduction,
            Spec::DiceFocal(o) => o.reduction,
        }
    }
}

/// The custom op: the loss of its one argument (the scores) for the targets, a CPU tensor
/// (contiguous, of an integer type or f32 / f64) read in place.
///
/// As [`linear_cross_entropy`]'s op: when the scores take part in autograd and the loss is
/// reduced to one number, the forward pass is the fused one, reading the scores once for the
/// loss and the gradient of an upstream 1 (what `loss.backward()` sends), which `bwd` hands over
/// (scaled by any other upstream gradient).
struct Op {
    loss: Spec,
    target: Tensor,
    /// Compute the gradient (for `grad_output = 1`) with the loss.
    eager: bool,
    /// That gradient.
    grad: Mutex<Option<Tensor>>,
}

type Backward<'a, T> = Option<(&'a [T], &'a mut [T])>;

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

/// `v` as a slice of `T`, if `S` is `T`.
#[allow(clippy::ptr_arg)] // `Any` can name the `Vec`, not the unsized slice
fn as_slice_of<S: 'static, T: 'static>(v: &Vec<S>) -> Option<&[T]> {
    (v as &dyn std::any::Any).downcast_ref::<Vec<T>>().map(Vec::as_slice)
}

impl Op {
    fn new(loss: Spec, target: &Tensor, scores: &Tensor) -> Result<Op> {
        let eager = scores.track_op() && loss.reduction() != Reduction::None;
        Ok(Op { eager, grad: Mutex::new(None), target: cpu_target(target)?, loss })
    }

    /// The loss of the scores `x`, and its gradient with `back`, through [`xent::Loss`].
    fn run<T: Float>(&self, x: &[T], shape: &[usize], back: Backward<'_, T>) -> xent::Result<LossOutput<T>>
    where
        CrossEntropyLoss<T>: xent::Loss<T, T>,
        DiceLoss<T>: xent::Loss<T, T>,
        TverskyLoss<T>: xent::Loss<T, T>,
    {
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
                index_loss::<T, _>(&self.loss)?.ok_or_else(|| wrong_target(false))?.evaluate(input, target, back)
            }};
        }
        match cpu {
            CpuStorage::U8(v) => index!(v),
            CpuStorage::U32(v) => index!(v),
            CpuStorage::I16(v) => index!(v),
            CpuStorage::I32(v) => index!(v),
            CpuStorage::I64(v) => index!(v),
            CpuStorage::F32(_) | CpuStorage::F64(_) => {
                let loss = float_loss::<T>(&self.loss)?.ok_or_else(|| wrong_target(true))?;
                // In place when the target has the input's type, else widened or narrowed once.
                let converted: Vec<T>;
                let y: &[T] = match cpu {
                    CpuStorage::F32(v) => match as_slice_of::<f32, T>(v) {
                        Some(y) => &y[a..b],
                        None => {
                            converted = v[a..b].iter().map(|&v| T::from_f64(f64::from(v))).collect();
                            &converted
                        }
                    },
                    CpuStorage::F64(v) => match as_slice_of::<f64, T>(v) {
                        Some(y) => &y[a..b],
                        None => {
                            converted = v[a..b].iter().map(|&v| T::from_f64(v)).collect();
                            &converted
                        }
                    },
                    _ => unreachable!(),
                };
                loss.evaluate(input, View::new(y, tshape)?, back)
            }
            _ => unreachable!("the target's type was checked when the op was built"),
        }
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
        macro_rules! forward {
            ($v:expr, $t:ty, $variant:ident) => {{
                let x = &$v[a..b];
                let out = if self.eager {
                    let mut g = fresh::zeros::<$t>(x.len());
                    let out = self.run::<$t>(x, layout.dims(), Some((&[1.0], &mut g))).map_err(wrap)?;
                    let g = Tensor::from_vec(g, layout.dims(), &Device::Cpu)?;
                    *self.grad.lock().unwrap_or_else(|p| p.into_inner()) = Some(g);
                    out
                } else {
                    self.run::<$t>(x, layout.dims(), None).map_err(wrap)?
                };
                Ok((CpuStorage::$variant(out.loss), Shape::from(out.shape)))
            }};
        }
        match storage {
            CpuStorage::F32(v) => forward!(v, f32, F32),
            CpuStorage::F64(v) => forward!(v, f64, F64),
            _ => Err(candle_core::Error::Msg("xent: the input is not f32 or f64".into())),
        }
    }

    /// The gradient kept by the forward pass scaled by the (scalar) upstream gradient, or
    /// computed now: the scores read where candle keeps them (no copy) and the gradient written
    /// once, with xent's fused kernel.
    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        if let Some(g) = self.grad.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            let s = grad_res.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?[0];
            return Ok(Some(if s == 1.0 { g } else { g.affine(s, 0.0)? }));
        }
        let dims = arg.dims().to_vec();
        let (storage, a, b) = cpu_slice!(arg);
        let g = match &*storage {
            Storage::Cpu(CpuStorage::F32(v)) => {
                let go = grad_res.flatten_all()?.to_vec1::<f32>()?;
                let mut g = fresh::zeros::<f32>(b - a);
                self.run(&v[a..b], &dims, Some((&go, &mut g))).map_err(wrap)?;
                CpuStorage::F32(g)
            }
            Storage::Cpu(CpuStorage::F64(v)) => {
                let go = grad_res.flatten_all()?.to_vec1::<f64>()?;
                let mut g = fresh::zeros::<f64>(b - a);
                self.run(&v[a..b], &dims, Some((&go, &mut g))).map_err(wrap)?;
                CpuStorage::F64(g)
            }
            _ => return Err(candle_core::Error::Msg("xent: the scores are not f32 or f64 on the CPU".into())),
        };
        drop(storage);
        Ok(Some(tensor_of(g, dims, arg.device())?))
    }
}

/// A tensor owning `g` (no copy).
fn tensor_of(g: CpuStorage, dims: Vec<usize>, device: &Device) -> Result<Tensor> {
    match g {
        CpuStorage::F32(v) => Tensor::from_vec(v, dims, device),
        CpuStorage::F64(v) => Tensor::from_vec(v, dims, device),
        _ => unreachable!("gradients are f32 or f64"),
    }
}

/// The target as the op reads it: on the CPU, contiguous, integers as they are and floats in
/// f32 or f64 (copied only where they are not already so).
fn cpu_target(target: &Tensor) -> Result<Tensor> {
    let t = target.to_device(&Device::Cpu)?.contiguous()?;
    match t.dtype() {
        DType::U8 | DType::U32 | DType::I16 | DType::I32 | DType::I64 | DType::F32 | DType::F64 => Ok(t),
        DType::F16 | DType::BF16 => t.to_dtype(DType::F32),
        d => Err(candle_core::Error::Msg(format!("xent: target dtype {d:?} is not supported"))),
    }
}

/// Softmax or log-softmax over `dim` (PyTorch's: negative counts from the end).
struct SoftmaxOp {
    dim: i64,
    log: bool,
}

impl SoftmaxOp {
    fn forward<T: Float>(&self, x: &[T], dims: &[usize]) -> xent::Result<Vec<T>> {
        let v = View::new(x, dims)?;
        if self.log {
            xent::log_softmax(v, self.dim)
        } else {
            xent::softmax(v, self.dim)
        }
    }

    fn backward<T: Float>(&self, y: &[T], go: &[T], dims: &[usize]) -> xent::Result<Vec<T>> {
        let (y, go) = (View::new(y, dims)?, View::new(go, dims)?);
        let mut g = fresh::zeros::<T>(y.len());
        if self.log {
            xent::log_softmax_backward_into(y, go, self.dim, &mut g)?;
        } else {
            xent::softmax_backward_into(y, go, self.dim, &mut g)?;
        }
        Ok(g)
    }
}

impl CustomOp1 for SoftmaxOp {
    fn name(&self) -> &'static str {
        "xent-softmax"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (a, b) = offsets(layout)?;
        let out = match storage {
            CpuStorage::F32(v) => CpuStorage::F32(self.forward(&v[a..b], layout.dims()).map_err(wrap)?),
            CpuStorage::F64(v) => CpuStorage::F64(self.forward(&v[a..b], layout.dims()).map_err(wrap)?),
            _ => return Err(candle_core::Error::Msg("xent: the input is not f32 or f64".into())),
        };
        Ok((out, layout.shape().clone()))
    }

    /// From the output (read in place) and the upstream gradient.
    fn bwd(&self, arg: &Tensor, res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let dims = res.dims().to_vec();
        let go = grad_res.contiguous()?;
        let (ys, ya, yb) = cpu_slice!(res);
        let (gs, ga, gb) = cpu_slice!(go);
        let g = match (&*ys, &*gs) {
            (Storage::Cpu(CpuStorage::F32(y)), Storage::Cpu(CpuStorage::F32(g))) => {
                CpuStorage::F32(self.backward(&y[ya..yb], &g[ga..gb], &dims).map_err(wrap)?)
            }
            (Storage::Cpu(CpuStorage::F64(y)), Storage::Cpu(CpuStorage::F64(g))) => {
                CpuStorage::F64(self.backward(&y[ya..yb], &g[ga..gb], &dims).map_err(wrap)?)
            }
            _ => {
                return Err(candle_core::Error::Msg(
                    "xent: softmax's output and gradient are not f32 / f64 on the CPU".into(),
                ))
            }
        };
        drop((ys, gs));
        Ok(Some(tensor_of(g, dims, arg.device())?))
    }
}

/// Softmax (or log-softmax) of `input` over `dim`, as PyTorch's: xent's kernels on the CPU
/// (output and gradient), candle-nn's ops elsewhere; f16 and bf16 computed in f32.
fn softmax_op(input: &Tensor, dim: i64, log: bool) -> Result<Tensor> {
    let rank = input.rank() as i64;
    if !(-rank.max(1)..rank.max(1)).contains(&dim) {
        return Err(candle_core::Error::Msg(format!("xent: dim {dim} is out of range for a {rank}-d input")));
    }
    let dtype = input.dtype();
    let x = match dtype {
        DType::F32 | DType::F64 => input.clone(),
        DType::F16 | DType::BF16 => input.to_dtype(DType::F32)?,
        d => return Err(candle_core::Error::Msg(format!("xent: input dtype {d:?} is not a float type"))),
    };
    let out = if x.device().is_cpu() {
        x.contiguous()?.apply_op1(SoftmaxOp { dim, log })?
    } else {
        let d = if dim < 0 { (dim + rank) as usize } else { dim as usize };
        if log {
            candle_nn::ops::log_softmax(&x, d)?
        } else {
            candle_nn::ops::softmax(&x, d)?
        }
    };
    if out.dtype() == dtype {
        Ok(out)
    } else {
        out.to_dtype(dtype)
    }
}

/// Softmax over `dim` (`torch.softmax`), with autograd.
///
/// # Errors
/// A `dim` out of range, a non-float input, and candle's own errors.
pub fn softmax(input: &Tensor, dim: i64) -> Result<Tensor> {
    softmax_op(input, dim, false)
}

/// Log-softmax over `dim` (`torch.log_softmax`), with autograd.
///
/// # Errors
/// As [`softmax`].
pub fn log_softmax(input: &Tensor, dim: i64) -> Result<Tensor> {
    softmax_op(input, dim, true)
}

/// Runs `loss` on `input` through xent's kernels on the CPU (input moved there and back if
/// needed), or through the composition of candle ops where one exists and the input is
/// elsewhere (or `composed` asks for it).
fn apply(input: &Tensor, target: &Tensor, loss: Spec, composed: bool) -> Result<Tensor> {
    let dtype = input.dtype();
    let x = match dtype {
        DType::F32 | DType::F64 => input.clone(),
        DType::F16 | DType::BF16 => input.to_dtype(DType::F32)?,
        d => return Err(candle_core::Error::Msg(format!("xent: input dtype {d:?} is not a float type"))),
    };
    let device = x.device().clone();
    let out = if composed || !device.is_cpu() {
        match composed::loss(&x, target, &loss)? {
            Some(t) => t,
            None => {
                let cpu = x.to_device(&Device::Cpu)?;
                let op = Op::new(loss, target, &cpu)?;
                cpu.contiguous()?.apply_op1(op)?.to_device(&device)?
            }
        }
    } else {
        let op = Op::new(loss, target, &x)?;
        x.contiguous()?.apply_op1(op)?
    };
    if out.dtype() == dtype {
        Ok(out)
    } else {
        out.to_dtype(dtype)
    }
}

macro_rules! losses {
    ($($(#[$doc:meta])* $name:ident, $composed:ident: $opts:ty => $variant:ident;)*) => {$(
        $(#[$doc])*
        ///
        /// # Errors
        /// xent's errors (shapes, targets, options) as a candle error, and candle's own.
        pub fn $name(input: &Tensor, target: &Tensor, options: &$opts) -> Result<Tensor> {
            apply(input, target, Spec::$variant(options.clone()), false)
        }

        /// The same loss as a composition of candle ops (the path used off the CPU), or through
        /// the CPU kernels where xent has no composition for it. For tests and other devices.
        ///
        /// # Errors
        /// As the kernel version.
        pub fn $composed(input: &Tensor, target: &Tensor, options: &$opts) -> Result<Tensor> {
            apply(input, target, Spec::$variant(options.clone()), true)
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
