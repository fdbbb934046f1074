//! The streamed losses (cross-entropy, nll, the binary ones): a slab of rows at a time, the
//! per-element losses merged exactly, the gradient written chunk by chunk.

use super::report::{reduce, Report};
use super::{chunk_rows, class_weights, eval, tensor, Args, Name};
use crate::arrays::{Element, Source};
use crate::atomic::AtomicFile;
use crate::{npy, progress};
use anyhow::{bail, ensure, Context, Result};
use std::path::PathBuf;
use xent::*;

/// A gradient file being written chunk by chunk, in the input's type: `.npy` (float16, float32,
/// float64) or `.safetensors` (one tensor, `grad`; also bfloat16). A half gradient is the f32
/// gradient rounded once.
pub(super) struct GradOut(Option<(AtomicFile, npy::Dtype)>);

impl GradOut {
    pub(super) fn new(path: &Option<PathBuf>, shape: &[usize], dtype: npy::Dtype) -> Result<GradOut> {
        let Some(p) = path else { return Ok(GradOut(None)) };
        let header = if p.extension().is_some_and(|e| e == "safetensors") {
            safetensors_header(dtype, shape)
        } else {
            let descr = match dtype {
                npy::Dtype::F16 => "<f2",
                npy::Dtype::F32 => "<f4",
                npy::Dtype::F64 => "<f8",
                d => {
                    bail!("{}: a {} gradient needs a .safetensors file (NumPy has no such type)", p.display(), d.name())
                }
            };
            npy::header(descr, shape)
        };
        let mut f = AtomicFile::create(p)?;
        f.write_all(&header)?;
        Ok(GradOut(Some((f, dtype))))
    }
    fn wants(&self) -> bool {
        self.0.is_some()
    }
    pub(super) fn write<T: Float>(&mut self, g: &[T]) -> Result<()> {
        if let Some((f, dtype)) = &mut self.0 {
            // A MiB or so at a time: a large gradient is not copied whole.
            let mut bytes = Vec::with_capacity(1 << 20);
            for part in g.chunks(1 << 17) {
                bytes.clear();
                // Half gradients are computed in f32 (`v as f32` is exact) and rounded once.
                let f32s = part.iter().map(|v| v.to_f64() as f32);
                match dtype {
                    npy::Dtype::F16 => bytes.extend(f32s.flat_map(|v| xent::f16::from_f32(v).to_le_bytes())),
                    npy::Dtype::BF16 => bytes.extend(f32s.flat_map(|v| xent::bf16::from_f32(v).to_le_bytes())),
                    npy::Dtype::F32 => bytes.extend(f32s.flat_map(f32::to_le_bytes)),
                    _ => bytes.extend(part.iter().flat_map(|v| v.to_f64().to_le_bytes())),
                }
                f.write_all(&bytes)?;
            }
        }
        Ok(())
    }
    pub(super) fn commit(self) -> Result<()> {
        self.0.map_or(Ok(()), |(f, _)| f.commit())
    }
}

/// The header of a `.safetensors` file holding one tensor `grad` of `dtype` and `shape`.
fn safetensors_header(dtype: npy::Dtype, shape: &[usize]) -> Vec<u8> {
    let name = match dtype {
        npy::Dtype::F16 => "F16",
        npy::Dtype::BF16 => "BF16",
        npy::Dtype::F32 => "F32",
        _ => "F64",
    };
    let bytes = shape.iter().product::<usize>() * dtype.size();
    let mut json =
        serde_json::json!({ "grad": { "dtype": name, "shape": shape, "data_offsets": [0, bytes] } }).to_string();
    while !json.len().is_multiple_of(8) {
        json.push(' ');
    }
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend(json.as_bytes());
    out
}

/// Exact running totals of a streamed loss, merged chunk by chunk.
#[derive(Default)]
struct Totals {
    sum: ExactSum,
    den: ExactSum,
    chunks: usize,
}

impl Totals {
    fn add<T>(&mut self, out: &LossOutput<T>) {
        self.sum.merge(&out.weighted_sum);
        self.den.merge(&out.denominator);
        self.chunks += 1;
    }

    fn report<T: Float>(self, red: Reduction, ignored: Option<u64>, per_class: Option<Vec<(u64, f64)>>) -> Report {
        Report {
            loss: reduce::<T>(red, &self.sum, &self.den),
            sum: self.sum.value(),
            denominator: self.den.value(),
            ignored,
            per_class,
            chunks: self.chunks,
        }
    }
}

/// Cross-entropy or nll with class-index targets: evaluated through [`Loss`]; the mean's
/// denominator (from the targets alone, for the gradient of a streamed mean) is their own.
enum IndexLoss<T> {
    Ce(CrossEntropyLoss<T>),
    Nll(NllLoss<T>),
}

impl<T: Float> IndexLoss<T> {
    fn loss(&self) -> &dyn Loss<T, i64> {
        match self {
            IndexLoss::Ce(l) => l,
            IndexLoss::Nll(l) => l,
        }
    }
    fn denominator(&self, shape: &[usize], t: View<'_, i64>) -> xent::Result<ExactSum> {
        match self {
            IndexLoss::Ce(l) => l.denominator(shape, t),
            IndexLoss::Nll(l) => l.denominator(shape, t),
        }
    }
}

/// Cross-entropy and nll, streamed.
pub(super) fn index_loss<T: Float + Element>(a: &Args, x: &Source, t: &Source) -> Result<Report>
where
    CrossEntropyLoss<T>: Loss<T, T>,
{
    let red = a.reduction;
    let weight = class_weights::<T>(a)?;
    let ignore_index = a.ignore_index.unwrap_or(-100);
    if t.dtype.is_float() {
        ensure!(a.loss != Name::Nll, "{}: nll takes class indices (an integer array)", t.path.display());
        return probs_loss::<T>(a, x, t, weight, red);
    }
    let loss = match a.loss {
        Name::Nll => IndexLoss::Nll(NllLoss::new(NllOptions {
            weight,
            ignore_index,
            reduction: Reduction::None,
            ..Default::default()
        })?),
        _ => IndexLoss::Ce(CrossEntropyLoss::new(CrossEntropyOptions {
            weight,
            ignore_index,
            reduction: Reduction::None,
            label_smoothing: a.label_smoothing.unwrap_or(0.0),
            ..Default::default()
        })?),
    };
    let unbatched = x.shape.len() == 1;
    let want: Vec<usize> = match x.shape.len() {
        0 => bail!("{}: the input needs a class dimension", x.path.display()),
        1 => vec![],
        _ => [&x.shape[..1], &x.shape[2..]].concat(),
    };
    ensure!(
        t.shape == want,
        "{}: target shape {:?} does not fit input shape {:?} (expected {want:?})",
        t.path.display(),
        t.shape,
        x.shape
    );
    let classes = if unbatched { x.shape[0] } else { x.shape[1] };
    let n = if unbatched { 1 } else { x.rows() };
    let rows = if unbatched { 1 } else { chunk_rows(a, x, t, chunk_rows_multiple(&x.shape, true)) };
    // The shapes of the chunk of rows r0 .. r0 + m.
    let shapes = |m: usize| -> (Vec<usize>, Vec<usize>) {
        if unbatched {
            (x.shape.clone(), vec![])
        } else {
            ([&[m][..], &x.shape[1..]].concat(), [&[m][..], &want[1..]].concat())
        }
    };
    let ctx = || format!("{} / {}", x.path.display(), t.path.display());
    // Pass 1, for the gradient of a mean: the global denominator, from the targets alone.
    let scale = if a.grad_out.is_some() && red == Reduction::Mean {
        let mut den = ExactSum::default();
        for r0 in (0..n).step_by(rows) {
            let m = rows.min(n - r0);
            let tv = if unbatched { t.read_all::<i64>()? } else { t.read_rows::<i64>(r0, m)? };
            let (xs, ts) = shapes(m);
            den.merge(&loss.denominator(&xs, View::new(&tv, &ts)?).with_context(ctx)?);
        }
        T::from_f64(1.0 / den.value())
    } else {
        T::ONE
    };
    let mut grad = GradOut::new(&a.grad_out, &x.shape, x.dtype)?;
    let mut totals = Totals::default();
    let mut per_class = vec![(0u64, 0.0f64); classes];
    let mut ignored = 0u64;
    let bar = progress::bar(n as u64, "rows");
    for r0 in (0..n).step_by(rows) {
        let m = rows.min(n - r0);
        let (xv, tv) = if unbatched {
            (x.read_all::<T>()?, t.read_all::<i64>()?)
        } else {
            (x.read_rows::<T>(r0, m)?, t.read_rows::<i64>(r0, m)?)
        };
        let (xs, ts) = shapes(m);
        let (xview, tview) = (View::new(&xv, &xs)?, View::new(&tv, &ts)?);
        let out = if grad.wants() {
            let go = vec![scale; tv.len()];
            let mut g = vec![T::ZERO; xv.len()];
            let out = eval(loss.loss(), xview, tview, Some((&go, &mut g))).with_context(ctx)?;
            grad.write(&g)?;
            out
        } else {
            eval(loss.loss(), xview, tview, None).with_context(ctx)?
        };
        totals.add(&out);
        for (k, &c) in tv.iter().enumerate() {
            if c == ignore_index {
                ignored += 1;
            } else {
                per_class[c as usize].0 += 1;
                per_class[c as usize].1 += out.loss[k].to_f64();
            }
        }
        bar.inc(m as u64);
    }
    bar.finish_and_clear();
    grad.commit()?;
    Ok(totals.report::<T>(red, Some(ignored), Some(per_class)))
}

/// Cross-entropy with probability targets, streamed.
fn probs_loss<T: Float + Element>(
    a: &Args,
    x: &Source,
    t: &Source,
    weight: Option<Vec<T>>,
    red: Reduction,
) -> Result<Report>
where
    CrossEntropyLoss<T>: Loss<T, T>,
{
    ensure!(
        t.shape == x.shape,
        "{}: probability targets need the input's shape {:?}, not {:?}",
        t.path.display(),
        x.shape,
        t.shape
    );
    // `--ignore-index` reaches the loss, which refuses a value >= 0 here, as PyTorch does.
    let l = CrossEntropyLoss::new(CrossEntropyOptions {
        weight,
        ignore_index: a.ignore_index.unwrap_or(-100),
        reduction: Reduction::None,
        label_smoothing: a.label_smoothing.unwrap_or(0.0),
        ..Default::default()
    })?;
    let unbatched = x.shape.len() == 1;
    let rows = if unbatched { 1 } else { chunk_rows(a, x, t, chunk_rows_multiple(&x.shape, true)) };
    let n = x.rows();
    let positions = if unbatched { 1 } else { n * x.row_len() / x.shape[1].max(1) };
    let scale = if red == Reduction::Mean { T::from_f64(1.0 / positions as f64) } else { T::ONE };
    let mut grad = GradOut::new(&a.grad_out, &x.shape, x.dtype)?;
    let mut totals = Totals::default();
    for r0 in (0..if unbatched { 1 } else { n }).step_by(rows) {
        let m = if unbatched { 1 } else { rows.min(n - r0) };
        let (xv, tv) = if unbatched {
            (x.read_all::<T>()?, t.read_all::<T>()?)
        } else {
            (x.read_rows::<T>(r0, m)?, t.read_rows::<T>(r0, m)?)
        };
        let shape: Vec<usize> = if unbatched { x.shape.clone() } else { [&[m][..], &x.shape[1..]].concat() };
        let (xview, tview) = (View::new(&xv, &shape)?, View::new(&tv, &shape)?);
        let out = if grad.wants() {
            let per_pos = xv.len() / if unbatched { xv.len().max(1) } else { x.shape[1].max(1) };
            let go = vec![scale; per_pos.max(1)];
            let mut g = vec![T::ZERO; xv.len()];
            let out = l.forward_backward(xview, tview, &go, &mut g)?;
            grad.write(&g)?;
            out
        } else {
            l.forward(xview, tview)?
        };
        totals.add(&out);
    }
    grad.commit()?;
    Ok(totals.report::<T>(red, None, None))
}

/// The binary losses, streamed.
pub(super) fn binary_loss<T: Float + Element>(a: &Args, x: &Source, t: &Source) -> Result<Report> {
    let red = a.reduction;
    ensure!(
        t.shape == x.shape,
        "{}: target shape {:?} differs from input shape {:?}",
        t.path.display(),
        t.shape,
        x.shape
    );
    let weight = a.weight.as_deref().map(|s| tensor::<T>(s, "weight", a.max_elements)).transpose()?;
    let pos_weight = a.pos_weight.as_deref().map(|s| tensor::<T>(s, "pos-weight", a.max_elements)).transpose()?;
    let n = x.rows();
    // A weight whose first dimension is the batch's is sliced with the chunks.
    let batched = |w: &Option<WeightTensor<T>>| {
        w.as_ref()
            .is_some_and(|w| w.shape().len() == x.shape.len() && !x.shape.is_empty() && w.shape()[0] == n && n > 1)
    };
    let rows = if x.shape.is_empty() { 1 } else { chunk_rows(a, x, t, chunk_rows_multiple(&x.shape, false)) };
    let slice = |w: &Option<WeightTensor<T>>, r0: usize, m: usize| -> Result<Option<WeightTensor<T>>> {
        Ok(match w {
            Some(w) if batched(&Some(w.clone())) => {
                let per: usize = w.shape()[1..].iter().product();
                Some(WeightTensor::new(
                    w.values()[r0 * per..(r0 + m) * per].to_vec(),
                    [&[m][..], &w.shape()[1..]].concat(),
                )?)
            }
            w => w.clone(),
        })
    };
    let total = xent::numel(&x.shape)?;
    let scale = if red == Reduction::Mean { T::from_f64(1.0 / total as f64) } else { T::ONE };
    let mut grad = GradOut::new(&a.grad_out, &x.shape, x.dtype)?;
    let mut totals = Totals::default();
    let bar = progress::bar(n as u64, "rows");
    for r0 in (0..n.max(1)).step_by(rows) {
        let m = if x.shape.is_empty() { 1 } else { rows.min(n - r0) };
        let (xv, tv) = (x.read_rows::<T>(r0, m)?, t.read_rows::<T>(r0, m)?);
        let shape: Vec<usize> = if x.shape.is_empty() { vec![] } else { [&[m][..], &x.shape[1..]].concat() };
        let (xview, tview) = (View::new(&xv, &shape)?, View::new(&tv, &shape)?);
        let (w, q) = (slice(&weight, r0, m)?, slice(&pos_weight, r0, m)?);
        let go = vec![scale; if grad.wants() { xv.len() } else { 0 }];
        let mut g = vec![T::ZERO; go.len()];
        let ctx = || format!("{} / {}", x.path.display(), t.path.display());
        let fb = !go.is_empty();
        let out = match a.loss {
            Name::Bce => {
                let l = BceLoss::new(BceOptions { weight: w, reduction: Reduction::None, ..Default::default() })?;
                eval(&l, xview, tview, fb.then_some((&go[..], &mut g[..])))
            }
            Name::BceWithLogits => {
                let l = BceWithLogitsLoss::new(BceWithLogitsOptions {
                    weight: w,
                    pos_weight: q,
                    reduction: Reduction::None,
                    ..Default::default()
                })?;
                eval(&l, xview, tview, fb.then_some((&go[..], &mut g[..])))
            }
            _ => {
                let l = SigmoidFocalLoss::new(SigmoidFocalOptions {
                    alpha: a.alpha.unwrap_or(0.25),
                    gamma: a.gamma.unwrap_or(2.0),
                    reduction: Reduction::None,
                    ..Default::default()
                })?;
                eval(&l, xview, tview, fb.then_some((&go[..], &mut g[..])))
            }
        }
        .with_context(ctx)?;
        grad.write(&g)?;
        totals.add(&out);
        bar.inc(m as u64);
    }
    bar.finish_and_clear();
    grad.commit()?;
    Ok(totals.report::<T>(red, None, None))
}
