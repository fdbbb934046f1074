//! Runtime dispatch to wider vector units, and the one place with intrinsics: everything of
//! the crate that needs `unsafe`.
//!
//! The kernels are plain safe Rust; [`run`] compiles each again inside functions that enable
//! AVX2 + FMA or AVX-512, and calls the widest one the CPU has. The maths and its order are the
//! same in every copy (Rust never fuses a multiply and an add on its own), so the bits do not
//! depend on the copy that runs. The intrinsics are the AVX-512 register transposes of the
//! scratch-tile copies ([`columns`], behind [`to_columns_f32`]), which only move values.
#![allow(unsafe_code)] // reason: calling `#[target_feature]` functions after detecting the feature, and AVX-512 loads and stores

#[cfg(target_arch = "x86_64")]
mod columns;

use super::count;
use crate::float::Label;

/// A vector unit the kernels are compiled for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Level {
    Baseline,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

fn level() -> Level {
    #[cfg(test)]
    match FORCED.load(std::sync::atomic::Ordering::Relaxed) {
        1 => return Level::Baseline,
        #[cfg(target_arch = "x86_64")]
        2 => return Level::Avx2,
        #[cfg(target_arch = "x86_64")]
        3 => return Level::Avx512,
        _ => {}
    }
    detected()
}

/// The widest vector unit this CPU has.
fn detected() -> Level {
    static LEVEL: std::sync::OnceLock<Level> = std::sync::OnceLock::new();
    *LEVEL.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512bw") {
                return Level::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                return Level::Avx2;
            }
        }
        Level::Baseline
    })
}

/// A kernel with its arguments: the one signature [`run`] dispatches. Implementations mark
/// `run` `#[inline(always)]`, so that the kernel is compiled into each vector-width copy.
pub(crate) trait Kernel {
    /// What the kernel returns.
    type Output;
    /// Runs the kernel.
    fn run(self) -> Self::Output;
}

/// Runs `k` on the widest vector unit of this CPU.
#[inline]
pub(crate) fn run<K: Kernel>(k: K) -> K::Output {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
        fn avx512<K: Kernel>(k: K) -> K::Output {
            k.run()
        }
        #[target_feature(enable = "avx2,fma")]
        fn avx2<K: Kernel>(k: K) -> K::Output {
            k.run()
        }
        match level() {
            // SAFETY: `level` found AVX-512F and BW (with AVX2 and FMA) on this CPU.
            Level::Avx512 => return unsafe { avx512(k) },
            // SAFETY: `level` found AVX2 and FMA on this CPU.
            Level::Avx2 => return unsafe { avx2(k) },
            Level::Baseline => {}
        }
    }
    k.run()
}

/// [`count::tally`](super::count) on the widest vector unit: the one kernel dispatched with its
/// arguments as parameters. Its compare-and-add loop keeps its 64 byte counters in a register
/// only when the slices are parameters of the vector-width copy (`noalias`); reached through
/// [`run`] and a struct, the counters go through memory every row and counting is 4.5 times
/// slower (`xent bench --workload count`: 26 ms against 4 ms).
pub(crate) fn tally<L: Label>(
    labels: &[L],
    ignore: Option<i64>,
    counts: &mut [u64],
) -> std::result::Result<u64, usize> {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
        fn avx512<L: Label>(labels: &[L], ignore: Option<i64>, counts: &mut [u64]) -> std::result::Result<u64, usize> {
            count::tally(labels, ignore, counts)
        }
        #[target_feature(enable = "avx2,fma")]
        fn avx2<L: Label>(labels: &[L], ignore: Option<i64>, counts: &mut [u64]) -> std::result::Result<u64, usize> {
            count::tally(labels, ignore, counts)
        }
        match level() {
            // SAFETY: `level` found AVX-512F and BW (with AVX2 and FMA) on this CPU.
            Level::Avx512 => return unsafe { avx512(labels, ignore, counts) },
            // SAFETY: `level` found AVX2 and FMA on this CPU.
            Level::Avx2 => return unsafe { avx2(labels, ignore, counts) },
            Level::Baseline => {}
        }
    }
    count::tally(labels, ignore, counts)
}

/// The scratch-tile copies (`tile::to_columns`, `tile::from_columns`) for `f32` rows of 5 to
/// 64 classes, in 16 x 16 blocks transposed by AVX-512 shuffles (the last block of a row
/// overlaps the one before when 16 does not divide the classes; fewer than 16 classes go under
/// masks): the plain copies move one value at a time and cost rows of 19 classes about as much
/// as the loss itself. Return false (nothing done) without AVX-512 or for fewer classes (2 to
/// 4 have their own vectorised copies). Values are only moved, so the result is the plain
/// copy's, bit for bit (tested).
pub(crate) fn to_columns_f32(rows: &[f32], xs: &mut [f32], classes: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    if classes >= 5 && level() == Level::Avx512 {
        // SAFETY: `level` found AVX-512F on this CPU.
        unsafe { columns::to_columns(rows, xs, classes) };
        return true;
    }
    let _ = (rows, xs, classes);
    false
}

/// The reverse of [`to_columns_f32`]: the class-major scratch back into rows.
pub(crate) fn from_columns_f32(xs: &[f32], rows: &mut [f32], classes: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    if classes >= 5 && level() == Level::Avx512 {
        // SAFETY: `level` found AVX-512F on this CPU.
        unsafe { columns::from_columns(xs, rows, classes) };
        return true;
    }
    let _ = (xs, rows, classes);
    false
}

/// The level a test forces on every thread (see [`at_each_level`]): 0 none, else 1 + the level.
#[cfg(test)]
static FORCED: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Runs `f` once with the dispatch forced to each vector unit, baseline first, and returns the
/// results of the levels this CPU has; prints which it skipped (and why), so that a test on a
/// smaller CPU says it compared fewer widths instead of passing as if it had compared them all.
#[cfg(test)]
pub(crate) fn at_each_level<R>(what: &str, f: impl Fn() -> R) -> Vec<R> {
    let mut all = vec![Level::Baseline];
    #[cfg(target_arch = "x86_64")]
    all.extend([Level::Avx2, Level::Avx512]);
    let have = |l: Level| match l {
        Level::Baseline => true,
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 => detected() != Level::Baseline,
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 => detected() == Level::Avx512,
    };
    // One forcing test at a time; tests running beside it are not disturbed, as every level
    // gives the same bits.
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = Vec::new();
    for l in all {
        if !have(l) {
            println!("{what}: skipped {l:?}: this CPU does not have it");
            continue;
        }
        let code = match l {
            Level::Baseline => 1,
            #[cfg(target_arch = "x86_64")]
            Level::Avx2 => 2,
            #[cfg(target_arch = "x86_64")]
            Level::Avx512 => 3,
        };
        FORCED.store(code, std::sync::atomic::Ordering::Relaxed);
        out.push(f());
        FORCED.store(0, std::sync::atomic::Ordering::Relaxed);
    }
    out
}
