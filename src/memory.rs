//! How the `mcpops` binary tunes its allocator, mimalloc (the binary and
//! each bench declare it as the global allocator; the benches include this
//! file by its path, as the library does no process-global work): memory
//! freed by one backtest or query stays with the process for the next one
//! instead of going back to the kernel within a second, and the process's
//! memory comes in 4 KiB pages, not transparent huge pages.
//!
//! mimalloc purges an arena's free memory once its purge delay (1 s by
//! default) has run out since the first free. A process that replays rules
//! again and again (a benchmark, a long-running process, a library user)
//! then faults in and zeroes a few hundred megabytes per replay: a quarter
//! of its CPU time was in the kernel. With ten seconds it purges less (ten
//! replays: 0.33-0.37 s of kernel time against 0.6-1.6 s), and an idle
//! process still gives its memory back. Turning purging off altogether
//! gained nothing more: with ten seconds, all of a backtest's huge-page
//! faults already come in its first replay.
//!
//! C code does not go through Rust's allocator: zstd, inside parquet, makes
//! a compression and a decompression context for every column chunk it
//! reads, with glibc's malloc. glibc hands such blocks back to the kernel on
//! free (by unmapping them or by trimming the heap), so every scan faulted
//! in and zeroed them again: about 2,200 page faults per scan of the
//! 20-server week, nearly all of the scan's faults. With the thresholds
//! raised they stay with the process (700 faults over 21 scans instead of
//! 47,000; user time 5-20% lower).
//!
//! Transparent huge pages made a fresh process's first backtest stall.
//! mimalloc asks for them (`madvise(MADV_HUGEPAGE)` on its arenas), and on
//! kernels that defragment for such regions (`defrag` set to `madvise`, the
//! default) a fault may then compact memory before it can hand out 2 MiB:
//! the first backtest of the 20-server week took 1.0-2.0 s in a third of
//! the runs, with seconds of kernel time, and 0.25-0.27 s in the others.
//! With 4 KiB pages it took 0.28-0.34 s every time, and later backtests in
//! the process were no slower. A cron job is all first backtests.

use std::ffi::{c_int, c_long};

/// `mi_option_purge_delay` in mimalloc v3's `mi_option_e` (mimalloc.h):
/// libmimalloc-sys does not name it. The test below checks the index by the
/// option's default value.
const PURGE_DELAY: c_int = 15;

/// How long freed memory stays with the process, in milliseconds.
const KEEP_FREED_MS: c_long = 10_000;

/// `mi_option_allow_thp` in mimalloc v3's `mi_option_e`, checked like
/// [`PURGE_DELAY`].
const ALLOW_THP: c_int = 43;

/// Tunes the allocator as the module says. Call it first thing in `main`:
/// mimalloc's options are not safe to change while other threads allocate.
pub fn tune_allocator() {
    keep_freed_memory_for_reuse();
    keep_c_allocations_for_reuse();
    no_transparent_huge_pages();
}

/// Purges freed memory every ten seconds at most, unless the environment
/// sets `MIMALLOC_PURGE_DELAY` itself.
fn keep_freed_memory_for_reuse() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one integer option; called before other threads start.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, KEEP_FREED_MS) }
    }
}

/// What `MIMALLOC_ALLOW_THP=0` makes mimalloc do when it starts, which is
/// before `main`: no huge-page advice on new arenas, and THP off for the
/// process, which also covers the arena mimalloc has already advised (the
/// kernel checks the process's flag at every fault). Unless the
/// environment sets `MIMALLOC_ALLOW_THP` itself. Processes that mcpops
/// starts (remediation actions) inherit the flag, as they would mimalloc's.
fn no_transparent_huge_pages() {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
        return;
    }
    // SAFETY: sets one integer option; called before other threads start.
    unsafe { libmimalloc_sys::mi_option_set(ALLOW_THP, 0) }
    disable_thp_for_process();
}

#[cfg(target_os = "linux")]
fn disable_thp_for_process() {
    // SAFETY: sets one flag of the process; a kernel without it refuses
    // the call, which leaves things as they were.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

#[cfg(not(target_os = "linux"))]
fn disable_thp_for_process() {}

/// glibc's largest mmap threshold (`DEFAULT_MMAP_THRESHOLD_MAX` on 64-bit):
/// blocks below it come from the heap, not from a mapping of their own.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const GLIBC_MMAP_THRESHOLD_MAX: c_int = 32 << 20;

/// Raises glibc's mmap and trim thresholds so that blocks freed by C code
/// are reused, unless the environment tunes malloc itself.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_c_allocations_for_reuse() {
    if std::env::var_os("GLIBC_TUNABLES").is_some() {
        return;
    }
    // SAFETY: mallopt only sets malloc parameters; called before other
    // threads start. A refused value leaves glibc's default, which is safe.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, GLIBC_MMAP_THRESHOLD_MAX);
        libc::mallopt(libc::M_TRIM_THRESHOLD, c_int::MAX);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_c_allocations_for_reuse() {}

#[cfg(test)]
mod tests {
    use super::*;

    /// The options at `index` and its neighbours, as mimalloc has them.
    fn options_around(index: c_int) -> [c_long; 3] {
        // SAFETY: reads options; nothing in this test binary sets them.
        unsafe { [index - 1, index, index + 1].map(|i| libmimalloc_sys::mi_option_get(i)) }
    }

    #[test]
    fn the_purge_delay_index_names_the_purge_delay() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // mimalloc v3's defaults: its neighbours default to 1 (eager commit
        // delay) and 0 (NUMA nodes), the purge delay to 1000 ms.
        assert_eq!(options_around(PURGE_DELAY), [1, 1000, 0]);
    }

    #[test]
    fn the_allow_thp_index_names_allow_thp() {
        if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
            return;
        }
        // Its neighbours default to 32 (cross-thread page reclaims) and 0
        // (minimal purge size); allow_thp itself to 1 on Linux.
        assert_eq!(options_around(ALLOW_THP), [32, 1, 0]);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_process_stops_taking_huge_pages() {
        disable_thp_for_process();
        // SAFETY: reads one flag of the process.
        let disabled = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
        assert_eq!(disabled, 1);
    }
}
