//! The `xent` command's subcommands, as a library: the binary is a thin `main` over it, and the
//! fuzz targets reach its file readers (`npy`, `arrays`, `masks`, `nifti`, `tif`) through it.
#![forbid(unsafe_code)]
#![allow(missing_docs)] // reason: an internal library for the binary and the fuzz targets

pub mod arrays;
pub mod atomic;
pub mod bench;
pub mod demo;
pub mod draw;
pub mod loss;
pub mod masks;
pub mod nifti;
pub mod npy;
pub mod progress;
pub mod tif;
pub mod weights;
