//! The one seeded generator of the workspace's tests, benchmarks and demo data, and the demo's
//! synthetic segmentation data (not part of the API): a 64-bit linear congruential generator (Knuth's MMIX constants) read from its high
//! bits. The same seed gives the same values on every machine.

/// A seeded generator (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator whose first step starts from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next whole 64-bit state (its low bits are weak; see [`next`](Self::next)).
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0
    }

    /// The next 31 random bits.
    #[allow(clippy::should_implement_trait)] // reason: a generator, not an iterator
    pub fn next(&mut self) -> u64 {
        self.next_u64() >> 33
    }

    /// Uniform in `[0, 1)`, in steps of `2^-31`.
    pub fn uniform(&mut self) -> f64 {
        self.next() as f64 / (1u64 << 31) as f64
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        self.next() as usize % n
    }

    /// About normal with mean 0 and deviation `scale` (a sum of 12 uniforms).
    pub fn normal(&mut self, scale: f64) -> f64 {
        ((0..12).map(|_| self.uniform()).sum::<f64>() - 6.0) * scale
    }

    /// `n` values of [`normal`](Self::normal).
    pub fn vec(&mut self, n: usize, scale: f64) -> Vec<f64> {
        (0..n).map(|_| self.normal(scale)).collect()
    }
}

/// Uniform in `[0, 1)`, as `f32`.
fn uniform(rng: &mut Rng) -> f32 {
    rng.uniform() as f32
}

/// About normal(0, 1/sqrt(2)): a sum of 6 uniforms in `f32`.
fn normal(rng: &mut Rng) -> f32 {
    (0..6).map(|_| uniform(rng)).sum::<f32>() - 3.0
}

/// A binary segmentation data set: images `[n, 1, s, s]` and masks `[n, s, s]` (1 = foreground),
/// as the demo and the framework examples train on.
pub struct Segmentation {
    /// `[n, 1, s, s]`, row-major.
    pub images: Vec<f32>,
    /// `[n, s, s]`, 0 or 1.
    pub masks: Vec<u8>,
    /// Images.
    pub n: usize,
    /// The side `s` of the square images.
    pub side: usize,
}

impl Segmentation {
    /// Image `i`, `s * s` values.
    pub fn image(&self, i: usize) -> &[f32] {
        &self.images[i * self.side * self.side..(i + 1) * self.side * self.side]
    }
    /// Mask `i`, `s * s` labels.
    pub fn mask(&self, i: usize) -> &[u8] {
        &self.masks[i * self.side * self.side..(i + 1) * self.side * self.side]
    }
    /// The fraction of foreground pixels.
    pub fn foreground(&self) -> f64 {
        self.masks.iter().filter(|&&m| m == 1).count() as f64 / self.masks.len() as f64
    }
    /// Foreground F1 of a prediction: `margin[i] > 0` calls pixel `i` foreground (one value per
    /// pixel, the masks' order; e.g. the foreground logit minus the background one).
    pub fn f1(&self, margin: &[f32]) -> f64 {
        let (mut tp, mut fp, mut fneg) = (0.0, 0.0, 0.0);
        for (&v, &m) in margin.iter().zip(&self.masks) {
            match (v > 0.0, m == 1) {
                (true, true) => tp += 1.0,
                (true, false) => fp += 1.0,
                (false, true) => fneg += 1.0,
                _ => {}
            }
        }
        if tp > 0.0 {
            2.0 * tp / (2.0 * tp + fp + fneg)
        } else {
            0.0
        }
    }
}

/// Thin curved lines and small dots (the foreground, about 2-4% of the pixels) among noise and
/// clutter: wide soft blobs as bright as the lines, which only shape tells apart.
pub fn lines_and_dots(n: usize, s: usize, rng: &mut Rng) -> Segmentation {
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
    Segmentation { images, masks, n, side: s }
}
