use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys::{
    mi_free, mi_malloc, mi_malloc_aligned, mi_realloc, mi_realloc_aligned, mi_zalloc,
    mi_zalloc_aligned,
};

// Each call allocates a few dozen short-lived buffers across the runtime's worker threads:
// mimalloc's per-thread heaps take about half the instructions of glibc's malloc for them, and
// no arena lock (bench/README.md).
#[global_allocator]
static ALLOCATOR: Mimalloc = Mimalloc;

/// mimalloc, asked for alignment only when a type needs more than a word.
///
/// The `mimalloc` crate passes every allocation to `mi_malloc_aligned`, which in mimalloc 3
/// falls back to over-allocating whenever its size class has no free block at hand: 89
/// instructions an allocation on average against `mi_malloc`'s 52, 1.6 k of the gateway's ~86 k
/// a call (bench/README.md). Every mimalloc block is at least word-aligned, so a word is what
/// `mi_malloc` promises.
struct Mimalloc;

const WORD: usize = std::mem::size_of::<usize>();

// SAFETY: each method hands the layout to the mimalloc function that honours it: the plain
// ones for alignments mimalloc's blocks always have, the `_aligned` ones otherwise; every
// pointer is freed by `mi_free`, which takes both kinds.
unsafe impl GlobalAlloc for Mimalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { allocate(layout, mi_malloc, mi_malloc_aligned) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        unsafe { allocate(layout, mi_zalloc, mi_zalloc_aligned) }
    }

    #[inline]
    unsafe fn dealloc(&self, block: *mut u8, _layout: Layout) {
        unsafe { mi_free(block.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let block = block.cast::<c_void>();
        let moved = match layout.align() <= WORD {
            true => unsafe { mi_realloc(block, new_size) },
            false => unsafe { mi_realloc_aligned(block, new_size, layout.align()) },
        };
        moved.cast()
    }
}

/// A block for `layout` from `plain` when a word's alignment is enough, else from `aligned`.
#[inline]
unsafe fn allocate(
    layout: Layout,
    plain: unsafe extern "C" fn(usize) -> *mut c_void,
    aligned: unsafe extern "C" fn(usize, usize) -> *mut c_void,
) -> *mut u8 {
    let block = match layout.align() <= WORD {
        true => unsafe { plain(layout.size()) },
        false => unsafe { aligned(layout.size(), layout.align()) },
    };
    block.cast()
}

fn main() -> std::process::ExitCode {
    mcpgate::cli::main()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_block_has_the_alignment_asked_for_and_keeps_its_bytes_when_it_grows() {
        for align in [1, 2, 4, 8, 16, 32, 64, 128, 4096] {
            for size in [1, 3, 7, 8, 12, 16, 24, 40, 100, 1000, 70_000] {
                let layout = Layout::from_size_align(size, align).expect("a valid layout");
                // Many of one size, so that a size class runs out of free blocks at hand.
                let blocks: Vec<*mut u8> = (0..300)
                    .map(|i| {
                        let block = match i % 2 {
                            0 => unsafe { ALLOCATOR.alloc(layout) },
                            _ => unsafe { ALLOCATOR.alloc_zeroed(layout) },
                        };
                        assert!(!block.is_null());
                        assert_eq!(block as usize % align, 0, "size {size}, align {align}");
                        if i % 2 == 1 {
                            let bytes = unsafe { std::slice::from_raw_parts(block, size) };
                            assert!(bytes.iter().all(|&b| b == 0));
                        }
                        unsafe { block.write_bytes(0xA5, size) };
                        block
                    })
                    .collect();
                for block in blocks {
                    let grown = unsafe { ALLOCATOR.realloc(block, layout, size * 3) };
                    assert_eq!(
                        grown as usize % align,
                        0,
                        "grown: size {size}, align {align}"
                    );
                    let kept = unsafe { std::slice::from_raw_parts(grown, size) };
                    assert!(kept.iter().all(|&b| b == 0xA5));
                    let grown_layout = Layout::from_size_align(size * 3, align).expect("valid");
                    unsafe { ALLOCATOR.dealloc(grown, grown_layout) };
                }
            }
        }
    }
}
