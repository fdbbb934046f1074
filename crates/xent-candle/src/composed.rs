//! Compositions of candle ops for the losses used most, so they run (and differentiate) on any
//! device. The same formulas as xent's kernels; tested against them on the CPU.

use super::Loss;
use candle_core::{DType, Result, Tensor};
use xent::{BceWithLogitsOptions, CrossEntropyOptions, EmptyMean, Reduction};

/// The composed loss, or `None` where there is no composition for these options.
pub(crate) fn loss(x: &Tensor, target: &Tensor, loss: &Loss) -> Result<Option<Tensor>> {
    if x.elem_count() == 0 {
        return Ok(None); // candle cannot reduce an empty tensor
    }
    match loss {
        Loss::CrossEntropy(o) if o.empty_mean == EmptyMean::Nan && !target.dtype().is_float() => {
            cross_entropy(x, target, o).map(Some)
        }
        Loss::BceWithLogits(o) if o.empty_mean == EmptyMean::Nan => bce_with_logits(x, target, o).map(Some),
        _ => Ok(None),
    }
}

/// `denominator`: the mean's `D` and the number of kept targets.
fn reduce(per: Tensor, reduction: Reduction, denominator: Option<(&Tensor, &Tensor)>) -> Result<Tensor> {
    match (reduction, denominator) {
        (Reduction::None, _) => Ok(per),
        (Reduction::Sum, _) => per.sum_all(),
        (Reduction::Mean, Some((d, kept))) => {
            // As PyTorch: every target ignored gives NaN with a zero gradient (the NaN is added
            // as a constant); kept targets of total weight 0 give NaN and a NaN gradient.
            let (no_kept, no_den) = (kept.eq(0.0)?, d.eq(0.0)?);
            let weight_zero = (no_den.to_dtype(d.dtype())? - no_kept.to_dtype(d.dtype())?)?.ne(0.0)?;
            let (one, zero) = (d.ones_like()?, d.zeros_like()?);
            let nan = d.affine(0.0, f64::NAN)?;
            let safe = no_den.where_cond(&one, d)?;
            let scale = weight_zero.where_cond(&nan, &one)?.detach();
            let add = no_kept.where_cond(&nan, &zero)?.detach();
            ((per.sum_all()? / safe)? * scale)? + add
        }
        (Reduction::Mean, None) => per.mean_all(),
    }
}

/// `l = (1 - e) * -w_t logp_t + e / C * -sum_c w_c logp_c`, 0 where `t = ignore_index`; the
/// mean divides by the weights of the kept targets.
fn cross_entropy(x: &Tensor, t: &Tensor, o: &CrossEntropyOptions<f64>) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    let (cdim, c) = if dims.len() == 1 { (0, dims[0]) } else { (1, dims[1]) };
    let (dev, dt) = (x.device().clone(), x.dtype());
    let t = t.to_dtype(DType::I64)?;
    let keep = t.ne(o.ignore_index)?;
    let safe = keep.where_cond(&t, &t.zeros_like()?)?;
    let logp = candle_nn::ops::log_softmax(x, cdim)?;
    let picked = logp.gather(&safe.unsqueeze(cdim)?.contiguous()?, cdim)?.squeeze(cdim)?;
    let w = match &o.weight {
        Some(w) => Tensor::new(w.as_slice(), &dev)?.to_dtype(dt)?,
        None => Tensor::ones(c, dt, &dev)?,
    };
    let keepf = keep.to_dtype(dt)?;
    let wt = (w.index_select(&safe.flatten_all()?, 0)?.reshape(safe.shape())? * &keepf)?;
    let nll = (picked.neg()? * &wt)?;
    let e = o.label_smoothing;
    let per = if e > 0.0 {
        let shape: Vec<usize> = (0..dims.len()).map(|d| if d == cdim { c } else { 1 }).collect();
        let smooth = (logp.broadcast_mul(&w.reshape(shape)?)?.sum(cdim)?.neg()? * &keepf)?;
        ((nll * (1.0 - e))? + (smooth * (e / c as f64))?)?
    } else {
        nll
    };
    let (den, kept) = (wt.sum_all()?, keepf.sum_all()?);
    reduce(per, o.reduction, Some((&den, &kept)))
}

/// `l = w ((1 - y) x - (1 + (q - 1) y) ln sigmoid(x))`.
fn bce_with_logits(x: &Tensor, y: &Tensor, o: &BceWithLogitsOptions<f64>) -> Result<Tensor> {
    let (dev, dt) = (x.device().clone(), x.dtype());
    let y = y.to_dtype(dt)?;
    let tensor = |t: &xent::Tensor<f64>| Tensor::from_vec(t.values().to_vec(), t.shape(), &dev)?.to_dtype(dt);
    // ln sigmoid(x): -ln(1 + e^-x) for x >= 0, x - ln(1 + e^x) below, each branch fed only its
    // own side's values so that neither overflows (nor sends NaN back through the other).
    let pos = x.ge(0.0)?;
    let zero = x.zeros_like()?;
    let (xp, xn) = (pos.where_cond(x, &zero)?, pos.where_cond(&zero, x)?);
    let lp = (xp.neg()?.exp()? + 1.0)?.log()?.neg()?;
    let ln = (&xn - (xn.exp()? + 1.0)?.log()?)?;
    let ls = pos.where_cond(&lp, &ln)?;
    let lw = match &o.pos_weight {
        Some(q) => y.broadcast_mul(&tensor(q)?.affine(1.0, -1.0)?)?.affine(1.0, 1.0)?,
        None => y.ones_like()?,
    };
    let mut per = ((y.affine(-1.0, 1.0)? * x)? - (lw * ls)?)?;
    if let Some(w) = &o.weight {
        per = per.broadcast_mul(&tensor(w)?)?;
    }
    reduce(per, o.reduction, None)
}
