//! Plain `f64` loops for every loss: the oracle that property tests and benchmarks check the
//! kernels against. Written for clarity, not speed; not part of the stable API.
//!
//! Inputs are `[N, C, d1..dk]` (or `[C]`) with the class dimension at 1; reductions are PyTorch's
//! names `"none"`, `"mean"`, `"sum"`. Weights of the binary losses come expanded to the input's
//! shape.

/// `(outer, classes, inner)` of `shape` along `dim` (non-negative).
fn split(shape: &[usize], dim: usize) -> (usize, usize, usize) {
    (shape[..dim].iter().product(), shape[dim], shape[dim + 1..].iter().product())
}

fn class_dim(shape: &[usize]) -> usize {
    usize::from(shape.len() > 1)
}

/// The log-softmax of the `C` values of one position.
fn log_softmax_row(row: &[f64]) -> Vec<f64> {
    let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    // (x - m) - ln s, as PyTorch: x - (m + ln s) loses ln s next to a large m.
    let ls = row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
    row.iter().map(|v| (v - m) - ls).collect()
}

/// Calls `f(position, row)` for every position, `row` gathered along `dim`; scatters the
/// returned row back.
fn map_rows(x: &[f64], shape: &[usize], dim: usize, mut f: impl FnMut(usize, &[f64]) -> Vec<f64>) -> Vec<f64> {
    let (outer, c, inner) = split(shape, dim);
    let mut out = vec![0.0; x.len()];
    for n in 0..outer {
        for j in 0..inner {
            let idx: Vec<usize> = (0..c).map(|k| n * c * inner + k * inner + j).collect();
            let row: Vec<f64> = idx.iter().map(|&i| x[i]).collect();
            for (i, v) in idx.into_iter().zip(f(n * inner + j, &row)) {
                out[i] = v;
            }
        }
    }
    out
}

/// Softmax along `dim`.
pub fn softmax(x: &[f64], shape: &[usize], dim: usize) -> Vec<f64> {
    map_rows(x, shape, dim, |_, r| log_softmax_row(r).into_iter().map(f64::exp).collect())
}

/// Log-softmax along `dim`.
pub fn log_softmax(x: &[f64], shape: &[usize], dim: usize) -> Vec<f64> {
    map_rows(x, shape, dim, |_, r| log_softmax_row(r))
}

fn reduce(per: Vec<f64>, den: f64, reduction: &str) -> Vec<f64> {
    let sum: f64 = per.iter().sum();
    match reduction {
        "none" => per,
        "sum" => vec![sum],
        _ => vec![if den == 0.0 { f64::NAN } else { sum / den }],
    }
}

/// Cross-entropy with class-index targets (`nll = true`: the input already holds log-probabilities).
#[allow(clippy::too_many_arguments)] // reason: PyTorch's argument list
pub fn index_loss(
    x: &[f64],
    shape: &[usize],
    target: &[i64],
    weight: Option<&[f64]>,
    ignore_index: i64,
    smoothing: f64,
    reduction: &str,
    nll: bool,
) -> Vec<f64> {
    let dim = class_dim(shape);
    let c = shape[dim];
    let w = |k: usize| weight.map_or(1.0, |w| w[k]);
    let mut per = vec![0.0; target.len()];
    let mut den = 0.0;
    map_rows(x, shape, dim, |p, row| {
        let t = target[p];
        if t != ignore_index {
            let t = t as usize;
            let lp = if nll { row.to_vec() } else { log_softmax_row(row) };
            per[p] = -w(t) * lp[t];
            if smoothing > 0.0 {
                // Only with smoothing, as in PyTorch: a logit of -inf makes this sum NaN.
                let smooth: f64 = (0..c).map(|k| -w(k) * lp[k]).sum();
                per[p] = (1.0 - smoothing) * per[p] + smoothing / c as f64 * smooth;
            }
            den += w(t);
        }
        row.to_vec()
    });
    reduce(per, den, reduction)
}

/// Cross-entropy with probability targets (the input's shape).
pub fn cross_entropy_probs(
    x: &[f64],
    shape: &[usize],
    target: &[f64],
    weight: Option<&[f64]>,
    smoothing: f64,
    reduction: &str,
) -> Vec<f64> {
    let dim = class_dim(shape);
    let c = shape[dim];
    let (outer, _, inner) = split(shape, dim);
    let mut per = vec![0.0; outer * inner];
    let y = map_rows(target, shape, dim, |_, r| r.to_vec());
    map_rows(x, shape, dim, |p, row| {
        let lp = log_softmax_row(row);
        let (n, j) = (p / inner, p % inner);
        per[p] = -(0..c)
            .map(|k| {
                let yk = y[n * c * inner + k * inner + j] * (1.0 - smoothing) + smoothing / c as f64;
                weight.map_or(1.0, |w| w[k]) * yk * lp[k]
            })
            .sum::<f64>();
        row.to_vec()
    });
    let den = per.len() as f64;
    reduce(per, den, reduction)
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn elementwise(n: usize, reduction: &str, f: impl Fn(usize) -> f64) -> Vec<f64> {
    reduce((0..n).map(f).collect(), n as f64, reduction)
}

/// Binary cross-entropy on probabilities, logs clamped at -100.
pub fn bce(x: &[f64], y: &[f64], w: Option<&[f64]>, reduction: &str) -> Vec<f64> {
    elementwise(x.len(), reduction, |i| {
        let l = -(y[i] * x[i].ln().max(-100.0) + (1.0 - y[i]) * (1.0 - x[i]).ln().max(-100.0));
        l * w.map_or(1.0, |w| w[i])
    })
}

/// Binary cross-entropy with logits, written as the textbook `-(q y ln s + (1 - y) ln(1 - s))`
/// with `s = sigmoid(x)` (so only for moderate logits).
pub fn bce_with_logits(x: &[f64], y: &[f64], w: Option<&[f64]>, q: Option<&[f64]>, reduction: &str) -> Vec<f64> {
    elementwise(x.len(), reduction, |i| {
        let s = sigmoid(x[i]);
        let q = q.map_or(1.0, |q| q[i]);
        -(q * y[i] * s.ln() + (1.0 - y[i]) * (1.0 - s).ln()) * w.map_or(1.0, |w| w[i])
    })
}

/// torchvision's sigmoid focal loss.
pub fn sigmoid_focal(x: &[f64], y: &[f64], alpha: f64, gamma: f64, reduction: &str) -> Vec<f64> {
    elementwise(x.len(), reduction, |i| {
        let p = sigmoid(x[i]);
        let ce = -(y[i] * p.ln() + (1.0 - y[i]) * (1.0 - p).ln());
        let p_t = p * y[i] + (1.0 - p) * (1.0 - y[i]);
        let a = if alpha >= 0.0 { alpha * y[i] + (1.0 - alpha) * (1.0 - y[i]) } else { 1.0 };
        a * ce * (1.0 - p_t).powf(gamma)
    })
}
