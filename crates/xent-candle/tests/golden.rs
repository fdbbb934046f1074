//! The golden runner through candle: every case of every `*.json` file in `tests/golden/` (or in
//! `XENT_GOLDEN_DIR`), the loss from xent-candle's forward and the gradient from candle's
//! `backward()`, checked with the tolerances of `tests/golden/README.md`, on 1 and 4 threads.
//! Prints `OP: N passed, M failed` per file; an op xent-candle does not have is reported as
//! skipped, with why.

#[path = "../../xent/tests/common/golden.rs"]
#[allow(dead_code)] // reason: the core runner's own dispatch is not used here
mod golden;

use candle_core::{DType, Device, Tensor, Var};
use golden::{monai_weights, options, tensor, GTensor, Outcome};
use serde_json::Value;
use xent::*;

fn candle(t: &GTensor, dtype: DType) -> candle_core::Result<Tensor> {
    let dev = Device::Cpu;
    if t.dtype == "i64" {
        return Tensor::from_vec(t.ints.clone(), t.shape.as_slice(), &dev);
    }
    Tensor::from_vec(t.data.clone(), t.shape.as_slice(), &dev)?.to_dtype(dtype)
}

fn values(t: &Tensor) -> candle_core::Result<Vec<f64>> {
    t.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()
}

fn weight_tensor(t: Option<GTensor>) -> xent::Result<Option<WeightTensor<f64>>> {
    t.map(|t| WeightTensor::new(t.data, t.shape)).transpose()
}

/// The case through xent-candle; `Err` for an error of the library (or of candle).
fn run(op: &str, v: &Value) -> Result<Outcome, String> {
    if op == "class_weights" {
        return Ok(Outcome::Skip("class weights are not a candle op (xent::weights computes them)"));
    }
    let err = |e: xent::Error| e.to_string();
    let dtype = match v["dtype"].as_str().unwrap_or("f64") {
        "f32" => DType::F32,
        "f64" => DType::F64,
        "bf16" => DType::BF16,
        "f16" => DType::F16,
        _ => return Ok(Outcome::Skip("a dtype this runner does not know")),
    };
    let input = |k: &str| v["inputs"].get(k).map(tensor);
    let x = Var::from_tensor(&candle(&input("input").ok_or("no input")?, dtype).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let target = match input("target") {
        Some(t) => Some(candle(&t, dtype).map_err(|e| e.to_string())?),
        None => None,
    };
    let t = || target.as_ref().ok_or("no target".to_string());
    let xt = x.as_tensor();
    let mut linear: Option<(Var, Option<Var>)> = None;
    let out = match op {
        "softmax" | "log_softmax" => {
            let dim = v["options"].get("dim").and_then(Value::as_i64).unwrap_or(-1);
            if op == "softmax" {
                xent_candle::softmax(xt, dim)
            } else {
                xent_candle::log_softmax(xt, dim)
            }
        }
        "cross_entropy" => {
            let weight = input("weight").map(|w| w.data);
            xent_candle::cross_entropy(xt, t()?, &CrossEntropyOptions { weight, ..options(op, v).map_err(err)? })
        }
        "nll_loss" => {
            let weight = input("weight").map(|w| w.data);
            xent_candle::nll_loss(xt, t()?, &NllOptions { weight, ..options(op, v).map_err(err)? })
        }
        "binary_cross_entropy" => {
            let weight = weight_tensor(input("weight")).map_err(err)?;
            xent_candle::binary_cross_entropy(xt, t()?, &BceOptions { weight, ..options(op, v).map_err(err)? })
        }
        "binary_cross_entropy_with_logits" => {
            let weight = weight_tensor(input("weight")).map_err(err)?;
            let pos_weight = weight_tensor(input("pos_weight")).map_err(err)?;
            let o = BceWithLogitsOptions { weight, pos_weight, ..options(op, v).map_err(err)? };
            xent_candle::binary_cross_entropy_with_logits(xt, t()?, &o)
        }
        "sigmoid_focal_loss" => xent_candle::sigmoid_focal_loss(xt, t()?, &options(op, v).map_err(err)?),
        "dice_loss" => xent_candle::dice_loss(xt, t()?, &monai_weights(options(op, v).map_err(err)?)),
        "generalized_dice_loss" => xent_candle::generalized_dice_loss(xt, t()?, &options(op, v).map_err(err)?),
        "tversky_loss" => xent_candle::tversky_loss(xt, t()?, &options(op, v).map_err(err)?),
        "focal_loss" => xent_candle::focal_loss(xt, t()?, &options(op, v).map_err(err)?),
        "dice_focal_loss" => xent_candle::dice_focal(xt, t()?, &options(op, v).map_err(err)?),
        "dice_ce_loss" => xent_candle::dice_ce(xt, t()?, &options(op, v).map_err(err)?),
        "linear_cross_entropy" => {
            let var = |k: &str| -> Result<Option<Var>, String> {
                input(k)
                    .map(|t| candle(&t, dtype).and_then(|t| Var::from_tensor(&t)).map_err(|e| e.to_string()))
                    .transpose()
            };
            let (w, b) = (var("linear_weight")?.ok_or("no linear_weight")?, var("linear_bias")?);
            let weight = input("weight").map(|w| w.data);
            let o = LinearCrossEntropyOptions { weight, ..options(op, v).map_err(err)? };
            let out = xent_candle::linear_cross_entropy(xt, w.as_tensor(), b.as_ref().map(Var::as_tensor), t()?, &o)
                .map_err(|e| e.to_string())?;
            linear = Some((w, b));
            Ok(out)
        }
        _ => return Ok(Outcome::Skip("an op xent-candle does not have")),
    }
    .map_err(|e| e.to_string())?;
    let output = values(&out).map_err(|e| e.to_string())?;
    let mut more = vec![];
    let grad = match v.get("grad_output") {
        Some(go) => {
            let go = candle(&tensor(go), out.dtype()).map_err(|e| e.to_string())?;
            let total = (&out * &go).and_then(|p| p.sum_all()).map_err(|e| e.to_string())?;
            let grads = total.backward().map_err(|e| e.to_string())?;
            let of = |t: &Tensor| match grads.get(t) {
                Some(g) => values(g).map_err(|e| e.to_string()),
                None => Ok(vec![0.0; t.elem_count()]),
            };
            if let Some((w, b)) = &linear {
                more.push(("linear_weight", of(w.as_tensor())?));
                if let Some(b) = b {
                    more.push(("linear_bias", of(b.as_tensor())?));
                }
            }
            Some(of(xt)?)
        }
        None => None,
    };
    Ok(Outcome::Done { output, shape: out.dims().to_vec(), grad, more })
}

fn run_case(op: &str, v: &Value) -> Outcome {
    run(op, v).unwrap_or_else(Outcome::Error)
}

fn main() -> std::process::ExitCode {
    golden::run_all(run_case)
}
