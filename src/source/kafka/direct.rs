//! Reading a batch's chunks over Kafka's wire protocol (`wire`), the source's default on
//! plain-text, read_uncommitted connections (option `fetcher`): a fetch per partition leader
//! for every partition still being read, each record routed into its chunk straight from the
//! response's bytes. On the seed pipeline's 5 M ticks this took a run from 3.0-4.1 s to
//! 2.2-2.4 s, with ~1 CPU-s less (benches/RESULTS.md).
//!
//! Whatever the direct reader does not handle is left to librdkafka, from the offset it
//! reached: an error code in a response (a leader moved, an offset out of range), a broker it
//! cannot reach, or a partition whose log ends before the read's end; librdkafka then
//! reports, retries and waits as it always does, and the next batch is read directly again.
//! A compressed or pre-v2 batch hands the source to librdkafka for good.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use rdkafka::consumer::Consumer;

use super::chunks::{Reading, Router};
use super::wire::{self, Connection};
use super::{KafkaSource, TopicPartition};
use crate::error::{Error, Result};
use crate::source::Cancel;

/// The direct reader's connections and what it knows of partition leaders.
#[derive(Default)]
pub(super) struct Direct {
    connections: HashMap<String, Connection>,
    leaders: HashMap<TopicPartition, String>,
}

/// How long opening a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the direct reader handed over to librdkafka.
enum Handover {
    /// A batch it does not read (compressed, or an older format).
    Unsupported(String),
    /// An error code, a broker it cannot reach, a log that ends early: it tries again next
    /// batch.
    Transient(String),
}

impl Direct {
    /// The leader of `tp` as `host:port`, from metadata when not known yet.
    fn leader(
        &mut self,
        client: &super::Client,
        tp: &TopicPartition,
        timeout: Duration,
    ) -> std::result::Result<String, String> {
        if let Some(address) = self.leaders.get(tp) {
            return Ok(address.clone());
        }
        let metadata = client
            .fetch_metadata(Some(&tp.0), timeout)
            .map_err(|e| format!("metadata of {}: {e}", tp.0))?;
        let brokers: HashMap<i32, String> = metadata
            .brokers()
            .iter()
            .map(|b| (b.id(), format!("{}:{}", b.host(), b.port())))
            .collect();
        for topic in metadata.topics().iter().filter(|t| t.name() == tp.0) {
            for partition in topic.partitions() {
                if let Some(address) = brokers.get(&partition.leader()) {
                    self.leaders
                        .insert((tp.0.clone(), partition.id()), address.clone());
                }
            }
        }
        self.leaders
            .get(tp)
            .cloned()
            .ok_or_else(|| format!("no leader known for {}-{}", tp.0, tp.1))
    }

    fn connection(
        &mut self,
        address: &str,
        timeout: Duration,
    ) -> std::result::Result<&mut Connection, String> {
        if !self.connections.contains_key(address) {
            // A broker that does not answer is left to librdkafka soon, not after the
            // source's whole timeout per batch.
            let connection = Connection::open(address, timeout.min(CONNECT_TIMEOUT))?;
            self.connections.insert(address.to_string(), connection);
        }
        self.connections
            .get_mut(address)
            .ok_or_else(|| format!("no connection to {address}"))
    }
}

impl KafkaSource {
    /// Reads what it can of `reading` directly. True when every partition is read to its end;
    /// false when librdkafka is to read the rest, from each partition's `resume`.
    pub(super) fn read_direct(
        &mut self,
        reading: &mut [Reading],
        router: &mut Router<'_>,
        cancel: &Cancel,
    ) -> Result<bool> {
        let Some(mut direct) = self.direct.take() else {
            return Ok(false);
        };
        if !self.positions.is_empty() {
            // librdkafka's consumer would go on prefetching what this reads.
            if let Err(e) = self.consumer.unassign() {
                log::debug!("kafka source: unassigning before a direct read: {e}");
            }
        }
        self.positions.clear();
        self.buffered.clear();
        let outcome = self.read_direct_with(&mut direct, reading, router, cancel);
        match &outcome {
            Ok(Err(Handover::Unsupported(why))) => {
                // A compressing producer compresses every batch: reading each batch's first
                // fetch twice, and assigning librdkafka's consumer anew every batch, would
                // cost more than it saves. librdkafka reads this source from now on.
                log::info!("kafka source: reading with librdkafka from now on: {why}");
                return Ok(false);
            }
            Ok(Err(Handover::Transient(why))) => {
                log::info!("kafka source: reading on with librdkafka: {why}");
                direct.leaders.clear();
            }
            _ => {}
        }
        self.direct = Some(direct);
        outcome.map(|read| read.is_ok())
    }

    fn read_direct_with(
        &self,
        direct: &mut Direct,
        reading: &mut [Reading],
        router: &mut Router<'_>,
        cancel: &Cancel,
    ) -> Result<std::result::Result<(), Handover>> {
        let include_headers = router.include_headers;
        loop {
            if cancel.is_cancelled() {
                return Err(Error::Stopped);
            }
            let mut by_leader: BTreeMap<String, Vec<usize>> = BTreeMap::new();
            for (index, state) in reading.iter().enumerate().filter(|(_, r)| r.pending()) {
                match direct.leader(&self.offsets, &state.tp, self.timeout) {
                    Ok(address) => by_leader.entry(address).or_default().push(index),
                    Err(why) => return Ok(Err(Handover::Transient(why))),
                }
            }
            if by_leader.is_empty() {
                return Ok(Ok(()));
            }
            let mut progressed = false;
            for (address, states) in by_leader {
                let wanted: Vec<(String, i32, i64)> = states
                    .iter()
                    .map(|&i| (reading[i].tp.0.clone(), reading[i].tp.1, reading[i].resume))
                    .collect();
                let wanted: Vec<(&str, i32, i64)> = wanted
                    .iter()
                    .map(|(t, p, o)| (t.as_str(), *p, *o))
                    .collect();
                let connection = match direct.connection(&address, self.timeout) {
                    Ok(connection) => connection,
                    Err(why) => return Ok(Err(Handover::Transient(why))),
                };
                let parts = match connection.fetch(&wanted) {
                    Ok(parts) => parts,
                    Err(why) => {
                        direct.connections.remove(&address);
                        return Ok(Err(Handover::Transient(format!("{address}: {why}"))));
                    }
                };
                for part in parts {
                    let found = states.iter().copied().find(|&i| {
                        reading[i].tp.1 == part.partition
                            && reading[i].tp.0.as_bytes() == part.topic
                    });
                    let Some(index) = found else { continue };
                    let state = &mut reading[index];
                    if part.error != 0 {
                        return Ok(Err(Handover::Transient(format!(
                            "{}-{}: error code {} from {address}",
                            state.tp.0, state.tp.1, part.error
                        ))));
                    }
                    let until = state.until;
                    let mut routed = Ok(());
                    // The offset after the last record handed on: where librdkafka starts if
                    // the record set turns out unreadable after some of its records.
                    let mut reached = state.resume;
                    let read = wire::read_records(
                        part.records,
                        state.resume,
                        include_headers,
                        &mut |view| {
                            if view.offset >= until {
                                return Ok(false);
                            }
                            routed = router.deliver(state, view);
                            if routed.is_ok() {
                                reached = view.offset + 1;
                            }
                            Ok(routed.is_ok())
                        },
                    );
                    routed?;
                    let tp = format!("{}-{}", state.tp.0, state.tp.1);
                    let (next, handover) = match read {
                        Ok(read) => (
                            read.next,
                            read.unsupported
                                .map(|why| Handover::Unsupported(format!("{tp}: {why}"))),
                        ),
                        Err(why) => (reached, Some(Handover::Transient(format!("{tp}: {why}")))),
                    };
                    if next > state.resume {
                        state.resume = next;
                        router.route(state, None, next)?;
                        progressed = true;
                    }
                    if let Some(handover) = handover {
                        return Ok(Err(handover));
                    }
                    if state.pending() && state.resume >= part.high_watermark {
                        return Ok(Err(Handover::Transient(format!(
                            "{tp}: the log ends at {} before this read's end",
                            part.high_watermark
                        ))));
                    }
                }
            }
            if !progressed {
                return Ok(Err(Handover::Transient("a fetch returned nothing".into())));
            }
        }
    }
}
