//! Gives libFuzzer's `-malloc_limit_mb` teeth without a sanitizer.
//!
//! libFuzzer checks the size of every allocation against `-malloc_limit_mb` (default: the
//! `-rss_limit_mb`) through malloc hooks that only a sanitizer runtime normally installs. With
//! `--sanitizer none` only the RSS, sampled once a second, is watched, and that misses a huge
//! allocation whose pages are never touched (a `Vec::reserve` sized from the wire). Here the
//! program provides the hook-installing function libFuzzer looks for
//! (`__sanitizer_install_malloc_and_free_hooks`) and a global allocator that calls the hooks, so
//! one allocation over the limit stops the run at once as `oom-<sha1>` with a Rust backtrace
//! (printed through `__sanitizer_print_stack_trace`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

type MallocHook = unsafe extern "C" fn(ptr: *const u8, size: usize);
type FreeHook = unsafe extern "C" fn(ptr: *const u8);

static MALLOC_HOOK: AtomicUsize = AtomicUsize::new(0);
static FREE_HOOK: AtomicUsize = AtomicUsize::new(0);
/// Set while the malloc hook looks at an allocation large enough to be refused, so that only
/// that path prints a backtrace (never a signal handler that may interrupt the allocator).
static BIG_ALLOC: AtomicBool = AtomicBool::new(false);
const BIG: usize = 1 << 20;

/// Called once by libFuzzer at start-up (it is a weak symbol on its side).
#[unsafe(no_mangle)]
pub extern "C" fn __sanitizer_install_malloc_and_free_hooks(
    malloc_hook: Option<MallocHook>,
    free_hook: Option<FreeHook>,
) -> i32 {
    MALLOC_HOOK.store(malloc_hook.map_or(0, |f| f as usize), Ordering::Release);
    FREE_HOOK.store(free_hook.map_or(0, |f| f as usize), Ordering::Release);
    1
}

/// libFuzzer prints this before it reports an over-limit allocation.
#[unsafe(no_mangle)]
pub extern "C" fn __sanitizer_print_stack_trace() {
    if BIG_ALLOC.load(Ordering::Acquire) {
        eprintln!("{}", std::backtrace::Backtrace::force_capture());
    }
}

/// Reports an allocation to libFuzzer *before* it is made, so that one too large to succeed
/// is still reported as over the limit rather than as an allocation failure.
fn on_malloc(size: usize) {
    let ptr = std::ptr::null::<u8>();
    let h = MALLOC_HOOK.load(Ordering::Acquire);
    if h != 0 {
        // SAFETY: `h` came from libFuzzer as a `MallocHook`.
        let hook: MallocHook = unsafe { std::mem::transmute::<usize, MallocHook>(h) };
        if size >= BIG {
            BIG_ALLOC.store(true, Ordering::Release);
            unsafe { hook(ptr, size) };
            BIG_ALLOC.store(false, Ordering::Release);
        } else {
            unsafe { hook(ptr, size) };
        }
    }
}

fn on_free(ptr: *mut u8) {
    let h = FREE_HOOK.load(Ordering::Acquire);
    if h != 0 {
        // SAFETY: `h` came from libFuzzer as a `FreeHook`.
        let hook: FreeHook = unsafe { std::mem::transmute::<usize, FreeHook>(h) };
        unsafe { hook(ptr) };
    }
}

pub struct Hooked;

unsafe impl GlobalAlloc for Hooked {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        on_malloc(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        on_malloc(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        on_free(ptr);
        unsafe { System.dealloc(ptr, layout) };
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        on_malloc(new_size);
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            on_free(ptr);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Hooked = Hooked;
