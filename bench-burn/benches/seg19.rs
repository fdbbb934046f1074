//! seg19 cross-entropy (`[8, 19, 256, 512]` f32 logits, 19 class weights, ignore 255), forward
//! and backward, on burn's Flex backend with autodiff:
//! - `core`: xent's fused kernel on slices, the gradient buffer reused: the kernel alone;
//! - `core-fresh`: the same into a fresh gradient buffer each step ([`xent::fresh::zeros`]): the
//!   kernel plus fresh memory's cost, what xent-burn paid before its gradients were recycled;
//! - `bookkeeping`: `xent_burn::cross_entropy`, `backward()` and `grad()` on `[1, 19, 1, 1]`:
//!   burn's per-step graph and dispatch costs, independent of the size;
//! - `xent-burn`: `xent_burn::cross_entropy` then `backward()` and `grad()` (from the second step
//!   on, the gradient is written over the block the previous step's gradient dropped);
//! - `burn-nn`: burn's own `CrossEntropyLoss` after the `[N*H*W, C]` permute it needs, then
//!   `backward()` and `grad()`. burn's padding must be a valid class index (it still gathers the
//!   padded targets), so class 0 is the void class here: the real labels are 1..19, and the
//!   ignored positions are 255 for xent and 0 (burn's pad token) for burn-nn, the same loss.
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
    let t: Vec<i64> = (0..n * h * w).map(|i| if i % 50 == 0 { 255 } else { 1 + rng.below(k - 1) as i64 }).collect();
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

    g.bench_function("core-fresh", |b| {
        b.iter(|| {
            let xv = View::new(&x, &SHAPE).unwrap();
            let tshape = [n, h, w];
            let tv = View::new(&t, &tshape).unwrap();
            let mut grad = xent::fresh::zeros::<f32>(x.len());
            black_box(ce.forward_backward(xv, tv, &[1.0], &mut grad).unwrap());
            black_box(grad);
        })
    });

    let dev = Device::flex().autodiff();
    let x0 = Tensor::<4>::from_data(TensorData::new(x.clone(), SHAPE), &dev).inner();
    let t0 = Tensor::<3, Int>::from_data(TensorData::new(t.clone(), [n, h, w]), &dev);
    let small = Tensor::<4>::from_data(TensorData::new(x[..k].to_vec(), [1, k, 1, 1]), &dev).inner();
    let small_t = Tensor::<3, Int>::from_data(TensorData::new(vec![3i64], [1, 1, 1]), &dev);
    g.bench_function("bookkeeping", |b| {
        b.iter(|| {
            let xt = Tensor::from_inner(small.clone()).require_grad();
            let loss = xent_burn::cross_entropy(xt.clone(), small_t.clone(), &opts).unwrap();
            let grads = loss.backward();
            black_box(xt.grad(&grads).unwrap());
        })
    });

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
        .with_pad_tokens(Some(vec![0]))
        .init(&dev);
    let void: Vec<i64> = t.iter().map(|&v| if v == 255 { 0 } else { v }).collect();
    let t_flat = Tensor::<1, Int>::from_data(TensorData::new(void, [n * h * w]), &dev);
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
