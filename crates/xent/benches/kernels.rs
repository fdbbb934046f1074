//! Criterion benchmarks of the kernels at realistic shapes, serial and parallel as twins:
//! `op/dtype/threads/shape`. Throughput is in bytes of the main input (logits or labels).
//!
//! `cargo bench -p xent` (CI compiles this, never times it).
#![allow(missing_docs)] // reason: criterion's macros generate undocumented items

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use xent::weights::ClassCounts;
use xent::*;

use xent::testing::Rng;

/// Uniform in `[-5, 5)` in steps of 0.001.
fn value(rng: &mut Rng) -> f32 {
    (rng.next() % 10_000) as f32 / 1000.0 - 5.0
}

fn pools() -> Vec<(usize, rayon::ThreadPool)> {
    let max = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut counts = vec![1];
    if max > 1 {
        counts.push(max);
    }
    counts.into_iter().map(|n| (n, rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap())).collect()
}

fn count(c: &mut Criterion) {
    // `count` of the performance issue: u8 labels [64, 512, 1024], values 0..18 with 5% 255.
    let mut rng = Rng::new(1);
    let shape = [64usize, 512, 1024];
    let labels: Vec<u8> = (0..shape.iter().product::<usize>())
        .map(|_| if rng.next().is_multiple_of(20) { 255 } else { (rng.next() % 19) as u8 })
        .collect();
    let mut g = c.benchmark_group("count");
    g.throughput(Throughput::Bytes(labels.len() as u64));
    g.sample_size(10);
    for (threads, pool) in pools() {
        g.bench_function(BenchmarkId::new(format!("u8/{threads}"), "64x512x1024"), |b| {
            b.iter(|| {
                pool.install(|| ClassCounts::from_images(View::new(&labels, &shape).unwrap(), 19, Some(255)).unwrap())
            })
        });
    }
    g.finish();
}

/// Forward and forward+backward of cross-entropy on `x` (`shape`) and `t`, serial and parallel.
fn ce_group(c: &mut Criterion, name: &str, ce: &CrossEntropyLoss<f32>, x: &[f32], shape: &[usize], t: &[u8]) {
    let tshape: Vec<usize> = [&shape[..1], &shape[2..]].concat();
    let label = shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x");
    let mut grad = vec![0.0f32; x.len()];
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Bytes((x.len() * 4) as u64));
    g.sample_size(10);
    let (xv, tv) = (View::new(x, shape).unwrap(), View::new(t, &tshape).unwrap());
    for (threads, pool) in pools() {
        g.bench_function(BenchmarkId::new(format!("forward/f32/{threads}"), &label), |b| {
            b.iter(|| pool.install(|| ce.forward(xv, tv).unwrap()))
        });
        g.bench_function(BenchmarkId::new(format!("forward_backward/f32/{threads}"), &label), |b| {
            b.iter(|| pool.install(|| ce.forward_backward(xv, tv, &[1.0], &mut grad).unwrap()))
        });
    }
    g.finish();
}

fn cross_entropy(c: &mut Criterion) {
    // `seg19`: logits [8, 19, 256, 512], 5% of targets 255, 19 class weights, mean.
    let mut rng = Rng::new(2);
    let shape = [8usize, 19, 256, 512];
    let x: Vec<f32> = (0..shape.iter().product::<usize>()).map(|_| value(&mut rng)).collect();
    let t: Vec<u8> =
        (0..8 * 256 * 512).map(|_| if rng.next().is_multiple_of(20) { 255 } else { (rng.next() % 19) as u8 }).collect();
    let w: Vec<f32> = (0..19).map(|i| 0.5 + i as f32 / 13.0).collect();
    let ce = CrossEntropyLoss::new(CrossEntropyOptions { weight: Some(w), ignore_index: 255, ..Default::default() })
        .unwrap();
    ce_group(c, "cross_entropy", &ce, &x, &shape, &t);
    // The seed's binary segmentation (the two-class path): [16, 2, 512, 512], 3% ones, weights.
    let shape = [16usize, 2, 512, 512];
    let x: Vec<f32> = (0..shape.iter().product::<usize>()).map(|_| value(&mut rng)).collect();
    let t: Vec<u8> = (0..16 * 512 * 512).map(|_| u8::from(rng.next() % 100 < 3)).collect();
    let ce =
        CrossEntropyLoss::new(CrossEntropyOptions { weight: Some(vec![0.03, 0.97]), ..Default::default() }).unwrap();
    ce_group(c, "cross_entropy_two_classes", &ce, &x, &shape, &t);
    // Classification rows with few classes (a scratch tile each 128 rows): [2^20, 19].
    let shape = [1usize << 20, 19];
    let x: Vec<f32> = (0..shape.iter().product::<usize>()).map(|_| value(&mut rng)).collect();
    let t: Vec<u8> = (0..shape[0]).map(|_| (rng.next() % 19) as u8).collect();
    ce_group(c, "cross_entropy_rows", &CrossEntropyLoss::new(CrossEntropyOptions::default()).unwrap(), &x, &shape, &t);
}

fn bce_with_logits(c: &mut Criterion) {
    // `bce`: [16, 1, 512, 512], 3% positives, pos_weight 32.3, mean.
    let mut rng = Rng::new(3);
    let shape = [16usize, 1, 512, 512];
    let x: Vec<f32> = (0..shape.iter().product::<usize>()).map(|_| value(&mut rng)).collect();
    let y: Vec<f32> = (0..x.len()).map(|_| f32::from(u8::from(rng.next() % 100 < 3))).collect();
    let l = BceWithLogitsLoss::new(BceWithLogitsOptions {
        pos_weight: Some(WeightTensor::new(vec![32.3], vec![1]).unwrap()),
        ..Default::default()
    })
    .unwrap();
    let mut grad = vec![0.0f32; x.len()];
    let mut g = c.benchmark_group("bce_with_logits");
    g.throughput(Throughput::Bytes((x.len() * 4) as u64));
    g.sample_size(10);
    let (xv, yv) = (View::new(&x, &shape).unwrap(), View::new(&y, &shape).unwrap());
    for (threads, pool) in pools() {
        g.bench_function(BenchmarkId::new(format!("forward/f32/{threads}"), "16x1x512x512"), |b| {
            b.iter(|| pool.install(|| l.forward(xv, yv).unwrap()))
        });
        g.bench_function(BenchmarkId::new(format!("forward_backward/f32/{threads}"), "16x1x512x512"), |b| {
            b.iter(|| pool.install(|| l.forward_backward(xv, yv, &[1.0], &mut grad).unwrap()))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = count, cross_entropy, bce_with_logits
}
criterion_main!(benches);
