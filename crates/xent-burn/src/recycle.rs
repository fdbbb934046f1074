//! Gradient memory recycled from one training step to the next.
//!
//! A loss's gradient is as large as its scores (80 MB for `[8, 19, 256, 512]` in f32), and burn
//! takes ownership of every gradient handed to it. In a plain `Vec` that is fresh memory each step:
//! the allocator maps a new block and the operating system zeroes its pages when the kernel first
//! writes them, a cost about as large as the fused kernel itself (BENCHMARKS.md, "Through burn").
//! So a large gradient lives in a block that goes back to a small pool when burn drops the tensor
//! (in a training loop, during the next layer's backward pass), and the next gradient of the same
//! length takes it. The kernels write every element of a gradient (xent's `Backward` contract:
//! overwritten, never added to), so what a block held before never shows: the results are the
//! same bits as with fresh memory.
//!
//! At most [`KEEP`] blocks of each element type wait in the pool; they are freed when a newer
//! block displaces them or the process ends. Blocks under [`LARGE`] bytes are left to the
//! allocator, which reuses small blocks well by itself.

use std::mem::{ManuallyDrop, MaybeUninit};
use std::ptr::NonNull;
use std::sync::Mutex;

use burn_backend::{AllocationProperty, Bytes, TensorData};
use burn_flex::FlexTensor;
use burn_std::{AccessError, AccessPolicy, AllocationController};
use xent::{bf16, f16};

/// The most blocks of one element type the pool keeps (a step's loss gradient, and one more for
/// a second loss of the same size).
pub(crate) const KEEP: usize = 2;

/// Blocks of at least this many bytes are recycled.
pub(crate) const LARGE: usize = 4 << 20;

/// A gradient element type with its pool and its fresh memory.
pub(crate) trait Recycled: burn_backend::Element + bytemuck::Pod + Send + Sync {
    /// The blocks of this type waiting to be reused.
    fn pool() -> &'static Mutex<Vec<Vec<Self>>>;
    /// `n` elements of fresh memory ([`xent::fresh`]: advised for huge pages when large).
    fn fresh(n: usize) -> Vec<Self>;
}

macro_rules! recycled {
    ($t:ty, $fresh:path) => {
        impl Recycled for $t {
            fn pool() -> &'static Mutex<Vec<Vec<Self>>> {
                static POOL: Mutex<Vec<Vec<$t>>> = Mutex::new(Vec::new());
                &POOL
            }
            fn fresh(n: usize) -> Vec<Self> {
                $fresh(n)
            }
        }
    };
}
recycled!(f32, xent::fresh::zeros::<f32>);
recycled!(f64, xent::fresh::zeros::<f64>);
recycled!(bf16, xent::fresh::filled::<bf16>);
recycled!(f16, xent::fresh::filled::<f16>);

fn pool<S: Recycled>() -> std::sync::MutexGuard<'static, Vec<Vec<S>>> {
    // A panic while the lock was held left the list itself whole.
    S::pool().lock().unwrap_or_else(|e| e.into_inner())
}

/// A buffer of `n` elements for a gradient that overwrites it: a pooled block of that length
/// if one waits (holding an earlier gradient's values), else fresh memory.
pub(crate) fn buffer<S: Recycled>(n: usize) -> Vec<S> {
    if n * size_of::<S>() >= LARGE {
        let mut pool = pool::<S>();
        if let Some(i) = pool.iter().position(|b| b.len() == n) {
            return pool.swap_remove(i);
        }
    }
    S::fresh(n)
}

/// The gradient `v` as a Flex tensor of dimensions `shape`, whose block goes back to the pool
/// when burn drops the tensor (large blocks; small ones are an ordinary tensor).
pub(crate) fn tensor<S: Recycled>(v: Vec<S>, shape: Vec<usize>) -> FlexTensor {
    let bytes = size_of_val(v.as_slice());
    if bytes < LARGE {
        return FlexTensor::from_data(TensorData::new(v, shape));
    }
    let block: Box<dyn AllocationController> = Box::new(Block(Some(v)));
    // SAFETY: the block's first `bytes` bytes are its vector's elements, all initialised.
    #[allow(unsafe_code)]
    let bytes = unsafe { Bytes::from_controller(block, bytes) };
    FlexTensor::from_data(TensorData::from_bytes(bytes, shape, S::dtype()))
}

/// A gradient's memory as burn's `Bytes` hold it: the vector, returned to the pool on drop
/// (`None` once burn has taken the vector for itself).
struct Block<S: Recycled>(Option<Vec<S>>);

impl<S: Recycled> Block<S> {
    fn vec(&self) -> &Vec<S> {
        self.0.as_ref().expect("a block is read only while it holds its vector")
    }
}

#[allow(unsafe_code)]
impl<S: Recycled> AllocationController for Block<S> {
    fn alloc_align(&self) -> usize {
        align_of::<S>()
    }

    fn property(&self) -> AllocationProperty {
        AllocationProperty::Native
    }

    unsafe fn memory_mut(&mut self, _: AccessPolicy) -> Result<&mut [MaybeUninit<u8>], AccessError> {
        let v = self.0.as_mut().expect("a block is written only while it holds its vector");
        let len = v.capacity() * size_of::<S>();
        // SAFETY: the vector's whole allocation, `len` bytes, owned and borrowed mutably here;
        // the caller writes only initialised bytes (the trait's contract).
        Ok(unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast(), len) })
    }

    fn memory(&self, _: AccessPolicy) -> Result<&[MaybeUninit<u8>], AccessError> {
        let v = self.vec();
        // SAFETY: the vector's whole allocation, borrowed with `self`; bytes past its length are
        // exposed as `MaybeUninit`, never as values.
        Ok(unsafe { std::slice::from_raw_parts(v.as_ptr().cast(), v.capacity() * size_of::<S>()) })
    }

    fn capacity(&self) -> usize {
        self.vec().capacity() * size_of::<S>()
    }

    fn try_detach(&mut self) -> Option<NonNull<u8>> {
        // burn makes a `Vec<S>` of the allocation (same element size and alignment, checked by
        // the caller): the vector leaves the pool's cycle with it.
        let mut v = ManuallyDrop::new(self.0.take()?);
        NonNull::new(v.as_mut_ptr().cast())
    }
}

impl<S: Recycled> Drop for Block<S> {
    fn drop(&mut self) {
        let Some(v) = self.0.take() else { return };
        let mut pool = pool::<S>();
        let displaced = (pool.len() >= KEEP).then(|| pool.remove(0));
        pool.push(v);
        drop(pool);
        drop(displaced); // freed outside the lock
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A large gradient tensor's block is the next buffer of its length; a small one is not
    /// pooled.
    #[test]
    fn blocks_come_back() {
        let n = LARGE / size_of::<f64>() + 3;
        let a = buffer::<f64>(n);
        let pa = a.as_ptr();
        let t = tensor(a, vec![n]);
        assert_eq!(t.as_slice::<f64>().map(|s| s.as_ptr()), Some(pa), "the tensor reads the block in place");
        drop(t);
        let b = buffer::<f64>(n);
        assert_eq!(b.as_ptr(), pa, "the dropped tensor's block is reused");
        assert_eq!(buffer::<f64>(n).len(), n, "with the pool empty, fresh memory");
        let small = buffer::<f64>(8);
        drop(tensor(small, vec![8]));
        assert!(pool::<f64>().iter().all(|b| b.len() != 8), "small blocks are not pooled");
        drop(b);
    }

    /// Gradients written into recycled blocks are the core's, bit for bit: two steps on scores of
    /// the same size, the second written over the first's block (whose values differ everywhere,
    /// the positions the second step ignores included).
    #[test]
    fn recycled_gradients_are_the_cores() {
        use burn_tensor::{Device, Int, Tensor};
        use xent::{CrossEntropyLoss, CrossEntropyOptions, Loss, View};
        let shape = [2, 8, 256, 256];
        let [n, c, h, w] = shape;
        let len = n * c * h * w;
        assert!(len * size_of::<f32>() >= LARGE);
        let weight = vec![0.5, 1.0, 2.0, 1.5, 0.25, 1.0, 3.0, 0.75];
        let opts = CrossEntropyOptions { weight: Some(weight.clone()), ignore_index: 255, ..Default::default() };
        let weight = Some(weight.iter().map(|&v| v as f32).collect());
        let core =
            CrossEntropyLoss::<f32>::new(CrossEntropyOptions { weight, ignore_index: 255, ..Default::default() });
        let core = core.unwrap();
        let device = Device::flex().autodiff();
        let mut rng = xent::testing::Rng::new(7);
        for (step, every) in [7, 11].into_iter().enumerate() {
            let x: Vec<f32> = (0..len).map(|_| rng.normal(2.0) as f32).collect();
            let t: Vec<i64> = (0..n * h * w).map(|i| if i % every == 0 { 255 } else { rng.below(c) as i64 }).collect();
            let waiting = pool::<f32>().iter().any(|b| b.len() == len);
            assert_eq!(waiting, step == 1, "step {step}: the first step's block waits for the second");
            let xt = Tensor::<4>::from_data(burn_tensor::TensorData::new(x.clone(), shape), &device).require_grad();
            let tt = Tensor::<3, Int>::from_data(burn_tensor::TensorData::new(t.clone(), [n, h, w]), &device);
            let grads = crate::cross_entropy(xt.clone(), tt, &opts).unwrap().backward();
            let got: Vec<f32> = xt.grad(&grads).unwrap().into_data().try_to_vec().unwrap();
            let mut want = vec![f32::NAN; len];
            core.forward_backward(
                View::new(&x, &shape).unwrap(),
                View::new(&t, &[n, h, w]).unwrap(),
                &[1.0],
                &mut want,
            )
            .unwrap();
            assert!(got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()), "step {step}: gradients differ");
        }
    }
}
