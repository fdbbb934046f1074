//! Fresh gradient buffers backed by transparent huge pages where Linux offers them, for the
//! framework adapters (xent-candle, xent-burn), whose frameworks take ownership of a gradient.
//!
//! A gradient as large as the scores (80 MB for `[8, 19, 256, 512]` in f32) is fresh memory in
//! every step: the framework's backward takes ownership of it. glibc maps such a block anew each time,
//! and writing it first faults in 4 KiB pages (about 20 ms for 80 MB here, more than the fused
//! kernel that writes it). Asking the kernel for huge pages on the block (`madvise`, what glibc's
//! `glibc.malloc.hugetlb=1` tunable does for every block) cuts that to a 512th of the faults.

/// Blocks below this are left to the allocator as they are.
const HUGE: usize = 4 << 20;

/// `n` zeros in fresh memory, advised for huge pages when large (the advice is a hint: where the
/// kernel has no transparent huge pages, or other systems, the memory is the allocator's as is).
pub fn zeros<T: crate::Float>(n: usize) -> Vec<T> {
    // From calloc: fresh pages are not touched until the kernel writes the gradient.
    let v = vec![T::ZERO; n];
    advise_large(v.as_ptr().cast(), size_of_val(v.as_slice()));
    v
}

/// `n` zeros of a type whose zero is not all-zero bytes to the allocator (bf16, f16), advised
/// before they are written.
pub fn filled<S: crate::Element>(n: usize) -> Vec<S> {
    let mut v: Vec<S> = Vec::with_capacity(n);
    advise_large(v.as_ptr().cast(), n * size_of::<S>());
    v.resize(n, S::narrow(<S::Math as crate::Float>::ZERO));
    v
}

fn advise_large(start: *const u8, bytes: usize) {
    if bytes >= HUGE {
        advise(start, bytes);
    }
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn advise(start: *const u8, bytes: usize) {
    const PAGE: usize = 2 << 20;
    // The whole 2 MiB pages inside the block, not written yet.
    let a = (start as usize).div_ceil(PAGE) * PAGE;
    let e = (start as usize + bytes) / PAGE * PAGE;
    if e > a {
        // SAFETY: [a, e) lies inside the vector's allocation, which we own; MADV_HUGEPAGE only
        // changes how the kernel backs the range, never its contents (no data is discarded).
        // The result is ignored: an error means only that the hint is not taken.
        unsafe {
            libc::madvise(a as *mut libc::c_void, e - a, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise(_: *const u8, _: usize) {}
