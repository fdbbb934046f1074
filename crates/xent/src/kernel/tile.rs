//! What the class-axis kernels share: tiles of `TILE` consecutive positions as the vector
//! lanes (classes `class_stride` apart, looped over), and the row-wise reductions.
//!
//! Rows (`[N, C]`, the classes of a position contiguous) of at most `SMALL` classes are copied
//! into a class-major scratch tile ([`to_columns`]) so that they run through the same tile
//! code; longer rows are reduced in `TILE` lanes ([`row_max`], [`row_exp_sum`]). The scratch
//! is `C x TILE` values on the stack, never a logits-sized copy: the logits are still read once
//! from memory, in place.

use super::block::{Block, ClassOut, Lanes};
use super::simd;
use crate::float::{Element, Float, Label, Targets};
use std::hint::select_unpredictable;

/// Lanes per tile: a tile's logits stay in L1.
pub(crate) const TILE: usize = 128;

/// `max_c v_c` over the values that are not NaN, in `TILE` independent lanes so that it
/// vectorises (`x > a ? x : a` is one `max` instruction, and never takes a NaN). A NaN reaches
/// the sum of exponentials instead, which makes the loss NaN all the same; and no `v_c - m` is
/// positive.
///
/// Every lane update of the kernels' `TILE`-lane arrays (which live on the stack) is written
/// so that the value stored is not a select of the value loaded ([`lane_max`], and the target
/// picks as sums): LLVM turns `a[j] = if c { x } else { a[j] }` into a masked store
/// (`vmaskmovps`), which the next class's load of the same lanes cannot forward from.
#[inline(always)]
pub(crate) fn row_max<T: Float>(v: &[T]) -> T {
    let mut acc = [T::NEG_INFINITY; TILE];
    for c in v.chunks(TILE) {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a = lane_max(x, *a);
        }
    }
    max_lanes(&acc[..v.len().min(TILE)])
}

/// `x > a ? x : a` (one `vmaxps`, which never takes a NaN `x`) for a lane array's element `a`,
/// plus `+0`, so that LLVM cannot store it as a masked store of `x` (see [`row_max`]); even
/// `select_unpredictable` alone became one in some copies of the kernels: the bf16 seg19
/// forward spent 10% of its time on the load after it. The `+0` only turns a `-0` maximum
/// into `+0`, which changes the sign of a zero `x - m` at most: no loss or gradient.
#[inline(always)]
pub(crate) fn lane_max<T: Float>(x: T, a: T) -> T {
    select_unpredictable(x > a, x, a) + T::ZERO
}

/// `s_j += e^(x_j - m_j)` for one class's lanes `xs` (`m`, `s`: the tile's lane arrays), each
/// `e^(x_j - m_j)` also written to `out` if given (where the gradient is then finished in
/// place). Two copies of the loop, so that neither stores under a condition (which keeps the
/// loop scalar).
#[inline(always)]
pub(crate) fn add_exp<I: Element<Math = T>, T: Float>(xs: &[I], m: &[T], s: &mut [T], out: Option<&mut [T]>) {
    let n = xs.len();
    let (m, s) = (&m[..n], &mut s[..n]);
    match out {
        Some(o) => {
            let o = &mut o[..n];
            for j in 0..n {
                let e = (xs[j].widen() - m[j]).exp_fast();
                o[j] = e;
                s[j] += e;
            }
        }
        None => {
            for j in 0..n {
                s[j] += (xs[j].widen() - m[j]).exp_fast();
            }
        }
    }
}

/// The largest of at most `TILE` lanes that is not NaN: 16 at a time, then those 16.
#[inline(always)]
pub(crate) fn max_lanes<T: Float>(a: &[T]) -> T {
    let mut v = [T::NEG_INFINITY; 16];
    // Whole chunks with a constant count (so that `v` stays in a register), then the rest.
    let chunks = a.chunks_exact(16);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..16 {
            v[i] = select_unpredictable(c[i] > v[i], c[i], v[i]);
        }
    }
    for (m, &x) in v.iter_mut().zip(rest) {
        *m = select_unpredictable(x > *m, x, *m);
    }
    let mut m = T::NEG_INFINITY;
    for x in v {
        m = select_unpredictable(x > m, x, m);
    }
    m
}

/// The sum of at most `TILE` lanes: 16 at a time, then those 16 in order.
#[inline(always)]
pub(crate) fn sum_lanes<T: Float>(a: &[T]) -> T {
    let mut v = [T::ZERO; 16];
    // As in `max_lanes`: the same additions in the same order.
    let chunks = a.chunks_exact(16);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..16 {
            v[i] += c[i];
        }
    }
    for (s, &x) in v.iter_mut().zip(rest) {
        *s += x;
    }
    let mut s = T::ZERO;
    for x in v {
        s += x;
    }
    s
}

/// `(sum_c e^(v_c - m), sum_c w_c (v_c - m))` in `TILE` lanes (a fixed order), the second
/// only if `smooth` (`w_c = 1` without weights); each `e^(v_c - m)` is also written to `out`
/// if it is not empty.
#[inline(always)]
pub(crate) fn row_exp_sum<T: Float>(v: &[T], m: T, out: &mut [T], smooth: bool, w: Option<&[T]>) -> (T, T) {
    let mut acc = [T::ZERO; TILE];
    let mut accw = [T::ZERO; TILE];
    for (i, c) in v.chunks(TILE).enumerate() {
        let n = c.len();
        if out.is_empty() {
            for j in 0..n {
                acc[j] += (c[j] - m).exp_fast();
            }
        } else {
            let o = &mut out[i * TILE..i * TILE + n];
            for j in 0..n {
                let e = (c[j] - m).exp_fast();
                o[j] = e;
                acc[j] += e;
            }
        }
        if smooth {
            match w {
                Some(w) => {
                    let wc = &w[i * TILE..i * TILE + n];
                    for j in 0..n {
                        accw[j] += wc[j] * (c[j] - m);
                    }
                }
                None => {
                    for j in 0..n {
                        accw[j] += c[j] - m;
                    }
                }
            }
        }
    }
    let used = v.len().min(TILE);
    (sum_lanes(&acc[..used]), sum_lanes(&accw[..used]))
}

/// Rows of at most this many classes go through a scratch tile: per row, the row path's
/// sums across lanes, its scalar `ln` and its partly filled vectors cost more than the row
/// itself (`[2^23 / C, C]` cross-entropy on one thread, forward: 8 to 13 ms for C <= 64 this
/// way, 18 ms the row way at C = 65). A scratch tile is `SMALL * TILE` values of stack (32 KiB
/// in f32, 64 KiB in f64); the driver holds two, or three for a kernel with a second input.
pub(crate) const SMALL: usize = 64;

/// A class-major scratch tile: class `c` at `c * TILE`.
pub(crate) struct Scratch<'a, T>(pub &'a mut [T]);

impl<T> Lanes<T> for Scratch<'_, T> {
    #[inline(always)]
    fn lanes(&mut self, c: usize) -> &mut [T] {
        &mut self.0[c * TILE..(c + 1) * TILE]
    }
    #[inline(always)]
    fn lanes2(&mut self) -> (&mut [T], &mut [T]) {
        let (a, b) = self.0.split_at_mut(TILE);
        (a, &mut b[..TILE])
    }
}

/// A kernel whose tile code gains from a constant lane count (its lane arrays then stay in
/// registers) runs a full tile as its own copy: `if t.n == TILE { tile(Tile { n: TILE, ..t }) }`.
/// Not every one does (the two-class cross-entropy is slower so), so each kernel chooses.
///
/// Where a tile is: `n <= TILE` consecutive positions as the vector lanes, the block's
/// positions `k0..k0 + n`, classes `cs` apart in its inputs (class `c`'s values are
/// `x[c * cs..][..n]` of the `x` handed beside it); it writes its outputs into lanes
/// `at..at + n` of each class.
#[derive(Clone, Copy)]
pub(crate) struct Tile {
    pub cs: usize,
    pub k0: usize,
    pub n: usize,
    pub at: usize,
}

/// A class-axis kernel as the driver sees it: its maths on a tile, and on one long row.
///
/// Every method is `#[inline(always)]` in the implementations: the driver runs inside the
/// dispatched copies (AVX2, AVX-512), and a method that is not inlined there would be compiled
/// for the baseline CPU (no FMA). The inputs `x` and `y` are parameters of their own, never
/// fields of a struct: only a slice that is a parameter is known not to overlap the outputs,
/// and without that the loops that read `x` and write `out` are not vectorised as well.
pub(crate) trait TileKernel<T: Float> {
    /// Whether the kernel reads a second class-shaped input (probability targets).
    const PAIRED: bool;
    /// The tile's losses (kept by the kernel) and its class-shaped output into `out`, if given;
    /// `x` and `y` start at the tile's first position, stored in `I` (each value widened as it
    /// is read: in registers, for `bf16` and `f16`).
    fn tile<I: Element<Math = T>, G: Lanes<T>>(&mut self, x: &[I], y: &[I], t: Tile, out: Option<&mut G>);
    /// Position `k` of block `b` of rows of more than [`SMALL`] classes (contiguous) of the
    /// whole inputs `x` and `y`, its outputs into `out.row(k)`, if given.
    fn row(&mut self, x: &[T], y: &[T], b: &Block, k: usize, out: Option<&mut ClassOut<'_, T>>);
}

/// Runs a class-axis kernel over block `b` of `x` (and of `y`, for a paired kernel), stored in
/// `I`, classes `cs` apart, its class-shaped output into `out`:
/// - strided positions (`[N, C, d..]`, `inner > 1`) a tile of `TILE` at a time, in place (half
///   values widened in registers as the tile reads them);
/// - rows of at most [`SMALL`] classes (`[N, C]`) copied class-major, `TILE` rows at a time,
///   into a scratch tile on the stack, run through the same tile code with the rows as its
///   lanes, and the output copied back;
/// - longer rows one at a time ([`TileKernel::row`]).
///
/// Rows stored in `bf16` or `f16` are first widened a block at a time into an `f32` scratch
/// (at most 8 x [`BLOCK_ELEMS`](crate::par::BLOCK_ELEMS) values; never a copy of the whole
/// input).
#[inline(always)]
fn drive<I: Element<Math = T>, T: Float, K: TileKernel<T>>(
    k: &mut K,
    (x, y): (&[I], &[I]),
    b: Block,
    (cs, classes): (usize, usize),
    mut out: Option<&mut ClassOut<'_, T>>,
) {
    if b.lane_stride == 1 && cs != 1 {
        for k0 in (0..b.len).step_by(TILE) {
            let n = TILE.min(b.len - k0);
            let y = if K::PAIRED { b.from(y, k0) } else { &[][..] };
            k.tile(b.from(x, k0), y, Tile { cs, k0, n, at: k0 }, out.as_deref_mut());
        }
        return;
    }
    let (mut xs, mut ys): (Pooled<T>, Pooled<T>);
    let (x, y, b) = match (I::as_math(x), I::as_math(y)) {
        (Some(xm), Some(ym)) => (xm, ym, b),
        _ => {
            (xs, ys) = (Pooled::take(), Pooled::take());
            widen_block(x, &mut xs, b, cs, classes, true);
            if K::PAIRED {
                widen_block(y, &mut ys, b, cs, classes, true);
            }
            (&xs[..], &ys[..], Block { p0: b.p0, len: b.len, base: 0, lane_stride: classes })
        }
    };
    if (1..=SMALL).contains(&classes) {
        if K::PAIRED {
            let mut ys = [T::ZERO; SMALL * TILE];
            scratch_rows(k, x, Some((y, &mut ys)), b, classes, out);
        } else {
            scratch_rows(k, x, None, b, classes, out);
        }
    } else {
        for kk in 0..b.len {
            k.row(x, y, &b, kk, out.as_deref_mut());
        }
    }
}

/// [`drive`] with an output stored in `O`: written in place when stored as the maths type
/// (`f32`, `f64`); for `bf16` and `f16` computed into an `f32` scratch of the block's size and
/// rounded back once.
#[inline(always)]
pub(crate) fn drive_stored<I, O, T, K>(
    k: &mut K,
    (x, y): (&[I], &[I]),
    b: Block,
    (cs, classes): (usize, usize),
    out: Option<&mut ClassOut<'_, O>>,
) where
    I: Element<Math = T>,
    O: Element<Math = T>,
    T: Float,
    K: TileKernel<T>,
{
    // No closures here: a closure is compiled apart from the dispatched copy that runs this
    // (without FMA: `mul_add` becomes a libm call), so every step is inline code or an
    // `#[inline(always)]` function.
    let Some(out) = out else { return drive(k, (x, y), b, (cs, classes), None) };
    if let Some(mut om) = in_place(out) {
        return drive(k, (x, y), b, (cs, classes), Some(&mut om));
    }
    let mut os = Pooled::zeros(b.len * classes);
    let mut om = scratch_out(&mut os, out.rowwise, classes, b.len);
    drive(k, (x, y), b, (cs, classes), Some(&mut om));
    narrow_out(&os, out, b.len);
}

/// A block's scratch vector, from this thread's pool and handed back to it when dropped.
///
/// Blocks of half inputs are widened into (and half gradients computed in) scratches of up to
/// 8 x [`BLOCK_ELEMS`](crate::par::BLOCK_ELEMS) values (512 KiB in f32): over glibc's mmap
/// threshold, where a fresh vector for each block costs an mmap, its pages faulted in and an
/// munmap. `xent bench --workload cls19 --dtype bf16` took 49 ms forward+backward so, 14 ms
/// with the vectors kept. A thread keeps at most [`Pooled::KEEP`] of them, each of at most
/// [`Pooled::MAX`] values (16 MiB a thread in f32; longer rows, whose blocks are a row, free
/// theirs).
pub(crate) struct Pooled<T: Float>(Vec<T>);

impl<T: Float> Pooled<T> {
    const KEEP: usize = 4;
    const MAX: usize = 1 << 20;

    /// A vector of unspecified values (those it last held), as many as it last held.
    pub(crate) fn take() -> Self {
        Pooled(T::pool().try_with(|p| p.borrow_mut().pop()).ok().flatten().unwrap_or_default())
    }

    /// `n` zeros.
    pub(crate) fn zeros(n: usize) -> Self {
        let mut v = Self::take();
        v.0.clear();
        v.0.resize(n, T::ZERO);
        v
    }
}

impl<T: Float> std::ops::Deref for Pooled<T> {
    type Target = Vec<T>;
    fn deref(&self) -> &Vec<T> {
        &self.0
    }
}

impl<T: Float> std::ops::DerefMut for Pooled<T> {
    fn deref_mut(&mut self) -> &mut Vec<T> {
        &mut self.0
    }
}

impl<T: Float> Drop for Pooled<T> {
    fn drop(&mut self) {
        if (1..=Self::MAX).contains(&self.0.capacity()) {
            let v = std::mem::take(&mut self.0);
            // At a thread's exit its pool may be gone already: the vector is then freed.
            let _ = T::pool().try_with(|p| {
                let mut p = p.borrow_mut();
                if p.len() < Self::KEEP {
                    p.push(v);
                }
            });
        }
    }
}

/// Block `b`'s values of `v` (classes `cs` apart) as the maths type, with the block and class
/// stride that address them: `v` itself for `f32` and `f64`; for `bf16` and `f16` widened into
/// `buf` (classes `b.len` apart, or as rows). For the overlap kernels, whose tiles read the
/// maths type (the tile driver's kernels read half values in registers instead).
#[inline(always)]
pub(crate) fn math_block<'v, I: Element<Math = T>, T: Float>(
    v: &'v [I],
    buf: &'v mut Vec<T>,
    b: Block,
    cs: usize,
    classes: usize,
) -> (&'v [T], Block, usize) {
    if let Some(vm) = I::as_math(v) {
        return (vm, b, cs);
    }
    let rowwise = !(b.lane_stride == 1 && cs != 1);
    widen_block(v, buf, b, cs, classes, rowwise);
    let local = Block { p0: b.p0, len: b.len, base: 0, lane_stride: if rowwise { classes } else { 1 } };
    (&buf[..], local, if rowwise { cs } else { b.len })
}

/// Block `b`'s values of `v` (classes `cs` apart) widened into `buf`, classes `b.len` apart
/// (or as rows).
#[inline(always)]
fn widen_block<I: Element<Math = T>, T: Float>(
    v: &[I],
    buf: &mut Vec<T>,
    b: Block,
    cs: usize,
    classes: usize,
    rowwise: bool,
) {
    let (len, n) = (b.len, b.len * classes);
    buf.resize(n, T::ZERO);
    if rowwise {
        I::widen_slice(&v[b.base..][..n], buf);
    } else {
        for c in 0..classes {
            I::widen_slice(&v[b.base + c * cs..][..len], &mut buf[c * len..][..len]);
        }
    }
}

/// A block's class-shaped output as the maths type, in place: `Some` for `f32` and `f64`.
#[inline(always)]
pub(crate) fn in_place<'o, O: Element<Math = T>, T: Float>(out: &'o mut ClassOut<'_, O>) -> Option<ClassOut<'o, T>> {
    O::as_math(&[])?;
    let segs = out.segs.iter_mut().map(|s| O::as_math_mut(s).expect("stored as the maths type")).collect();
    Some(ClassOut { segs, rowwise: out.rowwise, classes: out.classes })
}

/// A class-shaped output of `len` positions over the scratch `os` (`len * classes` values).
#[inline(always)]
pub(crate) fn scratch_out<T>(os: &mut [T], rowwise: bool, classes: usize, len: usize) -> ClassOut<'_, T> {
    let segs = if rowwise { vec![os] } else { os.chunks_mut(len.max(1)).take(classes).collect() };
    ClassOut { segs, rowwise, classes }
}

/// The scratch `os` of [`scratch_out`] rounded once into the block's output `out`.
#[inline(always)]
pub(crate) fn narrow_out<O: Element<Math = T>, T: Float>(os: &[T], out: &mut ClassOut<'_, O>, len: usize) {
    if out.rowwise {
        O::narrow_slice(os, out.segs[0]);
    } else {
        for (c, seg) in out.segs.iter_mut().enumerate() {
            O::narrow_slice(&os[c * len..][..len], seg);
        }
    }
}

/// [`drive`]'s rows of at most [`SMALL`] classes, through scratch tiles.
#[inline(always)]
fn scratch_rows<T: Float, K: TileKernel<T>>(
    k: &mut K,
    x: &[T],
    mut y: Option<(&[T], &mut [T; SMALL * TILE])>,
    b: Block,
    classes: usize,
    mut out: Option<&mut ClassOut<'_, T>>,
) {
    let (mut xs, mut os) = ([T::ZERO; SMALL * TILE], [T::ZERO; SMALL * TILE]);
    for k0 in (0..b.len).step_by(TILE) {
        let n = TILE.min(b.len - k0);
        let rows = b.base + k0 * classes..b.base + (k0 + n) * classes;
        to_columns(&x[rows.clone()], &mut xs, classes);
        if let Some((y, ys)) = &mut y {
            to_columns(&y[rows], &mut ys[..], classes);
        }
        let ys: &[T] = y.as_ref().map_or(&[], |(_, ys)| &ys[..]);
        let mut scratch = Scratch(&mut os);
        k.tile(&xs, ys, Tile { cs: TILE, k0, n, at: 0 }, out.is_some().then_some(&mut scratch));
        if let Some(o) = &mut out {
            from_columns(&os, o.rows(k0, n), classes);
        }
    }
}

/// Targets read by a kernel compiled once per score type (see [`Targets`]).
impl Targets<'_> {
    /// [`labels`] of positions `p0..p0 + n` (`n <= TILE`): one call per tile, compiled once per
    /// label type outside the kernels.
    #[inline(never)]
    pub(crate) fn lanes(self, ignore_index: Option<i64>, p0: usize, n: usize) -> [u32; TILE] {
        match self {
            Targets::U8(t) => labels(ignore_index, t, p0, n),
            Targets::U16(t) => labels(ignore_index, t, p0, n),
            Targets::U32(t) => labels(ignore_index, t, p0, n),
            Targets::U64(t) => labels(ignore_index, t, p0, n),
            Targets::Usize(t) => labels(ignore_index, t, p0, n),
            Targets::I8(t) => labels(ignore_index, t, p0, n),
            Targets::I16(t) => labels(ignore_index, t, p0, n),
            Targets::I32(t) => labels(ignore_index, t, p0, n),
            Targets::I64(t) => labels(ignore_index, t, p0, n),
        }
    }

    /// [`Label::bin`] of positions `p0..p0 + n` (`n <= TILE`; lanes past `n` hold `classes`):
    /// one call per tile, compiled once per label type outside the kernels.
    #[inline(never)]
    pub(crate) fn bins(self, classes: u32, ignore: Option<i64>, p0: usize, n: usize) -> [u32; TILE] {
        fn of<L: Label>(t: &[L], classes: u32, ignore: Option<i64>) -> [u32; TILE] {
            let mut lab = [classes; TILE];
            lab.iter_mut().zip(t).for_each(|(l, t)| *l = t.bin(classes, ignore));
            lab
        }
        let r = p0..p0 + n;
        match self {
            Targets::U8(t) => of(&t[r], classes, ignore),
            Targets::U16(t) => of(&t[r], classes, ignore),
            Targets::U32(t) => of(&t[r], classes, ignore),
            Targets::U64(t) => of(&t[r], classes, ignore),
            Targets::Usize(t) => of(&t[r], classes, ignore),
            Targets::I8(t) => of(&t[r], classes, ignore),
            Targets::I16(t) => of(&t[r], classes, ignore),
            Targets::I32(t) => of(&t[r], classes, ignore),
            Targets::I64(t) => of(&t[r], classes, ignore),
        }
    }

    /// [`Label::class_of`] of the target at `pos`.
    #[inline(never)]
    pub(crate) fn class_at(self, pos: usize, ignore_index: i64) -> Option<usize> {
        match self {
            Targets::U8(t) => t[pos].class_of(ignore_index),
            Targets::U16(t) => t[pos].class_of(ignore_index),
            Targets::U32(t) => t[pos].class_of(ignore_index),
            Targets::U64(t) => t[pos].class_of(ignore_index),
            Targets::Usize(t) => t[pos].class_of(ignore_index),
            Targets::I8(t) => t[pos].class_of(ignore_index),
            Targets::I16(t) => t[pos].class_of(ignore_index),
            Targets::I32(t) => t[pos].class_of(ignore_index),
            Targets::I64(t) => t[pos].class_of(ignore_index),
        }
    }
}

/// Per lane of positions `p0..p0 + n`: the class label (`u32::MAX` if ignored).
#[inline(always)]
pub(crate) fn labels<L: Label>(ignore_index: Option<i64>, target: &[L], p0: usize, n: usize) -> [u32; TILE] {
    let mut lab = [u32::MAX; TILE];
    for (j, l) in lab[..n].iter_mut().enumerate() {
        let t = target[p0 + j];
        if let Some(t) = ignore_index.map_or(Some(t.to_i128() as usize), |ii| t.class_of(ii)) {
            *l = t as u32;
        }
    }
    lab
}

/// Rows `[n, classes]` into the class-major scratch (class `c` at `c * TILE`).
#[inline(always)]
pub(crate) fn to_columns<T: Float>(rows: &[T], xs: &mut [T], classes: usize) {
    if let (Some(r), Some(x)) = (T::f32s(rows), T::f32s_mut(xs)) {
        if simd::to_columns_f32(r, x, classes) {
            return;
        }
    }
    // A constant count lets the copy vectorise (interleaved loads).
    match classes {
        2 => to_columns2(rows, xs),
        3 => to_columns_of(rows, xs, 3),
        4 => to_columns_of(rows, xs, 4),
        c => to_columns_of(rows, xs, c),
    }
}

/// [`to_columns_of`] for two classes: into the two class lanes as separate slices, so that the
/// copy is a vector de-interleave rather than a store at a time.
#[inline(always)]
fn to_columns2<T: Copy>(rows: &[T], xs: &mut [T]) {
    let (a, b) = xs.split_at_mut(TILE);
    for ((a, b), r) in a.iter_mut().zip(b.iter_mut()).zip(rows.chunks_exact(2)) {
        (*a, *b) = (r[0], r[1]);
    }
}

/// [`from_columns_of`] for two classes (as [`to_columns2`]).
#[inline(always)]
fn from_columns2<T: Copy>(xs: &[T], rows: &mut [T]) {
    let (a, b) = xs.split_at(TILE);
    for ((&a, &b), r) in a.iter().zip(b).zip(rows.chunks_exact_mut(2)) {
        (r[0], r[1]) = (a, b);
    }
}

#[inline(always)]
pub(crate) fn to_columns_of<T: Copy>(rows: &[T], xs: &mut [T], classes: usize) {
    for (j, row) in rows.chunks_exact(classes).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            xs[c * TILE + j] = v;
        }
    }
}

/// The class-major scratch back into rows `[n, classes]`.
#[inline(always)]
pub(crate) fn from_columns<T: Float>(xs: &[T], rows: &mut [T], classes: usize) {
    if let (Some(x), Some(r)) = (T::f32s(xs), T::f32s_mut(rows)) {
        if simd::from_columns_f32(x, r, classes) {
            return;
        }
    }
    // As in `to_columns` (interleaved stores).
    match classes {
        2 => from_columns2(xs, rows),
        3 => from_columns_of(xs, rows, 3),
        4 => from_columns_of(xs, rows, 4),
        c => from_columns_of(xs, rows, c),
    }
}

#[inline(always)]
pub(crate) fn from_columns_of<T: Copy>(xs: &[T], rows: &mut [T], classes: usize) {
    for (j, row) in rows.chunks_exact_mut(classes).enumerate() {
        for (c, v) in row.iter_mut().enumerate() {
            *v = xs[c * TILE + j];
        }
    }
}
