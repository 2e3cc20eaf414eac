//! Keyed state: accumulators, the windowed aggregation operator and the values they hold,
//! and streaming deduplication. State is bounded by open windows × keys (or by the watermark
//! for deduplication) and snapshotted by the checkpoint.

pub mod accumulator;
pub mod aggregate;
pub mod dedup;
mod fold;
mod key_ids;
pub mod value;
