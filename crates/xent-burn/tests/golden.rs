//! The golden runner through burn: every case of every `*.json` file in `tests/golden/` (or in
//! `XENT_GOLDEN_DIR`), the loss from xent-burn's forward on `Device::flex().autodiff()` and the
//! gradient from burn's `backward()`, checked with the tolerances of `tests/golden/README.md`,
//! on 1 and 4 threads. Prints `OP: N passed, M failed` per file; an op xent-burn does not have
//! is reported as skipped, with why.

#[path = "../../xent/tests/common/golden.rs"]
#[allow(dead_code)] // reason: the core runner's own dispatch is not used here
mod golden;

use burn_tensor::{DType, Device, Int, Tensor, TensorData};
use golden::{monai_weights, options, tensor, GTensor, Outcome};
use serde_json::Value;
use xent::*;
use xent_burn::Target;

fn floats<const D: usize>(t: &GTensor, dtype: DType, dev: &Device) -> Result<Tensor<D>, String> {
    if t.shape.len() != D {
        return Err(format!("rank {} where {D} was expected", t.shape.len()));
    }
    Ok(Tensor::<D>::from_data(TensorData::new(t.data.clone(), t.shape.clone()), (dev, dtype)))
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().convert::<f64>().try_to_vec::<f64>().expect("converted to f64")
}

fn weight_tensor(t: Option<GTensor>) -> xent::Result<Option<WeightTensor<f64>>> {
    t.map(|t| WeightTensor::new(t.data, t.shape)).transpose()
}

/// The case's target, flattened: class indices or float targets of the scores' type.
fn target(t: &GTensor, dtype: DType, dev: &Device) -> Target {
    let n = t.shape.iter().product::<usize>();
    if t.dtype == "i64" {
        Target::Index(Tensor::<1, Int>::from_data(TensorData::new(t.ints.clone(), [n]), dev), t.shape.clone())
    } else {
        Target::Float(Tensor::<1>::from_data(TensorData::new(t.data.clone(), [n]), (dev, dtype)), t.shape.clone())
    }
}

/// The case through xent-burn with scores of rank `D`; `Err` for an error of the library.
fn run<const D: usize>(op: &str, v: &Value, dtype: DType) -> Result<Outcome, String> {
    let dev = Device::flex().autodiff();
    let err = |e: xent::Error| e.to_string();
    let input = |k: &str| v["inputs"].get(k).map(tensor);
    let x = floats::<D>(&input("input").ok_or("no input")?, dtype, &dev)?.require_grad();
    let t = || input("target").map(|t| target(&t, dtype, &dev)).ok_or("no target".to_string());
    let xt = x.clone();
    let out = match op {
        "softmax" | "log_softmax" => {
            let dim = v["options"].get("dim").and_then(Value::as_i64).unwrap_or(-1);
            let y = if op == "softmax" { xent_burn::softmax(xt, dim) } else { xent_burn::log_softmax(xt, dim) }
                .map_err(|e| e.to_string())?;
            let n = y.shape().num_elements();
            Ok(y.reshape([n]))
        }
        "cross_entropy" => {
            let weight = input("weight").map(|w| w.data);
            xent_burn::cross_entropy(xt, t()?, &CrossEntropyOptions { weight, ..options(op, v).map_err(err)? })
        }
        "nll_loss" => {
            let weight = input("weight").map(|w| w.data);
            xent_burn::nll_loss(xt, t()?, &NllOptions { weight, ..options(op, v).map_err(err)? })
        }
        "binary_cross_entropy" => {
            let weight = weight_tensor(input("weight")).map_err(err)?;
            xent_burn::binary_cross_entropy(xt, t()?, &BceOptions { weight, ..options(op, v).map_err(err)? })
        }
        "binary_cross_entropy_with_logits" => {
            let weight = weight_tensor(input("weight")).map_err(err)?;
            let pos_weight = weight_tensor(input("pos_weight")).map_err(err)?;
            let o = BceWithLogitsOptions { weight, pos_weight, ..options(op, v).map_err(err)? };
            xent_burn::binary_cross_entropy_with_logits(xt, t()?, &o)
        }
        "sigmoid_focal_loss" => xent_burn::sigmoid_focal_loss(xt, t()?, &options(op, v).map_err(err)?),
        "dice_loss" => xent_burn::dice_loss(xt, t()?, &monai_weights(options(op, v).map_err(err)?)),
        "generalized_dice_loss" => xent_burn::generalized_dice_loss(xt, t()?, &options(op, v).map_err(err)?),
        "tversky_loss" => xent_burn::tversky_loss(xt, t()?, &options(op, v).map_err(err)?),
        "focal_loss" => xent_burn::focal_loss(xt, t()?, &options(op, v).map_err(err)?),
        "dice_focal_loss" => xent_burn::dice_focal(xt, t()?, &options(op, v).map_err(err)?),
        "dice_ce_loss" => xent_burn::dice_ce(xt, t()?, &options(op, v).map_err(err)?),
        _ => unreachable!("filtered by run_case"),
    }
    .map_err(|e| e.to_string())?;
    let shape = if op.ends_with("softmax") { x.dims().to_vec() } else { golden_shape(v, &out) };
    let output = values(out.clone());
    let grad = match v.get("grad_output") {
        Some(go) => {
            let go = tensor(go);
            let n = go.data.len();
            let go = Tensor::<1>::from_data(TensorData::new(go.data, [n]), (&dev, out.dtype()));
            let grads = (out * go).sum().backward();
            Some(match x.grad(&grads) {
                Some(g) => values(g),
                None => vec![0.0; x.shape().num_elements()],
            })
        }
        None => None,
    };
    Ok(Outcome::Done { output, shape, grad, more: vec![] })
}

/// The loss's shape as PyTorch gives it: `[]` when reduced (xent-burn's `[1]`), the target's
/// shape for `Reduction::None` (xent-burn's flat losses).
fn golden_shape(v: &Value, out: &Tensor<1>) -> Vec<usize> {
    match v.get("output").and_then(|e| e.get("shape")).and_then(Value::as_array) {
        Some(s)
            if s.iter().map(|d| d.as_u64().unwrap_or(0) as usize).product::<usize>() == out.shape().num_elements() =>
        {
            s.iter().map(|d| d.as_u64().unwrap_or(0) as usize).collect()
        }
        _ => out.dims().to_vec(),
    }
}

fn run_case(op: &str, v: &Value) -> Outcome {
    if op == "class_weights" {
        return Outcome::Skip("class weights are not a burn op (xent::weights computes them)");
    }
    let dtype = match v["dtype"].as_str().unwrap_or("f64") {
        "f32" => DType::F32,
        "f64" => DType::F64,
        "bf16" => DType::BF16,
        "f16" => DType::F16,
        _ => return Outcome::Skip("a dtype this runner does not know"),
    };
    let rank = |k: &str| v["inputs"][k]["shape"].as_array().map_or(0, Vec::len);
    let r = match (op, rank("input"), rank("linear_weight")) {
        ("linear_cross_entropy", 1, k) => linear_ranks::<1>(v, dtype, k),
        ("linear_cross_entropy", 2, k) => linear_ranks::<2>(v, dtype, k),
        ("linear_cross_entropy", 3, k) => linear_ranks::<3>(v, dtype, k),
        (_, 1, _) => run::<1>(op, v, dtype),
        (_, 2, _) => run::<2>(op, v, dtype),
        (_, 3, _) => run::<3>(op, v, dtype),
        (_, 4, _) => run::<4>(op, v, dtype),
        (_, 5, _) => run::<5>(op, v, dtype),
        (_, 6, _) => run::<6>(op, v, dtype),
        _ => return Outcome::Skip("an input rank this runner does not build"),
    };
    r.unwrap_or_else(Outcome::Error)
}

fn linear_ranks<const D: usize>(v: &Value, dtype: DType, k: usize) -> Result<Outcome, String> {
    match k {
        1 => linear::<D, 1>(v, dtype),
        2 => linear::<D, 2>(v, dtype),
        3 => linear::<D, 3>(v, dtype),
        4 => linear::<D, 4>(v, dtype),
        _ => Ok(Outcome::Skip("a linear_weight rank this runner does not build")),
    }
}

/// A linear_cross_entropy case: input of rank `D`, linear_weight of rank `K`, the bias
/// flattened (xent-burn's form); the gradients of all three from `backward()`.
fn linear<const D: usize, const K: usize>(v: &Value, dtype: DType) -> Result<Outcome, String> {
    let dev = Device::flex().autodiff();
    let input = |k: &str| v["inputs"].get(k).map(tensor);
    let x = floats::<D>(&input("input").ok_or("no input")?, dtype, &dev)?.require_grad();
    let w = floats::<K>(&input("linear_weight").ok_or("no linear_weight")?, dtype, &dev)?.require_grad();
    let b = input("linear_bias")
        .map(|b| {
            let n = b.data.len();
            floats::<1>(&GTensor { shape: vec![n], ..b }, dtype, &dev).map(Tensor::require_grad)
        })
        .transpose()?;
    let t = target(&input("target").ok_or("no target")?, dtype, &dev);
    let weight = input("weight").map(|w| w.data);
    let o = LinearCrossEntropyOptions { weight, ..options("linear_cross_entropy", v).map_err(|e| e.to_string())? };
    let out = xent_burn::linear_cross_entropy(x.clone(), w.clone(), b.clone(), t, &o).map_err(|e| e.to_string())?;
    let shape = golden_shape(v, &out);
    let output = values(out.clone());
    let (mut grad, mut more) = (None, vec![]);
    if let Some(go) = v.get("grad_output") {
        let go = tensor(go);
        let n = go.data.len();
        let go = Tensor::<1>::from_data(TensorData::new(go.data, [n]), (&dev, out.dtype()));
        let grads = (out * go).sum().backward();
        fn of<const R: usize>(t: &Tensor<R>, grads: &burn_tensor::Gradients) -> Vec<f64> {
            t.grad(grads).map_or_else(|| vec![0.0; t.shape().num_elements()], values)
        }
        grad = Some(of(&x, &grads));
        more.push(("linear_weight", of(&w, &grads)));
        if let Some(b) = &b {
            more.push(("linear_bias", of(b, &grads)));
        }
    }
    Ok(Outcome::Done { output, shape, grad, more })
}

fn main() -> std::process::ExitCode {
    golden::run_all(run_case)
}
