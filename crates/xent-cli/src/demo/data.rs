//! The demo's data: seeded images of thin lines and dots (the rare foreground) among clutter,
//! from [`xent::testing::lines_and_dots`] (the framework examples train on the same).

pub(super) use xent::testing::{lines_and_dots as synthesize, Rng, Segmentation as Data};

/// Uniform in `[0, 1)`, as `f32`.
pub(super) fn uniform(rng: &mut Rng) -> f32 {
    rng.uniform() as f32
}
