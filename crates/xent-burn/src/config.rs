//! Config and loss types in burn's style: `FocalLossConfig::new().with_gamma(2.0).init()`, then
//! `loss.forward(input, target)`. Each config holds xent's options struct (PyTorch's / MONAI's
//! defaults); `with_*` sets one option, `init` gives the loss, which is cheap to clone and keeps
//! no state between calls.

use burn_tensor::Tensor;
use xent::*;

use crate::{Result, Target};

macro_rules! configs {
    ($($(#[$doc:meta])* $config:ident => $loss:ident, $opts:ty, $func:ident { $($with:ident => $field:ident: $ty:ty),* $(,)? })*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Default)]
        pub struct $config {
            /// The options, as xent's core takes them.
            pub options: $opts,
        }

        impl $config {
            /// The defaults of PyTorch / MONAI.
            pub fn new() -> Self {
                Self::default()
            }
            $(
                #[doc = concat!("Sets `", stringify!($field), "`.")]
                #[must_use]
                pub fn $with(mut self, value: $ty) -> Self {
                    self.options.$field = value;
                    self
                }
            )*
            /// The loss with these options.
            pub fn init(&self) -> $loss {
                $loss { options: self.options.clone() }
            }
        }

        #[doc = concat!("The loss of [`", stringify!($config), "`]: [`crate::", stringify!($func), "`] with its options.")]
        #[derive(Debug, Clone)]
        pub struct $loss {
            options: $opts,
        }

        forward!($loss, $func);
    )*};
}

/// `forward(input, target)` of a loss of scores and targets.
macro_rules! forward {
    (LinearCrossEntropyLoss, $func:ident) => {};
    ($loss:ident, $func:ident) => {
        impl $loss {
            #[doc = concat!("The loss of `input` for `target`, as [`crate::", stringify!($func), "`].")]
            ///
            /// # Errors
            /// As that function.
            pub fn forward<const D: usize>(&self, input: Tensor<D>, target: impl Into<Target>) -> Result<Tensor<1>> {
                crate::$func(input, target, &self.options)
            }
        }
    };
}

impl LinearCrossEntropyLoss {
    /// The loss of `input` through the linear layer `weight` (PyTorch's `[C, D]`) and `bias`
    /// (flat) for `target`, as [`crate::linear_cross_entropy`].
    ///
    /// # Errors
    /// As that function.
    pub fn forward<const D: usize, const K: usize>(
        &self,
        input: Tensor<D>,
        weight: Tensor<K>,
        bias: Option<Tensor<1>>,
        target: impl Into<Target>,
    ) -> Result<Tensor<1>> {
        crate::linear_cross_entropy(input, weight, bias, target, &self.options)
    }
}

configs! {
    /// Cross-entropy's config ([`crate::cross_entropy`]).
    CrossEntropyLossConfig => CrossEntropyLoss, CrossEntropyOptions<f64>, cross_entropy {
        with_weight => weight: Option<Vec<f64>>, with_ignore_index => ignore_index: i64,
        with_reduction => reduction: Reduction, with_label_smoothing => label_smoothing: f64,
        with_empty_mean => empty_mean: EmptyMean,
    }
    /// NLL's config ([`crate::nll_loss`]).
    NllLossConfig => NllLoss, NllOptions<f64>, nll_loss {
        with_weight => weight: Option<Vec<f64>>, with_ignore_index => ignore_index: i64,
        with_reduction => reduction: Reduction, with_empty_mean => empty_mean: EmptyMean,
    }
    /// Binary cross-entropy's config ([`crate::binary_cross_entropy`]).
    BceLossConfig => BceLoss, BceOptions<f64>, binary_cross_entropy {
        with_weight => weight: Option<WeightTensor<f64>>, with_reduction => reduction: Reduction,
        with_empty_mean => empty_mean: EmptyMean,
    }
    /// Binary cross-entropy with logits' config ([`crate::binary_cross_entropy_with_logits`]).
    BceWithLogitsLossConfig => BceWithLogitsLoss, BceWithLogitsOptions<f64>, binary_cross_entropy_with_logits {
        with_weight => weight: Option<WeightTensor<f64>>, with_pos_weight => pos_weight: Option<WeightTensor<f64>>,
        with_reduction => reduction: Reduction, with_empty_mean => empty_mean: EmptyMean,
    }
    /// The sigmoid focal loss's config ([`crate::sigmoid_focal_loss`]).
    SigmoidFocalLossConfig => SigmoidFocalLoss, SigmoidFocalOptions, sigmoid_focal_loss {
        with_alpha => alpha: f64, with_gamma => gamma: f64, with_reduction => reduction: Reduction,
        with_empty_mean => empty_mean: EmptyMean,
    }
    /// MONAI's Dice loss's config ([`crate::dice_loss`]).
    DiceLossConfig => DiceLoss, DiceOptions<f64>, dice_loss {
        with_activation => activation: Activation, with_include_background => include_background: bool,
        with_squared_pred => squared_pred: bool, with_jaccard => jaccard: bool, with_batch => batch: bool,
        with_smooth_nr => smooth_nr: f64, with_smooth_dr => smooth_dr: f64,
        with_weight => weight: Option<ClassWeight<f64>>, with_ignore_index => ignore_index: Option<i64>,
        with_reduction => reduction: Reduction,
    }
    /// MONAI's generalized Dice loss's config ([`crate::generalized_dice_loss`]).
    GeneralizedDiceLossConfig => GeneralizedDiceLoss, GeneralizedDiceOptions, generalized_dice_loss {
        with_activation => activation: Activation, with_include_background => include_background: bool,
        with_w_type => w_type: WeightType, with_batch => batch: bool, with_smooth_nr => smooth_nr: f64,
        with_smooth_dr => smooth_dr: f64, with_ignore_index => ignore_index: Option<i64>,
        with_reduction => reduction: Reduction,
    }
    /// MONAI's Tversky loss's config ([`crate::tversky_loss`]).
    TverskyLossConfig => TverskyLoss, TverskyOptions, tversky_loss {
        with_activation => activation: Activation, with_include_background => include_background: bool,
        with_alpha => alpha: f64, with_beta => beta: f64, with_batch => batch: bool,
        with_smooth_nr => smooth_nr: f64, with_smooth_dr => smooth_dr: f64,
        with_ignore_index => ignore_index: Option<i64>, with_reduction => reduction: Reduction,
    }
    /// MONAI's focal loss's config ([`crate::focal_loss`]).
    FocalLossConfig => FocalLoss, FocalOptions<f64>, focal_loss {
        with_include_background => include_background: bool, with_gamma => gamma: f64,
        with_alpha => alpha: FocalAlpha<f64>, with_weight => weight: Option<ClassWeight<f64>>,
        with_activation => activation: Activation, with_ignore_index => ignore_index: Option<i64>,
        with_reduction => reduction: Reduction,
    }
    /// MONAI's DiceCE loss's config ([`crate::dice_ce`]).
    DiceCeLossConfig => DiceCeLoss, DiceCeOptions<f64>, dice_ce {
        with_activation => activation: Activation, with_include_background => include_background: bool,
        with_squared_pred => squared_pred: bool, with_jaccard => jaccard: bool, with_batch => batch: bool,
        with_smooth_nr => smooth_nr: f64, with_smooth_dr => smooth_dr: f64,
        with_weight => weight: Option<Vec<f64>>, with_lambda_dice => lambda_dice: f64,
        with_lambda_ce => lambda_ce: f64, with_label_smoothing => label_smoothing: f64,
        with_ignore_index => ignore_index: Option<i64>, with_reduction => reduction: Reduction,
    }
    /// MONAI's DiceFocal loss's config ([`crate::dice_focal`]).
    DiceFocalLossConfig => DiceFocalLoss, DiceFocalOptions<f64>, dice_focal {
        with_activation => activation: Activation, with_include_background => include_background: bool,
        with_squared_pred => squared_pred: bool, with_jaccard => jaccard: bool, with_batch => batch: bool,
        with_smooth_nr => smooth_nr: f64, with_smooth_dr => smooth_dr: f64, with_gamma => gamma: f64,
        with_alpha => alpha: Option<f64>, with_weight => weight: Option<ClassWeight<f64>>,
        with_lambda_dice => lambda_dice: f64, with_lambda_focal => lambda_focal: f64,
        with_ignore_index => ignore_index: Option<i64>, with_reduction => reduction: Reduction,
    }
    /// PyTorch 2.15's linear cross-entropy's config ([`crate::linear_cross_entropy`]); its loss's
    /// `forward` takes the layer's weight and bias too.
    LinearCrossEntropyLossConfig => LinearCrossEntropyLoss, LinearCrossEntropyOptions<f64>, linear_cross_entropy {
        with_weight => weight: Option<Vec<f64>>, with_ignore_index => ignore_index: Option<i64>,
        with_reduction => reduction: Reduction, with_label_smoothing => label_smoothing: f64,
        with_empty_mean => empty_mean: EmptyMean,
    }
}
