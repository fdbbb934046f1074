//! `xent loss`: any loss of the library on arrays saved to disk, streamed in chunks.
//!
//! The class-index and element-wise losses stream the input a slab of rows (first dimension) at
//! a time, with every loss computed per element and merged exactly ([`xent::ExactSum`]), so the
//! result is the in-memory one bit for bit and memory is bounded by the chunk size. The overlap
//! and MONAI focal losses need whole-image sums and read their arrays whole.
//!
//! `stream`: the streamed losses; `whole`: the others; `report`: what is printed. Every loss is
//! run through [`xent::Loss`] ([`eval`]). Each flag belongs to the losses it applies to: a flag
//! given to another loss is an error naming it, before any file is read.

mod linear;
mod report;
mod stream;
mod whole;

use crate::arrays::{self, Element, Source};
use crate::npy;
use anyhow::{bail, Context, Result};
use clap::builder::{PossibleValuesParser, TypedValueParser};
use std::path::PathBuf;
use xent::weights::{AbsentClasses, ClassCounts, Scheme};
use xent::*;

/// `loss.forward_backward(input, target, go, g)` when `grad` is given, else `loss.forward`.
fn eval<T: Float, Y: Copy>(
    loss: &dyn Loss<T, Y>,
    input: View<'_, T>,
    target: View<'_, Y>,
    grad: Option<(&[T], &mut [T])>,
) -> xent::Result<LossOutput<T>> {
    loss.evaluate(input, target, grad.map(|(grad_output, grad_input)| Backward { grad_output, grad_input }))
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
    DiceFocal,
    DiceCe,
    LinearCrossEntropy,
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
    /// Scores: FILE.npy, or FILE.safetensors[:TENSOR] (float16, bfloat16, float32, float64; the
    /// half types computed in float32); for linear-cross-entropy the features `[N, D]` or `[D]`.
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
    /// The scheme for --weights-from (default inverse_frequency).
    #[arg(long, requires = "weights_from", value_parser = scheme_parser())]
    pub scheme: Option<Scheme>,
    /// The constant c of the enet scheme.
    #[arg(long, allow_hyphen_values = true, requires = "weights_from")]
    pub scheme_c: Option<f64>,
    /// The constant beta of the effective_number scheme.
    #[arg(long, allow_hyphen_values = true, requires = "weights_from")]
    pub scheme_beta: Option<f64>,
    /// Targets equal to this are ignored (default -100 for cross-entropy and nll, none otherwise).
    #[arg(long, allow_hyphen_values = true)]
    pub ignore_index: Option<i64>,
    /// How the losses are reduced.
    #[arg(long, default_value = "mean", value_parser = reduction_parser())]
    pub reduction: Reduction,
    /// Label smoothing of cross-entropy (default 0).
    #[arg(long, allow_hyphen_values = true)]
    pub label_smoothing: Option<f64>,
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
    /// The target holds soft labels, floats `[N, C, ...]` in [0, 1] (dice, tversky; MONAI's
    /// soft_label=True).
    #[arg(long)]
    pub soft_label: bool,
    /// Weight of the Dice part (dice-focal, dice-ce; default 1).
    #[arg(long, allow_hyphen_values = true)]
    pub lambda_dice: Option<f64>,
    /// Weight of the focal part (dice-focal; default 1).
    #[arg(long, allow_hyphen_values = true)]
    pub lambda_focal: Option<f64>,
    /// Weight of the cross-entropy part (dice-ce; default 1).
    #[arg(long, allow_hyphen_values = true)]
    pub lambda_ce: Option<f64>,
    /// Write d(loss)/d(input) to this file (atomically), in the input's type: .npy, or
    /// .safetensors (one tensor `grad`; needed for bfloat16).
    #[arg(long)]
    pub grad_out: Option<PathBuf>,
    /// The projection of linear-cross-entropy, `[C, D]` or `[C, d1..dk, D]` (the input's type).
    #[arg(long)]
    pub linear_weight: Option<String>,
    /// Its bias, `[C]` or `[C, d1..dk]`.
    #[arg(long)]
    pub linear_bias: Option<String>,
    /// Write d(loss)/d(linear weight) to this file (atomically), as --grad-out.
    #[arg(long)]
    pub linear_weight_grad_out: Option<PathBuf>,
    /// Write d(loss)/d(linear bias) to this file (atomically), as --grad-out.
    #[arg(long)]
    pub linear_bias_grad_out: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Write the result to this file (atomically) instead of standard output.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Input bytes read per chunk, in MiB, for the streamed losses (default 64).
    #[arg(long)]
    pub chunk_mb: Option<usize>,
    /// Refuse arrays whose header claims more elements than this.
    #[arg(long, default_value_t = 1 << 36)]
    pub max_elements: usize,
}

/// `--reduction`: `mean` or `sum` (a streamed loss's per-element values are not written out).
fn reduction_parser() -> impl TypedValueParser<Value = Reduction> {
    PossibleValuesParser::new(["mean", "sum"]).try_map(|s| s.parse::<Reduction>())
}

/// `--scheme`: the names of [`Scheme`].
pub(crate) fn scheme_parser() -> impl TypedValueParser<Value = Scheme> {
    PossibleValuesParser::new([
        "inverse_frequency",
        "balanced",
        "median_frequency",
        "enet",
        "effective_number",
        "inverse_sqrt_frequency",
    ])
    .try_map(|s| s.parse::<Scheme>())
}

/// Checks that every flag given applies to the loss (before any file is read).
fn check_flags(a: &Args) -> Result<()> {
    use Name::*;
    let class_weighted: &[Name] = &[CrossEntropy, Nll, Dice, Focal, DiceFocal, DiceCe, LinearCrossEntropy];
    let overlap_focal: &[Name] = &[Dice, GeneralizedDice, Tversky, Focal, DiceFocal, DiceCe];
    let weighted: &[Name] =
        &[CrossEntropy, Nll, Bce, BceWithLogits, Dice, Focal, DiceFocal, DiceCe, LinearCrossEntropy];
    let ignoring: &[Name] =
        &[CrossEntropy, Nll, Dice, GeneralizedDice, Tversky, Focal, DiceFocal, DiceCe, LinearCrossEntropy];
    if a.loss == LinearCrossEntropy && a.linear_weight.is_none() {
        bail!("--loss linear-cross-entropy needs --linear-weight");
    }
    let flags: [(&str, bool, &[Name]); 20] = [
        ("--weight", a.weight.is_some(), weighted),
        ("--weights-from", a.weights_from.is_some(), class_weighted),
        ("--ignore-index", a.ignore_index.is_some(), ignoring),
        ("--label-smoothing", a.label_smoothing.is_some(), &[CrossEntropy, DiceCe, LinearCrossEntropy]),
        ("--pos-weight", a.pos_weight.is_some(), &[BceWithLogits]),
        ("--alpha", a.alpha.is_some(), &[SigmoidFocal, Focal, Tversky, DiceFocal]),
        ("--beta", a.beta.is_some(), &[Tversky]),
        ("--gamma", a.gamma.is_some(), &[SigmoidFocal, Focal, DiceFocal]),
        ("--activation", a.activation.is_some(), overlap_focal),
        ("--no-background", a.no_background, overlap_focal),
        ("--batch", a.batch, &[Dice, GeneralizedDice, Tversky, DiceFocal, DiceCe]),
        ("--soft-label", a.soft_label, &[Dice, Tversky]),
        ("--lambda-dice", a.lambda_dice.is_some(), &[DiceFocal, DiceCe]),
        ("--lambda-focal", a.lambda_focal.is_some(), &[DiceFocal]),
        ("--lambda-ce", a.lambda_ce.is_some(), &[DiceCe]),
        ("--chunk-mb", a.chunk_mb.is_some(), &[CrossEntropy, Nll, Bce, BceWithLogits, SigmoidFocal]),
        ("--linear-weight", a.linear_weight.is_some(), &[LinearCrossEntropy]),
        ("--linear-bias", a.linear_bias.is_some(), &[LinearCrossEntropy]),
        ("--linear-weight-grad-out", a.linear_weight_grad_out.is_some(), &[LinearCrossEntropy]),
        ("--linear-bias-grad-out", a.linear_bias_grad_out.is_some(), &[LinearCrossEntropy]),
    ];
    let name = |n: &Name| clap::ValueEnum::to_possible_value(n).map_or(String::new(), |v| v.get_name().to_string());
    for (flag, given, losses) in flags {
        if given && !losses.contains(&a.loss) {
            let names: Vec<String> = losses.iter().map(name).collect();
            bail!("{flag} does not apply to --loss {}: it applies to {}", name(&a.loss), names.join(", "));
        }
    }
    Ok(())
}

/// Parses `--weight`-like values: a list of numbers (shape `[len]`) or a .npy file.
pub(crate) fn tensor<T: Float + Element>(spec: &str, what: &str, max: usize) -> Result<WeightTensor<T>> {
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

pub(crate) fn class_weights<T: Float + Element>(a: &Args) -> Result<Option<Vec<T>>> {
    if let Some(p) = &a.weights_from {
        let text = std::fs::read_to_string(p).with_context(|| format!("{}: cannot read counts", p.display()))?;
        let counts = ClassCounts::from_json(&text).with_context(|| p.display().to_string())?;
        let scheme = a.scheme.unwrap_or(Scheme::InverseFrequency).with_parameters(a.scheme_c, a.scheme_beta)?;
        let w = counts.weights(scheme, AbsentClasses::Zero).with_context(|| p.display().to_string())?;
        return Ok(Some(w.into_iter().map(T::from_f64).collect()));
    }
    Ok(a.weight.as_deref().map(|s| tensor::<T>(s, "weight", a.max_elements)).transpose()?.map(|t| t.values().to_vec()))
}

/// Rows per chunk: about `chunk_mb` of input, a multiple of `multiple`.
/// A Fortran-order input or target is read whole: one chunk.
pub(crate) fn chunk_rows(a: &Args, src: &Source, t: &Source, multiple: usize) -> usize {
    if src.fortran || t.fortran {
        return src.rows();
    }
    let row_bytes = (src.row_len() * src.dtype.size()).max(1);
    let budget = (a.chunk_mb.unwrap_or(64).max(1) << 20) / row_bytes;
    (budget / multiple).max(1) * multiple
}

fn run_typed<T>(a: &Args, x: &Source, t: &Source) -> Result<report::Report>
where
    CrossEntropyLoss<T>: Loss<T, T>,
    DiceLoss<T>: Loss<T, T>,
    TverskyLoss<T>: Loss<T, T>,
    T: Float + Element + LinearTarget<T>,
{
    match a.loss {
        Name::CrossEntropy | Name::Nll => stream::index_loss::<T>(a, x, t),
        Name::Bce | Name::BceWithLogits | Name::SigmoidFocal => stream::binary_loss::<T>(a, x, t),
        Name::LinearCrossEntropy => linear::linear_loss::<T>(a, x, t),
        _ => whole::whole_loss::<T>(a, x, t),
    }
}

/// Runs the command; returns what to print.
pub fn run(a: &Args) -> Result<String> {
    check_flags(a)?;
    let x = arrays::open(&a.input, a.max_elements)?;
    let t = arrays::open(&a.target, a.max_elements)?;
    let r = match x.dtype {
        // Half inputs are computed in f32 on their exact values, as the core's half path.
        npy::Dtype::F16 | npy::Dtype::BF16 | npy::Dtype::F32 => run_typed::<f32>(a, &x, &t)?,
        npy::Dtype::F64 => run_typed::<f64>(a, &x, &t)?,
        d => bail!(
            "{}: the input must be a float type (float16, bfloat16, float32, float64), not {}",
            x.path.display(),
            d.name()
        ),
    };
    Ok(report::render(a, &x, &r))
}
