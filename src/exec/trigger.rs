//! Spark's triggers: the default (next batch as soon as the last ends), `processingTime`,
//! `once` and `availableNow`.

use std::time::Duration;

use serde::Deserialize;

use crate::error::Result;
use crate::illegal;
use crate::window::parse_interval;

/// When batches run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// As soon as the previous batch ends and data is there.
    Default,
    /// At fixed intervals.
    ProcessingTime(Duration),
    /// One batch of everything available, then stop.
    Once,
    /// Everything available at start, in batches that honour the read limits, then stop.
    AvailableNow,
}

/// The trigger as Python sends it.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct TriggerSpec {
    /// `default`, `processing_time`, `once` or `available_now`.
    #[serde(default)]
    pub kind: Option<String>,
    /// The interval as Spark text (`"10 seconds"`), for processing_time.
    #[serde(default)]
    pub interval: Option<String>,
}

impl TriggerSpec {
    /// Resolves the trigger.
    pub fn resolve(&self) -> Result<Trigger> {
        Ok(match self.kind.as_deref().unwrap_or("default") {
            "default" => Trigger::Default,
            "once" => Trigger::Once,
            "available_now" => Trigger::AvailableNow,
            "processing_time" => {
                let text = self.interval.as_deref().unwrap_or("0 seconds");
                let micros = parse_interval(text)
                    .map_err(|e| illegal!("trigger(processingTime='{text}'): {e}"))?;
                if micros < 0 {
                    return Err(illegal!(
                        "trigger(processingTime='{text}'): must not be negative"
                    ));
                }
                if micros == 0 {
                    Trigger::Default
                } else {
                    Trigger::ProcessingTime(Duration::from_micros(micros as u64))
                }
            }
            other => {
                return Err(illegal!(
                    "unknown trigger '{other}': use processingTime, once or availableNow"
                ))
            }
        })
    }
}
