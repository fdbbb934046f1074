//! End-to-end tests of `xent loss`: golden cases through `.npy` and `.safetensors` files,
//! streaming that gives the in-memory result bit for bit, and bad input.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;

fn golden_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden")
}

fn num(v: &Value) -> f64 {
    match v.as_str() {
        Some("nan") => f64::NAN,
        Some("inf") => f64::INFINITY,
        Some("-inf") => f64::NEG_INFINITY,
        _ => v.as_f64().unwrap(),
    }
}

struct T {
    dtype: String,
    shape: Vec<usize>,
    data: Vec<f64>,
    ints: Vec<i64>,
}

fn tensor(v: &Value) -> T {
    let dtype = v["dtype"].as_str().unwrap().to_string();
    let shape = v["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
    let raw = v["data"].as_array().unwrap();
    let ints = if dtype == "i64" { raw.iter().map(|d| d.as_i64().unwrap()).collect() } else { vec![] };
    T { dtype, shape, data: raw.iter().map(num).collect(), ints }
}

fn bytes(t: &T) -> (&'static str, &'static str, Vec<u8>) {
    match t.dtype.as_str() {
        "f32" => ("<f4", "F32", f32_bytes(&t.data)),
        "f64" => ("<f8", "F64", f64_bytes(&t.data)),
        "f16" => ("<f2", "F16", t.data.iter().flat_map(|&v| xent::f16::from_f64(v).to_le_bytes()).collect()),
        "bf16" => ("", "BF16", t.data.iter().flat_map(|&v| xent::bf16::from_f64(v).to_le_bytes()).collect()),
        _ => ("<i8", "I64", i64_bytes(&t.ints)),
    }
}

/// `t` as `name.npy`, or as a one-tensor `name.safetensors` for bf16 (NumPy has no bf16).
fn save(dir: &Path, name: &str, t: &T) -> String {
    let (descr, st, b) = bytes(t);
    if descr.is_empty() {
        let p = dir.join(format!("{name}.safetensors"));
        safetensors(&p, &[("t", st, t.shape.clone(), b)]);
        return p.to_str().unwrap().to_string();
    }
    let p = dir.join(format!("{name}.npy"));
    npy(&p, descr, &t.shape, &b);
    p.to_str().unwrap().to_string()
}

/// Runs every reduced golden case of the streamed losses through the binary, f32 and f64 and the
/// bf16 / f16 files; half of them from `.npy` files (bf16: one-tensor `.safetensors`), half from
/// one `.safetensors` file.
#[test]
fn golden_cases_through_files_give_the_golden_loss() {
    let mut ran = 0;
    for (file, loss) in [
        ("cross_entropy.json", "cross-entropy"),
        ("nll_loss.json", "nll"),
        ("binary_cross_entropy.json", "bce"),
        ("binary_cross_entropy_with_logits.json", "bce-with-logits"),
        ("sigmoid_focal_loss.json", "sigmoid-focal"),
        ("bf16_cross_entropy.json", "cross-entropy"),
        ("f16_cross_entropy.json", "cross-entropy"),
        ("bf16_nll_loss.json", "nll"),
        ("f16_nll_loss.json", "nll"),
        ("bf16_binary_cross_entropy.json", "bce"),
        ("f16_binary_cross_entropy.json", "bce"),
        ("bf16_binary_cross_entropy_with_logits.json", "bce-with-logits"),
        ("f16_binary_cross_entropy_with_logits.json", "bce-with-logits"),
        ("bf16_sigmoid_focal_loss.json", "sigmoid-focal"),
        ("f16_sigmoid_focal_loss.json", "sigmoid-focal"),
    ] {
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(golden_dir().join(file)).unwrap()).unwrap();
        for (i, case) in doc["cases"].as_array().unwrap().iter().enumerate() {
            let red =
                case["options"]["reduction"].as_str().unwrap_or(if loss == "sigmoid-focal" { "none" } else { "mean" });
            if case.get("error").is_some() || red == "none" {
                continue;
            }
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path();
            let (x, t) = (tensor(&case["inputs"]["input"]), tensor(&case["inputs"]["target"]));
            let (xs, ts) = if i % 2 == 0 {
                (save(d, "x", &x), save(d, "t", &t))
            } else {
                let st = d.join("arrays.safetensors");
                let ((_, xd, xb), (_, td, tb)) = (bytes(&x), bytes(&t));
                safetensors(&st, &[("input", xd, x.shape.clone(), xb), ("target", td, t.shape.clone(), tb)]);
                let s = st.to_str().unwrap();
                (format!("{s}:input"), format!("{s}:target"))
            };
            let mut args: Vec<String> =
                ["loss", "--loss", loss, "--input", &xs, "--target", &ts, "--format", "json", "--reduction", red]
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
            let o = &case["options"];
            if let Some(ii) = o.get("ignore_index") {
                args.extend(["--ignore-index".into(), ii.to_string()]);
            }
            if let Some(ls) = o.get("label_smoothing") {
                args.extend(["--label-smoothing".into(), num(ls).to_string()]);
            }
            for (k, flag) in [("alpha", "--alpha"), ("gamma", "--gamma")] {
                if let Some(v) = o.get(k) {
                    args.extend([flag.into(), num(v).to_string()]);
                }
            }
            for (k, flag) in [("weight", "--weight"), ("pos_weight", "--pos-weight")] {
                if let Some(w) = case["inputs"].get(k) {
                    let w = tensor(w);
                    let spec = if loss == "cross-entropy" || loss == "nll" {
                        w.data.iter().map(|v| format!("{v:?}")).collect::<Vec<_>>().join(",")
                    } else {
                        save(d, k, &w)
                    };
                    args.extend([flag.into(), spec]);
                }
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = xent(&args);
            assert!(out.status.success(), "{file} {}: {}", case["name"], String::from_utf8_lossy(&out.stderr));
            let v = json(&out);
            let want = num(&case["output"]["data"][0]);
            let got = v["loss"].as_f64().unwrap_or(f64::NAN);
            let (rtol, atol) = if x.dtype == "f64" { (1e-10, 1e-12) } else { (1e-5, 1e-6) };
            let ok = (want.is_nan() && got.is_nan()) || (got - want).abs() <= atol + rtol * want.abs();
            assert!(ok, "{} {}: {got} vs golden {want}", file, case["name"]);
            ran += 1;
        }
    }
    assert!(ran > 300, "only {ran} cases ran");
}

/// bf16 and f16 inputs, streamed in chunks: the loss and the gradient file (in the input's
/// type: `.safetensors` for bf16, `<f2` `.npy` for f16) are the core's half path, bit for bit; a
/// bf16 gradient cannot be an `.npy`.
#[test]
fn half_inputs_stream_to_the_cores_half_result() {
    use xent::*;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (shape, tshape) = ([64usize, 5, 48, 48], [64usize, 48, 48]);
    let n: usize = shape.iter().product();
    let x: Vec<f64> = labels(3, n, 40).into_iter().map(|v| (v % 89) as f64 / 7.0 - 6.0).collect();
    let t: Vec<i64> = labels(4, n / 5, 3).into_iter().map(|v| if v == 255 { 255 } else { v as i64 % 5 }).collect();
    npy(&d.join("t.npy"), "<i8", &tshape, &i64_bytes(&t));
    let ce = CrossEntropyLoss::<f32>::new(CrossEntropyOptions {
        weight: Some(vec![0.5, 1.0, 2.0, 1.5, 0.7]),
        ignore_index: 255,
        label_smoothing: 0.05,
        ..Default::default()
    })
    .unwrap();
    let tv = View::new(&t, &tshape).unwrap();
    let run = |input: &str, grad: &str| {
        let g = d.join(grad);
        let v = json(&xent(&[
            "loss",
            "--loss",
            "cross-entropy",
            "--input",
            input,
            "--target",
            d.join("t.npy").to_str().unwrap(),
            "--weight",
            "0.5,1,2,1.5,0.7",
            "--ignore-index",
            "255",
            "--label-smoothing",
            "0.05",
            "--chunk-mb",
            "1",
            "--format",
            "json",
            "--grad-out",
            g.to_str().unwrap(),
        ]));
        assert!(v["chunks"].as_u64().unwrap() >= 2, "{v}");
        (v, std::fs::read(g).unwrap())
    };
    // bf16 from a safetensors file, its gradient to one.
    let xb: Vec<bf16> = x.iter().map(|&v| bf16::from_f64(v)).collect();
    let st = d.join("x.safetensors");
    safetensors(&st, &[("logits", "BF16", shape.to_vec(), xb.iter().flat_map(|v| v.to_le_bytes()).collect())]);
    let (v, file) = run(&format!("{}:logits", st.display()), "g.safetensors");
    let mut want = vec![bf16::ZERO; n];
    let out = ce.forward_backward(View::new(&xb, &shape).unwrap(), tv, &[1.0], &mut want).unwrap();
    assert_eq!(v["loss"].as_f64().unwrap(), out.scalar().unwrap() as f64);
    assert_eq!(v["dtype"], "bfloat16");
    let hl = u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&file[8..8 + hl]).unwrap();
    assert_eq!(header["grad"]["dtype"], "BF16");
    assert_eq!(header["grad"]["shape"], serde_json::json!(shape));
    let got: Vec<u8> = file[8 + hl..].to_vec();
    assert_eq!(got, want.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>());
    // f16 from a `<f2` .npy, its gradient to one.
    let xh: Vec<f16> = x.iter().map(|&v| f16::from_f64(v)).collect();
    npy(&d.join("x.npy"), "<f2", &shape, &xh.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>());
    let (v, file) = run(d.join("x.npy").to_str().unwrap(), "g.npy");
    let mut want = vec![f16::ZERO; n];
    let out = ce.forward_backward(View::new(&xh, &shape).unwrap(), tv, &[1.0], &mut want).unwrap();
    assert_eq!(v["loss"].as_f64().unwrap(), out.scalar().unwrap() as f64);
    let hl = u16::from_le_bytes([file[8], file[9]]) as usize;
    assert!(String::from_utf8_lossy(&file[10..10 + hl]).contains("'<f2'"));
    assert_eq!(file[10 + hl..].to_vec(), want.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>());
    // A bf16 gradient into .npy: a one-line error, no file.
    let out = xent(&[
        "loss",
        "--loss",
        "cross-entropy",
        "--input",
        &format!("{}:logits", st.display()),
        "--target",
        d.join("t.npy").to_str().unwrap(),
        "--ignore-index",
        "255",
        "--grad-out",
        d.join("bad.npy").to_str().unwrap(),
    ]);
    assert_fails(&out, "bfloat16 gradient needs a .safetensors file");
    assert!(!d.join("bad.npy").exists());
}

/// The MONAI losses through the binary, on the golden cases whose options `xent loss` has flags
/// for: soft labels (`--soft-label`), MONAI's `ignore_index`, Dice+focal and Dice+CE.
#[test]
fn monai_golden_cases_through_files_give_the_golden_loss() {
    let mut ran = 0;
    for (file, loss) in [
        ("dice_loss_soft_label.json", "dice"),
        ("tversky_loss_soft_label.json", "tversky"),
        ("dice_loss_ignore_index.json", "dice"),
        ("focal_loss_ignore_index.json", "focal"),
        ("dice_focal_loss.json", "dice-focal"),
        ("dice_ce_loss.json", "dice-ce"),
    ] {
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(golden_dir().join(file)).unwrap()).unwrap();
        for case in doc["cases"].as_array().unwrap() {
            let o = case["options"].as_object().unwrap();
            let red = o.get("reduction").and_then(Value::as_str).unwrap_or("mean");
            let flagged = |k: &str| o.get(k).is_some_and(|v| v.as_bool() == Some(true));
            let plain = !flagged("squared_pred") && !flagged("jaccard") && !o.contains_key("smooth_nr");
            let scalar_alpha = o.get("alpha").is_none_or(Value::is_number);
            if case.get("error").is_some() || red == "none" || !plain || !scalar_alpha {
                continue;
            }
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path();
            let (x, t) = (tensor(&case["inputs"]["input"]), tensor(&case["inputs"]["target"]));
            let (xs, ts) = (save(d, "x", &x), save(d, "t", &t));
            let mut args: Vec<String> =
                ["loss", "--loss", loss, "--input", &xs, "--target", &ts, "--format", "json", "--reduction", red]
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
            let act = match (o.get("activation"), o.get("use_softmax")) {
                (Some(a), _) => a.as_str().unwrap(),
                (None, Some(s)) if s.as_bool() == Some(true) => "softmax",
                (None, Some(_)) => "sigmoid",
                (None, None) if loss == "focal" => "sigmoid",
                (None, None) => "none", // MONAI's default: no activation
            };
            args.extend(["--activation".into(), act.into()]);
            for (k, v) in o {
                let arg = match k.as_str() {
                    "soft_label" => vec!["--soft-label".to_string()],
                    "include_background" if v.as_bool() == Some(false) => vec!["--no-background".into()],
                    "batch" if v.as_bool() == Some(true) => vec!["--batch".into()],
                    "weight" => {
                        let w = match v.as_array() {
                            Some(w) => w.iter().map(|v| format!("{:?}", num(v))).collect::<Vec<_>>().join(","),
                            None => format!("{:?}", num(v)),
                        };
                        vec!["--weight".into(), w]
                    }
                    "ignore_index" | "alpha" | "beta" | "gamma" | "lambda_dice" | "lambda_ce" | "lambda_focal"
                    | "label_smoothing" => {
                        vec![format!("--{}", k.replace('_', "-")), num(v).to_string()]
                    }
                    _ => vec![],
                };
                args.extend(arg);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = xent(&args);
            assert!(out.status.success(), "{file} {}: {}", case["name"], String::from_utf8_lossy(&out.stderr));
            let want = num(&case["output"]["data"][0]);
            let got = json(&out)["loss"].as_f64().unwrap_or(f64::NAN);
            let f32 = x.dtype == "f32" || case["output"]["dtype"] == "f32";
            let (rtol, atol) = if f32 { (1e-5, 1e-6) } else { (1e-10, 1e-12) };
            let ok = (want.is_nan() && got.is_nan()) || (got - want).abs() <= atol + rtol * want.abs();
            assert!(ok, "{} {}: {got} vs golden {want} ({args:?})", file, case["name"]);
            ran += 1;
        }
    }
    assert!(ran > 100, "only {ran} cases ran");
}

/// The library's own result, in memory, for comparison.
fn in_memory_ce(x: &[f32], shape: &[usize], t: &[i64], tshape: &[usize]) -> (f32, Vec<f32>) {
    use xent::*;
    let ce = CrossEntropyLoss::new(CrossEntropyOptions {
        weight: Some(vec![0.5, 1.0, 2.0, 1.5, 0.7, 1.0, 1.1]),
        ignore_index: 255,
        label_smoothing: 0.1,
        ..Default::default()
    })
    .unwrap();
    let mut g = vec![0.0f32; x.len()];
    let out = ce.forward_backward(View::new(x, shape).unwrap(), View::new(t, tshape).unwrap(), &[1.0], &mut g).unwrap();
    (out.scalar().unwrap(), g)
}

fn read_f32_npy(p: &Path) -> Vec<f32> {
    let b = std::fs::read(p).unwrap();
    let hl = u16::from_le_bytes([b[8], b[9]]) as usize;
    b[10 + hl..].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
}

#[test]
fn streaming_in_chunks_gives_the_in_memory_result_bit_for_bit() {
    for (shape, tshape) in [(vec![24usize, 7, 48, 64], vec![24usize, 48, 64]), (vec![40000, 7], vec![40000])] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let n: usize = shape.iter().product();
        let x: Vec<f64> = labels(7, n, 40).into_iter().map(|v| (v % 97) as f64 / 9.0 - 5.0).collect();
        let t: Vec<i64> = labels(8, n / 7, 3).into_iter().map(|v| if v == 255 { 255 } else { v as i64 % 7 }).collect();
        npy(&d.join("x.npy"), "<f4", &shape, &f32_bytes(&x));
        npy(&d.join("t.npy"), "<i8", &tshape, &i64_bytes(&t));
        let run = |chunk: &str, grad: &str| {
            let g = d.join(grad);
            let v = json(&xent(&[
                "loss",
                "--loss",
                "cross-entropy",
                "--input",
                d.join("x.npy").to_str().unwrap(),
                "--target",
                d.join("t.npy").to_str().unwrap(),
                "--weight",
                "0.5,1,2,1.5,0.7,1,1.1",
                "--ignore-index",
                "255",
                "--label-smoothing",
                "0.1",
                "--chunk-mb",
                chunk,
                "--format",
                "json",
                "--grad-out",
                g.to_str().unwrap(),
            ]));
            (v, read_f32_npy(&g))
        };
        let (small, g_small) = run("1", "g1.npy");
        let (whole, g_whole) = run("4096", "g2.npy");
        assert!(small["chunks"].as_u64().unwrap() >= 2, "{small}");
        assert_eq!(whole["chunks"], 1);
        assert_eq!(small["loss"], whole["loss"]);
        assert_eq!(small["sum"], whole["sum"]);
        assert_eq!(g_small, g_whole);
        let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let (want, g_want) = in_memory_ce(&x32, &shape, &t, &tshape);
        assert_eq!(small["loss"].as_f64().unwrap(), want as f64, "{shape:?}");
        assert_eq!(g_small, g_want);
    }
}

#[test]
fn streaming_binary_losses_matches_one_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let shape = [256usize, 1, 64, 64];
    let n: usize = shape.iter().product();
    let x: Vec<f64> = labels(9, n, 40).into_iter().map(|v| (v % 101) as f64 / 7.0 - 7.0).collect();
    let y: Vec<f64> = labels(10, n, 2).into_iter().map(|v| (v == 1) as u8 as f64).collect();
    npy(&d.join("x.npy"), "<f4", &shape, &f32_bytes(&x));
    npy(&d.join("y.npy"), "<f4", &shape, &f32_bytes(&y));
    let run = |chunk: &str| {
        json(&xent(&[
            "loss",
            "--loss",
            "bce-with-logits",
            "--input",
            d.join("x.npy").to_str().unwrap(),
            "--target",
            d.join("y.npy").to_str().unwrap(),
            "--pos-weight",
            "32.3",
            "--chunk-mb",
            chunk,
            "--format",
            "json",
        ]))
    };
    let (a, b) = (run("1"), run("1024"));
    assert!(a["chunks"].as_u64().unwrap() > 2);
    assert_eq!(a["loss"], b["loss"]);
}

#[test]
fn bad_input_is_a_one_line_error_and_leaves_no_gradient_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    npy(&d.join("x.npy"), "<f4", &[2, 3], &f32_bytes(&[0.0; 6]));
    npy(&d.join("t.npy"), "<i8", &[2], &i64_bytes(&[0, 2]));
    npy(&d.join("t3.npy"), "<i8", &[3], &i64_bytes(&[0, 2, 1]));
    npy(&d.join("oob.npy"), "<i8", &[2], &i64_bytes(&[0, 5]));
    npy(&d.join("xi.npy"), "<i8", &[2, 3], &i64_bytes(&[0; 6]));
    let full = std::fs::read(d.join("x.npy")).unwrap();
    std::fs::write(d.join("cut.npy"), &full[..full.len() - 3]).unwrap();
    std::fs::write(d.join("junk.npy"), b"junk").unwrap();
    safetensors(&d.join("a.safetensors"), &[("logits", "F32", vec![2, 3], f32_bytes(&[0.0; 6]))]);
    let s = |p: &str| d.join(p).to_str().unwrap().to_string();
    let g = s("g.npy");
    let ce = |x: &str, t: &str, extra: &[&str]| {
        let mut a = vec!["loss", "--loss", "cross-entropy", "--input", x, "--target", t, "--grad-out", &g];
        a.extend_from_slice(extra);
        xent(&a)
    };
    let cases: Vec<(std::process::Output, &str)> = vec![
        (ce(&s("x.npy"), &s("t3.npy"), &[]), "target shape [3]"),
        (ce(&s("x.npy"), &s("oob.npy"), &[]), "value 5"),
        (ce(&s("xi.npy"), &s("t.npy"), &[]), "must be a float type"),
        (ce(&s("cut.npy"), &s("t.npy"), &[]), "truncated"),
        (ce(&s("junk.npy"), &s("t.npy"), &[]), "junk.npy"),
        (ce(&format!("{}:nope", s("a.safetensors")), &s("t.npy"), &[]), "no tensor named \"nope\""),
        (ce(&s("x.npy"), &s("t.npy"), &["--weight", "1,2"]), "weight"),
        (ce(&s("x.npy"), &s("t.npy"), &["--weight", "1,x,2"]), "comma-separated"),
        (ce(&s("x.npy"), &s("t.npy"), &["--reduction", "none"]), "possible values: mean, sum"),
    ];
    for (out, needle) in cases {
        assert_fails(&out, needle);
        assert!(!Path::new(&g).exists(), "no gradient file after an error");
    }
    let leftovers: Vec<_> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(leftovers.iter().all(|n| !n.to_string_lossy().contains(".tmp-")), "{leftovers:?}");
    // The good call works, from the safetensors tensor too, and a NaN loss prints as null.
    let ok = json(&ce(&format!("{}:logits", s("a.safetensors")), &s("t.npy"), &["--format", "json"]));
    assert!((ok["loss"].as_f64().unwrap() - 3f64.ln()).abs() < 1e-6);
    npy(&d.join("ign.npy"), "<i8", &[2], &i64_bytes(&[-100, -100]));
    let nan = json(&ce(&s("x.npy"), &s("ign.npy"), &["--format", "json"]));
    assert!(nan["loss"].is_null());
}

/// The values of a little-endian f64 `.npy` file.
fn read_f64s(path: &std::path::Path) -> Vec<f64> {
    let b = std::fs::read(path).unwrap();
    let start = 10 + u16::from_le_bytes([b[8], b[9]]) as usize;
    b[start..].chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect()
}

#[test]
fn linear_cross_entropy_writes_the_three_gradients_the_library_computes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (n, dd, c) = (5usize, 3usize, 7usize);
    let x: Vec<f64> = (0..n * dd).map(|i| (i as f64 * 0.37).sin()).collect();
    let w: Vec<f64> = (0..c * dd).map(|i| (i as f64 * 0.91).cos()).collect();
    let b: Vec<f64> = (0..c).map(|i| 0.1 * i as f64).collect();
    let t = [3i64, -100, 0, 6, 2];
    npy(&d.join("x.npy"), "<f8", &[n, dd], &f64_bytes(&x));
    npy(&d.join("w.npy"), "<f8", &[c, dd], &f64_bytes(&w));
    npy(&d.join("b.npy"), "<f8", &[c], &f64_bytes(&b));
    npy(&d.join("t.npy"), "<i8", &[n], &i64_bytes(&t));
    let s = |p: &str| d.join(p).to_str().unwrap().to_string();
    let (sx, sw, sb, st, gx, gw, gb) =
        (s("x.npy"), s("w.npy"), s("b.npy"), s("t.npy"), s("gx.npy"), s("gw.npy"), s("gb.npy"));
    let base = ["loss", "--loss", "linear-cross-entropy", "--input", &sx, "--linear-weight", &sw, "--target", &st];
    let mut args = base.to_vec();
    args.extend([
        "--linear-bias",
        &sb,
        "--label-smoothing",
        "0.1",
        "--format",
        "json",
        "--grad-out",
        &gx,
        "--linear-weight-grad-out",
        &gw,
        "--linear-bias-grad-out",
        &gb,
    ]);
    let v = json(&xent(&args));
    let lce =
        xent::LinearCrossEntropy::new(xent::LinearCrossEntropyOptions { label_smoothing: 0.1, ..Default::default() })
            .unwrap();
    let (xs, ws, bs) = ([n, dd], [c, dd], [c]);
    let linear = xent::Linear {
        input: xent::View::new(&x, &xs).unwrap(),
        weight: xent::View::new(&w, &ws).unwrap(),
        bias: Some(xent::View::new(&b, &bs).unwrap()),
    };
    let (mut ex, mut ew, mut eb) = (vec![0.0; x.len()], vec![0.0; w.len()], vec![0.0; b.len()]);
    let grads = xent::LinearGrads { grad_output: &[1.0], input: &mut ex, weight: &mut ew, bias: Some(&mut eb) };
    let out = lce.evaluate(linear, xent::View::new(&t, &[n]).unwrap(), Some(grads)).unwrap();
    assert_eq!(v["loss"].as_f64().unwrap(), out.loss[0]);
    assert_eq!(read_f64s(&d.join("gx.npy")), ex);
    assert_eq!(read_f64s(&d.join("gw.npy")), ew);
    assert_eq!(read_f64s(&d.join("gb.npy")), eb);

    // Without a bias its gradient has no source; without --linear-weight there is no layer.
    let g2 = s("g2.npy");
    let mut args = base.to_vec();
    args.extend(["--grad-out", &g2, "--linear-bias-grad-out", &gb]);
    std::fs::remove_file(d.join("gb.npy")).unwrap();
    assert_fails(&xent(&args), "--linear-bias-grad-out needs --linear-bias");
    assert!(!d.join("g2.npy").exists() && !d.join("gb.npy").exists(), "a failed run left a gradient file");
    assert_fails(
        &xent(&["loss", "--loss", "linear-cross-entropy", "--input", &sx, "--target", &st]),
        "needs --linear-weight",
    );
    assert_fails(
        &xent(&["loss", "--loss", "cross-entropy", "--input", &sx, "--target", &st, "--linear-weight", &sw]),
        "--linear-weight does not apply",
    );
}
