//! Prefetch hints: ask the CPU to start loading memory that a packet a few places later in
//! the capture will read (its flow-index entry, its connection), so that the cache misses of
//! a table far larger than the caches overlap with the work on the packets before it.
//!
//! Only hints: nothing is read, and a wrong guess costs a little bandwidth, never a result.

/// Cache line size assumed for spreading hints over an object.
const LINE: usize = 64;

/// Starts loading the cache line holding `p`.
#[inline(always)]
pub fn line<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: a prefetch instruction is a hint; it never faults and reads nothing the
        // program sees, whatever the address.
        unsafe {
            core::arch::x86_64::_mm_prefetch(p.cast::<i8>(), core::arch::x86_64::_MM_HINT_T0)
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Starts loading every cache line of `value`.
#[inline]
pub fn object<T>(value: &T) {
    let start = (value as *const T).cast::<u8>();
    let mut offset = 0;
    while offset < size_of::<T>() {
        line(start.wrapping_add(offset));
        offset += LINE;
    }
}
