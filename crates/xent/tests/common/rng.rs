//! The workspace's one seeded generator.

#[allow(unused_imports)] // reason: not every test binary draws random data
pub use xent::testing::Rng;
