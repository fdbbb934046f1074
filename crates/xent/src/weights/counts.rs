//! Per-class pixel counts over label maps, mergeable across images, shards and machines.

use super::schemes::{compute, AbsentClasses, Scheme};
use crate::error::{Error, Result};
use crate::float::Label;
use crate::kernel::simd;
use crate::par::map_ordered;
use crate::view::View;
use serde::{Deserialize, Serialize};

/// Label counts of a dataset (or of part of one).
///
/// Counts are integers, so merging is exact, associative and commutative: counting shards
/// separately and merging gives the same counts, and so the same weights bit for bit, as one
/// pass over all the data.
///
/// ```
/// use xent::weights::{AbsentClasses, ClassCounts, Scheme};
/// let mut a = ClassCounts::new(3, Some(255));
/// a.add_image(&[0u8, 0, 1, 255])?;
/// let mut b = ClassCounts::new(3, Some(255));
/// b.add_image(&[0u16, 2, 2, 2])?;
/// a.merge(&b)?;
/// assert_eq!(a.pixels(), &[3, 1, 3]);
/// assert_eq!(a.image_pixels(), &[7, 3, 4]); // labelled pixels of the images each class is in
/// assert_eq!((a.images(), a.ignored()), (2, 1));
/// let back = ClassCounts::from_json(&a.to_json())?;
/// assert_eq!(back, a);
/// let w = a.weights(Scheme::Balanced, AbsentClasses::Zero)?;
/// assert_eq!(w, vec![7.0 / 9.0, 7.0 / 3.0, 7.0 / 9.0]);
/// # Ok::<(), xent::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassCounts {
    num_classes: usize,
    ignore_index: Option<i64>,
    pixels: Vec<u64>,
    image_pixels: Vec<u64>,
    images: u64,
    ignored: u64,
}

impl ClassCounts {
    /// Empty counts for labels `0..num_classes`; labels equal to `ignore_index` are counted as
    /// ignored.
    pub fn new(num_classes: usize, ignore_index: Option<i64>) -> Self {
        ClassCounts {
            num_classes,
            ignore_index,
            pixels: vec![0; num_classes],
            image_pixels: vec![0; num_classes],
            images: 0,
            ignored: 0,
        }
    }

    /// Counts one image's labels (any shape, flattened).
    ///
    /// # Errors
    /// [`Error::TargetOutOfRange`] for a label outside `0..num_classes` that is not the ignore
    /// value, with its index in `labels`; the counts are then unchanged.
    pub fn add_image<L: Label>(&mut self, labels: &[L]) -> Result<()> {
        let mut img = ClassCounts::new(self.num_classes, self.ignore_index);
        img.count_image(labels)?;
        self.merge(&img)
    }

    fn count_image<L: Label>(&mut self, labels: &[L]) -> Result<()> {
        // An ignore value inside the class range is counted as its class here.
        let n = self.num_classes as i128;
        let ignore = self.ignore_index.filter(|&i| !(0..n).contains(&i128::from(i)));
        match simd::tally(labels, ignore, &mut self.pixels) {
            Ok(ignored) => {
                self.finish_image(labels.len() as u64, ignored);
                Ok(())
            }
            Err(index) => {
                *self = ClassCounts::new(self.num_classes, self.ignore_index);
                Err(Error::TargetOutOfRange {
                    what: "labels",
                    index,
                    value: labels[index].to_i128(),
                    classes: self.num_classes,
                    ignore_index: self.ignore_index,
                })
            }
        }
    }

    /// Sets the per-image totals once `pixels` holds one image's counts.
    fn finish_image(&mut self, len: u64, ignored: u64) {
        let labelled = len - ignored;
        for c in 0..self.num_classes {
            if self.pixels[c] > 0 {
                self.image_pixels[c] = labelled;
            }
        }
        self.ignored = ignored;
        self.images = 1;
    }

    /// Counts a batch `[N, ...]`: each of the `N` slices along the first dimension is one image.
    /// Images are counted in parallel (with the `rayon` feature).
    ///
    /// # Errors
    /// As [`add_image`](Self::add_image), with the flat index in the whole batch; a 0-d view.
    pub fn from_images<L: Label>(labels: View<'_, L>, num_classes: usize, ignore_index: Option<i64>) -> Result<Self> {
        let Some(&n) = labels.shape().first() else {
            return Err(Error::ShapeMismatch {
                what: "labels",
                got: vec![],
                expected: "[N, ...], one image per slice of the first dimension".into(),
            });
        };
        let per = labels.len().checked_div(n).unwrap_or(0);
        let images: Vec<(usize, &[L])> = (0..n).map(|i| (i * per, &labels.data()[i * per..(i + 1) * per])).collect();
        let parts = map_ordered(images, |(offset, img)| {
            let mut c = ClassCounts::new(num_classes, ignore_index);
            c.count_image(img).map_err(|e| match e {
                Error::TargetOutOfRange { what, index, value, classes, ignore_index } => {
                    Error::TargetOutOfRange { what, index: index + offset, value, classes, ignore_index }
                }
                e => e,
            })?;
            Ok(c)
        });
        let mut all = ClassCounts::new(num_classes, ignore_index);
        for p in parts {
            all.merge(&p?)?;
        }
        Ok(all)
    }

    /// Adds `other`'s counts to these.
    ///
    /// # Errors
    /// [`Error::Counts`] if the class numbers or the ignore values differ.
    pub fn merge(&mut self, other: &ClassCounts) -> Result<()> {
        if (self.num_classes, self.ignore_index) != (other.num_classes, other.ignore_index) {
            return Err(Error::Counts(format!(
                "cannot merge counts of {} classes (ignore_index {:?}) with counts of {} classes (ignore_index {:?})",
                self.num_classes, self.ignore_index, other.num_classes, other.ignore_index
            )));
        }
        for c in 0..self.num_classes {
            self.pixels[c] += other.pixels[c];
            self.image_pixels[c] += other.image_pixels[c];
        }
        self.images += other.images;
        self.ignored += other.ignored;
        Ok(())
    }

    /// The counts as one JSON object.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("counts always serialise")
    }

    /// Counts from [`to_json`](Self::to_json)'s output.
    ///
    /// # Errors
    /// [`Error::Parse`] for malformed JSON or per-class lists whose length is not `num_classes`.
    pub fn from_json(text: &str) -> Result<Self> {
        let c: ClassCounts =
            serde_json::from_str(text).map_err(|e| Error::Parse { what: "class counts", message: e.to_string() })?;
        if c.pixels.len() != c.num_classes || c.image_pixels.len() != c.num_classes {
            return Err(Error::Parse {
                what: "class counts",
                message: format!(
                    "num_classes is {} but pixels has {} and image_pixels {} entries",
                    c.num_classes,
                    c.pixels.len(),
                    c.image_pixels.len()
                ),
            });
        }
        Ok(c)
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// The ignore value, if any.
    pub fn ignore_index(&self) -> Option<i64> {
        self.ignore_index
    }

    /// Pixels of each class.
    pub fn pixels(&self) -> &[u64] {
        &self.pixels
    }

    /// For each class, the labelled pixels of the images in which it appears.
    pub fn image_pixels(&self) -> &[u64] {
        &self.image_pixels
    }

    /// Images counted.
    pub fn images(&self) -> u64 {
        self.images
    }

    /// Pixels with the ignore value.
    pub fn ignored(&self) -> u64 {
        self.ignored
    }

    /// Labelled (not ignored) pixels.
    pub fn labelled(&self) -> u64 {
        self.pixels.iter().sum()
    }

    /// `n_c / n` per class (0 for every class if nothing is labelled).
    pub fn frequencies(&self) -> Vec<f64> {
        let n = self.labelled() as f64;
        self.pixels.iter().map(|&p| if n > 0.0 { p as f64 / n } else { 0.0 }).collect()
    }

    /// The class weights of `scheme` (see the [module docs](super)).
    ///
    /// # Errors
    /// [`Error::Counts`] when nothing is labelled, or a class is absent under
    /// [`AbsentClasses::Error`]; [`Error::InvalidOption`] for a scheme parameter out of range.
    pub fn weights(&self, scheme: Scheme, absent: AbsentClasses) -> Result<Vec<f64>> {
        let counts: Vec<f64> = self.pixels.iter().map(|&p| p as f64).collect();
        let image_pixels: Vec<f64> = self.image_pixels.iter().map(|&p| p as f64).collect();
        compute(&counts, Some(&image_pixels), scheme, absent)
    }
}

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
/// behind [`ClassCounts`] and the losses' target check.
///
/// When the values to look for fill at most one vector of labels (`(C + 1) * size <= 64`
/// bytes: up to 63 classes of `u8`, 7 of `i64`), one compare-and-add pass per value, then a
/// check that every label was counted; otherwise labels are mapped to bins ([`Label::bin`]) a
/// chunk at a time and counted in four interleaved histograms (so that runs of equal labels,
/// the usual case in masks, do not wait on the previous add).
#[inline(always)] // into the vector-width copies of `kernel::simd`
pub(crate) fn tally<L: Label>(
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
            simd::tally(labels, ignore, &mut counts).map(|ignored| (counts, ignored))
        };
        let want = reference(labels, ignore, classes);
        assert_eq!(got, want, "{} labels, ignore {ignore:?}, {classes} classes", labels.len());
        assert_eq!(wide, want);
    }

    #[test]
    fn tally_matches_the_plain_count_for_every_type_and_edge() {
        let mut s = 3u64;
        let mut next = |k: u64| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 33) % k
        };
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
