//! How much freed memory the allocator keeps for the engine.
//!
//! The engine's Rust allocations go through mimalloc (`lib.rs`): per-thread heaps without
//! the locks of glibc's arenas, which ~30 threads (query loops, their Kafka readers, tokio
//! workers, librdkafka's broker threads) took turns on. mimalloc returns the pages a thread
//! freed to the system after `purge_delay` (10 ms by default). The engine frees a chunk's
//! Arrow buffers on one thread while the next chunk's are allocated on another, so on the
//! issue-8 benchmark each thread's freed pages piled up for those 10 ms: 230–250 MB peak RSS
//! against 190–200 MB at 1 ms, for the same speed (purging at once: 165 MB, ~15 % slower).
//!
//! librdkafka's C allocations stay with glibc, with its default arenas: capped at one per
//! core (as before mimalloc), its broker threads and the readers freeing their messages
//! contended for them, ~10 % slower at the same peak RSS.

use std::sync::Once;

/// `mi_option_purge_delay` in mimalloc 2's `mi_option_t` (`mimalloc.h`); the crate's
/// bindings name the options around it but not this one.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Milliseconds mimalloc waits before it returns freed pages to the system.
const PURGE_DELAY_MS: std::ffi::c_long = 1;

static TUNED: Once = Once::new();

/// Sets mimalloc's purge delay, once per process, unless the user chose it
/// (`MIMALLOC_PURGE_DELAY`, or its old name `MIMALLOC_RESET_DELAY`): theirs wins. A session
/// calls it when it is created.
pub fn tune_allocator() {
    TUNED.call_once(|| {
        if ["MIMALLOC_PURGE_DELAY", "MIMALLOC_RESET_DELAY"]
            .iter()
            .any(|name| std::env::var_os(name).is_some())
        {
            return;
        }
        // SAFETY: mi_option_set stores an option's value; mimalloc reads it on its next purge.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, PURGE_DELAY_MS) };
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_sits_between_the_options_the_bindings_name() {
        assert_eq!(
            PURGE_DELAY,
            libmimalloc_sys::mi_option_eager_commit_delay + 1
        );
        assert_eq!(PURGE_DELAY, libmimalloc_sys::mi_option_use_numa_nodes - 1);
    }

    #[test]
    fn tuning_sets_the_purge_delay_unless_the_user_chose_one() {
        tune_allocator();
        // SAFETY: mi_option_get only reads an option.
        let delay = unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) };
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none()
            && std::env::var_os("MIMALLOC_RESET_DELAY").is_none()
        {
            assert_eq!(delay, PURGE_DELAY_MS);
        }
    }
}
