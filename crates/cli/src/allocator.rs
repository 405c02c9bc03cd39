//! glibc allocator settings for the metric-heavy commands: scoring allocates and frees many short-lived
//! blocks of 0.1–2 MB (per-perturbation distance and cost matrices, cell sets). With glibc's defaults each
//! such block is a fresh `mmap` (or heap growth that is trimmed again), so the kernel zeroes its pages on
//! every use; keeping them in the heap made `bench --baseline` on a 200,000-cell screen about 5 % faster
//! at the same peak memory (BENCHMARKS.md, "Real-shaped screens"). The user's `MALLOC_*` environment
//! variables still take precedence: glibc reads them first, and nothing is set when any is present.

/// Keeps blocks up to 32 MiB in the heap (larger ones, whole matrices, are still mapped and returned
/// when freed) and trims the heap only when 128 MiB are free at its top (glibc on
/// Linux only; elsewhere nothing changes).
pub fn keep_medium_blocks_in_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::raw::c_int;
        extern "C" {
            fn mallopt(param: c_int, value: c_int) -> c_int;
        }
        const M_TRIM_THRESHOLD: c_int = -1;
        const M_MMAP_THRESHOLD: c_int = -3;
        if std::env::vars_os().any(|(k, _)| k.to_string_lossy().starts_with("MALLOC_")) {
            return;
        }
        // SAFETY: mallopt only changes allocator parameters; it is called before any thread starts.
        unsafe {
            mallopt(M_MMAP_THRESHOLD, 32 << 20);
            mallopt(M_TRIM_THRESHOLD, 128 << 20);
        }
    }
}
