//! seg19 cross-entropy (`[8, 19, 256, 512]` f32 logits, 19 class weights, ignore 255), forward
//! and backward, on burn's Flex backend with autodiff:
//! - `core`: xent's fused kernel on slices (the gradient buffer reused), the floor;
//! - `fresh-grad`: burn allocating and filling one logits-sized tensor, what any gradient costs
//!   burn's bookkeeping (its allocator gives fresh pages each step);
//! - `xent-burn`: `xent_burn::cross_entropy` then `backward()` and `grad()`;
//! - `burn-nn`: burn's own `CrossEntropyLoss` after the `[N*H*W, C]` permute it needs, then
//!   `backward()` and `grad()`.
//!
//! `cargo bench --manifest-path bench-burn/Cargo.toml` (2 threads: `RAYON_NUM_THREADS=2`).

use burn_nn::loss::CrossEntropyLossConfig;
use burn_tensor::{Device, Int, Tensor, TensorData};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use xent::testing::Rng;
use xent::{CrossEntropyLoss, CrossEntropyOptions, Loss, View};

const SHAPE: [usize; 4] = [8, 19, 256, 512];

fn seg19(c: &mut Criterion) {
    let [n, k, h, w] = SHAPE;
    let mut rng = Rng::new(19);
    let x: Vec<f32> = (0..n * k * h * w).map(|_| rng.normal(2.0) as f32).collect();
    let t: Vec<i64> = (0..n * h * w).map(|i| if i % 50 == 0 { 255 } else { rng.below(k) as i64 }).collect();
    let weight: Vec<f64> = (0..k).map(|i| 0.5 + i as f64 / k as f64).collect();
    let opts = CrossEntropyOptions { weight: Some(weight.clone()), ignore_index: 255, ..Default::default() };

    let mut g = c.benchmark_group("seg19");
    g.sample_size(10);

    let ce = CrossEntropyLoss::<f32>::new(CrossEntropyOptions {
        weight: Some(weight.iter().map(|&v| v as f32).collect()),
        ignore_index: 255,
        ..Default::default()
    })
    .unwrap();
    let mut grad = vec![0.0f32; x.len()];
    g.bench_function("core", |b| {
        b.iter(|| {
            let xv = View::new(&x, &SHAPE).unwrap();
            let tshape = [n, h, w];
            let tv = View::new(&t, &tshape).unwrap();
            black_box(ce.forward_backward(xv, tv, &[1.0], &mut grad).unwrap());
        })
    });

    let dev = Device::flex().autodiff();
    let x0 = Tensor::<4>::from_data(TensorData::new(x.clone(), SHAPE), &dev).inner();
    let t0 = Tensor::<3, Int>::from_data(TensorData::new(t.clone(), [n, h, w]), &dev);
    g.bench_function("fresh-grad", |b| b.iter(|| black_box(x0.zeros_like().add_scalar(1.0))));

    g.bench_function("xent-burn", |b| {
        b.iter(|| {
            let xt = Tensor::from_inner(x0.clone()).require_grad();
            let loss = xent_burn::cross_entropy(xt.clone(), t0.clone(), &opts).unwrap();
            let grads = loss.backward();
            black_box(xt.grad(&grads).unwrap());
        })
    });

    let burn_ce = CrossEntropyLossConfig::new()
        .with_weights(Some(weight.iter().map(|&v| v as f32).collect()))
        .with_pad_tokens(Some(vec![255]))
        .init(&dev);
    let t_flat = t0.clone().reshape([n * h * w]);
    // The two losses agree (burn-nn's is f32 maths composed; xent's is exact to f32 rounding).
    let xt = Tensor::from_inner(x0.clone());
    let ours: f32 = xent_burn::cross_entropy(xt.clone(), t0.clone(), &opts).unwrap().into_scalar();
    let theirs: f32 = burn_ce.forward(xt.permute([0, 2, 3, 1]).reshape([n * h * w, k]), t_flat.clone()).into_scalar();
    println!("seg19 loss: xent-burn {ours}, burn-nn {theirs}");
    assert!((ours - theirs).abs() <= 1e-4 * ours.abs(), "the two losses differ");
    g.bench_function("burn-nn", |b| {
        b.iter(|| {
            let xt = Tensor::from_inner(x0.clone()).require_grad();
            let z = xt.clone().permute([0, 2, 3, 1]).reshape([n * h * w, k]);
            let loss = burn_ce.forward(z, t_flat.clone());
            let grads = loss.backward();
            black_box(xt.grad(&grads).unwrap());
        })
    });
    g.finish();
}

criterion_group!(benches, seg19);
criterion_main!(benches);
