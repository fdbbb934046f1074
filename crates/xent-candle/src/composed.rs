//! Compositions of candle ops for every loss, so they run (and differentiate) on any device.
//! The same formulas as xent's kernels, tested against them on the CPU; xent's kernels stay the
//! reference for the last bits (MONAI's f32 quirks, BCE's clamped gradient at 0 and 1).

use candle_core::{DType, Result, Tensor};
use xent::*;

/// The composed loss, or `None` where there is no composition for these options.
pub(crate) fn loss(x: &Tensor, target: &Tensor, loss: &LossSpec) -> Result<Option<Tensor>> {
    if x.elem_count() == 0 {
        return Ok(None); // candle cannot reduce an empty tensor
    }
    let index = !target.dtype().is_float();
    // `[N, C]` overlap inputs, soft labels, one-channel DiceCE and DiceFocal run on the kernels.
    let spatial = x.rank() >= 3;
    let index = index && spatial;
    if index {
        check_index_target(x, target, loss.ignore_index())?;
    }
    Ok(Some(match loss {
        LossSpec::CrossEntropy(o) if o.empty_mean == EmptyMean::Nan && index => cross_entropy(x, target, o, true)?,
        LossSpec::Nll(o) if o.empty_mean == EmptyMean::Nan && index => {
            cross_entropy(x, target, &o.as_cross_entropy(), false)?
        }
        LossSpec::BceWithLogits(o) if o.empty_mean == EmptyMean::Nan => bce_with_logits(x, target, o)?,
        LossSpec::Bce(o) if o.empty_mean == EmptyMean::Nan => bce(x, target, o)?,
        LossSpec::SigmoidFocal(o) if o.empty_mean == EmptyMean::Nan => sigmoid_focal(x, target, o)?,
        LossSpec::Dice(o) if index => overlap(x, target, &Overlap::dice(o))?,
        LossSpec::GeneralizedDice(o) if index => overlap(x, target, &Overlap::generalized(o))?,
        LossSpec::Tversky(o) if index => overlap(x, target, &Overlap::tversky(o))?,
        LossSpec::Focal(o) if index => focal(x, target, o)?,
        LossSpec::DiceCe(o) if index && o.reduction != Reduction::None && x.dim(1)? > 1 => {
            let (dice, ce) = (o.dice_part(), o.cross_entropy_part());
            let d = overlap(x, target, &Overlap::dice(&dice))?;
            let c = cross_entropy(x, target, &ce, true)?;
            ((d * o.lambda_dice)? + (c * o.lambda_ce)?)?
        }
        _ => return Ok(None),
    }))
}

/// Class-index targets as the kernels take them: the input's shape without dimension 1, each
/// value in `[0, C)` or the ignore value (one reduction, read back), so that no shape or label
/// the kernels refuse gives a number here.
fn check_index_target(x: &Tensor, t: &Tensor, ignore: Option<i64>) -> Result<()> {
    let mut want = x.dims().to_vec();
    let c = want.remove(1);
    if t.dims() != want {
        return Err(candle_core::Error::Msg(format!(
            "xent: target has shape {:?}, expected {want:?} (the input's without the class dimension)",
            t.dims()
        )));
    }
    let t = t.to_dtype(DType::I64)?;
    let inside = t.ge(0.0)?.mul(&t.lt(c as f64)?)?;
    let ok = match ignore {
        Some(i) => inside.maximum(&t.eq(i as f64)?)?,
        None => inside,
    };
    if ok.min_all()?.to_scalar::<u8>()? == 0 {
        let ignore = ignore.map_or(String::new(), |i| format!(" or the ignore value {i}"));
        return Err(candle_core::Error::Msg(format!(
            "xent: a target value is out of range: labels must lie in [0, {c}){ignore}"
        )));
    }
    Ok(())
}

/// `ln sigmoid(x)`: `-ln(1 + e^-x)` for `x >= 0`, `x - ln(1 + e^x)` below, each branch fed only
/// its own side's values so that neither overflows (nor sends NaN back through the other).
fn log_sigmoid(x: &Tensor) -> Result<Tensor> {
    let pos = x.ge(0.0)?;
    let zero = x.zeros_like()?;
    let (xp, xn) = (pos.where_cond(x, &zero)?, pos.where_cond(&zero, x)?);
    let lp = (xp.neg()?.exp()? + 1.0)?.log()?.neg()?;
    let ln = (&xn - (xn.exp()? + 1.0)?.log()?)?;
    pos.where_cond(&lp, &ln)
}

/// A weight vector of `C` values shaped to broadcast along dimension 1 of an `nd`-d tensor.
fn along_classes(w: &[f64], nd: usize, like: &Tensor) -> Result<Tensor> {
    let shape: Vec<usize> = (0..nd).map(|d| if d == 1 { w.len() } else { 1 }).collect();
    Tensor::new(w, like.device())?.to_dtype(like.dtype())?.reshape(shape)
}

/// `[N, C, d..]` one-hot of class indices `[N, d..]` (class 0 where ignored), and the keep mask
/// `[N, 1, d..]` (1 where the target is not `ignore`).
fn one_hot(t: &Tensor, classes: usize, ignore: Option<i64>, like: &Tensor) -> Result<(Tensor, Tensor)> {
    let t = t.to_dtype(DType::I64)?.unsqueeze(1)?;
    let keep = match ignore {
        Some(i) => t.ne(i)?,
        None => t.ones_like()?.to_dtype(DType::U8)?,
    };
    let nd = t.rank();
    let ids: Vec<i64> = (0..classes as i64).collect();
    let shape: Vec<usize> = (0..nd).map(|d| if d == 1 { classes } else { 1 }).collect();
    let ids = Tensor::new(ids.as_slice(), t.device())?.reshape(shape)?;
    let hot = if classes == 1 { t.clone() } else { t.broadcast_eq(&ids)?.to_dtype(DType::I64)? };
    let keepf = keep.to_dtype(like.dtype())?;
    Ok((hot.to_dtype(like.dtype())?.broadcast_mul(&keepf)?, keepf))
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
/// (`log`: the input is logits; else log-probabilities, as nll takes them.)
fn cross_entropy(x: &Tensor, t: &Tensor, o: &CrossEntropyOptions<f64>, log: bool) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    let (cdim, c) = if dims.len() == 1 { (0, dims[0]) } else { (1, dims[1]) };
    let (dev, dt) = (x.device().clone(), x.dtype());
    let t = t.to_dtype(DType::I64)?;
    let keep = t.ne(o.ignore_index)?;
    let safe = keep.where_cond(&t, &t.zeros_like()?)?;
    let logp = if log { candle_nn::ops::log_softmax(x, cdim)? } else { x.clone() };
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
    let tensor = |t: &xent::WeightTensor<f64>| Tensor::from_vec(t.values().to_vec(), t.shape(), &dev)?.to_dtype(dt);
    let ls = log_sigmoid(x)?;
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

/// `l = -w (y max(ln x, -100) + (1 - y) max(ln(1 - x), -100))`; inputs outside `[0, 1]` are an
/// error (checked with one reduction).
fn bce(x: &Tensor, y: &Tensor, o: &BceOptions<f64>) -> Result<Tensor> {
    let inside = x.ge(0.0)?.mul(&x.le(1.0)?)?.to_dtype(DType::F32)?.min_all()?.to_scalar::<f32>()?;
    if inside < 1.0 {
        return Err(candle_core::Error::Msg("xent: binary_cross_entropy input outside [0, 1]".into()));
    }
    let y = y.to_dtype(x.dtype())?;
    let a = x.log()?.maximum(-100.0)?;
    let b = x.affine(-1.0, 1.0)?.log()?.maximum(-100.0)?;
    let mut per = ((&y * a)? + (y.affine(-1.0, 1.0)? * b)?)?.neg()?;
    if let Some(w) = &o.weight {
        per = per.broadcast_mul(&Tensor::from_vec(w.values().to_vec(), w.shape(), x.device())?.to_dtype(x.dtype())?)?;
    }
    reduce(per, o.reduction, None)
}

/// torchvision's `a_t ce (1 - p_t)^gamma`.
fn sigmoid_focal(x: &Tensor, y: &Tensor, o: &SigmoidFocalOptions) -> Result<Tensor> {
    let y = y.to_dtype(x.dtype())?;
    let p = candle_nn::ops::sigmoid(x)?;
    let ce = ((y.affine(-1.0, 1.0)? * x)? - log_sigmoid(x)?)?;
    let p_t = ((&p * &y)? + (p.affine(-1.0, 1.0)? * y.affine(-1.0, 1.0)?)?)?;
    let mut per = (ce * p_t.affine(-1.0, 1.0)?.powf(o.gamma)?)?;
    if o.alpha >= 0.0 {
        per = (per * ((&y * o.alpha)? + (y.affine(-1.0, 1.0)? * (1.0 - o.alpha))?)?)?;
    }
    reduce(per, o.reduction, None)
}

/// The shared shape of the overlap losses.
struct Overlap {
    activation: Activation,
    include_background: bool,
    squared: bool,
    batch: bool,
    ignore_index: Option<i64>,
    reduction: Reduction,
    kind: OverlapKind,
}

enum OverlapKind {
    Dice { jaccard: bool, nr: f64, dr: f64, weight: Option<ClassWeight<f64>> },
    Generalized { w_type: WeightType, nr: f64, dr: f64 },
    Tversky { alpha: f64, beta: f64, nr: f64, dr: f64 },
}

impl Overlap {
    fn dice(o: &DiceOptions<f64>) -> Overlap {
        Overlap {
            activation: o.activation,
            include_background: o.include_background,
            squared: o.squared_pred,
            batch: o.batch,
            ignore_index: o.ignore_index,
            reduction: o.reduction,
            kind: OverlapKind::Dice { jaccard: o.jaccard, nr: o.smooth_nr, dr: o.smooth_dr, weight: o.weight.clone() },
        }
    }
    fn generalized(o: &GeneralizedDiceOptions) -> Overlap {
        Overlap {
            activation: o.activation,
            include_background: o.include_background,
            squared: false,
            batch: o.batch,
            ignore_index: o.ignore_index,
            reduction: o.reduction,
            kind: OverlapKind::Generalized { w_type: o.w_type, nr: o.smooth_nr, dr: o.smooth_dr },
        }
    }
    fn tversky(o: &TverskyOptions) -> Overlap {
        Overlap {
            activation: o.activation,
            include_background: o.include_background,
            squared: false,
            batch: o.batch,
            ignore_index: o.ignore_index,
            reduction: o.reduction,
            kind: OverlapKind::Tversky { alpha: o.alpha, beta: o.beta, nr: o.smooth_nr, dr: o.smooth_dr },
        }
    }
}

/// Dice, generalized Dice and Tversky from the sums `tp`, `P`, `G` over the spatial dims (and the
/// batch with `batch`).
fn overlap(x: &Tensor, t: &Tensor, o: &Overlap) -> Result<Tensor> {
    let c = x.dim(1)?;
    let p = match o.activation {
        Activation::Softmax if c > 1 => candle_nn::ops::softmax(x, 1)?,
        Activation::Sigmoid => candle_nn::ops::sigmoid(x)?,
        _ => x.clone(),
    };
    let (g, keep) = one_hot(t, c, o.ignore_index, x)?;
    let p = p.broadcast_mul(&keep)?;
    let first = usize::from(!o.include_background && c > 1);
    let (p, g) = (p.narrow(1, first, c - first)?, g.narrow(1, first, c - first)?);
    let mut dims: Vec<usize> = (2..x.rank()).collect();
    if o.batch {
        dims.insert(0, 0);
    }
    let tp = (&p * &g)?.sum(dims.as_slice())?;
    let pp = if o.squared { p.sqr()?.sum(dims.as_slice())? } else { p.sum(dims.as_slice())? };
    let gg = g.sum(dims.as_slice())?;
    let f = match &o.kind {
        OverlapKind::Dice { jaccard, nr, dr, weight } => {
            let (tp, gg) = if o.squared {
                // MONAI's squared form takes G as the square of the f32 norm of its float32
                // one-hot, and tp as (P + G - sum (p - g)^2) / 2: as the kernels do.
                let r = gg.to_dtype(DType::F32)?.sqrt()?;
                let g32 = r.sqr()?.to_dtype(gg.dtype())?;
                ((&tp + ((&g32 - &gg)? * 0.5)?)?, g32)
            } else {
                (tp, gg)
            };
            let num = (&tp * 2.0)?.affine(1.0, *nr)?;
            let den = if *jaccard { ((&pp + &gg)? - &tp)?.affine(2.0, *dr)? } else { (&pp + &gg)?.affine(1.0, *dr)? };
            let f = (num / den)?.affine(-1.0, 1.0)?;
            match weight {
                Some(w) if c - first != 1 => {
                    let w = w.expand(c - first).map_err(super::wrap)?;
                    f.broadcast_mul(&Tensor::new(w.as_slice(), x.device())?.to_dtype(x.dtype())?)?
                }
                _ => f,
            }
        }
        OverlapKind::Tversky { alpha, beta, nr, dr } => {
            let (fp, fneg) = ((&pp - &tp)?, (&gg - &tp)?);
            let den = ((&tp + (fp * *alpha)?)? + (fneg * *beta)?)?.affine(1.0, *dr)?;
            (tp.affine(1.0, *nr)? / den)?.affine(-1.0, 1.0)?
        }
        OverlapKind::Generalized { w_type, nr, dr } => {
            // MONAI computes the weights in f32; an absent class takes the largest finite
            // weight of its row.
            let cd = gg.rank() - 1; // the class dimension of the sums
            let gd = gg.detach().to_dtype(DType::F32)?;
            let w = match w_type {
                WeightType::Simple => gd.recip()?,
                WeightType::Square => gd.sqr()?.recip()?,
                WeightType::Uniform => gd.ones_like()?,
            };
            let absent = gd.eq(0.0)?;
            let finite = absent.where_cond(&gd.zeros_like()?, &w)?;
            let top = finite.max_keepdim(cd)?.broadcast_as(finite.shape())?;
            let w = absent.where_cond(&top, &finite)?.to_dtype(gg.dtype())?;
            let num = (&tp * &w)?.sum(cd)?.affine(2.0, *nr)?;
            let den = ((&pp + &gg)? * &w)?.sum(cd)?.affine(1.0, *dr)?;
            (num / den)?.affine(-1.0, 1.0)?
        }
    };
    match (&o.kind, o.reduction) {
        // MONAI's broadcastable shape `[N, C', 1, ..]` (`[C', 1, ..]` with `batch`).
        (OverlapKind::Dice { .. } | OverlapKind::Generalized { .. }, Reduction::None) => {
            let f = if matches!(o.kind, OverlapKind::Generalized { .. }) { f.unsqueeze(f.rank())? } else { f };
            let mut shape = f.dims().to_vec();
            shape.resize(shape.len() + x.rank() - 2, 1);
            f.reshape(shape)
        }
        _ => reduce(f, o.reduction, None),
    }
}

/// MONAI's focal loss (softmax over the included classes, or a sigmoid per class).
fn focal(x: &Tensor, t: &Tensor, o: &FocalOptions<f64>) -> Result<Tensor> {
    let c = x.dim(1)?;
    let nd = x.rank();
    let (g, keep) = one_hot(t, c, o.ignore_index, x)?;
    let first = usize::from(!o.include_background && c > 1);
    let ci = c - first;
    let (x, g) = (x.narrow(1, first, ci)?, g.narrow(1, first, ci)?);
    let mut l = if o.activation == xent::Activation::Softmax {
        let ls = candle_nn::ops::log_softmax(&x, 1)?;
        let m = ls.exp()?.affine(-1.0, 1.0)?.powf(o.gamma)?;
        let mut l = (m * ls)?.neg()?.mul(&g)?;
        let alpha: Option<Vec<f64>> = match &o.alpha {
            FocalAlpha::None => None,
            FocalAlpha::Scalar(_) if first == 1 => None,
            FocalAlpha::Scalar(a) => Some((0..ci).map(|k| if k == 0 { 1.0 - a } else { *a }).collect()),
            FocalAlpha::PerClass(a) => Some(a.clone()),
        };
        if let Some(a) = alpha {
            l = l.broadcast_mul(&along_classes(&a, nd, &l)?)?;
        }
        l
    } else {
        let ce = ((&x - (&x * &g)?)? - log_sigmoid(&x)?)?;
        let z = (&x * g.affine(-2.0, 1.0)?)?; // x (1 - 2t)
        let m = (log_sigmoid(&z)? * o.gamma)?.exp()?;
        let mut l = (m * ce)?;
        match &o.alpha {
            FocalAlpha::None => {}
            FocalAlpha::Scalar(a) => l = (l * ((&g * *a)? + (g.affine(-1.0, 1.0)? * (1.0 - a))?)?)?,
            FocalAlpha::PerClass(a) => {
                let av = along_classes(a, nd, &l)?.broadcast_as(l.shape())?;
                let factor = g.ne(0.0)?.where_cond(&av, &l.ones_like()?)?;
                l = (l * factor)?;
            }
        }
        l
    };
    if let Some(w) = &o.weight {
        l = l.broadcast_mul(&along_classes(&w.expand(ci).map_err(super::wrap)?, nd, &l)?)?;
    }
    let l = l.broadcast_mul(&keep)?;
    match o.reduction {
        Reduction::None => Ok(l),
        // MONAI: with ignore_index, the kept positions (at least f32's epsilon).
        Reduction::Mean if o.ignore_index.is_some() => {
            l.sum_all()?.broadcast_div(&keep.sum_all()?.maximum(f32::EPSILON as f64)?)
        }
        Reduction::Mean => l.sum_all()? / (keep.sum_all()? * ci as f64)?,
        Reduction::Sum => {
            // Per sample: the mean over its kept pixels, then the sum over samples and classes.
            let dims: Vec<usize> = (1..nd).collect();
            let per = l.sum(dims.as_slice())?;
            let kept = keep.sum(dims.as_slice())?;
            let safe = kept.eq(0.0)?.where_cond(&kept.ones_like()?, &kept)?;
            (per / safe)?.sum_all()
        }
    }
}
