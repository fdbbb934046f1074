//! xent's integration tests, in one binary: the generic losses they instantiate are built and
//! linked once, not once per file (the golden runner, a plain `main`, is its own binary).

#[path = "../common/mod.rs"]
mod common;

mod api;
mod half;
mod hostile;
mod imbalance;
mod layers;
mod linear;
mod properties;
mod weights;
