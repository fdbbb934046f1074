//! `xent loss`: any loss of the library on arrays saved to disk, streamed in chunks.
//!
//! The class-index and element-wise losses stream the input a slab of rows (first dimension) at
//! a time, with every loss computed per element and merged exactly ([`xent::ExactSum`]), so the
//! result is the in-memory one bit for bit and memory is bounded by the chunk size. The overlap
//! and MONAI focal losses need whole-image sums and read their arrays whole.

use crate::arrays::{self, Element, Source};
use crate::atomic::AtomicFile;
use crate::{npy, progress};
use anyhow::{bail, ensure, Context, Result};
use std::fmt::Write as _;
use std::path::PathBuf;
use xent::weights::{AbsentClasses, ClassCounts, Scheme};
use xent::*;

/// `l.forward_backward(x, t, go, g)` when the gradient is wanted, else `l.forward(x, t)`.
macro_rules! fwd_bwd {
    ($l:expr, $x:expr, $t:expr, $fb:expr, $go:expr, $g:expr) => {
        if $fb {
            $l.forward_backward($x, $t, $go, $g)
        } else {
            $l.forward($x, $t)
        }
    };
}

/// The losses `xent loss` evaluates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Name {
    CrossEntropy,
    Nll,
    Bce,
    BceWithLogits,
    SigmoidFocal,
    Dice,
    GeneralizedDice,
    Tversky,
    Focal,
}

/// `--activation` of the overlap and focal losses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Act {
    Softmax,
    Sigmoid,
    None,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Arguments of `xent loss`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The loss.
    #[arg(long, value_enum)]
    pub loss: Name,
    /// Scores: FILE.npy, or FILE.safetensors[:TENSOR] (float32 or float64).
    #[arg(long)]
    pub input: String,
    /// Targets: class indices (integers) or probabilities (floats), FILE.npy or FILE.safetensors[:TENSOR].
    #[arg(long)]
    pub target: String,
    /// Class weights (index losses) or element weights (binary losses): comma-separated numbers,
    /// or a .npy file (broadcast by NumPy's rules).
    #[arg(long, allow_hyphen_values = true)]
    pub weight: Option<String>,
    /// Class weights from a counts file of `xent weights --save-counts`.
    #[arg(long, conflicts_with = "weight")]
    pub weights_from: Option<PathBuf>,
    /// The scheme for --weights-from.
    #[arg(long, default_value = "inverse_frequency")]
    pub scheme: String,
    /// The constant c of the enet scheme.
    #[arg(long, allow_hyphen_values = true)]
    pub scheme_c: Option<f64>,
    /// The constant beta of the effective_number scheme.
    #[arg(long, allow_hyphen_values = true)]
    pub scheme_beta: Option<f64>,
    /// Targets equal to this are ignored (default -100 for cross-entropy and nll, none otherwise).
    #[arg(long, allow_hyphen_values = true)]
    pub ignore_index: Option<i64>,
    /// mean or sum.
    #[arg(long, default_value = "mean")]
    pub reduction: String,
    /// Label smoothing of cross-entropy.
    #[arg(long, allow_hyphen_values = true, default_value_t = 0.0)]
    pub label_smoothing: f64,
    /// pos_weight of bce-with-logits: comma-separated numbers or a .npy file.
    #[arg(long)]
    pub pos_weight: Option<String>,
    /// alpha of the focal and Tversky losses.
    #[arg(long, allow_hyphen_values = true)]
    pub alpha: Option<f64>,
    /// beta of the Tversky loss.
    #[arg(long, allow_hyphen_values = true)]
    pub beta: Option<f64>,
    /// gamma of the focal losses.
    #[arg(long, allow_hyphen_values = true)]
    pub gamma: Option<f64>,
    /// Activation of the overlap losses (default softmax) and the focal loss (default sigmoid).
    #[arg(long, value_enum)]
    pub activation: Option<Act>,
    /// Leave class 0 out (overlap and focal losses).
    #[arg(long)]
    pub no_background: bool,
    /// Overlap sums over the whole batch instead of per sample.
    #[arg(long)]
    pub batch: bool,
    /// Write d(loss)/d(input) to this .npy file (atomically).
    #[arg(long)]
    pub grad_out: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Write the result to this file (atomically) instead of standard output.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Input bytes read per chunk, in MiB.
    #[arg(long, default_value_t = 64)]
    pub chunk_mb: usize,
    /// Refuse arrays whose header claims more elements than this.
    #[arg(long, default_value_t = 1 << 36)]
    pub max_elements: usize,
}

/// What a run found.
struct Report {
    loss: f64,
    sum: f64,
    denominator: f64,
    ignored: Option<u64>,
    per_class: Option<Vec<(u64, f64)>>,
    chunks: usize,
}

/// Parses `--weight`-like values: a list of numbers (shape `[len]`) or a .npy file.
fn tensor<T: Float + Element>(spec: &str, what: &str, max: usize) -> Result<WeightTensor<T>> {
    let (values, shape) = if spec.ends_with(".npy") || spec.contains(".safetensors") {
        let s = arrays::open(spec, max)?;
        (s.read_all::<T>()?, s.shape.clone())
    } else {
        let v: Vec<T> = spec
            .split(',')
            .map(|x| x.trim().parse::<f64>().map(T::from_f64))
            .collect::<std::result::Result<_, _>>()
            .with_context(|| format!("--{what} {spec:?}: comma-separated numbers or a .npy file"))?;
        let n = v.len();
        (v, vec![n])
    };
    WeightTensor::new(values, shape).with_context(|| format!("--{what}"))
}

fn class_weights<T: Float + Element>(a: &Args) -> Result<Option<Vec<T>>> {
    if let Some(p) = &a.weights_from {
        let text = std::fs::read_to_string(p).with_context(|| format!("{}: cannot read counts", p.display()))?;
        let counts = ClassCounts::from_json(&text).with_context(|| p.display().to_string())?;
        let scheme = Scheme::parse(&a.scheme, a.scheme_c, a.scheme_beta)?;
        let w = counts.weights(scheme, AbsentClasses::Zero).with_context(|| p.display().to_string())?;
        return Ok(Some(w.into_iter().map(T::from_f64).collect()));
    }
    Ok(a.weight.as_deref().map(|s| tensor::<T>(s, "weight", a.max_elements)).transpose()?.map(|t| t.values().to_vec()))
}

/// Rows per chunk: about `chunk_mb` of input, a multiple of `multiple`.
fn chunk_rows(a: &Args, src: &Source, multiple: usize) -> usize {
    let row_bytes = (src.row_len() * src.dtype.size()).max(1);
    let budget = (a.chunk_mb.max(1) << 20) / row_bytes;
    (budget / multiple).max(1) * multiple
}

/// A gradient file being written chunk by chunk.
struct GradOut(Option<AtomicFile>);

impl GradOut {
    fn new<T: Float>(path: &Option<PathBuf>, shape: &[usize]) -> Result<GradOut> {
        let Some(p) = path else { return Ok(GradOut(None)) };
        let mut f = AtomicFile::create(p)?;
        f.write_all(&npy::header(if T::NAME == "f32" { "<f4" } else { "<f8" }, shape))?;
        Ok(GradOut(Some(f)))
    }
    fn wants(&self) -> bool {
        self.0.is_some()
    }
    fn write<T: Float>(&mut self, g: &[T]) -> Result<()> {
        if let Some(f) = &mut self.0 {
            let bytes: Vec<u8> = g
                .iter()
                .flat_map(|v| {
                    if T::NAME == "f32" {
                        (v.to_f64() as f32).to_le_bytes().to_vec()
                    } else {
                        v.to_f64().to_le_bytes().to_vec()
                    }
                })
                .collect();
            f.write_all(&bytes)?;
        }
        Ok(())
    }
    fn commit(self) -> Result<()> {
        self.0.map_or(Ok(()), AtomicFile::commit)
    }
}

fn reduction(a: &Args) -> Result<Reduction> {
    match Reduction::parse(&a.reduction)? {
        Reduction::None => bail!("--reduction none is not supported here: use mean or sum"),
        r => Ok(r),
    }
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

/// The reduced value, as the library forms it: `T(sum / D)` (NaN for `D = 0`) or `T(sum)`.
fn reduce<T: Float>(r: Reduction, sum: &ExactSum, den: &ExactSum) -> f64 {
    match r {
        Reduction::Sum => T::from_f64(sum.value()).to_f64(),
        _ => {
            let d = den.value();
            if d == 0.0 {
                f64::NAN
            } else {
                T::from_f64(sum.value() / d).to_f64()
            }
        }
    }
}

/// Cross-entropy or nll with class-index targets.
enum IndexLoss<T> {
    Ce(CrossEntropyLoss<T>),
    Nll(NllLoss<T>),
}

impl<T: Float> IndexLoss<T> {
    fn run(&self, x: View<'_, T>, t: View<'_, i64>, g: Option<(&[T], &mut [T])>) -> xent::Result<LossOutput<T>> {
        match (self, g) {
            (IndexLoss::Ce(l), Some((go, gi))) => l.forward_backward(x, t, go, gi),
            (IndexLoss::Ce(l), None) => l.forward(x, t),
            (IndexLoss::Nll(l), Some((go, gi))) => l.forward_backward(x, t, go, gi),
            (IndexLoss::Nll(l), None) => l.forward(x, t),
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
fn index_loss<T: Float + Element>(a: &Args, x: &Source, t: &Source) -> Result<Report>
where
    CrossEntropyLoss<T>: Loss<T, T>,
{
    let red = reduction(a)?;
    let weight = class_weights::<T>(a)?;
    let ignore_index = a.ignore_index.unwrap_or(-100);
    if matches!(t.dtype, npy::Dtype::F32 | npy::Dtype::F64) {
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
            label_smoothing: a.label_smoothing,
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
    let rows = if unbatched { 1 } else { chunk_rows(a, x, chunk_rows_multiple(&x.shape, true)) };
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
    let mut grad = GradOut::new::<T>(&a.grad_out, &x.shape)?;
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
            let out = loss.run(xview, tview, Some((&go, &mut g))).with_context(ctx)?;
            grad.write(&g)?;
            out
        } else {
            loss.run(xview, tview, None).with_context(ctx)?
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
    let l = CrossEntropyLoss::new(CrossEntropyOptions {
        weight,
        reduction: Reduction::None,
        label_smoothing: a.label_smoothing,
        ..Default::default()
    })?;
    let unbatched = x.shape.len() == 1;
    let rows = if unbatched { 1 } else { chunk_rows(a, x, chunk_rows_multiple(&x.shape, true)) };
    let n = x.rows();
    let positions = if unbatched { 1 } else { n * x.row_len() / x.shape[1].max(1) };
    let scale = if red == Reduction::Mean { T::from_f64(1.0 / positions as f64) } else { T::ONE };
    let mut grad = GradOut::new::<T>(&a.grad_out, &x.shape)?;
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
fn binary_loss<T: Float + Element>(a: &Args, x: &Source, t: &Source) -> Result<Report> {
    let red = reduction(a)?;
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
    let rows = if x.shape.is_empty() { 1 } else { chunk_rows(a, x, chunk_rows_multiple(&x.shape, false)) };
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
    let mut grad = GradOut::new::<T>(&a.grad_out, &x.shape)?;
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
                fwd_bwd!(l, xview, tview, fb, &go, &mut g)
            }
            Name::BceWithLogits => {
                let l = BceWithLogitsLoss::new(BceWithLogitsOptions {
                    weight: w,
                    pos_weight: q,
                    reduction: Reduction::None,
                    ..Default::default()
                })?;
                fwd_bwd!(l, xview, tview, fb, &go, &mut g)
            }
            _ => {
                let l = SigmoidFocalLoss::new(SigmoidFocalOptions {
                    alpha: a.alpha.unwrap_or(0.25),
                    gamma: a.gamma.unwrap_or(2.0),
                    reduction: Reduction::None,
                    ..Default::default()
                })?;
                fwd_bwd!(l, xview, tview, fb, &go, &mut g)
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

/// The overlap and MONAI focal losses, on whole arrays.
fn whole_loss<T: Float + Element>(a: &Args, x: &Source, t: &Source) -> Result<Report> {
    let red = reduction(a)?;
    let xv = x.read_all::<T>()?;
    let tv = t.read_all::<i64>()?;
    let (xview, tview) = (View::new(&xv, &x.shape)?, View::new(&tv, &t.shape)?);
    let act = |default| match a.activation.unwrap_or(default) {
        Act::Softmax => Activation::Softmax,
        Act::Sigmoid => Activation::Sigmoid,
        Act::None => Activation::Identity,
    };
    let include_background = !a.no_background;
    let mut g = vec![T::ZERO; if a.grad_out.is_some() { xv.len() } else { 0 }];
    let go = [T::ONE];
    let fb = a.grad_out.is_some();
    let ctx = || format!("{} / {}", x.path.display(), t.path.display());
    let out = match a.loss {
        Name::Dice => {
            let l = DiceLoss::new(DiceOptions {
                activation: act(Act::Softmax),
                include_background,
                batch: a.batch,
                weight: class_weights::<T>(a)?,
                ignore_index: a.ignore_index,
                reduction: red,
                ..Default::default()
            })?;
            fwd_bwd!(l, xview, tview, fb, &go, &mut g)
        }
        Name::GeneralizedDice => {
            let l = GeneralizedDiceLoss::new(GeneralizedDiceOptions {
                activation: act(Act::Softmax),
                include_background,
                batch: a.batch,
                ignore_index: a.ignore_index,
                reduction: red,
                ..Default::default()
            })?;
            fwd_bwd!(l, xview, tview, fb, &go, &mut g)
        }
        Name::Tversky => {
            let l = TverskyLoss::new(TverskyOptions {
                activation: act(Act::Softmax),
                include_background,
                alpha: a.alpha.unwrap_or(0.5),
                beta: a.beta.unwrap_or(0.5),
                batch: a.batch,
                ignore_index: a.ignore_index,
                reduction: red,
                ..Default::default()
            })?;
            fwd_bwd!(l, xview, tview, fb, &go, &mut g)
        }
        _ => {
            let l = FocalLoss::new(FocalOptions {
                include_background,
                gamma: a.gamma.unwrap_or(2.0),
                alpha: a.alpha.map_or(FocalAlpha::None, FocalAlpha::Scalar),
                weight: class_weights::<T>(a)?,
                activation: act(Act::Sigmoid),
                ignore_index: a.ignore_index,
                reduction: red,
            })?;
            fwd_bwd!(l, xview, tview, fb, &go, &mut g)
        }
    }
    .with_context(ctx)?;
    let mut grad = GradOut::new::<T>(&a.grad_out, &x.shape)?;
    grad.write(&g)?;
    grad.commit()?;
    Ok(Report {
        loss: out.loss[0].to_f64(),
        sum: out.weighted_sum.value(),
        denominator: out.denominator.value(),
        ignored: None,
        per_class: None,
        chunks: 1,
    })
}

fn run_typed<T: Float + Element>(a: &Args, x: &Source, t: &Source) -> Result<Report>
where
    CrossEntropyLoss<T>: Loss<T, T>,
{
    match a.loss {
        Name::CrossEntropy | Name::Nll => index_loss::<T>(a, x, t),
        Name::Bce | Name::BceWithLogits | Name::SigmoidFocal => binary_loss::<T>(a, x, t),
        _ => whole_loss::<T>(a, x, t),
    }
}

/// Runs the command; returns what to print.
pub fn run(a: &Args) -> Result<String> {
    let x = arrays::open(&a.input, a.max_elements)?;
    let t = arrays::open(&a.target, a.max_elements)?;
    let r = match x.dtype {
        npy::Dtype::F32 => run_typed::<f32>(a, &x, &t)?,
        npy::Dtype::F64 => run_typed::<f64>(a, &x, &t)?,
        d => bail!("{}: the input must be float32 or float64, not {}", x.path.display(), d.name()),
    };
    Ok(render(a, &x, &r))
}

fn num(v: f64) -> serde_json::Value {
    if v.is_finite() {
        serde_json::json!(v)
    } else {
        serde_json::Value::Null
    }
}

fn render(a: &Args, x: &Source, r: &Report) -> String {
    let name = format!("{:?}", a.loss);
    let per_class = r.per_class.as_ref().map(|pc| {
        pc.iter()
            .enumerate()
            .map(|(c, &(n, s))| serde_json::json!({"class": c, "count": n, "loss_sum": num(s), "loss_mean": if n > 0 { num(s / n as f64) } else { serde_json::Value::Null }}))
            .collect::<Vec<_>>()
    });
    match a.format {
        Format::Json => {
            let v = serde_json::json!({
                "loss": num(r.loss),
                "name": name,
                "reduction": a.reduction,
                "dtype": x.dtype.name(),
                "shape": x.shape,
                "sum": num(r.sum),
                "denominator": num(r.denominator),
                "ignored": r.ignored,
                "per_class": per_class,
                "chunks": r.chunks,
            });
            format!("{}\n", serde_json::to_string_pretty(&v).expect("plain values serialise"))
        }
        Format::Text => {
            let mut s = String::new();
            let _ = writeln!(s, "{name} ({}) over {:?} {}: {}", a.reduction, x.shape, x.dtype.name(), r.loss);
            let _ = writeln!(s, "sum {}, denominator {}", r.sum, r.denominator);
            if let Some(i) = r.ignored {
                let _ = writeln!(s, "ignored targets: {i}");
            }
            if let Some(pc) = &r.per_class {
                let _ = writeln!(s, "{:>5} {:>12} {:>14}", "class", "count", "mean loss");
                for (c, &(n, l)) in pc.iter().enumerate() {
                    let _ = writeln!(s, "{c:>5} {n:>12} {:>14.6}", if n > 0 { l / n as f64 } else { f64::NAN });
                }
            }
            s
        }
    }
}
