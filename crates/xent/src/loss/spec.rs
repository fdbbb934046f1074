//! A loss chosen at run time: [`LossSpec`], a loss and its options (class weights in `f64`),
//! built for the input's type when it is used. The framework adapters (xent-candle, xent-burn)
//! take a loss as one of these, so that each maps its tensors to xent's [`View`](crate::View)s
//! once for every loss.
//!
//! ```
//! use xent::{CrossEntropyOptions, LossSpec, View};
//! let spec = LossSpec::CrossEntropy(CrossEntropyOptions::default());
//! let loss = spec.index_loss::<f32, u8>()?.expect("cross-entropy takes class indices");
//! let out = loss.forward(View::new(&[1.0f32, 2.0, 3.0], &[1, 3])?, View::new(&[2u8], &[1])?)?;
//! assert!((out.scalar().unwrap() - 0.4076).abs() < 1e-4);
//! assert!(spec.float_loss::<f32>()?.is_some()); // and probabilities
//! # Ok::<(), xent::Error>(())
//! ```

use crate::*;

/// A loss and its options (class weights in `f64`, cast to the input's type when it is built).
#[derive(Debug, Clone)]
#[allow(missing_docs)] // reason: each variant is the loss of the same name, with its options
pub enum LossSpec {
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

fn cast_tensor<T: Float>(t: &Option<WeightTensor<f64>>) -> Result<Option<WeightTensor<T>>> {
    t.as_ref().map(|t| WeightTensor::new(cast(t.values()), t.shape().to_vec())).transpose()
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

fn nll_opts<T: Float>(o: &NllOptions<f64>) -> NllOptions<T> {
    NllOptions {
        weight: o.weight.as_deref().map(cast),
        ignore_index: o.ignore_index,
        reduction: o.reduction,
        empty_mean: o.empty_mean,
    }
}

fn bce_opts<T: Float>(o: &BceOptions<f64>) -> Result<BceOptions<T>> {
    Ok(BceOptions { weight: cast_tensor(&o.weight)?, reduction: o.reduction, empty_mean: o.empty_mean })
}

fn bce_logits_opts<T: Float>(o: &BceWithLogitsOptions<f64>) -> Result<BceWithLogitsOptions<T>> {
    Ok(BceWithLogitsOptions {
        weight: cast_tensor(&o.weight)?,
        pos_weight: cast_tensor(&o.pos_weight)?,
        reduction: o.reduction,
        empty_mean: o.empty_mean,
    })
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

/// A loss built from a [`LossSpec`], or `None` where it does not take such scores or targets.
pub type MaybeLoss<S, Y, M = S> = Result<Option<Box<dyn Loss<S, Y, M>>>>;

impl LossSpec {
    /// The loss of the spec on class-index targets of type `L`; `None` if it takes float targets.
    pub fn index_loss<T: Float, L: Label>(&self) -> MaybeLoss<T, L> {
        self.index_any::<T, L>()
    }

    /// The loss of the spec on scores stored in `S` (maths in `S::Math`) and class indices `L`.
    fn index_any<S: Element, L: Label>(&self) -> MaybeLoss<S, L, S::Math>
    where
        CrossEntropyLoss<S::Math>: Loss<S, L, S::Math>,
        NllLoss<S::Math>: Loss<S, L, S::Math>,
        DiceLoss<S::Math>: Loss<S, L, S::Math>,
        GeneralizedDiceLoss<S::Math>: Loss<S, L, S::Math>,
        TverskyLoss<S::Math>: Loss<S, L, S::Math>,
        FocalLoss<S::Math>: Loss<S, L, S::Math>,
        DiceCeLoss<S::Math>: Loss<S, L, S::Math>,
        DiceFocalLoss<S::Math>: Loss<S, L, S::Math>,
    {
        type T<S> = <S as Element>::Math;
        Ok(Some(match self {
            LossSpec::CrossEntropy(o) => Box::new(CrossEntropyLoss::<T<S>>::new(ce_opts::<T<S>>(o))?),
            LossSpec::Nll(o) => Box::new(NllLoss::<T<S>>::new(nll_opts(o))?),
            LossSpec::Dice(o) => Box::new(DiceLoss::<T<S>>::new(dice_opts::<T<S>>(o))?),
            LossSpec::GeneralizedDice(o) => Box::new(GeneralizedDiceLoss::<T<S>>::new(o.clone())?),
            LossSpec::Tversky(o) => Box::new(TverskyLoss::<T<S>>::new(o.clone())?),
            LossSpec::Focal(o) => Box::new(FocalLoss::<T<S>>::new(focal_opts(o))?),
            LossSpec::DiceCe(o) => Box::new(DiceCeLoss::<T<S>>::new(DiceCeOptions {
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
            LossSpec::DiceFocal(o) => Box::new(DiceFocalLoss::<T<S>>::new(DiceFocalOptions {
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

    /// The loss of the spec on float targets (probabilities, binary targets, soft labels); `None` if
    /// it takes class indices.
    pub fn float_loss<T: Float>(&self) -> MaybeLoss<T, T>
    where
        CrossEntropyLoss<T>: Loss<T, T>,
        DiceLoss<T>: Loss<T, T>,
        TverskyLoss<T>: Loss<T, T>,
    {
        Ok(Some(match self {
            LossSpec::CrossEntropy(o) => Box::new(CrossEntropyLoss::<T>::new(ce_opts(o))?),
            LossSpec::Bce(o) => Box::new(BceLoss::<T>::new(bce_opts(o)?)?),
            LossSpec::BceWithLogits(o) => Box::new(BceWithLogitsLoss::<T>::new(bce_logits_opts(o)?)?),
            LossSpec::SigmoidFocal(o) => Box::new(SigmoidFocalLoss::<T>::new(o.clone())?),
            LossSpec::Dice(o) => Box::new(DiceLoss::<T>::new(dice_opts(o))?),
            LossSpec::Tversky(o) => Box::new(TverskyLoss::<T>::new(o.clone())?),
            _ => return Ok(None),
        }))
    }

    /// The loss of the spec on half-precision scores `H` and class indices `L` (maths in f32); `None`
    /// if it takes float targets.
    pub fn half_index_loss<H: Element<Math = f32>, L: Label>(&self) -> MaybeLoss<H, L, f32>
    where
        CrossEntropyLoss<f32>: Loss<H, L, f32>,
        NllLoss<f32>: Loss<H, L, f32>,
        DiceLoss<f32>: Loss<H, L, f32>,
        GeneralizedDiceLoss<f32>: Loss<H, L, f32>,
        TverskyLoss<f32>: Loss<H, L, f32>,
        FocalLoss<f32>: Loss<H, L, f32>,
        DiceCeLoss<f32>: Loss<H, L, f32>,
        DiceFocalLoss<f32>: Loss<H, L, f32>,
    {
        self.index_any::<H, L>()
    }

    /// The loss of the spec on half-precision scores and float targets of the same type.
    pub fn half_float_loss<H: Element<Math = f32>>(&self) -> MaybeLoss<H, H, f32>
    where
        CrossEntropyLoss<f32>: Loss<H, H, f32>,
        BceLoss<f32>: Loss<H, H, f32>,
        BceWithLogitsLoss<f32>: Loss<H, H, f32>,
        SigmoidFocalLoss<f32>: Loss<H, H, f32>,
        DiceLoss<f32>: Loss<H, H, f32>,
        TverskyLoss<f32>: Loss<H, H, f32>,
    {
        Ok(Some(match self {
            LossSpec::CrossEntropy(o) => Box::new(CrossEntropyLoss::<f32>::new(ce_opts(o))?),
            LossSpec::Bce(o) => Box::new(BceLoss::<f32>::new(bce_opts(o)?)?),
            LossSpec::BceWithLogits(o) => Box::new(BceWithLogitsLoss::<f32>::new(bce_logits_opts(o)?)?),
            LossSpec::SigmoidFocal(o) => Box::new(SigmoidFocalLoss::<f32>::new(o.clone())?),
            LossSpec::Dice(o) => Box::new(DiceLoss::<f32>::new(dice_opts(o))?),
            LossSpec::Tversky(o) => Box::new(TverskyLoss::<f32>::new(o.clone())?),
            _ => return Ok(None),
        }))
    }

    /// The loss's name, as the golden files and PyTorch / MONAI call it (`"cross_entropy"`,
    /// `"dice_loss"`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            LossSpec::CrossEntropy(_) => "cross_entropy",
            LossSpec::Nll(_) => "nll_loss",
            LossSpec::Bce(_) => "binary_cross_entropy",
            LossSpec::BceWithLogits(_) => "binary_cross_entropy_with_logits",
            LossSpec::SigmoidFocal(_) => "sigmoid_focal_loss",
            LossSpec::Dice(_) => "dice_loss",
            LossSpec::GeneralizedDice(_) => "generalized_dice_loss",
            LossSpec::Tversky(_) => "tversky_loss",
            LossSpec::Focal(_) => "focal_loss",
            LossSpec::DiceCe(_) => "dice_ce_loss",
            LossSpec::DiceFocal(_) => "dice_focal_loss",
        }
    }

    /// The reduction the options ask for.
    pub fn reduction(&self) -> Reduction {
        match self {
            LossSpec::CrossEntropy(o) => o.reduction,
            LossSpec::Nll(o) => o.reduction,
            LossSpec::Bce(o) => o.reduction,
            LossSpec::BceWithLogits(o) => o.reduction,
            LossSpec::SigmoidFocal(o) => o.reduction,
            LossSpec::Dice(o) => o.reduction,
            LossSpec::GeneralizedDice(o) => o.reduction,
            LossSpec::Tversky(o) => o.reduction,
            LossSpec::Focal(o) => o.reduction,
            LossSpec::DiceCe(o) => o.reduction,
            LossSpec::DiceFocal(o) => o.reduction,
        }
    }

    /// The class index that counts for nothing (`ignore_index`), for the losses on class
    /// indices that have one; `None` for the rest.
    pub fn ignore_index(&self) -> Option<i64> {
        match self {
            LossSpec::CrossEntropy(o) => Some(o.ignore_index),
            LossSpec::Nll(o) => Some(o.ignore_index),
            LossSpec::Dice(o) => o.ignore_index,
            LossSpec::GeneralizedDice(o) => o.ignore_index,
            LossSpec::Tversky(o) => o.ignore_index,
            LossSpec::Focal(o) => o.ignore_index,
            LossSpec::DiceCe(o) => o.ignore_index,
            LossSpec::DiceFocal(o) => o.ignore_index,
            LossSpec::Bce(_) | LossSpec::BceWithLogits(_) | LossSpec::SigmoidFocal(_) => None,
        }
    }
}
