//! [`ExactSum`]: the exactly rounded sum of many `f64` values, whatever their order or grouping.
//!
//! Kernels sum each block of elements in a fixed order; the block sums are then added here.
//! Because the result is the exact sum rounded once, it does not depend on how the blocks were
//! spread over threads, or over the chunks of a stream, or over micro-batches: merge the parts
//! and the bits are the same.

/// An exact accumulator (Shewchuk's non-overlapping partials, rounded as Python's `math.fsum`).
///
/// ```
/// use xent::ExactSum;
/// let mut a = ExactSum::default();
/// for v in [1e100, 1.0, -1e100, 1e-30] {
///     a.add(v);
/// }
/// assert_eq!(a.value(), 1.0 + 1e-30); // naive left-to-right addition gives 1e-30
/// let mut b = ExactSum::from(0.1);
/// b.merge(&a);
/// assert_eq!(b.value(), 1.1);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExactSum {
    /// Non-overlapping, increasing in magnitude.
    partials: Vec<f64>,
    /// The sum of the non-finite values added (and of overflows): NaN, +-inf or 0.
    special: f64,
}

impl From<f64> for ExactSum {
    fn from(v: f64) -> Self {
        let mut s = ExactSum::default();
        s.add(v);
        s
    }
}

impl ExactSum {
    /// Adds `x` exactly.
    pub fn add(&mut self, x: f64) {
        if !x.is_finite() {
            self.special += x;
            return;
        }
        let mut x = x;
        let mut i = 0;
        for j in 0..self.partials.len() {
            let mut y = self.partials[j];
            if x.abs() < y.abs() {
                std::mem::swap(&mut x, &mut y);
            }
            let hi = x + y;
            let lo = y - (hi - x);
            if lo != 0.0 {
                self.partials[i] = lo;
                i += 1;
            }
            x = hi;
        }
        self.partials.truncate(i);
        if x.is_finite() {
            self.partials.push(x);
        } else {
            // The running sum overflowed: it is infinite whatever comes later.
            self.special += x;
        }
    }

    /// Adds the product `a * b` exactly (as its rounded value and its rounding error).
    pub fn add_product(&mut self, a: f64, b: f64) {
        let p = a * b;
        if p.is_finite() {
            self.add(a.mul_add(b, -p));
        }
        self.add(p);
    }

    /// Adds everything `other` holds.
    pub fn merge(&mut self, other: &ExactSum) {
        for &p in &other.partials {
            self.add(p);
        }
        self.special += other.special;
    }

    /// The sum, rounded once to the nearest `f64` (NaN or infinite if a non-finite value, or an
    /// overflow, was added).
    pub fn value(&self) -> f64 {
        if self.special != 0.0 || self.special.is_nan() {
            return self.special;
        }
        let p = &self.partials;
        let mut n = p.len();
        if n == 0 {
            return 0.0;
        }
        n -= 1;
        let mut hi = p[n];
        let mut lo = 0.0;
        while n > 0 {
            let x = hi;
            n -= 1;
            let y = p[n];
            hi = x + y;
            let yr = hi - x;
            lo = y - yr;
            if lo != 0.0 {
                break;
            }
        }
        // Round half to even across the remaining partials, as fsum does.
        if n > 0 && ((lo < 0.0 && p[n - 1] < 0.0) || (lo > 0.0 && p[n - 1] > 0.0)) {
            let y = lo * 2.0;
            let x = hi + y;
            if y == x - hi {
                hi = x;
            }
        }
        hi
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_grouping_gives_the_same_bits() {
        let mut rng = crate::testing::Rng::new(0x1234_5678);
        let v: Vec<f64> = (0..5000)
            .map(|_| {
                let s = rng.next_u64();
                ((s >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 10f64.powi((s % 40) as i32 - 20)
            })
            .collect();
        let whole = v.iter().fold(ExactSum::default(), |mut a, &x| {
            a.add(x);
            a
        });
        for chunk in [1, 7, 64, 1000] {
            let mut merged = ExactSum::default();
            for c in v.chunks(chunk).rev() {
                let mut part = ExactSum::default();
                c.iter().rev().for_each(|&x| part.add(x));
                merged.merge(&part);
            }
            assert_eq!(merged.value().to_bits(), whole.value().to_bits());
        }
    }

    #[test]
    fn specials_and_products() {
        let mut s = ExactSum::from(1.0);
        s.add(f64::INFINITY);
        assert_eq!(s.value(), f64::INFINITY);
        s.add(f64::NEG_INFINITY);
        assert!(s.value().is_nan());
        let mut o = ExactSum::from(f64::MAX);
        o.add(f64::MAX);
        assert_eq!(o.value(), f64::INFINITY);
        let mut p = ExactSum::default();
        p.add_product(0.1, 3.0);
        p.add(-0.3);
        assert_eq!(p.value(), 0.1f64.mul_add(3.0, -0.3));
    }
}
