//! The weighting schemes, and the per-batch and running helpers.

use super::counts::ClassCounts;
use crate::error::{Error, Result};
use crate::float::Label;
use crate::validate::finite_option;
use crate::view::View;

/// A class-weighting scheme (formulas in the [module docs](super)), parsed from its name
/// (`"enet".parse::<Scheme>()`, the constants at their defaults: `c` 1.02, `beta` 0.999; see
/// [`with_parameters`](Self::with_parameters)) and printed as it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scheme {
    /// The seed's scheme, generalised: `(1 / f_c) / sum_j (1 / f_j)`.
    InverseFrequency,
    /// scikit-learn's `balanced`: `n / (K n_c)`.
    Balanced,
    /// Eigen and Fergus: `median(freq) / freq_c`, `freq_c` over the images where `c` appears.
    MedianFrequency,
    /// ENet: `1 / ln(c + f_c)`; `c > 1`, usually 1.02.
    Enet {
        /// The constant `c`.
        c: f64,
    },
    /// Cui et al.: `(1 - beta) / (1 - beta^n_c)`, scaled to sum to `K`; `0 <= beta < 1`.
    EffectiveNumber {
        /// The constant `beta`.
        beta: f64,
    },
    /// `1 / sqrt(f_c)`, scaled to mean 1.
    InverseSqrtFrequency,
}

impl Scheme {
    /// The scheme with its constant set: `c` for `enet`, `beta` for `effective_number` (each
    /// left at its default when `None`).
    ///
    /// # Errors
    /// [`Error::InvalidOption`] for a parameter out of range, or given to a scheme without it.
    pub fn with_parameters(self, c: Option<f64>, beta: Option<f64>) -> Result<Scheme> {
        let s = match (self, c, beta) {
            (Scheme::Enet { .. }, Some(c), None) => Scheme::Enet { c },
            (Scheme::EffectiveNumber { .. }, None, Some(beta)) => Scheme::EffectiveNumber { beta },
            (s, None, None) => s,
            (s, c, _) => {
                let (name, value) = if c.is_some() { ("c", c) } else { ("beta", beta) };
                return Err(Error::InvalidOption {
                    name,
                    value: format!("{} for scheme {s}", value.unwrap_or_default()),
                    reason: "c is a constant of enet only, beta of effective_number only",
                });
            }
        };
        s.check()?;
        Ok(s)
    }

    fn check(&self) -> Result<()> {
        match *self {
            Scheme::Enet { c } => {
                finite_option("c", c)?;
                if c <= 1.0 {
                    return Err(Error::InvalidOption { name: "c", value: c.to_string(), reason: "must be > 1" });
                }
            }
            Scheme::EffectiveNumber { beta } => {
                finite_option("beta", beta)?;
                if !(0.0..1.0).contains(&beta) {
                    return Err(Error::InvalidOption {
                        name: "beta",
                        value: beta.to_string(),
                        reason: "must be in [0, 1)",
                    });
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// What classes absent from the data get; parsed from and printed as `zero`, `largest`,
/// `error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AbsentClasses {
    /// Weight 0 (as in the golden vectors), except under `enet`, whose formula is defined at a
    /// zero count (`1 / ln c`) and keeps that value.
    #[default]
    Zero,
    /// The largest weight of a present class.
    Largest,
    /// An error naming the absent classes.
    Error,
}

crate::error::named!(AbsentClasses, "absent", { Zero => "zero", Largest => "largest", Error => "error" });

impl std::str::FromStr for Scheme {
    type Err = Error;
    fn from_str(name: &str) -> Result<Scheme> {
        Ok(match name {
            "inverse_frequency" => Scheme::InverseFrequency,
            "balanced" => Scheme::Balanced,
            "median_frequency" => Scheme::MedianFrequency,
            "enet" => Scheme::Enet { c: 1.02 },
            "effective_number" => Scheme::EffectiveNumber { beta: 0.999 },
            "inverse_sqrt_frequency" => Scheme::InverseSqrtFrequency,
            _ => {
                return Err(Error::InvalidOption {
                    name: "scheme",
                    value: name.to_string(),
                    reason: "must be one of inverse_frequency balanced median_frequency enet effective_number inverse_sqrt_frequency",
                })
            }
        })
    }
}

impl std::fmt::Display for Scheme {
    /// The scheme's name, as `FromStr` takes it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Scheme::InverseFrequency => "inverse_frequency",
            Scheme::Balanced => "balanced",
            Scheme::MedianFrequency => "median_frequency",
            Scheme::Enet { .. } => "enet",
            Scheme::EffectiveNumber { .. } => "effective_number",
            Scheme::InverseSqrtFrequency => "inverse_sqrt_frequency",
        })
    }
}

/// The median of `v` (the mean of the two middle values for an even length), as NumPy's.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

impl ClassCounts {
    /// The class weights of `scheme` (see the [module docs](super)).
    ///
    /// # Errors
    /// [`Error::Counts`] when nothing is labelled, or a class is absent under
    /// [`AbsentClasses::Error`]; [`Error::InvalidOption`] for a scheme parameter out of range.
    pub fn weights(&self, scheme: Scheme, absent: AbsentClasses) -> Result<Vec<f64>> {
        let counts: Vec<f64> = self.pixels().iter().map(|&p| p as f64).collect();
        let image_pixels: Vec<f64> = self.image_pixels().iter().map(|&p| p as f64).collect();
        compute(&counts, Some(&image_pixels), scheme, absent)
    }
}

/// Weights from per-class counts (or frequencies: any positive multiple works for every scheme
/// but `effective_number`), and for `median_frequency` the per-class image pixels.
pub(crate) fn compute(
    counts: &[f64],
    image_pixels: Option<&[f64]>,
    scheme: Scheme,
    absent: AbsentClasses,
) -> Result<Vec<f64>> {
    scheme.check()?;
    let k = counts.len();
    let total: f64 = counts.iter().sum();
    if total <= 0.0 {
        return Err(Error::Counts("no labelled pixel: the weights are undefined".into()));
    }
    let present: Vec<usize> = (0..k).filter(|&c| counts[c] > 0.0).collect();
    let missing: Vec<usize> = (0..k).filter(|&c| counts[c] <= 0.0).collect();
    if absent == AbsentClasses::Error && !missing.is_empty() {
        return Err(Error::Counts(format!("classes {missing:?} do not appear in the data")));
    }
    let f = |c: usize| counts[c] / total;
    let mut w = vec![0.0; k];
    match scheme {
        Scheme::InverseFrequency => {
            let s: f64 = present.iter().map(|&c| 1.0 / f(c)).sum();
            present.iter().for_each(|&c| w[c] = (1.0 / f(c)) / s);
        }
        Scheme::Balanced => present.iter().for_each(|&c| w[c] = total / (k as f64 * counts[c])),
        Scheme::MedianFrequency => {
            let img = image_pixels.ok_or_else(|| {
                Error::Counts("median_frequency needs the pixels of the images each class appears in".into())
            })?;
            let freq = |c: usize| counts[c] / img[c];
            let med = median(present.iter().map(|&c| freq(c)).collect());
            present.iter().for_each(|&c| w[c] = med / freq(c));
        }
        Scheme::Enet { c: cc } => (0..k).for_each(|c| w[c] = 1.0 / (cc + f(c)).ln()),
        Scheme::EffectiveNumber { beta } => {
            let raw: Vec<f64> = present.iter().map(|&c| (1.0 - beta) / (1.0 - beta.powf(counts[c]))).collect();
            let s: f64 = raw.iter().sum();
            present.iter().zip(raw).for_each(|(&c, r)| w[c] = r / s * k as f64);
        }
        Scheme::InverseSqrtFrequency => {
            let raw: Vec<f64> = present.iter().map(|&c| 1.0 / f(c).sqrt()).collect();
            let mean = raw.iter().sum::<f64>() / raw.len() as f64;
            present.iter().zip(raw).for_each(|(&c, r)| w[c] = r / mean);
        }
    }
    if absent == AbsentClasses::Largest {
        let largest = present.iter().map(|&c| w[c]).fold(f64::NEG_INFINITY, f64::max);
        missing.iter().for_each(|&c| w[c] = largest);
    }
    Ok(w)
}

/// The class weights of one batch `[N, ...]` of labels, for use inside a training loop: the
/// seed's `inverse_freq(label)` done right (see the [module docs](super)).
///
/// # Errors
/// As [`ClassCounts::from_images`] and [`ClassCounts::weights`].
pub fn batch_weights<L: Label>(
    labels: View<'_, L>,
    num_classes: usize,
    ignore_index: Option<i64>,
    scheme: Scheme,
    absent: AbsentClasses,
) -> Result<Vec<f64>> {
    ClassCounts::from_images(labels, num_classes, ignore_index)?.weights(scheme, absent)
}

/// A running estimate of the class frequencies: an exponential moving average over batches,
/// `f <- decay f + (1 - decay) f_batch` (the first batch sets `f`), for weights that do not jump
/// from batch to batch.
///
/// ```
/// use xent::weights::{AbsentClasses, ClassCounts, RunningFrequencies, Scheme};
/// let mut run = RunningFrequencies::new(2, 0.9)?;
/// for batch in [[0u8, 0, 0, 1], [0, 0, 1, 1]] {
///     let mut c = ClassCounts::new(2, None);
///     c.add_image(&batch)?;
///     run.update(&c)?;
/// }
/// assert!((run.frequencies().unwrap()[1] - (0.9 * 0.25 + 0.1 * 0.5)).abs() < 1e-15);
/// let w = run.weights(Scheme::InverseFrequency, AbsentClasses::Zero)?;
/// assert!((w[0] - 0.275).abs() < 1e-12);
/// # Ok::<(), xent::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RunningFrequencies {
    decay: f64,
    freqs: Option<Vec<f64>>,
    num_classes: usize,
}

impl RunningFrequencies {
    /// An estimate for `num_classes` classes with `decay` in `[0, 1)` (0: the last batch only).
    ///
    /// # Errors
    /// [`Error::InvalidOption`] for a decay outside `[0, 1)`.
    pub fn new(num_classes: usize, decay: f64) -> Result<Self> {
        if !(0.0..1.0).contains(&decay) {
            return Err(Error::InvalidOption { name: "decay", value: decay.to_string(), reason: "must be in [0, 1)" });
        }
        Ok(RunningFrequencies { decay, freqs: None, num_classes })
    }

    /// Folds in one batch's counts (a batch with no labelled pixel changes nothing).
    ///
    /// # Errors
    /// [`Error::Counts`] if the counts have another number of classes.
    pub fn update(&mut self, batch: &ClassCounts) -> Result<()> {
        if batch.num_classes() != self.num_classes {
            return Err(Error::Counts(format!(
                "running frequencies of {} classes cannot take counts of {}",
                self.num_classes,
                batch.num_classes()
            )));
        }
        if batch.labelled() == 0 {
            return Ok(());
        }
        let fb = batch.frequencies();
        self.freqs = Some(match self.freqs.take() {
            None => fb,
            Some(f) => f.iter().zip(fb).map(|(a, b)| self.decay * a + (1.0 - self.decay) * b).collect(),
        });
        Ok(())
    }

    /// The current estimate, once a batch with labelled pixels has been seen.
    pub fn frequencies(&self) -> Option<&[f64]> {
        self.freqs.as_deref()
    }

    /// Weights from the current frequencies, for the schemes that depend on frequencies alone
    /// (`inverse_frequency`, `balanced`, `enet`, `inverse_sqrt_frequency`).
    ///
    /// # Errors
    /// [`Error::Counts`] before any labelled batch, or for `median_frequency` and
    /// `effective_number`, which need whole counts.
    pub fn weights(&self, scheme: Scheme, absent: AbsentClasses) -> Result<Vec<f64>> {
        if matches!(scheme, Scheme::MedianFrequency | Scheme::EffectiveNumber { .. }) {
            return Err(Error::Counts(format!("{} needs whole counts, not running frequencies", scheme)));
        }
        let f = self.freqs.as_ref().ok_or_else(|| Error::Counts("no labelled batch seen yet".into()))?;
        compute(f, None, scheme, absent)
    }
}
