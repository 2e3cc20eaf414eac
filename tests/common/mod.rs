//! Helpers shared by the integration tests (`mod common;` in each `tests/*.rs`).

// Each test binary compiles this module anew and uses only some of it; the rest would
// warn as dead code (an error under `clippy -- -D warnings`).
#![allow(dead_code)]

pub mod kafka;
