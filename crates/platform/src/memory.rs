//! Process memory settings every Backflow binary applies before it starts work.
//!
//! Transparent huge pages are turned off for the process. mimalloc asks for them
//! (`MADV_HUGEPAGE` on its 1 GiB arena), and every first touch of a 2 MiB region then
//! zeroes a whole huge page in the fault, often on guest memory the hypervisor has not
//! backed yet. On the 1M-row sync bench that was 12–16% of the process's CPU in
//! `clear_page_erms` (Arrow builders, request bodies and diff entries are allocated and
//! freed all the time); with ordinary pages it fell to ~1% and the process's CPU by
//! ~0.4 s. The dbt parser binary measured the same (0.7–1.3 s of system time against
//! ~0.35 s). Database servers give the same advice (Redis, MongoDB, PostgreSQL).

/// Turns transparent huge pages off for this process and its children
/// (`prctl(PR_SET_THP_DISABLE)`; read at fault time, so it also covers memory the
/// allocator reserved before `main`). `false` where the kernel refused (or not Linux);
/// the process then runs as before.
pub fn disable_transparent_huge_pages() -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0)` only sets a flag on this
        // process's memory map; no memory of this process is read or written.
        unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0 }
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(target_os = "linux")]
    fn huge_pages_are_off_once_disabled() {
        assert!(super::disable_transparent_huge_pages());
        // SAFETY: PR_GET_THP_DISABLE reads the flag; no memory is passed.
        let flag = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
        assert_eq!(flag, 1);
    }
}
