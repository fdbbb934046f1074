//! Compositions of burn tensor ops, so the losses run (and differentiate) on any burn device.
//! The same formulas as xent's kernels, tested against them on the CPU; xent's kernels stay the
//! reference for the last bits (BCE's clamped gradient at 0 and 1). Scores are viewed as
//! `[N, C, S]` (class dimension 1, the spatial dimensions flattened), which serves every layout.
//!
//! Composed so far: cross-entropy and NLL (class indices: weights, `ignore_index`, label
//! smoothing; probabilities: weights, label smoothing), BCE, BCE with logits and sigmoid focal.
//! The MONAI losses (Dice, generalized Dice, Tversky, focal, DiceCE, DiceFocal) have none yet.

use burn_tensor::activation::{log_softmax, sigmoid};
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
        LossSpec::Nll(o) if nan_empty(o.empty_mean) => {
            let o = CrossEntropyOptions {
                weight: o.weight.clone(),
                ignore_index: o.ignore_index,
                reduction: o.reduction,
                label_smoothing: 0.0,
                empty_mean: o.empty_mean,
            };
            cross_entropy(x, &target, &o, false)?
        }
        LossSpec::BceWithLogits(o) if nan_empty(o.empty_mean) => bce_with_logits(x, &target, o),
        LossSpec::Bce(o) if nan_empty(o.empty_mean) => bce(x, &target, o),
        LossSpec::SigmoidFocal(o) if nan_empty(o.empty_mean) => sigmoid_focal(x, &target, o),
        _ => return Ok(None),
    }))
}
