//! How fast a topic can be read without librdkafka in the data path: Kafka's Fetch request
//! (v4) over a plain TCP connection to the partitions' leader, and record batches (v2) parsed
//! in one pass, each value copied into one growing buffer as a chunk's value column would be.
//! A measurement for the design of a fetcher of our own (benches/RESULTS.md, "What remains"),
//! not a client: one broker leading every partition, no compression, no transactions, no
//! retries.
//!
//!     cargo bench --no-default-features --bench kafka_wire -- HOST:PORT TOPIC PARTITIONS
//!
//! Prints one JSON line: rows, value bytes, fetches, wall and CPU seconds. Compare with
//! `kafka_bench raw` (librdkafka, batch polls) on the same topic.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;

type Result<T> = std::result::Result<T, String>;

/// A reader over a response's bytes.
struct Bytes<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Bytes<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.data.len());
        let end = end.ok_or_else(|| format!("response cut short at byte {}", self.at))?;
        let out = &self.data[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn i8(&mut self) -> Result<i8> {
        Ok(i8::from_be_bytes([self.take(1)?[0]]))
    }

    fn i16(&mut self) -> Result<i16> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self) -> Result<i32> {
        let mut b = [0; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(i32::from_be_bytes(b))
    }

    fn i64(&mut self) -> Result<i64> {
        let mut b = [0; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(i64::from_be_bytes(b))
    }

    /// A zigzag varint (records' lengths and deltas).
    fn varint(&mut self) -> Result<i64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.take(1)?[0];
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok((value >> 1) as i64 ^ -((value & 1) as i64));
            }
        }
        Err(format!("a varint longer than 10 bytes at byte {}", self.at))
    }

    fn string(&mut self) -> Result<&'a [u8]> {
        let len = self.i16()?;
        self.take(usize::try_from(len).unwrap_or(0))
    }

    fn left(&self) -> usize {
        self.data.len() - self.at
    }
}

/// What the fetches have read so far.
#[derive(Default)]
struct Totals {
    rows: u64,
    fetches: u64,
    values: Vec<u8>,
    value_bytes: u64,
}

/// Parses one partition's record set from `next`, copying each value into `totals.values`
/// (cleared every 16 MB, as a chunk would be handed on). Returns the offset after the last
/// complete batch.
fn read_records(records: &[u8], mut next: i64, totals: &mut Totals) -> Result<i64> {
    let mut bytes = Bytes {
        data: records,
        at: 0,
    };
    while bytes.left() >= 12 {
        let start = bytes.at;
        let base_offset = bytes.i64()?;
        let length = usize::try_from(bytes.i32()?).map_err(|_| "a negative batch length")?;
        if bytes.left() < length {
            break; // a partial batch at the end of the response
        }
        let mut batch = Bytes {
            data: &records[start + 12..start + 12 + length],
            at: 0,
        };
        bytes.at = start + 12 + length;
        let _leader_epoch = batch.i32()?;
        let magic = batch.i8()?;
        if magic != 2 {
            return Err(format!(
                "record batch magic {magic} at offset {base_offset}"
            ));
        }
        let _crc = batch.i32()?;
        let attributes = batch.i16()?;
        if attributes & 0x07 != 0 {
            return Err("compressed batches are not measured here".into());
        }
        let last_delta = batch.i32()?;
        let _base_timestamp = batch.i64()?;
        let _max_timestamp = batch.i64()?;
        batch.take(8 + 2 + 4)?; // producer id, epoch, base sequence
        let count = batch.i32()?;
        for _ in 0..count {
            let _length = batch.varint()?;
            let _attributes = batch.i8()?;
            let _timestamp_delta = batch.varint()?;
            let offset = base_offset + batch.varint()?;
            let key = batch.varint()?;
            batch.take(usize::try_from(key).unwrap_or(0))?;
            let value_len = batch.varint()?;
            let value = batch.take(usize::try_from(value_len).unwrap_or(0))?;
            for _ in 0..batch.varint()? {
                let k = batch.varint()?;
                batch.take(usize::try_from(k).unwrap_or(0))?;
                let v = batch.varint()?;
                batch.take(usize::try_from(v).unwrap_or(0))?;
            }
            if offset < next {
                continue;
            }
            totals.rows += 1;
            totals.value_bytes += value.len() as u64;
            if totals.values.len() + value.len() > 16 << 20 {
                totals.values.clear();
            }
            totals.values.extend_from_slice(value);
        }
        next = next.max(base_offset + i64::from(last_delta) + 1);
    }
    Ok(next)
}

/// One Fetch v4 request for every partition of `topic` from `offsets`.
fn fetch_request(correlation: i32, topic: &str, offsets: &[i64]) -> Vec<u8> {
    let mut body = Vec::with_capacity(64 + 16 * offsets.len());
    body.extend_from_slice(&1i16.to_be_bytes()); // Fetch
    body.extend_from_slice(&4i16.to_be_bytes()); // v4
    body.extend_from_slice(&correlation.to_be_bytes());
    body.extend_from_slice(&10i16.to_be_bytes());
    body.extend_from_slice(b"kafka-wire");
    body.extend_from_slice(&(-1i32).to_be_bytes()); // a consumer, not a replica
    body.extend_from_slice(&500i32.to_be_bytes()); // max wait ms
    body.extend_from_slice(&1i32.to_be_bytes()); // min bytes
    body.extend_from_slice(&(64i32 << 20).to_be_bytes()); // max bytes
    body.push(0); // read_uncommitted
    body.extend_from_slice(&1i32.to_be_bytes());
    body.extend_from_slice(&(topic.len() as i16).to_be_bytes());
    body.extend_from_slice(topic.as_bytes());
    body.extend_from_slice(&(offsets.len() as i32).to_be_bytes());
    for (partition, offset) in offsets.iter().enumerate() {
        body.extend_from_slice(&(partition as i32).to_be_bytes());
        body.extend_from_slice(&offset.to_be_bytes());
        body.extend_from_slice(&(1i32 << 20).to_be_bytes()); // 1 MB, librdkafka's default
    }
    let mut request = (body.len() as i32).to_be_bytes().to_vec();
    request.extend_from_slice(&body);
    request
}

fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn run(address: &str, topic: &str, partitions: usize) -> Result<()> {
    let mut stream =
        TcpStream::connect(address).map_err(|e| format!("connecting to {address}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut offsets = vec![0i64; partitions];
    let mut ends = vec![i64::MAX; partitions];
    let mut totals = Totals::default();
    let mut response = Vec::new();
    let mut correlation = 0;
    while offsets.iter().zip(&ends).any(|(o, e)| o < e) {
        correlation += 1;
        stream
            .write_all(&fetch_request(correlation, topic, &offsets))
            .map_err(|e| format!("sending a fetch: {e}"))?;
        let mut size = [0; 4];
        stream
            .read_exact(&mut size)
            .map_err(|e| format!("reading a response: {e}"))?;
        let size = usize::try_from(i32::from_be_bytes(size)).map_err(|_| "a negative size")?;
        response.resize(size, 0);
        stream
            .read_exact(&mut response)
            .map_err(|e| format!("reading a response: {e}"))?;
        totals.fetches += 1;
        let mut bytes = Bytes {
            data: &response,
            at: 0,
        };
        let _correlation = bytes.i32()?;
        let _throttle = bytes.i32()?;
        for _ in 0..bytes.i32()? {
            bytes.string()?;
            for _ in 0..bytes.i32()? {
                let partition = usize::try_from(bytes.i32()?).map_err(|_| "a bad partition")?;
                let error = bytes.i16()?;
                if error != 0 {
                    return Err(format!("partition {partition}: error code {error}"));
                }
                let high_watermark = bytes.i64()?;
                let _last_stable = bytes.i64()?;
                let aborted = bytes.i32()?;
                bytes.take(16 * usize::try_from(aborted).unwrap_or(0))?;
                let length = bytes.i32()?;
                let records = bytes.take(usize::try_from(length).unwrap_or(0))?;
                let (Some(offset), Some(end)) =
                    (offsets.get_mut(partition), ends.get_mut(partition))
                else {
                    return Err(format!("a response for partition {partition}"));
                };
                *end = high_watermark;
                *offset = read_records(records, *offset, &mut totals)?;
            }
        }
    }
    let wall = started.elapsed().as_secs_f64();
    println!(
        r#"{{"rows":{},"value_bytes":{},"fetches":{},"wall_s":{wall:.3},"cpu_s":{:.2}}}"#,
        totals.rows,
        totals.value_bytes,
        totals.fetches,
        cpu_seconds()
    );
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let outcome = match args.as_slice() {
        [address, topic, partitions] => partitions
            .parse()
            .map_err(|_| format!("partitions: {partitions} is not a number"))
            .and_then(|p| run(address, topic, p)),
        _ => Err("usage: kafka_wire HOST:PORT TOPIC PARTITIONS".into()),
    };
    if let Err(message) = outcome {
        eprintln!("kafka_wire: {message}");
        std::process::exit(1);
    }
}
