//! Class weights from data: counting labels ([`ClassCounts`]) and the weighting schemes of the
//! literature ([`Scheme`]), for whole datasets, per batch, or as a running estimate.
//!
//! With `n_c` the pixels of class `c`, `n = sum_c n_c`, `f_c = n_c / n` and `K` classes:
//! ```text
//! inverse_frequency       w_c = (1 / f_c) / sum_j (1 / f_j)   (two classes: the seed's [alpha, 1 - alpha])
//! balanced                w_c = n / (K n_c)                    (scikit-learn's "balanced")
//! median_frequency        w_c = median_j(freq_j) / freq_c,  freq_c = n_c / (pixels of the images
//!                         in which c appears)                  (Eigen and Fergus 2015)
//! enet                    w_c = 1 / ln(c + f_c), c = 1.02      (Paszke et al. 2016)
//! effective_number        w_c ~ (1 - beta) / (1 - beta^n_c), scaled to sum to K   (Cui et al. 2019)
//! inverse_sqrt_frequency  w_c ~ 1 / sqrt(f_c), scaled to mean 1
//! ```
//! Sums, medians and scalings run over the classes present in the data; what absent classes get
//! is the [`AbsentClasses`] policy.
//!
//! # The seed's helper, and its two traps
//! The seed computes `alpha = positives / (H * W)` for a `[N, 1, H, W]` mask and passes
//! `weight = [alpha, 1 - alpha]` to `cross_entropy`. Two things go wrong there, and not here:
//! - it sums the positives of the whole batch but divides by one image's `H * W`, so with
//!   `N > 1` alpha can pass 1 and a weight goes negative; [`batch_weights`] divides by all the
//!   batch's labelled pixels, so the weights always lie in `[0, 1]`;
//! - an all-background batch gives `alpha = 0`, so the only class present weighs 0 and the
//!   weighted mean is `0 / 0 = NaN`; here the absent class gets the weight 0 and the present one
//!   the weight 1, so the loss stays finite.
//!
//! ```
//! use xent::weights::{batch_weights, AbsentClasses, Scheme};
//! use xent::View;
//! // [N=2, H=2, W=2]: 3 foreground pixels out of 8 in the batch.
//! let mask = [0u8, 1, 0, 0, 1, 1, 0, 0];
//! let w = batch_weights(View::new(&mask, &[2, 2, 2])?, 2, Some(255), Scheme::InverseFrequency, AbsentClasses::Zero)?;
//! assert_eq!(w, vec![3.0 / 8.0, 5.0 / 8.0]); // [alpha, 1 - alpha]
//! let background = [0u8; 8];
//! let w = batch_weights(View::new(&background, &[2, 2, 2])?, 2, Some(255), Scheme::InverseFrequency, AbsentClasses::Zero)?;
//! assert_eq!(w, vec![1.0, 0.0]); // not [0, 1], which would make the loss NaN
//! # Ok::<(), xent::Error>(())
//! ```

pub(crate) mod counts;
mod schemes;

pub use counts::ClassCounts;
pub use schemes::{batch_weights, AbsentClasses, RunningFrequencies, Scheme};
