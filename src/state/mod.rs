//! Keyed aggregation state: accumulators, the windowed aggregation operator, and the values
//! they hold. State is bounded by open windows × keys and snapshotted by the checkpoint.

pub mod accumulator;
pub mod aggregate;
pub mod value;
