//! How much memory glibc's malloc keeps for the engine.
//!
//! glibc gives each thread that meets a locked arena a new one, up to eight per core, and
//! keeps what is freed in each arena for reuse by that arena. The engine's ~30 threads
//! (query loops, tokio workers, librdkafka's broker threads) each allocate and free a
//! chunk's worth of Arrow buffers in turn, so every arena grew to the largest chunk it ever
//! saw: on the issue-8 benchmark a third of the peak RSS was free memory parked in arenas.
//! librdkafka allocates through the same malloc, so this covers its buffers too (a Rust
//! global allocator would not).

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod glibc {
    use std::sync::Once;

    static LIMITED: Once = Once::new();

    /// Whether the user chose the arena count (`MALLOC_ARENA_MAX` or the
    /// `glibc.malloc.arena_max` tunable): theirs wins.
    fn user_chose_arenas() -> bool {
        std::env::var_os("MALLOC_ARENA_MAX").is_some()
            || std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("arena_max"))
    }

    pub fn limit_arenas() {
        LIMITED.call_once(|| {
            if user_chose_arenas() {
                return;
            }
            // One arena per core: no more threads than cores allocate at the same moment.
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            let arenas = libc::c_int::try_from(cores).unwrap_or(libc::c_int::MAX);
            // SAFETY: mallopt only sets a malloc parameter; M_ARENA_MAX applies to arenas
            // created from now on.
            unsafe {
                libc::mallopt(libc::M_ARENA_MAX, arenas);
            }
        });
    }
}

/// Caps glibc's malloc arenas at one per core, once per process, unless the user set
/// `MALLOC_ARENA_MAX` or `GLIBC_TUNABLES=glibc.malloc.arena_max=N`. Call it before the
/// engine starts threads (a session does), so they share the arenas.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    glibc::limit_arenas();
}
