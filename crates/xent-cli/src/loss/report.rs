//! What `xent loss` prints: a table or one JSON object.

use super::{Args, Format};
use crate::arrays::Source;
use std::fmt::Write as _;
use xent::{ExactSum, Float, Reduction};

/// What a run found.
pub(super) struct Report {
    pub loss: f64,
    pub sum: f64,
    pub denominator: f64,
    pub ignored: Option<u64>,
    pub per_class: Option<Vec<(u64, f64)>>,
    pub chunks: usize,
}

impl Report {
    /// A loss computed in one piece: its value, sum and denominator, no per-class table.
    pub(super) fn whole<T: Float>(out: &xent::LossOutput<T>) -> Report {
        Report {
            loss: out.loss[0].to_f64(),
            sum: out.weighted_sum.value(),
            denominator: out.denominator.value(),
            ignored: None,
            per_class: None,
            chunks: 1,
        }
    }
}

/// The reduced value, as the library forms it: `T(sum / D)` (NaN for `D = 0`) or `T(sum)`.
pub(super) fn reduce<T: Float>(r: Reduction, sum: &ExactSum, den: &ExactSum) -> f64 {
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

fn num(v: f64) -> serde_json::Value {
    if v.is_finite() {
        serde_json::json!(v)
    } else {
        serde_json::Value::Null
    }
}

pub(super) fn render(a: &Args, x: &Source, r: &Report) -> String {
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
                "reduction": a.reduction.to_string(),
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
