//! The demo's data: seeded images of thin lines and dots (the rare foreground) among clutter.

pub(super) use xent::testing::Rng;

/// Uniform in `[0, 1)`, as `f32`.
pub(super) fn uniform(rng: &mut Rng) -> f32 {
    rng.uniform() as f32
}

/// About normal(0, 1/sqrt(2)): a sum of 6 uniforms in `f32`.
pub(super) fn normal(rng: &mut Rng) -> f32 {
    (0..6).map(|_| uniform(rng)).sum::<f32>() - 3.0
}

/// Images `[n, 1, s, s]` and binary masks `[n, s, s]`.
pub(super) struct Data {
    pub(super) images: Vec<f32>,
    pub(super) masks: Vec<u8>,
    pub(super) n: usize,
    pub(super) side: usize,
}

impl Data {
    pub(super) fn image(&self, i: usize) -> &[f32] {
        &self.images[i * self.side * self.side..(i + 1) * self.side * self.side]
    }
    pub(super) fn mask(&self, i: usize) -> &[u8] {
        &self.masks[i * self.side * self.side..(i + 1) * self.side * self.side]
    }
    pub(super) fn foreground(&self) -> f64 {
        self.masks.iter().filter(|&&m| m == 1).count() as f64 / self.masks.len() as f64
    }
}

/// Thin curved lines and small dots (the foreground, about 2-4% of the pixels) among noise and
/// clutter: wide soft blobs as bright as the lines, which only shape tells apart.
pub(super) fn synthesize(n: usize, s: usize, rng: &mut Rng) -> Data {
    let mut images = vec![0.0f32; n * s * s];
    let mut masks = vec![0u8; n * s * s];
    for i in 0..n {
        let (img, mask) = (&mut images[i * s * s..(i + 1) * s * s], &mut masks[i * s * s..(i + 1) * s * s]);
        for _ in 0..3 {
            let (cx, cy, r) = (uniform(rng) * s as f32, uniform(rng) * s as f32, 3.0 + uniform(rng) * s as f32 / 8.0);
            for y in 0..s {
                for x in 0..s {
                    let d2 = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)) / (r * r);
                    img[y * s + x] += 0.7 * (-d2).exp();
                }
            }
        }
        for _ in 0..2 + rng.below(2) {
            let (mut x, mut y) = (uniform(rng) * s as f32, uniform(rng) * s as f32);
            let mut a = uniform(rng) * std::f32::consts::TAU;
            for _ in 0..s / 2 + rng.below(s / 2) {
                a += normal(rng) * 0.25;
                x += a.cos();
                y += a.sin();
                let (xi, yi) = (x.round() as i64, y.round() as i64);
                if xi >= 0 && yi >= 0 && (xi as usize) < s && (yi as usize) < s {
                    mask[yi as usize * s + xi as usize] = 1;
                }
            }
        }
        for _ in 0..rng.below(4) {
            let (x, y) = (rng.below(s - 2), rng.below(s - 2));
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                mask[(y + dy) * s + x + dx] = 1;
            }
        }
        for p in 0..s * s {
            img[p] += 0.8 * mask[p] as f32 + 0.25 * normal(rng);
        }
    }
    Data { images, masks, n, side: s }
}
