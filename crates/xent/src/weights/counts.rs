//! Per-class pixel counts over label maps, mergeable across images, shards and machines.

use crate::error::{Error, Result};
use crate::float::Label;
use crate::kernel;
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
        match kernel::tally(labels, ignore, &mut self.pixels) {
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
}
