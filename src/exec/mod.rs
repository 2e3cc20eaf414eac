//! The micro-batch engine: compiled plans, the loop that runs them, triggers and progress.

mod agg_input;
pub mod bad_records;
pub mod batch_read;
mod compiled_scan;
pub mod memory;
pub mod pipeline;
pub mod progress;
pub mod query;
pub mod runtime;
pub mod scan;
pub mod shared_scan;
pub mod stateless;
pub mod trigger;

pub use pipeline::Pipeline;
pub use query::{QuerySpec, StreamingQuery};
pub use trigger::{Trigger, TriggerSpec};
