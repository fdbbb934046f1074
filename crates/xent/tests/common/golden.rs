//! Reading golden files and running their cases against the library.

use serde_json::Value;
use std::path::Path;
use xent::*;

/// A tensor of a golden case, values widened to f64 (i64 data kept exactly too).
#[derive(Debug, Clone)]
pub struct GTensor {
    pub dtype: String,
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
    pub ints: Vec<i64>,
}

fn num(v: &Value) -> f64 {
    match v {
        Value::String(s) => match s.as_str() {
            "nan" => f64::NAN,
            "inf" => f64::INFINITY,
            "-inf" => f64::NEG_INFINITY,
            other => panic!("bad number {other:?}"),
        },
        v => v.as_f64().unwrap_or_else(|| panic!("bad number {v}")),
    }
}

pub fn tensor(v: &Value) -> GTensor {
    let dtype = v["dtype"].as_str().unwrap().to_string();
    let shape = v["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
    let raw = v["data"].as_array().unwrap();
    let ints = if dtype == "i64" { raw.iter().map(|d| d.as_i64().unwrap()).collect() } else { vec![] };
    let data = raw.iter().map(num).collect();
    GTensor { dtype, shape, data, ints }
}

/// What running a case gave.
#[derive(Debug)]
pub enum Outcome {
    /// The output, and the gradients: `grad` of `input`, `more` of other arguments by name
    /// (`linear_weight`, `linear_bias`).
    Done {
        output: Vec<f64>,
        shape: Vec<usize>,
        grad: Option<Vec<f64>>,
        more: Vec<(&'static str, Vec<f64>)>,
    },
    Error(String),
    Skip(&'static str),
}

/// Cases of one file, counted.
#[derive(Debug, Default)]
pub struct Tally {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub skip_reason: String,
}

impl Tally {
    pub fn add(&mut self, o: &Tally) {
        self.passed += o.passed;
        self.failed += o.failed;
        self.skipped += o.skipped;
    }
}

struct Case<'a> {
    op: &'a str,
    v: &'a Value,
}

/// A case's options as the library's option struct (its `serde` form: PyTorch's names, the
/// library's defaults for what is absent), after rewriting what MONAI names or defaults
/// differently: MONAI applies no activation unless asked (xent's default is softmax), its
/// `use_softmax` is xent's `activation`, and its `soft_label: true` is xent's float target.
pub fn options<O: serde::de::DeserializeOwned>(op: &str, v: &Value) -> xent::Result<O> {
    let mut m = v["options"].as_object().cloned().unwrap_or_default();
    match op {
        "dice_loss" | "generalized_dice_loss" | "tversky_loss" | "dice_focal_loss" | "dice_ce_loss" => {
            m.entry("activation").or_insert_with(|| "none".into());
            m.remove("soft_label");
        }
        "focal_loss" => {
            let softmax = m.remove("use_softmax").is_some_and(|v| v.as_bool().unwrap());
            m.insert("activation".into(), if softmax { "softmax" } else { "sigmoid" }.into());
        }
        _ => {}
    }
    serde_json::from_value(Value::Object(m)).map_err(|e| xent::Error::InvalidOption {
        name: "options",
        value: e.to_string(),
        reason: "not options of this loss",
    })
}

/// MONAI keeps a list of Dice weights as a float32 tensor (`torch.as_tensor`), so even its f64
/// cases use f32-rounded weights.
pub fn monai_weights<T: Float>(mut o: DiceOptions<T>) -> DiceOptions<T> {
    let f32 = |v: &T| T::from_f64(v.to_f64() as f32 as f64);
    if let Some(ClassWeight::PerClass(w)) = &o.weight {
        o.weight = Some(ClassWeight::PerClass(w.iter().map(f32).collect()));
    }
    o
}

impl Case<'_> {
    fn input(&self, k: &str) -> Option<GTensor> {
        self.v["inputs"].get(k).map(tensor)
    }
    fn opt(&self, k: &str) -> Option<&Value> {
        self.v["options"].get(k)
    }
    fn opt_i64(&self, k: &str, default: i64) -> i64 {
        self.opt(k).map_or(default, |v| v.as_i64().unwrap())
    }
    /// The case's options as the library's option struct (see [`options`]).
    fn options<O: serde::de::DeserializeOwned>(&self) -> xent::Result<O> {
        options(self.op, self.v)
    }
    fn grad_output(&self) -> Option<GTensor> {
        self.v.get("grad_output").map(tensor)
    }
}

fn cast<T: Float>(v: &[f64]) -> Vec<T> {
    v.iter().map(|&x| T::from_f64(x)).collect()
}

/// A gradient buffer full of NaN. A gradient is written over its buffer, never added to it
/// (`Backward`'s contract, which lets an adapter hand the kernels recycled memory): an element a
/// kernel failed to write stays NaN and fails the case.
fn stale<S: Element>(n: usize) -> Vec<S> {
    vec![S::narrow(<S::Math as Float>::NAN); n]
}

fn widen<T: Float>(v: &[T]) -> Vec<f64> {
    v.iter().map(|x| x.to_f64()).collect()
}

fn owned<T: Float>(t: &Option<GTensor>) -> xent::Result<Option<WeightTensor<T>>> {
    t.as_ref().map(|t| WeightTensor::new(cast(&t.data), t.shape.clone())).transpose()
}

/// Runs a loss's forward, and its fused backward when the case has a `grad_output`.
fn loss_outcome<T: Float, Y: Copy>(
    loss: &dyn Loss<T, Y>,
    input: View<'_, T>,
    target: View<'_, Y>,
    grad_output: Option<GTensor>,
) -> xent::Result<Outcome> {
    let out = loss.forward(input, target)?;
    let grad = match grad_output {
        Some(go) => {
            let mut g = stale::<T>(input.len());
            let again = loss.forward_backward(input, target, &cast(&go.data), &mut g)?;
            assert_eq!(
                widen(&again.loss).iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                widen(&out.loss).iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "forward_backward's loss differs from forward's"
            );
            Some(widen(&g))
        }
        None => None,
    };
    Ok(Outcome::Done { output: widen(&out.loss), shape: out.shape, grad, more: vec![] })
}

/// `linear_cross_entropy`: the loss, and with a `grad_output` the gradients of all three float
/// arguments.
fn linear_outcome<T: Float + serde::de::DeserializeOwned, Y: LinearTarget<T>>(
    c: &Case<'_>,
    target: View<'_, Y>,
) -> xent::Result<Outcome>
where
    CrossEntropyLoss<T>: Loss<T, Y>,
{
    let (x, w, b) = (c.input("input").unwrap(), c.input("linear_weight").unwrap(), c.input("linear_bias"));
    let (xv, wv) = (cast::<T>(&x.data), cast::<T>(&w.data));
    let bv = b.as_ref().map(|b| cast::<T>(&b.data));
    let linear = Linear {
        input: View::new(&xv, &x.shape)?,
        weight: View::new(&wv, &w.shape)?,
        bias: match (&b, &bv) {
            (Some(b), Some(bv)) => Some(View::new(bv, &b.shape)?),
            _ => None,
        },
    };
    let weight = c.input("weight").map(|w| cast::<T>(&w.data));
    let lce = LinearCrossEntropy::new(LinearCrossEntropyOptions { weight, ..c.options()? })?;
    let out = lce.forward(linear, target)?;
    let Some(go) = c.grad_output() else {
        return Ok(Outcome::Done { output: widen(&out.loss), shape: out.shape, grad: None, more: vec![] });
    };
    let (mut gx, mut gw) = (stale::<T>(xv.len()), stale::<T>(wv.len()));
    let mut gb = bv.as_ref().map(|b| stale::<T>(b.len()));
    let gov = cast::<T>(&go.data);
    let grads = LinearGrads { grad_output: &gov, input: &mut gx, weight: &mut gw, bias: gb.as_deref_mut() };
    let again = lce.evaluate(linear, target, Some(grads))?;
    assert_eq!(
        widen(&again.loss).iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        widen(&out.loss).iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        "the loss with gradients differs from the loss alone"
    );
    let mut more = vec![("linear_weight", widen(&gw))];
    more.extend(gb.map(|g| ("linear_bias", widen(&g))));
    Ok(Outcome::Done { output: widen(&out.loss), shape: out.shape, grad: Some(widen(&gx)), more })
}

fn run_typed<T>(op: &str, c: &Case<'_>) -> xent::Result<Outcome>
where
    T: Float + serde::de::DeserializeOwned,
    CrossEntropyLoss<T>: Loss<T, T>,
    DiceLoss<T>: Loss<T, T>,
    TverskyLoss<T>: Loss<T, T>,
    T: LinearTarget<T>,
{
    let x = c.input("input");
    match op {
        "softmax" | "log_softmax" => {
            let x = x.unwrap();
            let xv = cast::<T>(&x.data);
            let go = c.grad_output().map(|g| cast::<T>(&g.data));
            softmax_outcome(op, c, View::new(&xv, &x.shape)?, go.as_deref())
        }
        "nll_loss" | "cross_entropy" => {
            let x = x.unwrap();
            let t = c.input("target").unwrap();
            let xv = cast::<T>(&x.data);
            let input = View::new(&xv, &x.shape)?;
            let weight = c.input("weight").map(|w| cast::<T>(&w.data));
            if op == "nll_loss" {
                let loss = NllLoss::new(NllOptions { weight, ..c.options()? })?;
                let target = View::new(&t.ints, &t.shape)?;
                return loss_outcome(&loss, input, target, c.grad_output());
            }
            let loss = CrossEntropyLoss::new(CrossEntropyOptions { weight, ..c.options()? })?;
            if t.dtype == "i64" {
                let target = View::new(&t.ints, &t.shape)?;
                loss_outcome::<T, i64>(&loss, input, target, c.grad_output())
            } else {
                let tv = cast::<T>(&t.data);
                let target = View::new(&tv, &t.shape)?;
                loss_outcome(&loss, input, target, c.grad_output())
            }
        }
        "binary_cross_entropy" | "binary_cross_entropy_with_logits" | "sigmoid_focal_loss" => {
            let x = x.unwrap();
            let t = c.input("target").unwrap();
            let (xv, tv) = (cast::<T>(&x.data), cast::<T>(&t.data));
            let (input, target) = (View::new(&xv, &x.shape)?, View::new(&tv, &t.shape)?);
            let weight = owned::<T>(&c.input("weight"))?;
            match op {
                "binary_cross_entropy" => {
                    let loss = BceLoss::new(BceOptions { weight, ..c.options()? })?;
                    loss_outcome(&loss, input, target, c.grad_output())
                }
                "binary_cross_entropy_with_logits" => {
                    let pos_weight = owned::<T>(&c.input("pos_weight"))?;
                    let loss = BceWithLogitsLoss::new(BceWithLogitsOptions { weight, pos_weight, ..c.options()? })?;
                    loss_outcome(&loss, input, target, c.grad_output())
                }
                _ => {
                    let loss = SigmoidFocalLoss::new(c.options()?)?;
                    loss_outcome(&loss, input, target, c.grad_output())
                }
            }
        }
        "class_weights" => {
            use xent::weights::{AbsentClasses, ClassCounts, Scheme};
            let l = c.input("labels").unwrap();
            let counts = ClassCounts::from_images(
                View::new(&l.ints, &l.shape)?,
                c.opt_i64("num_classes", 0) as usize,
                Some(c.opt_i64("ignore_index", 255)),
            )?;
            let scheme = c.opt("scheme").and_then(|v| v.as_str()).unwrap().parse::<Scheme>()?;
            let scheme = scheme.with_parameters(c.opt("c").map(num), c.opt("beta").map(num))?;
            let w = counts.weights(scheme, AbsentClasses::Zero)?;
            Ok(Outcome::Done { shape: vec![w.len()], output: w, grad: None, more: vec![] })
        }
        "dice_loss" | "generalized_dice_loss" | "tversky_loss" | "dice_focal_loss" | "dice_ce_loss" => {
            let x = x.unwrap();
            let t = c.input("target").unwrap();
            let xv = cast::<T>(&x.data);
            let input = View::new(&xv, &x.shape)?;
            let go = c.grad_output();
            if t.dtype != "i64" {
                let tv = cast::<T>(&t.data);
                let target = View::new(&tv, &t.shape)?;
                return match op {
                    "dice_loss" => loss_outcome(&DiceLoss::new(monai_weights(c.options()?))?, input, target, go),
                    "tversky_loss" => loss_outcome(&TverskyLoss::new(c.options()?)?, input, target, go),
                    _ => Ok(Outcome::Skip("float targets for this op")),
                };
            }
            let target = View::new(&t.ints, &t.shape)?;
            match op {
                "dice_loss" => loss_outcome::<T, i64>(&DiceLoss::new(monai_weights(c.options()?))?, input, target, go),
                "generalized_dice_loss" => loss_outcome(&GeneralizedDiceLoss::new(c.options()?)?, input, target, go),
                "dice_focal_loss" => loss_outcome(&DiceFocalLoss::new(c.options()?)?, input, target, go),
                "dice_ce_loss" => loss_outcome(&DiceCeLoss::new(c.options()?)?, input, target, go),
                _ => loss_outcome::<T, i64>(&TverskyLoss::new(c.options()?)?, input, target, go),
            }
        }
        "focal_loss" => {
            let x = x.unwrap();
            let t = c.input("target").unwrap();
            let xv = cast::<T>(&x.data);
            let (input, target) = (View::new(&xv, &x.shape)?, View::new(&t.ints, &t.shape)?);
            let o: FocalOptions<T> = c.options()?;
            loss_outcome(&FocalLoss::new(o)?, input, target, c.grad_output())
        }
        "linear_cross_entropy" => {
            let t = c.input("target").unwrap();
            if t.dtype == "i64" {
                linear_outcome::<T, i64>(c, View::new(&t.ints, &t.shape)?)
            } else {
                let tv = cast::<T>(&t.data);
                linear_outcome::<T, T>(c, View::new(&tv, &t.shape)?)
            }
        }
        _ => Ok(Outcome::Skip("an op this runner does not know")),
    }
}

/// A half-precision case (`bf16` or `f16`): inputs stored in `H`, class weights and the
/// upstream gradient in `f32` (they hold `H` values exactly), the loss in `f32`, the input
/// gradient in `H`.
fn run_half<H: Element<Math = f32>>(op: &str, c: &Case<'_>) -> xent::Result<Outcome>
where
    CrossEntropyLoss<f32>: Loss<H, i64, f32> + Loss<H, H, f32>,
    NllLoss<f32>: Loss<H, i64, f32>,
    BceLoss<f32>: Loss<H, H, f32>,
    BceWithLogitsLoss<f32>: Loss<H, H, f32>,
    SigmoidFocalLoss<f32>: Loss<H, H, f32>,
{
    let half = |v: &[f64]| v.iter().map(|&x| H::narrow(x as f32)).collect::<Vec<H>>();
    let wide = |v: &[H]| v.iter().map(|x| f64::from(x.widen())).collect::<Vec<f64>>();
    let Some(x) = c.input("input") else { return Ok(Outcome::Skip("no input")) };
    let xv = half(&x.data);
    let input = View::new(&xv, &x.shape)?;
    let go = c.grad_output().map(|g| cast::<f32>(&g.data));
    let done = |out: LossOutput<f32>, grad: Option<Vec<H>>| Outcome::Done {
        output: widen(&out.loss),
        shape: out.shape,
        grad: grad.map(|g| wide(&g)),
        more: vec![],
    };
    match op {
        "softmax" | "log_softmax" => softmax_outcome(op, c, input, go.as_deref()),
        "nll_loss" | "cross_entropy" => {
            let t = c.input("target").unwrap();
            let weight = c.input("weight").map(|w| cast::<f32>(&w.data));
            let (out, grad) = if op == "nll_loss" {
                let loss = NllLoss::new(NllOptions { weight, ..c.options()? })?;
                half_loss(&loss, input, View::new(&t.ints, &t.shape)?, go.as_deref())?
            } else {
                let loss = CrossEntropyLoss::new(CrossEntropyOptions { weight, ..c.options()? })?;
                if t.dtype == "i64" {
                    half_loss::<H, i64>(&loss, input, View::new(&t.ints, &t.shape)?, go.as_deref())?
                } else {
                    let tv = half(&t.data);
                    half_loss::<H, H>(&loss, input, View::new(&tv, &t.shape)?, go.as_deref())?
                }
            };
            Ok(done(out, grad))
        }
        "binary_cross_entropy" | "binary_cross_entropy_with_logits" | "sigmoid_focal_loss" => {
            let t = c.input("target").unwrap();
            let tv = half(&t.data);
            let target = View::new(&tv, &t.shape)?;
            let weight = owned::<f32>(&c.input("weight"))?;
            let (out, grad) = match op {
                "binary_cross_entropy" => {
                    half_loss(&BceLoss::new(BceOptions { weight, ..c.options()? })?, input, target, go.as_deref())?
                }
                "binary_cross_entropy_with_logits" => {
                    let pos_weight = owned::<f32>(&c.input("pos_weight"))?;
                    let loss = BceWithLogitsLoss::new(BceWithLogitsOptions { weight, pos_weight, ..c.options()? })?;
                    half_loss(&loss, input, target, go.as_deref())?
                }
                _ => half_loss(&SigmoidFocalLoss::<f32>::new(c.options()?)?, input, target, go.as_deref())?,
            };
            Ok(done(out, grad))
        }
        "linear_cross_entropy" => {
            let t = c.input("target").unwrap();
            let (w, b) = (c.input("linear_weight").unwrap(), c.input("linear_bias"));
            let (wv, bv) = (half(&w.data), b.as_ref().map(|b| half(&b.data)));
            let linear = Linear {
                input,
                weight: View::new(&wv, &w.shape)?,
                bias: match (&b, &bv) {
                    (Some(b), Some(bv)) => Some(View::new(bv, &b.shape)?),
                    _ => None,
                },
            };
            let weight = c.input("weight").map(|w| cast::<f32>(&w.data));
            let lce = LinearCrossEntropy::new(LinearCrossEntropyOptions { weight, ..c.options()? })?;
            let tv = half(&t.data);
            let run = |g: Option<LinearGrads<'_, H, f32>>| {
                if t.dtype == "i64" {
                    lce.evaluate_half(linear, View::new(&t.ints, &t.shape)?, g)
                } else {
                    lce.evaluate_half_probabilities(linear, View::new(&tv, &t.shape)?, g)
                }
            };
            let out = run(None)?;
            let Some(go) = &go else { return Ok(done(out, None)) };
            let (mut gx, mut gw) = (stale::<H>(xv.len()), stale::<H>(wv.len()));
            let mut gb = bv.as_ref().map(|b| stale::<H>(b.len()));
            let grads = LinearGrads { grad_output: go, input: &mut gx, weight: &mut gw, bias: gb.as_deref_mut() };
            let again = run(Some(grads))?;
            assert_eq!(
                again.loss.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                out.loss.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "the loss with gradients differs from the loss alone"
            );
            let mut more = vec![("linear_weight", wide(&gw))];
            more.extend(gb.map(|g| ("linear_bias", wide(&g))));
            Ok(Outcome::Done { output: widen(&out.loss), shape: out.shape, grad: Some(wide(&gx)), more })
        }
        _ => Ok(Outcome::Skip("half precision is not built for this op yet (issue #16)")),
    }
}

/// Softmax or log-softmax (`op`) of `input` along the case's `dim`, and with `grad_output` its
/// backward from the output (in the maths type), the gradient in the input's type.
fn softmax_outcome<S: Element>(
    op: &str,
    c: &Case<'_>,
    input: View<'_, S>,
    grad_output: Option<&[S::Math]>,
) -> xent::Result<Outcome> {
    let dim = c.opt_i64("dim", -1);
    let log = op == "log_softmax";
    let y = if log { log_softmax(input, dim)? } else { softmax(input, dim)? };
    let grad = match grad_output {
        Some(g) => {
            let mut gi = stale::<S>(y.len());
            let (yv, gov) = (View::new(&y, input.shape())?, View::new(g, input.shape())?);
            if log {
                log_softmax_backward_into(yv, gov, dim, &mut gi)?
            } else {
                softmax_backward_into(yv, gov, dim, &mut gi)?
            };
            Some(gi.iter().map(|v| v.widen().to_f64()).collect())
        }
        None => None,
    };
    Ok(Outcome::Done { output: widen(&y), shape: input.shape().to_vec(), grad, more: vec![] })
}

/// A half-input loss's forward, and its fused backward with `grad_output`.
fn half_loss<H: Element<Math = f32>, Y: Copy>(
    loss: &dyn Loss<H, Y, f32>,
    input: View<'_, H>,
    target: View<'_, Y>,
    grad_output: Option<&[f32]>,
) -> xent::Result<(LossOutput<f32>, Option<Vec<H>>)> {
    let out = loss.forward(input, target)?;
    let Some(go) = grad_output else { return Ok((out, None)) };
    let mut g = stale::<H>(input.len());
    let again = loss.forward_backward(input, target, go, &mut g)?;
    assert_eq!(
        again.loss.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        out.loss.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        "forward_backward's loss differs from forward's"
    );
    Ok((out, Some(g)))
}

/// Runs one case in the given dtype; a library error becomes `Outcome::Error`.
pub fn run_case(op: &str, v: &Value) -> Outcome {
    let c = Case { op, v };
    let r = match v["dtype"].as_str().unwrap_or("f64") {
        "f32" => run_typed::<f32>(op, &c),
        "bf16" => run_half::<bf16>(op, &c),
        "f16" => run_half::<f16>(op, &c),
        _ => run_typed::<f64>(op, &c),
    };
    r.unwrap_or_else(|e| Outcome::Error(e.to_string()))
}

/// `|got - want| <= atol + rtol * |want|`, NaN only equal to NaN, infinities exactly.
pub fn close(got: f64, want: f64, f32: bool) -> bool {
    let (rtol, atol) = if f32 { (1e-5, 1e-6) } else { (1e-10, 1e-12) };
    if want.is_nan() || got.is_nan() {
        return want.is_nan() && got.is_nan();
    }
    if want.is_infinite() || got.is_infinite() {
        return got == want;
    }
    (got - want).abs() <= atol + rtol * want.abs()
}

/// Within one unit in the last place of the half type `dtype` (`bf16`, `f16`), after rounding
/// both to it; NaN only equal to NaN.
pub fn half_close(got: f64, want: f64, dtype: &str) -> bool {
    let bits = |v: f64| -> i32 {
        let b = if dtype == "bf16" { bf16::from_f64(v).to_bits() } else { f16::from_f64(v).to_bits() };
        if b & 0x8000 != 0 {
            -i32::from(b & 0x7fff)
        } else {
            i32::from(b)
        }
    };
    if want.is_nan() || got.is_nan() {
        return want.is_nan() && got.is_nan();
    }
    (bits(got) - bits(want)).abs() <= 1
}

fn compare(what: &str, got: &[f64], want: &GTensor, f32: bool) -> Result<(), String> {
    if got.len() != want.data.len() {
        return Err(format!("{what}: {} values, want {}", got.len(), want.data.len()));
    }
    for (i, (&g, &w)) in got.iter().zip(&want.data).enumerate() {
        let ok = match want.dtype.as_str() {
            "bf16" | "f16" => half_close(g, w, &want.dtype),
            _ => close(g, w, f32),
        };
        if !ok {
            return Err(format!("{what}[{i}] = {g:e}, want {w:e}"));
        }
    }
    Ok(())
}

/// Checks an outcome against the case; `Ok(false)` means skipped.
///
/// The tolerance is f32's when the case is computed in f32, or when its reference computed in
/// f32 whatever the case's dtype (an `output` stored as f32: MONAI's focal loss casts its input
/// with `.float()`, so its "f64" cases hold f32 results and f32-precision gradients).
pub fn check(v: &Value, got: &Outcome) -> Result<bool, String> {
    let f32 = v["dtype"].as_str() == Some("f32") || v["output"]["dtype"].as_str() == Some("f32");
    match (got, v.get("error")) {
        (Outcome::Skip(_), _) => Ok(false),
        (Outcome::Error(_), Some(_)) => Ok(true),
        (Outcome::Error(e), None) => Err(format!("unexpected error: {e}")),
        (Outcome::Done { .. }, Some(want)) => Err(format!("no error, want one like {want}")),
        (Outcome::Done { output, shape, grad, more }, None) => {
            let want = tensor(&v["output"]);
            if *shape != want.shape {
                return Err(format!("output shape {shape:?}, want {:?}", want.shape));
            }
            compare("output", output, &want, f32)?;
            if let Some(wg) = v.get("grad").and_then(|g| g.get("input")) {
                let g = grad.as_ref().ok_or("no gradient computed")?;
                compare("grad", g, &tensor(wg), f32)?;
            }
            for (name, want) in v.get("grad").and_then(|g| g.as_object()).into_iter().flatten() {
                if name != "input" {
                    let got = more.iter().find(|(n, _)| n == name).ok_or(format!("no gradient of {name} computed"))?;
                    compare(&format!("grad of {name}"), &got.1, &tensor(want), f32)?;
                }
            }
            Ok(true)
        }
    }
}

fn bits(o: &Outcome) -> Vec<u64> {
    match o {
        Outcome::Done { output, grad, more, .. } => output
            .iter()
            .chain(grad.iter().flatten())
            .chain(more.iter().flat_map(|(_, g)| g))
            .map(|v| v.to_bits())
            .collect(),
        _ => vec![],
    }
}

/// Runs every case of a golden file through `run_case` on 1 and on 4 threads; returns the op,
/// the tally and the failure messages.
pub fn run_file(path: &Path, run_case: impl Fn(&str, &Value) -> Outcome + Sync) -> (String, Tally, Vec<String>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let op = doc["op"].as_str().unwrap().to_string();
    let pools: Vec<_> =
        [1, 4].iter().map(|&n| rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap()).collect();
    let mut tally = Tally::default();
    let mut failures = Vec::new();
    // `XENT_GOLDEN_BITS=FILE`: one line per case with a digest of the bits computed, so that two
    // builds can be compared bit for bit (`diff` the files).
    let mut digests = String::new();
    for case in doc["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap_or("?");
        let outcomes: Vec<Outcome> = pools.iter().map(|p| p.install(|| run_case(&op, case))).collect();
        let h = bits(&outcomes[0]).iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b).wrapping_mul(0x100_0000_01b3));
        digests.push_str(&format!("{op} {name} {h:016x}\n"));
        let verdict = check(case, &outcomes[0]).and_then(|ran| {
            if bits(&outcomes[0]) != bits(&outcomes[1]) {
                return Err("1 and 4 threads differ".to_string());
            }
            check(case, &outcomes[1]).map(|_| ran)
        });
        match verdict {
            Ok(true) => tally.passed += 1,
            Ok(false) => {
                tally.skipped += 1;
                if let Outcome::Skip(why) = outcomes[0] {
                    tally.skip_reason = why.to_string();
                }
            }
            Err(msg) => {
                tally.failed += 1;
                failures.push(format!("{op} {name}: {msg}"));
            }
        }
    }
    if let Some(f) = std::env::var_os("XENT_GOLDEN_BITS") {
        use std::io::Write as _;
        let mut f =
            std::fs::OpenOptions::new().create(true).append(true).open(f).expect("XENT_GOLDEN_BITS: cannot open");
        f.write_all(digests.as_bytes()).expect("XENT_GOLDEN_BITS: cannot write");
    }
    (op, tally, failures)
}

/// Runs every case of every `*.json` file in `tests/golden/` (or in `XENT_GOLDEN_DIR`) through
/// `run_case`, prints `OP: N passed, M failed` per file (and what was skipped, with why), and
/// fails on any failure.
pub fn run_all(run_case: impl Fn(&str, &Value) -> Outcome + Copy + Sync) -> std::process::ExitCode {
    use std::path::PathBuf;
    let dir = std::env::var_os("XENT_GOLDEN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden"));
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read golden folder {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *.json golden files in {}", dir.display());
    let mut total = Tally::default();
    let mut problems = Vec::new();
    for f in &files {
        let (op, tally, failures) = run_file(f, run_case);
        let skipped = if tally.skipped > 0 {
            format!(", {} skipped ({})", tally.skipped, tally.skip_reason)
        } else {
            String::new()
        };
        println!("{op}: {} passed, {} failed{skipped}", tally.passed, tally.failed);
        for msg in failures.iter().take(20) {
            println!("  FAIL {msg}");
        }
        problems.extend(failures);
        total.add(&tally);
    }
    println!("golden: {} passed, {} failed, {} skipped", total.passed, total.failed, total.skipped);
    if problems.is_empty() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
