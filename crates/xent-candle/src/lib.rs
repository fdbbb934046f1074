//! # xent-candle: xent's losses on candle tensors, with autograd
//!
//! Every loss of [`xent`] as a function on candle [`Tensor`]s that takes part in candle's
//! autograd. On the CPU the forward and backward passes are xent's own kernels, run through
//! candle's custom-op mechanism (the backward pass reads the logits once more and writes the
//! gradient with xent's fused kernel). On other devices every loss is a composition of candle
//! ops, so GPU users are not locked out (the `*_composed` functions run it on any device, and
//! the tests check it against the kernels on the CPU); the few option sets without a composition
//! (probability targets, `EmptyMean::Zero`, empty inputs) copy the input to the CPU and the
//! gradient back. f32 and f64 are computed as they are; f16 and bf16 in f32.
//!
//! Options are xent's option structs, with `f64` class weights; targets are candle integer
//! tensors (u8, u32, i64) for class indices, float tensors for probabilities and binary targets.
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
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod composed;

use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Result, Shape, Tensor};
use xent::*;

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

/// Targets, copied to the CPU once.
#[derive(Debug, Clone)]
enum Targets {
    Index(Vec<i64>, Vec<usize>),
    Float(Vec<f64>, Vec<usize>),
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

/// The custom op: the loss of its one argument (the scores) for fixed targets.
struct Op {
    loss: Spec,
    targets: Targets,
}

type Backward<'a, T> = Option<(&'a [T], &'a mut [T])>;

/// Every loss through the one trait.
fn eval<T: Float, Y: Copy>(
    loss: &dyn xent::Loss<T, Y>,
    input: View<'_, T>,
    target: View<'_, Y>,
    back: Backward<'_, T>,
) -> xent::Result<LossOutput<T>> {
    loss.evaluate(input, target, back.map(|(grad_output, grad_input)| xent::Backward { grad_output, grad_input }))
}

impl Op {
    fn run<T: Float>(&self, x: &[T], shape: &[usize], back: Backward<'_, T>) -> xent::Result<LossOutput<T>>
    where
        CrossEntropyLoss<T>: xent::Loss<T, T>,
        DiceLoss<T>: xent::Loss<T, T>,
        TverskyLoss<T>: xent::Loss<T, T>,
    {
        let input = View::new(x, shape)?;
        macro_rules! go {
            ($l:expr, $t:expr) => {
                eval(&$l, input, $t, back)
            };
        }
        let floats: Vec<T>;
        match (&self.loss, &self.targets) {
            (Spec::CrossEntropy(o), Targets::Index(t, s)) => {
                // Named: the `where` bound would otherwise take the targets for probabilities.
                eval::<T, i64>(&CrossEntropyLoss::<T>::new(ce_opts(o))?, input, View::new(t, s)?, back)
            }
            (Spec::CrossEntropy(o), Targets::Float(t, s)) => {
                floats = cast(t);
                go!(CrossEntropyLoss::<T>::new(ce_opts(o))?, View::new(&floats, s)?)
            }
            (Spec::Nll(o), Targets::Index(t, s)) => {
                let o = NllOptions {
                    weight: o.weight.as_deref().map(cast),
                    ignore_index: o.ignore_index,
                    reduction: o.reduction,
                    empty_mean: o.empty_mean,
                };
                go!(NllLoss::<T>::new(o)?, View::new(t, s)?)
            }
            (Spec::Bce(o), Targets::Float(t, s)) => {
                floats = cast(t);
                let o =
                    BceOptions { weight: cast_tensor(&o.weight)?, reduction: o.reduction, empty_mean: o.empty_mean };
                go!(BceLoss::<T>::new(o)?, View::new(&floats, s)?)
            }
            (Spec::BceWithLogits(o), Targets::Float(t, s)) => {
                floats = cast(t);
                let o = BceWithLogitsOptions {
                    weight: cast_tensor(&o.weight)?,
                    pos_weight: cast_tensor(&o.pos_weight)?,
                    reduction: o.reduction,
                    empty_mean: o.empty_mean,
                };
                go!(BceWithLogitsLoss::<T>::new(o)?, View::new(&floats, s)?)
            }
            (Spec::SigmoidFocal(o), Targets::Float(t, s)) => {
                floats = cast(t);
                go!(SigmoidFocalLoss::<T>::new(o.clone())?, View::new(&floats, s)?)
            }
            (Spec::Dice(o), Targets::Index(t, s)) => {
                eval::<T, i64>(&DiceLoss::<T>::new(dice_opts(o))?, input, View::new(t, s)?, back)
            }
            (Spec::Dice(o), Targets::Float(t, s)) => {
                floats = cast(t);
                go!(DiceLoss::<T>::new(dice_opts(o))?, View::new(&floats, s)?)
            }
            (Spec::GeneralizedDice(o), Targets::Index(t, s)) => {
                go!(GeneralizedDiceLoss::<T>::new(o.clone())?, View::new(t, s)?)
            }
            (Spec::Tversky(o), Targets::Index(t, s)) => {
                eval::<T, i64>(&TverskyLoss::<T>::new(o.clone())?, input, View::new(t, s)?, back)
            }
            (Spec::Tversky(o), Targets::Float(t, s)) => {
                floats = cast(t);
                go!(TverskyLoss::<T>::new(o.clone())?, View::new(&floats, s)?)
            }
            (Spec::Focal(o), Targets::Index(t, s)) => {
                let alpha = match &o.alpha {
                    FocalAlpha::None => FocalAlpha::None,
                    FocalAlpha::Scalar(a) => FocalAlpha::Scalar(*a),
                    FocalAlpha::PerClass(a) => FocalAlpha::PerClass(cast(a)),
                };
                let o = FocalOptions {
                    include_background: o.include_background,
                    gamma: o.gamma,
                    alpha,
                    weight: class_weight(&o.weight),
                    activation: o.activation,
                    ignore_index: o.ignore_index,
                    reduction: o.reduction,
                };
                go!(FocalLoss::<T>::new(o)?, View::new(t, s)?)
            }
            (Spec::DiceCe(o), Targets::Index(t, s)) => {
                let o = DiceCeOptions {
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
                };
                go!(DiceCeLoss::<T>::new(o)?, View::new(t, s)?)
            }
            (Spec::DiceFocal(o), Targets::Index(t, s)) => {
                let o = DiceFocalOptions {
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
                };
                go!(DiceFocalLoss::<T>::new(o)?, View::new(t, s)?)
            }
            (_, Targets::Index(..)) => Err(xent::Error::InvalidOption {
                name: "target",
                value: "an integer tensor".into(),
                reason: "this loss takes float targets",
            }),
            (_, Targets::Float(..)) => Err(xent::Error::InvalidOption {
                name: "target",
                value: "a float tensor".into(),
                reason: "this loss takes class indices (an integer tensor)",
            }),
        }
    }
}

fn wrap(e: xent::Error) -> candle_core::Error {
    candle_core::Error::Msg(format!("xent: {e}"))
}

impl CustomOp1 for Op {
    fn name(&self) -> &'static str {
        "xent-loss"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (a, b) = layout
            .contiguous_offsets()
            .ok_or_else(|| candle_core::Error::Msg("xent: input is not contiguous".into()))?;
        match storage {
            CpuStorage::F32(v) => {
                let out = self.run::<f32>(&v[a..b], layout.dims(), None).map_err(wrap)?;
                Ok((CpuStorage::F32(out.loss), Shape::from(out.shape)))
            }
            CpuStorage::F64(v) => {
                let out = self.run::<f64>(&v[a..b], layout.dims(), None).map_err(wrap)?;
                Ok((CpuStorage::F64(out.loss), Shape::from(out.shape)))
            }
            _ => Err(candle_core::Error::Msg("xent: the input is not f32 or f64".into())),
        }
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let arg = arg.contiguous()?;
        let dims = arg.dims().to_vec();
        macro_rules! grad {
            ($t:ty) => {{
                let x = arg.flatten_all()?.to_vec1::<$t>()?;
                let go = grad_res.flatten_all()?.to_vec1::<$t>()?;
                let mut g = vec![0 as $t; x.len()];
                self.run::<$t>(&x, &dims, Some((&go, &mut g))).map_err(wrap)?;
                Tensor::from_vec(g, dims.as_slice(), arg.device())?
            }};
        }
        Ok(Some(match arg.dtype() {
            DType::F32 => grad!(f32),
            DType::F64 => grad!(f64),
            d => return Err(candle_core::Error::Msg(format!("xent: input dtype {d:?} is not f32 or f64"))),
        }))
    }
}

fn targets(target: &Tensor) -> Result<Targets> {
    let shape = target.dims().to_vec();
    let flat = target.flatten_all()?;
    Ok(match target.dtype() {
        DType::U8 => Targets::Index(flat.to_vec1::<u8>()?.into_iter().map(i64::from).collect(), shape),
        DType::U32 => Targets::Index(flat.to_vec1::<u32>()?.into_iter().map(i64::from).collect(), shape),
        DType::I64 => Targets::Index(flat.to_vec1::<i64>()?, shape),
        DType::F32 | DType::F64 | DType::F16 | DType::BF16 => {
            Targets::Float(flat.to_dtype(DType::F64)?.to_vec1::<f64>()?, shape)
        }
        d => return Err(candle_core::Error::Msg(format!("xent: target dtype {d:?} is not supported"))),
    })
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
                let op = Op { loss, targets: targets(target)? };
                cpu.contiguous()?.apply_op1(op)?.to_device(&device)?
            }
        }
    } else {
        let op = Op { loss, targets: targets(target)? };
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
