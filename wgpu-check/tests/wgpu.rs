//! xent-burn's compositions of burn ops on burn's wgpu backend against xent's kernels on Flex,
//! in f32: loss and gradient within 1e-4 relative (plus 1e-6 absolute; GPU maths is not
//! bit-exact). Run from this folder with `cargo test`; on a machine without a GPU,
//! Mesa's lavapipe (Debian: `mesa-vulkan-drivers`) gives wgpu a Vulkan device on the CPU.

use burn_tensor::{DType, Device, DeviceKind, Int, Tensor, TensorData};
use xent::testing::Rng;
use xent::*;

type Loss<'a> = &'a dyn Fn(Tensor<4>, Tensor<3, Int>) -> xent_burn::Result<Tensor<1>>;

/// The loss and the gradient of `sum(loss * go)` of `f` on `device`.
fn run(device: &Device, x: &[f32], t: &[i64], f: Loss<'_>) -> (Vec<f64>, Vec<f64>) {
    let x = Tensor::<4>::from_data(TensorData::new(x.to_vec(), [2, 4, 3, 5]), (device, DType::F32)).require_grad();
    let t = Tensor::<3, Int>::from_data(TensorData::new(t.to_vec(), [2, 3, 5]), device);
    let out = f(x.clone(), t).unwrap();
    let n = out.shape().num_elements();
    let go: Vec<f32> = (0..n).map(|i| 0.5 + (i % 7) as f32 / 7.0).collect();
    let go = Tensor::<1>::from_data(TensorData::new(go, [n]), (device, DType::F32));
    let grads = (out.clone() * go).sum().backward();
    let v = |t: TensorData| t.convert::<f64>().try_to_vec::<f64>().unwrap();
    (v(out.into_data()), v(x.grad(&grads).unwrap().into_data()))
}

fn close(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!((a - b).abs() <= 1e-6 + 1e-4 * b.abs(), "{what}[{i}]: wgpu composed {a}, Flex kernels {b}");
    }
}

#[test]
fn compositions_on_wgpu_match_the_kernels_on_flex() {
    let gpu = Device::wgpu(DeviceKind::DefaultDevice).autodiff();
    let flex = Device::flex().autodiff();
    let mut rng = Rng::new(23);
    let x: Vec<f32> = (0..120).map(|_| rng.normal(2.0) as f32).collect();
    let t: Vec<i64> = (0..30).map(|i| if i % 7 == 0 { 255 } else { rng.below(4) as i64 }).collect();
    let w = vec![0.5, 2.0, 1.0, 1.5];
    let ce =
        CrossEntropyOptions { weight: Some(w.clone()), ignore_index: 255, label_smoothing: 0.1, ..Default::default() };
    let nll = NllOptions { weight: Some(w.clone()), ignore_index: 255, ..Default::default() };
    let dice = DiceOptions { ignore_index: Some(255), squared_pred: true, ..Default::default() };
    let tversky = TverskyOptions { ignore_index: Some(255), alpha: 0.3, beta: 0.7, ..Default::default() };
    let gdice = GeneralizedDiceOptions { ignore_index: Some(255), ..Default::default() };
    let focal = FocalOptions { ignore_index: Some(255), gamma: 2.0, ..Default::default() };
    let dice_ce = DiceCeOptions { ignore_index: Some(255), weight: Some(w.clone()), ..Default::default() };
    let dice_focal = DiceFocalOptions { ignore_index: Some(255), alpha: Some(0.25), ..Default::default() };
    let check = |name: &str, composed: Loss<'_>, kernels: Loss<'_>| {
        let (lc, gc) = run(&gpu, &x, &t, composed);
        let (lk, gk) = run(&flex, &x, &t, kernels);
        close(&format!("{name} loss"), &lc, &lk);
        close(&format!("{name} grad"), &gc, &gk);
        println!("{name}: wgpu composed = Flex kernels (loss {:.6})", lc[0]);
    };
    check("cross_entropy", &|x, t| xent_burn::cross_entropy_composed(x, t, &ce), &|x, t| {
        xent_burn::cross_entropy(x, t, &ce)
    });
    check("nll_loss", &|x, t| xent_burn::nll_loss_composed(x, t, &nll), &|x, t| xent_burn::nll_loss(x, t, &nll));
    check("dice_loss", &|x, t| xent_burn::dice_loss_composed(x, t, &dice), &|x, t| xent_burn::dice_loss(x, t, &dice));
    check("tversky_loss", &|x, t| xent_burn::tversky_loss_composed(x, t, &tversky), &|x, t| {
        xent_burn::tversky_loss(x, t, &tversky)
    });
    check("generalized_dice_loss", &|x, t| xent_burn::generalized_dice_loss_composed(x, t, &gdice), &|x, t| {
        xent_burn::generalized_dice_loss(x, t, &gdice)
    });
    check("focal_loss", &|x, t| xent_burn::focal_loss_composed(x, t, &focal), &|x, t| {
        xent_burn::focal_loss(x, t, &focal)
    });
    check("dice_ce", &|x, t| xent_burn::dice_ce_composed(x, t, &dice_ce), &|x, t| xent_burn::dice_ce(x, t, &dice_ce));
    check("dice_focal", &|x, t| xent_burn::dice_focal_composed(x, t, &dice_focal), &|x, t| {
        xent_burn::dice_focal(x, t, &dice_focal)
    });
    // The binary losses on the same scores, the targets one-hot probabilities.
    check("binary_cross_entropy_with_logits", &|x, t| bce_logits(x, t, true), &|x, t| bce_logits(x, t, false));
    check("sigmoid_focal_loss", &|x, t| sigmoid_focal(x, t, true), &|x, t| sigmoid_focal(x, t, false));
    check("binary_cross_entropy", &|x, t| bce(x, t, true), &|x, t| bce(x, t, false));
    check("linear_cross_entropy", &|x, t| linear(x, t, true), &|x, t| linear(x, t, false));
}

/// One-hot float targets of the labels (ignored positions all 0).
fn one_hot(t: Tensor<3, Int>, like: &Tensor<4>) -> Tensor<4> {
    let [n, h, w] = t.dims();
    let ids = Tensor::<1, Int>::arange(0..4, &like.device()).reshape([1, 4, 1, 1]).expand([n, 4, h, w]);
    t.reshape([n, 1, h, w]).expand([n, 4, h, w]).equal(ids).float().cast(like.dtype())
}

fn bce_logits(x: Tensor<4>, t: Tensor<3, Int>, composed: bool) -> xent_burn::Result<Tensor<1>> {
    let y = one_hot(t, &x);
    let o = BceWithLogitsOptions {
        pos_weight: Some(WeightTensor::new(vec![1.0, 2.0, 0.5, 3.0], vec![4, 1, 1]).unwrap()),
        ..Default::default()
    };
    if composed {
        xent_burn::binary_cross_entropy_with_logits_composed(x, y, &o)
    } else {
        xent_burn::binary_cross_entropy_with_logits(x, y, &o)
    }
}

fn sigmoid_focal(x: Tensor<4>, t: Tensor<3, Int>, composed: bool) -> xent_burn::Result<Tensor<1>> {
    let y = one_hot(t, &x);
    let o = SigmoidFocalOptions::default();
    if composed {
        xent_burn::sigmoid_focal_loss_composed(x, y, &o)
    } else {
        xent_burn::sigmoid_focal_loss(x, y, &o)
    }
}

fn bce(x: Tensor<4>, t: Tensor<3, Int>, composed: bool) -> xent_burn::Result<Tensor<1>> {
    let y = one_hot(t, &x);
    let p = burn_tensor::activation::sigmoid(x);
    let o = BceOptions::default();
    if composed {
        xent_burn::binary_cross_entropy_composed(p, y, &o)
    } else {
        xent_burn::binary_cross_entropy(p, y, &o)
    }
}

/// The scores as 24 rows of 5 features through a fixed `[7, 5]` layer and bias, labels `% 7`.
fn linear(x: Tensor<4>, t: Tensor<3, Int>, composed: bool) -> xent_burn::Result<Tensor<1>> {
    let dev = x.device();
    let x = x.reshape([24, 5]);
    let w: Vec<f32> = (0..35).map(|i| ((i * 13 % 17) as f32 - 8.0) / 8.0).collect();
    let w = Tensor::<2>::from_data(TensorData::new(w, [7, 5]), (&dev, DType::F32));
    let b =
        Tensor::<1>::from_data(TensorData::new(vec![0.1f32, -0.2, 0.3, 0.0, 0.5, -0.1, 0.2], [7]), (&dev, DType::F32));
    let t = t.reshape([30]).narrow(0, 0, 24).clamp(0, 6);
    let o = LinearCrossEntropyOptions { label_smoothing: 0.1, ..Default::default() };
    if composed {
        xent_burn::linear_cross_entropy_composed(x, w, Some(b), t, &o)
    } else {
        xent_burn::linear_cross_entropy(x, w, Some(b), t, &o)
    }
}
