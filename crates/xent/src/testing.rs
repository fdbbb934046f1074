//! The one seeded generator of the workspace's tests, benchmarks and demo data (not part of the
//! API): a 64-bit linear congruential generator (Knuth's MMIX constants) read from its high
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
