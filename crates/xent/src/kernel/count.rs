//! Counting labels per class: the one loop behind class counts and the losses' target check.

use crate::float::Label;

/// Labels mapped to bins at a time (on the stack).
const CHUNK: usize = 4096;

/// How many labels equal `v`: 64 lanes of `u8` counters, emptied every 255 rows.
#[inline(always)]
fn count_equal<L: Label>(labels: &[L], v: L) -> u64 {
    let mut total = 0;
    for block in labels.chunks(64 * 255) {
        let mut acc = [0u8; 64];
        let rows = block.chunks_exact(64);
        let rest = rows.remainder();
        for row in rows {
            for (a, &t) in acc.iter_mut().zip(row) {
                *a += u8::from(t == v);
            }
        }
        total += acc.iter().map(|&a| u64::from(a)).sum::<u64>() + rest.iter().filter(|&&t| t == v).count() as u64;
    }
    total
}

/// Adds to `counts[c]` the number of labels equal to `c` (for `c < counts.len()`) and returns
/// how many equal `ignore` (which wins over a class, see [`Label::bin`]); `Err(i)` names the
/// first label that is neither, `counts` then being partly updated. The one counting loop
/// behind class counts and the losses' target check.
///
/// When the values to look for fill at most one vector of labels (`(C + 1) * size <= 64`
/// bytes: up to 63 classes of `u8`, 7 of `i64`), one compare-and-add pass per value, then a
/// check that every label was counted; otherwise labels are mapped to bins ([`Label::bin`]) a
/// chunk at a time and counted in four interleaved histograms (so that runs of equal labels,
/// the usual case in masks, do not wait on the previous add).
#[inline(always)] // into the vector-width copies of `kernel::simd`
pub(super) fn tally<L: Label>(
    labels: &[L],
    ignore: Option<i64>,
    counts: &mut [u64],
) -> std::result::Result<u64, usize> {
    let classes = counts.len();
    let Some(c32) = u32::try_from(classes).ok().filter(|&c| c < u32::MAX - 1) else {
        // Bins would not fit a u32: one label at a time.
        let mut ignored = 0;
        for (i, t) in labels.iter().enumerate() {
            match t.to_i128() {
                v if ignore.map(i128::from) == Some(v) => ignored += 1,
                v if (0..classes as i128).contains(&v) => counts[v as usize] += 1,
                _ => return Err(i),
            }
        }
        return Ok(ignored);
    };
    let first_bad = || labels.iter().position(|t| t.bin(c32, ignore) == c32 + 1).unwrap_or(0);
    if (classes + 1) * std::mem::size_of::<L>() <= 64 {
        let ig = ignore.and_then(L::from_i64);
        let mut seen = 0;
        for (c, n) in counts.iter_mut().enumerate() {
            if let Some(v) = L::from_i64(c as i64).filter(|&v| Some(v) != ig) {
                let k = count_equal(labels, v);
                (*n, seen) = (*n + k, seen + k);
            }
        }
        // A `match`, not `map_or` and a closure: the closure would not be inlined into the
        // vector-width copies, and would count at the baseline width.
        let ignored = match ig {
            Some(v) => count_equal(labels, v),
            None => 0,
        };
        return if seen + ignored == labels.len() as u64 { Ok(ignored) } else { Err(first_bad()) };
    }
    let bins = classes + 2;
    let mut hist = vec![0u64; 4 * bins];
    let mut bin = [0u32; CHUNK];
    for chunk in labels.chunks(CHUNK) {
        let bin = &mut bin[..chunk.len()];
        for (b, t) in bin.iter_mut().zip(chunk) {
            *b = t.bin(c32, ignore);
        }
        let quads = bin.chunks_exact(4);
        let rest = quads.remainder();
        for q in quads {
            for (lane, &b) in q.iter().enumerate() {
                hist[lane * bins + b as usize] += 1;
            }
        }
        for &b in rest {
            hist[b as usize] += 1;
        }
    }
    let total = |v: usize| (0..4).map(|lane| hist[lane * bins + v]).sum::<u64>();
    if total(classes + 1) > 0 {
        return Err(first_bad());
    }
    counts.iter_mut().enumerate().for_each(|(c, n)| *n += total(c));
    Ok(total(classes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain definition `tally` must match: ignore first, then the class range.
    fn reference<L: Label>(
        labels: &[L],
        ignore: Option<i64>,
        classes: usize,
    ) -> std::result::Result<(Vec<u64>, u64), usize> {
        let mut counts = vec![0; classes];
        let mut ignored = 0;
        for (i, t) in labels.iter().enumerate() {
            match t.to_i128() {
                v if ignore.map(i128::from) == Some(v) => ignored += 1,
                v if (0..classes as i128).contains(&v) => counts[v as usize] += 1,
                _ => return Err(i),
            }
        }
        Ok((counts, ignored))
    }

    fn check<L: Label>(labels: &[L], ignore: Option<i64>, classes: usize) {
        let mut counts = vec![0; classes];
        let got = tally(labels, ignore, &mut counts).map(|ignored| (counts, ignored));
        let wide = {
            let mut counts = vec![0; classes];
            crate::kernel::simd::tally(labels, ignore, &mut counts).map(|ignored| (counts, ignored))
        };
        let want = reference(labels, ignore, classes);
        assert_eq!(got, want, "{} labels, ignore {ignore:?}, {classes} classes", labels.len());
        assert_eq!(wide, want);
    }

    #[test]
    fn tally_matches_the_plain_count_for_every_type_and_edge() {
        let mut rng = crate::testing::Rng::new(3);
        let mut next = |k: u64| rng.next() % k;
        // Both strategies (few bins, histograms), chunk tails, runs of equal labels.
        for classes in [1usize, 2, 5, 19, 300] {
            for n in [0usize, 3, 4095, 4096, 4097, 3 * 4096 + 17] {
                let v: Vec<u16> = (0..n).map(|i| if i % 7 < 3 { 1 } else { next(classes as u64) as u16 }).collect();
                check(&v, None, classes);
                check(&v, Some(0), classes); // an ignore value inside the class range wins
                let mut w: Vec<i64> = v.iter().map(|&x| x as i64).collect();
                w.iter_mut().step_by(13).for_each(|x| *x = -100);
                check(&w, Some(-100), classes);
                if n > 0 {
                    // A bad label late in a later chunk, and one right at the start.
                    w[n - 1] = classes as i64;
                    check(&w, Some(-100), classes);
                    w[0] = -1;
                    check(&w, Some(-100), classes);
                }
            }
        }
        // Values the ignore index cannot be compared with naively.
        check(&[u64::MAX, 0], Some(-1), 3);
        check(&[u64::MAX, 0], Some(i64::MAX), 3);
        check(&[255u8, 1, 255], Some(-1), 3);
        check(&[255u8, 1, 255], Some(255), 3);
        check(&[-1i8, 1], Some(-1), 3);
        check(&[i8::MIN, 1], Some(-1), 3);
        check(&[-1i32, 1], Some(4_294_967_295), 3);
        check(&[u32::MAX, 1], Some(-1), 3);
        check(&[u32::MAX, 1], Some(4_294_967_295), 3);
        check(&[usize::MAX, 2], Some(-1), 3);
    }
}
