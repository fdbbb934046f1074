//! The focal loss (Lin et al. 2017) for dense multi-class targets, with MONAI's semantics.
//!
//! Scores `x` `[N, C, d1..dk]` (k >= 1), class-index target `[N, d1..dk]`, one-hot `t`:
//! ```text
//! softmax (use_softmax): l_c = -alpha_c weight_c (1 - p_c)^gamma ln p_c t_c,  p = softmax over
//!                        the included classes
//! sigmoid:               l_c = alpha_t weight_c (1 - p_t)^gamma bce_with_logits(x_c, t_c)
//! ```
//! (the kernel's docs give the gradients). `include_background = false` drops class 0 before
//! anything else, so the softmax runs over classes `1..C`. With `gamma = 0` and no alpha, the
//! softmax form is cross-entropy: its sum over classes at a pixel is `-ln p_target`, and its
//! mean divides by `N * C' * d1..dk` elements (so it is the cross-entropy mean divided by `C'`).
//!
//! Reductions, as MONAI: `mean` averages all `N * C' * d1..dk` elements; `sum` averages over
//! the pixels of each sample and adds over samples and classes; [`Reduction::None`] returns the
//! `[N, C', d1..dk]` elements. A per-class alpha vector works with softmax too. An image where a
//! class is absent contributes only through that class's negatives (sigmoid) or not at all
//! (softmax).
//!
//! `ignore_index`, MONAI 1.6.1's rule: positions whose target is `ignore_index` have loss and
//! gradient 0 in every channel (an in-range value removes that class's positions); `mean`
//! divides the sum by the number of kept *positions* (not positions times channels, so with
//! nothing ignored it is `C'` times the mean without `ignore_index`), and gives 0 when every
//! position is ignored; `sum` divides each sample's sum by its kept positions.
//!
//! # Example
//! `gamma = 0` with softmax is cross-entropy divided by the number of classes:
//! ```
//! use xent::{Activation, FocalLoss, FocalOptions};
//! use xent::{CrossEntropyLoss, Loss, View};
//! let x = [1.0f64, 0.5, -1.0, 2.0, 0.0, 0.3]; // [N=1, C=2, H=1, W=3]
//! let t = [1u8, 0, 1];
//! let (xv, tv) = (View::new(&x, &[1, 2, 1, 3])?, View::new(&t, &[1, 1, 3])?);
//! let focal = FocalLoss::new(FocalOptions { gamma: 0.0, activation: Activation::Softmax, ..Default::default() })?;
//! let ce = CrossEntropyLoss::new(Default::default())?;
//! let (f, c) = (focal.forward(xv, tv)?.scalar().unwrap(), ce.forward(xv, tv)?.scalar().unwrap());
//! assert!((f - c / 2.0).abs() < 1e-12);
//! # Ok::<(), xent::Error>(())
//! ```

use super::{check_grad_len, Backward, ClassWeight, Loss};
use crate::error::{Error, Result};
use crate::float::{Element, Float, Label};
use crate::kernel::{self, FocalData, FocalParams, Upstream};
pub use crate::kernel::{Activation, FocalAlpha};
use crate::par;
use crate::reduction::{EmptyMean, LossOutput, Reducer, Reduction};
use crate::sum::ExactSum;
use crate::validate;
use crate::view::{numel, View};

/// Options of [`FocalLoss`], MONAI's names and defaults.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(default, deny_unknown_fields))]
pub struct FocalOptions<T> {
    /// Keep class 0. Default: true.
    pub include_background: bool,
    /// Focusing exponent, `>= 0`. Default: 2.
    pub gamma: f64,
    /// Default: [`FocalAlpha::None`]. A scalar is ignored with softmax and no background, as MONAI.
    pub alpha: FocalAlpha<T>,
    /// Class weight, `>= 0`: one for all, or one per included class (refused for a single
    /// included class, as MONAI). Default: none.
    pub weight: Option<ClassWeight<T>>,
    /// [`Activation::Sigmoid`] per class (MONAI's `use_softmax=False`, the default) or
    /// [`Activation::Softmax`] over the classes (`use_softmax=True`); `Identity` is refused.
    pub activation: Activation,
    /// Positions whose target is this value are left out (MONAI's rule: see the [module
    /// docs](self)). Default: none.
    pub ignore_index: Option<i64>,
    /// Default: [`Reduction::Mean`].
    pub reduction: Reduction,
}

impl<T> Default for FocalOptions<T> {
    fn default() -> Self {
        FocalOptions {
            include_background: true,
            gamma: 2.0,
            alpha: FocalAlpha::None,
            weight: None,
            activation: Activation::Sigmoid,
            ignore_index: None,
            reduction: Reduction::Mean,
        }
    }
}

/// MONAI's focal loss (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct FocalLoss<T> {
    options: FocalOptions<T>,
}

impl<T: Float> FocalLoss<T> {
    /// Checks the options once.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] for a gamma that is negative or not finite, a non-finite alpha,
    /// a negative class weight; [`Error::NonFinite`] in the weight or alpha vectors.
    pub fn new(options: FocalOptions<T>) -> Result<Self> {
        validate::finite_option("gamma", options.gamma)?;
        if options.gamma < 0.0 {
            return Err(Error::InvalidOption {
                name: "gamma",
                value: options.gamma.to_string(),
                reason: "must be >= 0",
            });
        }
        if options.activation == Activation::Identity {
            return Err(Error::InvalidOption {
                name: "activation",
                value: "identity".into(),
                reason: "the focal loss takes logits: softmax or sigmoid",
            });
        }
        match &options.alpha {
            FocalAlpha::Scalar(a) => validate::finite_option("alpha", *a)?,
            FocalAlpha::PerClass(a) => validate::finite("alpha", a)?,
            FocalAlpha::None => {}
        }
        if let Some(w) = &options.weight {
            w.check()?;
        }
        Ok(FocalLoss { options })
    }
}

super::label_targets!(
    FocalLoss,
    labels,
    "Scores `input` `[N, C, d1..dk]` for class indices `target` `[N, d1..dk]`.\n\n# Errors\n\
     Shapes, labels outside `0..C` (other than `ignore_index`), weight or alpha of the wrong \
     length."
);

impl<T: Float> FocalLoss<T> {
    /// Class-index targets, scores stored as `T` or as a half type (`T = f32`).
    fn labels<S: Element<Math = T>, L: Label>(
        &self,
        input: View<'_, S>,
        target: View<'_, L>,
        backward: Option<Backward<'_, S, T>>,
    ) -> Result<LossOutput<T>> {
        let o = &self.options;
        let use_softmax = o.activation == Activation::Softmax;
        let lay = validate::check_segmentation(input, target, o.ignore_index, 1)?;
        let first = usize::from(!o.include_background && lay.classes > 1);
        let ci = lay.classes - first;
        let per_class = |what: &'static str, v: &[T]| -> Result<()> {
            if v.len() == ci {
                return Ok(());
            }
            Err(Error::ShapeMismatch { what, got: vec![v.len()], expected: format!("[{ci}], one per included class") })
        };
        let weight = match &o.weight {
            Some(ClassWeight::PerClass(_)) if ci == 1 => {
                return Err(Error::InvalidOption {
                    name: "weight",
                    value: "a list".into(),
                    reason: "a per-class weight needs more than one included class (MONAI refuses it); give one number",
                })
            }
            Some(w) => Some(w.expand(ci)?),
            None => None,
        };
        let (alpha_pos, alpha_neg): (Option<Vec<T>>, Option<T>) = match (&o.alpha, use_softmax) {
            (FocalAlpha::None, _) => (None, None),
            (FocalAlpha::PerClass(a), _) => {
                per_class("alpha", a)?;
                (Some(a.clone()), None)
            }
            (FocalAlpha::Scalar(_), true) if first == 1 => (None, None),
            (FocalAlpha::Scalar(a), true) => {
                let a = T::from_f64(*a);
                (Some((0..ci).map(|c| if c == 0 { T::ONE - a } else { a }).collect()), None)
            }
            (FocalAlpha::Scalar(a), false) => {
                let a = T::from_f64(*a);
                (Some(vec![a; ci]), Some(T::ONE - a))
            }
        };
        let params = FocalParams {
            classes: lay.classes,
            class_stride: lay.class_stride(),
            inner: lay.inner,
            first,
            softmax: use_softmax,
            gamma: T::from_f64(o.gamma),
            alpha_pos: alpha_pos.as_deref(),
            alpha_neg,
            weight: weight.as_deref(),
            ignore_index: o.ignore_index,
        };
        // Valid pixels per sample.
        let valid: Vec<usize> = target
            .data()
            .chunks(lay.inner.max(1))
            .map(|s| match o.ignore_index {
                Some(ii) => s.iter().filter(|t| t.class_of(ii).is_some()).count(),
                None => s.len(),
            })
            .take(lay.outer)
            .collect();
        let kept = valid.iter().sum::<usize>() as f64;
        let out_shape: Vec<usize> = [&[lay.outer, ci][..], &input.shape()[2..]].concat();
        // MONAI: the elements without ignore_index; with it, the kept positions (0 if none).
        let reducer = match o.ignore_index {
            None => {
                Reducer { reduction: o.reduction, empty: EmptyMean::Nan, denominator: ExactSum::from(kept * ci as f64) }
            }
            Some(_) => Reducer { reduction: o.reduction, empty: EmptyMean::Zero, denominator: ExactSum::from(kept) },
        };
        let per_sample: Vec<T>;
        let (up, grad): (Option<Upstream<'_, T>>, &mut [S]) = match backward {
            Some(Backward { grad_output: go, grad_input: gi }) => {
                check_grad_len(gi, input.len())?;
                let up = match reducer.upstream(go, &out_shape)? {
                    Upstream::All(g) => {
                        per_sample = match o.reduction {
                            Reduction::Sum => valid
                                .iter()
                                .map(|&v| if v == 0 { T::ZERO } else { g / T::from_f64(v as f64) })
                                .collect(),
                            _ => vec![g; lay.outer],
                        };
                        Upstream::PerSample(&per_sample)
                    }
                    up => up,
                };
                (Some(up), gi)
            }
            None => (None, &mut []),
        };
        let mut full = vec![T::ZERO; if o.reduction == Reduction::None { input.len() } else { 0 }];
        let data = |b, up| FocalData { x: input.data(), target: L::erase(target.data()), o: &params, b, up };
        let parts = par::for_blocks(lay, grad, &mut [] as &mut [f64], |b, grad, _| {
            let n0 = b.p0 / lay.inner.max(1);
            let span = if b.len == 0 { 1 } else { (b.p0 + b.len - 1) / lay.inner - n0 + 1 };
            let mut sums = vec![0.0; span];
            kernel::run(kernel::Focal { d: data(b, up), grad, loss: None, sums: &mut sums });
            (n0, sums)
        });
        if !full.is_empty() {
            par::for_blocks(lay, &mut full, &mut [] as &mut [f64], |b, loss, _| {
                let mut sums = vec![0.0; b.len];
                kernel::run(kernel::Focal { d: data(b, None), grad: None, loss, sums: &mut sums });
            });
        }
        let mut per_n = vec![0.0; lay.outer];
        for (n0, sums) in parts {
            for (d, v) in per_n[n0..].iter_mut().zip(sums) {
                *d += v;
            }
        }
        let total = par::exact_sum(per_n.iter().copied());
        let out = match o.reduction {
            Reduction::None => {
                // Drop the excluded background channel.
                let inner = lay.inner;
                let kept: Vec<T> = full
                    .chunks((lay.classes * inner).max(1))
                    .flat_map(|s| s[first * inner..].iter().copied())
                    .collect();
                debug_assert_eq!(kept.len(), numel(&out_shape)?);
                reducer.finish(kept, out_shape, total)
            }
            Reduction::Mean => reducer.finish(vec![], out_shape, total),
            Reduction::Sum => reducer.finish_sample_means(&per_n, &valid, total),
        };
        Ok(out)
    }
}
