//! Counting heap allocations, for tests that check that a kernel's loop over events
//! allocates nothing: a test binary installs [`CountingAllocator`] as its global allocator
//! and measures a closure with [`allocations_during`].
//!
//! Allocations are counted per thread, so tests running in parallel in one binary do not
//! see each other's; the kernels under test must run on the calling thread (the per-event
//! APIs do).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    /// Allocations and reallocations of this thread so far.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// The system allocator, counting the allocations and reallocations of each thread.
#[derive(Debug)]
pub struct CountingAllocator;

// SAFETY: every call is forwarded unchanged to the system allocator, which upholds the
// `GlobalAlloc` contract; counting touches only a const-initialised thread-local without
// destructor, which never allocates.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: as `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: as `alloc`; `ptr` came from this allocator, i.e. from `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as `realloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

fn count() {
    // `try_with`: a thread being torn down has no counter any more.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

/// What `f` returns and how many allocations (and reallocations) it made on this thread.
///
/// # Panics
/// When the binary's global allocator is not [`CountingAllocator`] (a check that counts
/// nothing must not pass).
pub fn allocations_during<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let probe = allocations(|| std::hint::black_box(Vec::<u8>::with_capacity(8)));
    assert_eq!(
        probe, 1,
        "allocations are not counted: install CountingAllocator as #[global_allocator]"
    );
    let before = ALLOCATIONS.with(Cell::get);
    let result = f();
    let after = ALLOCATIONS.with(Cell::get);
    (result, after - before)
}

/// Allocations of `f` on this thread.
fn allocations<R>(f: impl FnOnce() -> R) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    drop(f());
    ALLOCATIONS.with(Cell::get) - before
}
