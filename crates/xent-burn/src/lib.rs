//! # xent-burn: xent's losses on burn tensors, with burn's autodiff
//!
//! Every loss of [`xent`] ([`linear_cross_entropy`] too), and [`softmax`] / [`log_softmax`], as a function on burn 0.22
//! [`Tensor`]s that takes part in burn's autodiff. On burn's Flex CPU backend (`Device::flex()`,
//! with or without `.autodiff()`) the forward and backward passes are xent's own kernels, run
//! through burn-autodiff's custom backward mechanism: they read the scores and the targets where
//! Flex keeps them (no copy of a contiguous tensor), and a reduced loss computes its gradient
//! in the same pass as the loss (fused), handing it to `backward()`. On any other device the
//! losses that have one run as a composition of burn tensor ops with the same semantics (the
//! `*_composed` functions run it on any device; the tests check it against the kernels on the
//! CPU); the others return an error there that says so.
//!
//! Scores may be f32, f64, bf16 or f16. bf16 and f16 scores are computed in f32 and give an f32
//! loss (and softmax), as xent's core and PyTorch's autocast do, with the gradient in the input's
//! type. Class-index targets are burn `Int` tensors (i64, burn's default, read in place; the
//! other integer types converted to i64); PyTorch's `ignore_index = -100` is the options' default. Float
//! targets (probabilities, binary targets, soft labels) are float tensors, converted to the scores'
//! type where they differ.
//!
//! A reduced loss is a `Tensor<1>` of shape `[1]` (burn's convention); with
//! [`Reduction::None`] it is the per-element losses, flattened in the target's order
//! (`loss.reshape(dims)` gives them their shape back).
//!
//! # Example: one training step with weighted cross-entropy
//! ```
//! use burn_tensor::{Device, Int, Tensor};
//! use xent::CrossEntropyOptions;
//! let device = Device::flex().autodiff();
//! let logits = Tensor::<2>::from_floats([[1.0, 2.0, 3.0], [0.5, 0.1, -1.0]], &device).require_grad();
//! let target = Tensor::<1, Int>::from_ints([2, 0], &device);
//! let opts = CrossEntropyOptions { weight: Some(vec![3.0, 1.0, 0.5]), ..Default::default() };
//! let loss = xent_burn::cross_entropy(logits.clone(), target, &opts)?;
//! let grads = loss.backward();
//! let g = logits.grad(&grads).unwrap();
//! assert_eq!(g.dims(), [2, 3]);
//! let logits = logits.clone().inner() - g * 0.1; // a plain SGD step
//! # let _ = logits;
//! # Ok::<(), xent_burn::Error>(())
//! ```
#![deny(missing_docs)]

mod composed;
mod config;
mod flex;
mod linear;
mod recycle;

pub use config::*;
pub use linear::{linear_cross_entropy, linear_cross_entropy_composed};

use burn_tensor::{DType, Int, Tensor};
use xent::*;

/// An error of xent-burn: xent's own (shapes, targets, options), or a tensor xent-burn cannot take.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// xent's error for these arguments.
    #[error("xent: {0}")]
    Xent(#[from] xent::Error),
    /// A tensor type, device or combination xent-burn does not take.
    #[error("xent-burn: {0}")]
    Unsupported(String),
}

/// The result of xent-burn's functions.
pub type Result<T> = std::result::Result<T, Error>;

/// A loss's target, any rank: class indices (an `Int` tensor) or float targets (probabilities,
/// binary targets, soft labels). Built from a burn tensor with `.into()`.
#[derive(Debug, Clone)]
pub enum Target {
    /// Class indices, flattened, with their dimensions.
    Index(Tensor<1, Int>, Vec<usize>),
    /// Float targets, flattened, with their dimensions.
    Float(Tensor<1>, Vec<usize>),
}

impl<const D: usize> From<Tensor<D, Int>> for Target {
    fn from(t: Tensor<D, Int>) -> Target {
        let dims = t.dims().to_vec();
        Target::Index(t.reshape([dims.iter().product::<usize>()]), dims)
    }
}

impl<const D: usize> From<Tensor<D>> for Target {
    fn from(t: Tensor<D>) -> Target {
        let dims = t.dims().to_vec();
        Target::Float(t.reshape([dims.iter().product::<usize>()]), dims)
    }
}

impl Target {
    fn dims(&self) -> &[usize] {
        match self {
            Target::Index(_, d) | Target::Float(_, d) => d,
        }
    }
}

/// An error unless `dtype` is one of the float types xent computes.
fn check_float(dtype: DType) -> Result<()> {
    match dtype {
        DType::F32 | DType::F64 | DType::F16 | DType::BF16 => Ok(()),
        d => Err(Error::Unsupported(format!("scores of dtype {d:?} (xent takes f32, f64, bf16, f16)"))),
    }
}

/// Runs `loss` on `input` through xent's kernels where the input lives on Flex (unless
/// `composed` asks otherwise), or through the composition of burn ops where one exists.
fn apply<const D: usize>(input: Tensor<D>, target: Target, loss: LossSpec, composed: bool) -> Result<Tensor<1>> {
    check_float(input.dtype())?;
    if !composed {
        if let Some(out) = flex::loss(&input, &target, &loss)? {
            return Ok(out);
        }
    }
    composed::loss(input, target, &loss)?.ok_or_else(|| {
        Error::Unsupported(format!(
            "{} with these options has no composition of burn ops yet: it runs on the Flex backend only",
            loss.name()
        ))
    })
}

macro_rules! losses {
    ($($(#[$doc:meta])* $name:ident, $composed:ident: $opts:ty => $variant:ident;)*) => {$(
        $(#[$doc])*
        ///
        /// # Errors
        /// xent's errors (shapes, targets, options), and a tensor type or device xent-burn does not
        /// take.
        pub fn $name<const D: usize>(input: Tensor<D>, target: impl Into<Target>, options: &$opts) -> Result<Tensor<1>> {
            apply(input, target.into(), LossSpec::$variant(options.clone()), false)
        }

        /// The same loss as a composition of burn ops (the path used off the Flex backend), for
        /// tests and other devices.
        ///
        /// # Errors
        /// As the kernel version, and options that have no composition yet.
        pub fn $composed<const D: usize>(input: Tensor<D>, target: impl Into<Target>, options: &$opts) -> Result<Tensor<1>> {
            apply(input, target.into(), LossSpec::$variant(options.clone()), true)
        }
    )*};
}

losses! {
    /// Cross-entropy ([`xent::CrossEntropyLoss`]): `Int` targets are class indices, float targets
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
    /// MONAI's Dice loss ([`xent::DiceLoss`]): `Int` targets are class indices, float targets
    /// soft labels (MONAI's `soft_label=True`).
    dice_loss, dice_loss_composed: DiceOptions<f64> => Dice;
    /// MONAI's generalized Dice loss ([`xent::GeneralizedDiceLoss`]).
    generalized_dice_loss, generalized_dice_loss_composed: GeneralizedDiceOptions => GeneralizedDice;
    /// MONAI's Tversky loss ([`xent::TverskyLoss`]): `Int` targets are class indices, float
    /// targets soft labels.
    tversky_loss, tversky_loss_composed: TverskyOptions => Tversky;
    /// MONAI's focal loss ([`xent::FocalLoss`]).
    focal_loss, focal_loss_composed: FocalOptions<f64> => Focal;
    /// Dice plus cross-entropy ([`xent::DiceCeLoss`]).
    dice_ce, dice_ce_composed: DiceCeOptions<f64> => DiceCe;
    /// Dice plus focal ([`xent::DiceFocalLoss`]).
    dice_focal, dice_focal_composed: DiceFocalOptions<f64> => DiceFocal;
}

/// Softmax over `dim` (`torch.softmax`; negative counts from the end), with autodiff: xent's
/// kernels on Flex, burn's `softmax` elsewhere. A bf16 or f16 input gives an f32 output.
///
/// # Errors
/// A `dim` out of range, a non-float input.
pub fn softmax<const D: usize>(input: Tensor<D>, dim: i64) -> Result<Tensor<D>> {
    softmax_op(input, dim, false)
}

/// Log-softmax over `dim` (`torch.log_softmax`), with autodiff. A bf16 or f16 input gives an f32
/// output.
///
/// # Errors
/// As [`softmax`].
pub fn log_softmax<const D: usize>(input: Tensor<D>, dim: i64) -> Result<Tensor<D>> {
    softmax_op(input, dim, true)
}

fn softmax_op<const D: usize>(input: Tensor<D>, dim: i64, log: bool) -> Result<Tensor<D>> {
    check_float(input.dtype())?;
    let rank = D as i64;
    if !(-rank.max(1)..rank.max(1)).contains(&dim) {
        return Err(xent::Error::DimOutOfRange { dim, ndim: D }.into());
    }
    if let Some(out) = flex::softmax(&input, dim, log)? {
        return Ok(out);
    }
    let d = if dim < 0 { (dim + rank) as usize } else { dim as usize };
    let x = composed::widened(input);
    Ok(if log { burn_tensor::activation::log_softmax(x, d) } else { burn_tensor::activation::softmax(x, d) })
}
