//! Compositions of burn tensor ops, so the losses run (and differentiate) on any burn device.
//! The same formulas as xent's kernels, tested against them on the CPU; xent's kernels stay the
//! reference for the last bits (BCE's clamped gradient at 0 and 1). Scores are viewed as
//! `[N, C, S]` (class dimension 1, the spatial dimensions flattened), which serves every layout.
//!
//! Composed: cross-entropy and NLL (class indices: weights, `ignore_index`, label smoothing;
//! probabilities: weights, label smoothing), BCE, BCE with logits, sigmoid focal, and the MONAI
//! losses (Dice, generalized Dice, Tversky, focal, and reduced DiceCE and DiceFocal) on spatial
//! inputs `[N, C, d1..]` with class-index targets. Not composed (Flex only): the MONAI losses on
//! `[N, C]` inputs or soft labels, unreduced DiceCE and DiceFocal, one-channel DiceCE, and
//! `empty_mean` other than NaN.

use burn_tensor::activation::{log_softmax, sigmoid, softmax};
use burn_tensor::{DType, FloatDType, Int, Tensor, TensorData};
use xent::*;

use crate::{Result, Target};

/// `t` as the maths reads it off Flex: f32 and f64 as they are, bf16 and f16 cast to f32
/// (differentiably: the gradient comes back in the input's type).
pub(crate) fn widened<const D: usize>(t: Tensor<D>) -> Tensor<D> {
    match t.dtype() {
        DType::BF16 | DType::F16 => t.cast(FloatDType::F32),
        _ => t,
    }
}

/// The scores as `[N, C, S]`: `[C]` is one sample of one position, `[N, C, d1..dk]` has
/// `S = d1 * .. * dk`.
fn ncs<const D: usize>(x: Tensor<D>) -> [usize; 3] {
    let d = x.dims();
    match D {
        0 => [1, 1, 1],
        1 => [1, d[0], 1],
        _ => [d[0], d[1], d[2..].iter().product()],
    }
}

/// The loss's shape checks, in xent's words: class indices have the scores' shape without the
/// class dimension, float targets the scores' shape.
fn check_target(xdims: &[usize], target: &Target) -> xent::Result<()> {
    let mut want = xdims.to_vec();
    let index = matches!(target, Target::Index(..));
    if index && !want.is_empty() {
        want.remove(if want.len() == 1 { 0 } else { 1 });
    }
    if target.dims() != want {
        let expected = if index { "the input's shape without the class dimension" } else { "the input's shape" };
        return Err(xent::Error::ShapeMismatch {
            what: "target",
            got: target.dims().to_vec(),
            expected: format!("{want:?} ({expected})"),
        });
    }
    Ok(())
}

/// An error unless every class index lies in `[0, classes)` or equals `ignore` (one reduction
/// read back; the first bad value is found on the host only when there is one).
fn check_labels(t: &Tensor<1, Int>, classes: usize, ignore: Option<i64>) -> xent::Result<()> {
    let inside = t.clone().greater_equal_elem(0).bool_and(t.clone().lower_elem(classes as i64));
    let ok = match ignore {
        Some(i) => inside.bool_or(t.clone().equal_elem(i)),
        None => inside,
    };
    if ok.all().into_scalar::<bool>() {
        return Ok(());
    }
    let values: Vec<i64> = t.to_data().convert::<i64>().try_to_vec().expect("converted to i64");
    let (index, &value) = values
        .iter()
        .enumerate()
        .find(|(_, &v)| !((0..classes as i64).contains(&v) || Some(v) == ignore))
        .expect("the reduction found a bad label");
    Err(xent::Error::TargetOutOfRange { what: "target", value: value as i128, index, classes, ignore_index: ignore })
}

/// A class-weight vector on the scores' device and of their type.
fn class_weights(w: &[f64], like: &Tensor<3>) -> Tensor<1> {
    Tensor::<1>::from_data(TensorData::new(w.to_vec(), [w.len()]), (&like.device(), like.dtype()))
}

/// A PyTorch-broadcast weight tensor (aligned right) as a rank-`D` tensor on the scores' device.
fn broadcast_weight<const D: usize>(w: &WeightTensor<f64>, like: &Tensor<D>) -> Tensor<D> {
    let mut shape = vec![1; D - w.shape().len()];
    shape.extend_from_slice(w.shape());
    let t = Tensor::<1>::from_data(
        TensorData::new(w.values().to_vec(), [w.values().len()]),
        (&like.device(), like.dtype()),
    );
    let dims: [usize; D] = shape.try_into().expect("the weight's rank was checked against the input's");
    t.reshape(dims)
}

/// The reduced (or flat, for `None`) loss of per-element `l` with denominator `den` for `Mean`.
fn reduce(l: Tensor<1>, den: Option<Tensor<1>>, r: Reduction) -> Tensor<1> {
    match r {
        Reduction::None => l,
        Reduction::Sum => l.sum(),
        Reduction::Mean => match den {
            Some(d) => l.sum() / d,
            None => l.mean(),
        },
    }
}

/// Cross-entropy (`log` = scores are logits) or NLL (`log = false`: they are log-probabilities).
fn cross_entropy<const D: usize>(
    x: Tensor<D>,
    target: &Target,
    o: &CrossEntropyOptions<f64>,
    log: bool,
) -> xent::Result<Tensor<1>> {
    let [n, c, s] = ncs(x.clone());
    let z = x.reshape([n, c, s]);
    let lp = if log { log_softmax(z, 1) } else { z };
    let w = o.weight.as_deref().map(|w| class_weights(w, &lp));
    let eps = o.label_smoothing;
    match target {
        Target::Index(t, _) => {
            check_labels(t, c, Some(o.ignore_index))?;
            let keep = t.clone().not_equal_elem(o.ignore_index);
            let safe = t.clone().mask_fill(keep.clone().bool_not(), 0);
            let picked = lp.clone().gather(1, safe.clone().reshape([n, 1, s])).reshape([n * s]).neg();
            let wt = match &w {
                Some(w) => w.clone().select(0, safe),
                None => picked.ones_like(),
            };
            let mask = keep.float().cast(picked.dtype());
            let wt = wt * mask.clone();
            let mut l = picked * wt.clone();
            if eps > 0.0 {
                let wl = match &w {
                    Some(w) => lp * w.clone().reshape([1, c, 1]),
                    None => lp,
                };
                let smooth = wl.sum_dim(1).reshape([n * s]).neg() * mask;
                l = l.mul_scalar(1.0 - eps) + smooth.mul_scalar(eps / c as f64);
            }
            Ok(reduce(l, Some(wt.sum()), o.reduction))
        }
        Target::Float(y, _) => {
            let y = y.clone().reshape([n, c, s]);
            let y = if eps > 0.0 { y.mul_scalar(1.0 - eps).add_scalar(eps / c as f64) } else { y };
            let wl = match &w {
                Some(w) => lp * w.clone().reshape([1, c, 1]),
                None => lp,
            };
            let l = (wl * y).sum_dim(1).reshape([n * s]).neg();
            Ok(reduce(l, None, o.reduction))
        }
    }
}

/// `log(1 + exp(-|x|)) + max(-x, 0)` = `-log(sigmoid(x))`, stable for any `x`.
fn softplus_neg<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    x.clone().abs().neg().exp().log1p() + x.neg().clamp_min(0.0)
}

fn flat<const D: usize>(t: Tensor<D>) -> Tensor<1> {
    let n = t.shape().num_elements();
    t.reshape([n])
}

fn float_target<const D: usize>(target: &Target, like: &Tensor<D>) -> Tensor<D> {
    let Target::Float(y, _) = target else { unreachable!("checked by the caller") };
    y.clone().reshape(like.dims()).cast(like.dtype())
}

fn bce_with_logits<const D: usize>(x: Tensor<D>, target: &Target, o: &BceWithLogitsOptions<f64>) -> Tensor<1> {
    let y = float_target(target, &x);
    let lw = match &o.pos_weight {
        Some(pw) => (broadcast_weight(pw, &x).sub_scalar(1.0) * y.clone()).add_scalar(1.0),
        None => y.ones_like(),
    };
    let mut l = (y.ones_like() - y) * x.clone() + lw * softplus_neg(x.clone());
    if let Some(w) = &o.weight {
        l = l * broadcast_weight(w, &x);
    }
    reduce(flat(l), None, o.reduction)
}

fn bce<const D: usize>(x: Tensor<D>, target: &Target, o: &BceOptions<f64>) -> Tensor<1> {
    let y = float_target(target, &x);
    let lp = x.clone().log().clamp_min(-100.0);
    let lq = (x.ones_like() - x.clone()).log().clamp_min(-100.0);
    let mut l = (y.clone() * lp + (y.ones_like() - y) * lq).neg();
    if let Some(w) = &o.weight {
        l = l * broadcast_weight(w, &x);
    }
    reduce(flat(l), None, o.reduction)
}

fn sigmoid_focal<const D: usize>(x: Tensor<D>, target: &Target, o: &SigmoidFocalOptions) -> Tensor<1> {
    let y = float_target(target, &x);
    let p = sigmoid(x.clone());
    let one = y.ones_like();
    let ce = (one.clone() - y.clone()) * x.clone() + softplus_neg(x);
    let pt = p.clone() * y.clone() + (one.clone() - p) * (one.clone() - y.clone());
    let mut l = ce * (one.clone() - pt).powf_scalar(o.gamma);
    if o.alpha >= 0.0 {
        l = l * (y.clone().mul_scalar(o.alpha) + (one - y).mul_scalar(1.0 - o.alpha));
    }
    reduce(flat(l), None, o.reduction)
}

/// The composed loss, or `None` where there is no composition for these options.
pub(crate) fn loss<const D: usize>(x: Tensor<D>, target: Target, spec: &LossSpec) -> Result<Option<Tensor<1>>> {
    let x = widened(x);
    let xdims = x.dims().to_vec();
    // The options and the target's type as xent checks them (a loss is cheap to build).
    let index = matches!(target, Target::Index(..));
    let taken = if index { spec.index_loss::<f32, i64>()?.is_some() } else { spec.float_loss::<f32>()?.is_some() };
    if !taken {
        return Err(xent::Error::InvalidOption {
            name: "target",
            value: if index { "an Int tensor" } else { "a float tensor" }.into(),
            reason: if index {
                "this loss takes float targets"
            } else {
                "this loss takes class indices (an Int tensor)"
            },
        }
        .into());
    }
    if x.shape().num_elements() == 0 {
        return Ok(None);
    }
    check_target(&xdims, &target)?;
    let nan_empty = |e: EmptyMean| e == EmptyMean::Nan;
    Ok(Some(match spec {
        LossSpec::CrossEntropy(o) if nan_empty(o.empty_mean) => cross_entropy(x, &target, o, true)?,
        LossSpec::Nll(o) if nan_empty(o.empty_mean) => cross_entropy(x, &target, &o.as_cross_entropy(), false)?,
        LossSpec::BceWithLogits(o) if nan_empty(o.empty_mean) => bce_with_logits(x, &target, o),
        LossSpec::Bce(o) if nan_empty(o.empty_mean) => bce(x, &target, o),
        LossSpec::SigmoidFocal(o) if nan_empty(o.empty_mean) => sigmoid_focal(x, &target, o),
        _ => match (spatial_labels::<D>(&target), spec) {
            (Some(t), LossSpec::Dice(o)) => overlap(x, t, &Overlap::dice(o))?,
            (Some(t), LossSpec::GeneralizedDice(o)) => overlap(x, t, &Overlap::generalized(o))?,
            (Some(t), LossSpec::Tversky(o)) => overlap(x, t, &Overlap::tversky(o))?,
            (Some(t), LossSpec::Focal(o)) => focal(x, t, o)?,
            (Some(t), LossSpec::DiceCe(o)) if o.reduction != Reduction::None && xdims[1] > 1 => {
                let d = overlap(x.clone(), t, &Overlap::dice(&o.dice_part()))?;
                let c = cross_entropy(x, &target, &o.cross_entropy_part(), true)?;
                d.mul_scalar(o.lambda_dice) + c.mul_scalar(o.lambda_ce)
            }
            (Some(t), LossSpec::DiceFocal(o)) if o.reduction != Reduction::None => {
                let d = overlap(x.clone(), t, &Overlap::dice(&o.dice_part()))?;
                let f = focal(x, t, &o.focal_part())?;
                d.mul_scalar(o.lambda_dice) + f.mul_scalar(o.lambda_focal)
            }
            _ => return Ok(None),
        },
    }))
}

/// The class indices of a spatial input (`[N, C, d1..]`, the ones the MONAI compositions take).
fn spatial_labels<const D: usize>(target: &Target) -> Option<&Tensor<1, Int>> {
    match target {
        Target::Index(t, _) if D >= 3 => Some(t),
        _ => None,
    }
}

/// The shared shape of the overlap losses.
struct Overlap {
    activation: Activation,
    include_background: bool,
    squared: bool,
    batch: bool,
    ignore_index: Option<i64>,
    kind: OverlapKind,
    reduction: Reduction,
}

enum OverlapKind {
    Dice { jaccard: bool, nr: f64, dr: f64, weight: Option<ClassWeight<f64>> },
    Generalized { w_type: WeightType, nr: f64, dr: f64 },
    Tversky { alpha: f64, beta: f64, nr: f64, dr: f64 },
}

impl Overlap {
    fn dice(o: &DiceOptions<f64>) -> Overlap {
        let kind = OverlapKind::Dice { jaccard: o.jaccard, nr: o.smooth_nr, dr: o.smooth_dr, weight: o.weight.clone() };
        Overlap {
            activation: o.activation,
            include_background: o.include_background,
            squared: o.squared_pred,
            batch: o.batch,
            ignore_index: o.ignore_index,
            kind,
            reduction: o.reduction,
        }
    }
    fn generalized(o: &GeneralizedDiceOptions) -> Overlap {
        Overlap {
            activation: o.activation,
            include_background: o.include_background,
            squared: false,
            batch: o.batch,
            ignore_index: o.ignore_index,
            kind: OverlapKind::Generalized { w_type: o.w_type, nr: o.smooth_nr, dr: o.smooth_dr },
            reduction: o.reduction,
        }
    }
    fn tversky(o: &TverskyOptions) -> Overlap {
        Overlap {
            activation: o.activation,
            include_background: o.include_background,
            squared: false,
            batch: o.batch,
            ignore_index: o.ignore_index,
            kind: OverlapKind::Tversky { alpha: o.alpha, beta: o.beta, nr: o.smooth_nr, dr: o.smooth_dr },
            reduction: o.reduction,
        }
    }
}

/// `[N, C, S]` one-hot of class indices `[N * S]` (0 where ignored; the values themselves for
/// one channel, MONAI's binary target), and the keep mask `[N, 1, S]`, in the scores' type.
fn one_hot(t: &Tensor<1, Int>, [n, c, s]: [usize; 3], ignore: Option<i64>, like: &Tensor<3>) -> (Tensor<3>, Tensor<3>) {
    let t = t.clone().reshape([n, 1, s]);
    let dtype = like.dtype();
    let keep = match ignore {
        Some(i) => t.clone().not_equal_elem(i).float().cast(dtype),
        None => Tensor::<3>::ones([n, 1, s], (&like.device(), dtype)),
    };
    let hot = if c == 1 {
        t.float().cast(dtype)
    } else {
        let ids = Tensor::<1, Int>::arange(0..c as i64, &like.device()).reshape([1, c, 1]);
        t.expand([n, c, s]).equal(ids.expand([n, c, s])).float().cast(dtype)
    };
    (hot * keep.clone(), keep)
}

/// A weight vector along the class dimension of `[N, C, S]` (or of `[N, C]` sums).
fn along_classes<const D: usize>(w: &[f64], like: &Tensor<D>) -> Tensor<D> {
    let mut shape = [1; D];
    shape[1] = w.len();
    Tensor::<1>::from_data(TensorData::new(w.to_vec(), [w.len()]), (&like.device(), like.dtype())).reshape(shape)
}

/// Dice, generalized Dice and Tversky from the sums `tp`, `P`, `G` over the positions (and the
/// batch with `batch`). Unreduced: per sample and class (per class with `batch`; per sample for
/// the generalized Dice), flattened.
fn overlap<const D: usize>(x: Tensor<D>, t: &Tensor<1, Int>, o: &Overlap) -> xent::Result<Tensor<1>> {
    let [n, c, s] = ncs(x.clone());
    check_labels(t, c, o.ignore_index)?;
    let x = x.reshape([n, c, s]);
    let p = match o.activation {
        Activation::Softmax if c > 1 => softmax(x.clone(), 1),
        Activation::Sigmoid => sigmoid(x.clone()),
        _ => x.clone(),
    };
    let (g, keep) = one_hot(t, [n, c, s], o.ignore_index, &x);
    let first = usize::from(!o.include_background && c > 1);
    let ci = c - first;
    let (p, g) = ((p * keep).narrow(1, first, ci), g.narrow(1, first, ci));
    let rows = if o.batch { 1 } else { n };
    let total = |v: Tensor<3>| {
        let v = v.sum_dim(2);
        let v = if o.batch { v.sum_dim(0) } else { v };
        v.reshape([rows, ci])
    };
    let tp = total(p.clone() * g.clone());
    let pp = total(if o.squared { p.clone() * p } else { p });
    let gg = total(g);
    let f = match &o.kind {
        OverlapKind::Dice { jaccard, nr, dr, weight } => {
            let (tp, gg) = if o.squared {
                // MONAI's squared form takes G as the square of the f32 norm of its float32
                // one-hot, and tp as (P + G - sum (p - g)^2) / 2: as the kernels do.
                let r = gg.clone().cast(FloatDType::F32).sqrt();
                let g32 = (r.clone() * r).cast(gg.dtype());
                (tp + (g32.clone() - gg).mul_scalar(0.5), g32)
            } else {
                (tp, gg)
            };
            let num = tp.clone().mul_scalar(2.0).add_scalar(*nr);
            let den = if *jaccard { (pp + gg - tp).mul_scalar(2.0) } else { pp + gg };
            let f = (num / den.add_scalar(*dr)).neg().add_scalar(1.0);
            match weight {
                Some(w) if ci != 1 => f.clone() * along_classes(&w.expand(ci)?, &f),
                _ => f,
            }
        }
        OverlapKind::Tversky { alpha, beta, nr, dr } => {
            let (fp, fneg) = (pp - tp.clone(), gg - tp.clone());
            let den = (tp.clone() + fp.mul_scalar(*alpha) + fneg.mul_scalar(*beta)).add_scalar(*dr);
            (tp.add_scalar(*nr) / den).neg().add_scalar(1.0)
        }
        OverlapKind::Generalized { w_type, nr, dr } => {
            // MONAI computes the weights in f32; an absent class takes the largest finite
            // weight of its row.
            let gd = gg.clone().detach().cast(FloatDType::F32);
            let w = match w_type {
                WeightType::Simple => gd.clone().recip(),
                WeightType::Square => (gd.clone() * gd.clone()).recip(),
                WeightType::Uniform => gd.ones_like(),
            };
            let absent = gd.equal_elem(0.0);
            let finite = w.mask_fill(absent.clone(), 0.0);
            let top = finite.clone().max_dim(1).expand([rows, ci]);
            let w = finite.mask_where(absent, top).cast(gg.dtype());
            let num = (tp * w.clone()).sum_dim(1).mul_scalar(2.0).add_scalar(*nr);
            let den = ((pp + gg) * w).sum_dim(1).add_scalar(*dr);
            (num / den).neg().add_scalar(1.0)
        }
    };
    Ok(reduce(flat(f), None, o.reduction))
}

/// MONAI's focal loss (softmax over the included classes, or a sigmoid per class).
fn focal<const D: usize>(x: Tensor<D>, t: &Tensor<1, Int>, o: &FocalOptions<f64>) -> xent::Result<Tensor<1>> {
    let [n, c, s] = ncs(x.clone());
    check_labels(t, c, o.ignore_index)?;
    let x = x.reshape([n, c, s]);
    let (g, keep) = one_hot(t, [n, c, s], o.ignore_index, &x);
    let first = usize::from(!o.include_background && c > 1);
    let ci = c - first;
    let (x, g) = (x.narrow(1, first, ci), g.narrow(1, first, ci));
    let mut l = if o.activation == Activation::Softmax {
        let ls = log_softmax(x, 1);
        let m = ls.clone().exp().neg().add_scalar(1.0).powf_scalar(o.gamma);
        let l = (m * ls).neg() * g;
        let alpha: Option<Vec<f64>> = match &o.alpha {
            FocalAlpha::None => None,
            FocalAlpha::Scalar(_) if first == 1 => None,
            FocalAlpha::Scalar(a) => Some((0..ci).map(|k| if k == 0 { 1.0 - a } else { *a }).collect()),
            FocalAlpha::PerClass(a) => Some(a.clone()),
        };
        match alpha {
            Some(a) => l.clone() * along_classes(&a, &l),
            None => l,
        }
    } else {
        let ce = x.clone() - x.clone() * g.clone() + softplus_neg(x.clone());
        let z = x * g.clone().mul_scalar(-2.0).add_scalar(1.0); // x (1 - 2t)
        let m = softplus_neg(z).mul_scalar(-o.gamma).exp();
        let l = m * ce;
        match &o.alpha {
            FocalAlpha::None => l,
            FocalAlpha::Scalar(a) => l * (g.clone().mul_scalar(*a) + g.ones_like().sub(g).mul_scalar(1.0 - a)),
            FocalAlpha::PerClass(a) => {
                let av = along_classes(a, &l).expand([n, ci, s]);
                let factor = l.ones_like().mask_where(g.not_equal_elem(0.0), av);
                l * factor
            }
        }
    };
    if let Some(w) = &o.weight {
        l = l.clone() * along_classes(&w.expand(ci)?, &l);
    }
    let l = l * keep.clone();
    Ok(match o.reduction {
        Reduction::None => flat(l),
        // MONAI: with ignore_index, the kept positions (at least f32's epsilon).
        Reduction::Mean if o.ignore_index.is_some() => l.sum() / keep.sum().clamp_min(f64::from(f32::EPSILON)),
        Reduction::Mean => l.sum() / keep.sum().mul_scalar(ci as f64),
        Reduction::Sum => {
            // Per sample: the mean over its kept positions, then the sum over samples and classes.
            let per = l.sum_dim(2).sum_dim(1).reshape([n]);
            let kept = keep.sum_dim(2).reshape([n]);
            let safe = kept.clone().mask_fill(kept.equal_elem(0.0), 1.0);
            (per / safe).sum()
        }
    })
}
