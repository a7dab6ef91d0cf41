//! Replays every file of `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/`
//! through the fuzz targets' bodies (`neo_peer::fuzzing`), on stable Rust.
//!
//! Besides the targets' own assertions, each input is held to two bounds:
//! no single allocation larger than max(1 MiB, k × input length) (k = 64, or
//! 256 where LZ4 may expand the input 255 times), far below the 32 MiB payload
//! cap, so a length read from the input never sizes an allocation by itself;
//! and no input takes longer than a few seconds.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use neo_peer::fuzzing::{TARGETS, expansion};

/// Counts the largest single allocation made by this thread.
struct Counting;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
}

// SAFETY: every call is forwarded to the system allocator unchanged; the
// bookkeeping touches only a const-initialised thread-local `Cell`.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Longest any one input may take (a debug build, on a shared machine).
const MAX_TIME: Duration = Duration::from_secs(5);

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_corpus_and_regression_input_passes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut total = 0;
    for &(target, run) in TARGETS {
        let mut inputs = files(&root.join("corpus").join(target));
        inputs.extend(files(&root.join("regressions").join(target)));
        assert!(
            !inputs.is_empty(),
            "no corpus for {target} under {}",
            root.display()
        );
        for path in &inputs {
            let data = std::fs::read(path).unwrap();
            let cap = (1 << 20).max(expansion(target) * data.len());
            LARGEST.with(|l| l.set(0));
            let started = Instant::now();
            run(&data);
            let took = started.elapsed();
            let largest = LARGEST.with(|l| l.get());
            assert!(
                largest <= cap,
                "{}: one allocation of {largest} bytes for {} input bytes (cap {cap})",
                path.display(),
                data.len()
            );
            assert!(took <= MAX_TIME, "{}: took {took:?}", path.display());
        }
        total += inputs.len();
    }
    eprintln!("replayed {total} inputs through {} targets", TARGETS.len());
}

/// The cap itself is enforced: a decoder that sized a buffer from a declared
/// length would be caught.
#[test]
fn the_allocation_cap_catches_a_declared_length() {
    LARGEST.with(|l| l.set(0));
    let v: Vec<u8> = Vec::with_capacity(32 << 20);
    drop(v);
    assert!(LARGEST.with(|l| l.get()) >= 32 << 20);
}
