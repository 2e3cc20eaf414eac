//! Kafka's wire protocol, as much as reading records needs: a Fetch request (v4) on a
//! plain-text connection to a partition's leader, and record batches (v2) parsed in one pass,
//! each record handed on as a view of the response's bytes.
//!
//! librdkafka parses every record into a heap-allocated message that the consuming thread
//! frees: on the 5 M-tick benchmark topic that costs ~2 CPU-s where one pass over the bytes
//! costs ~0.5 (benches/RESULTS.md). Anything this does not read
//! (compressed or pre-v2 batches, an error code) is reported, and the source reads on with
//! librdkafka (`direct`).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::columns::{HeaderList, MessageView};

/// Bytes a fetch asks per partition (librdkafka's default) and in all.
const PARTITION_BYTES: i32 = 1 << 20;
const RESPONSE_BYTES: i32 = 16 << 20;
/// How long the broker may hold a fetch for data that is not there yet.
const MAX_WAIT_MS: i32 = 100;

/// A reader over bytes of a response, failing on a short read.
struct Bytes<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Bytes<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&end| end <= self.data.len());
        let end = end.ok_or_else(|| format!("a response cut short at byte {}", self.at))?;
        let out = &self.data[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn i8(&mut self) -> Result<i8, String> {
        Ok(i8::from_be_bytes(self.array()?))
    }

    fn i16(&mut self) -> Result<i16, String> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    fn i32(&mut self) -> Result<i32, String> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    /// A zigzag varint: records' lengths and deltas.
    fn varint(&mut self) -> Result<i64, String> {
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

    /// `len` bytes after a length field, or None for a null (negative length).
    fn sized(&mut self, len: i64) -> Result<Option<&'a [u8]>, String> {
        match usize::try_from(len) {
            Ok(len) => self.take(len).map(Some),
            Err(_) => Ok(None),
        }
    }

    fn left(&self) -> usize {
        self.data.len() - self.at
    }
}

/// One partition's part of a fetch response.
pub(super) struct PartitionData<'a> {
    pub topic: &'a [u8],
    pub partition: i32,
    /// Kafka's error code (0: none).
    pub error: i16,
    pub high_watermark: i64,
    pub records: &'a [u8],
}

/// A plain-text connection to one broker.
pub(super) struct Connection {
    stream: TcpStream,
    correlation: i32,
    response: Vec<u8>,
}

impl Connection {
    /// Connects within `timeout`; reads and writes time out after `timeout` too.
    pub fn open(address: &str, timeout: Duration) -> Result<Self, String> {
        let addresses = address
            .to_socket_addrs()
            .map_err(|e| format!("resolving {address}: {e}"))?;
        let mut last = format!("{address} resolves to no address");
        for socket in addresses {
            match TcpStream::connect_timeout(&socket, timeout) {
                Ok(stream) => {
                    let set = stream
                        .set_nodelay(true)
                        .and_then(|()| stream.set_read_timeout(Some(timeout)))
                        .and_then(|()| stream.set_write_timeout(Some(timeout)));
                    set.map_err(|e| format!("configuring the connection to {address}: {e}"))?;
                    return Ok(Connection {
                        stream,
                        correlation: 0,
                        response: Vec::new(),
                    });
                }
                Err(e) => last = format!("connecting to {address}: {e}"),
            }
        }
        Err(last)
    }

    /// Fetches each `(topic, partition, offset)` and returns the partitions of the response.
    pub fn fetch(&mut self, wanted: &[(&str, i32, i64)]) -> Result<Vec<PartitionData<'_>>, String> {
        self.correlation = self.correlation.wrapping_add(1);
        let request = fetch_request(self.correlation, wanted)?;
        self.stream
            .write_all(&request)
            .map_err(|e| format!("sending a fetch: {e}"))?;
        let mut size = [0; 4];
        self.stream
            .read_exact(&mut size)
            .map_err(|e| format!("reading a fetch response: {e}"))?;
        let size = usize::try_from(i32::from_be_bytes(size))
            .map_err(|_| "a fetch response of negative size".to_string())?;
        self.response.resize(size, 0);
        self.stream
            .read_exact(&mut self.response)
            .map_err(|e| format!("reading a fetch response: {e}"))?;
        parse_fetch_response(&self.response, self.correlation)
    }
}

/// A Fetch v4 request: read_uncommitted, the topics in the order of `wanted`.
fn fetch_request(correlation: i32, wanted: &[(&str, i32, i64)]) -> Result<Vec<u8>, String> {
    let mut body = Vec::with_capacity(64 + 32 * wanted.len());
    body.extend_from_slice(&1i16.to_be_bytes()); // Fetch
    body.extend_from_slice(&4i16.to_be_bytes());
    body.extend_from_slice(&correlation.to_be_bytes());
    let client = b"ferrostream";
    body.extend_from_slice(&(client.len() as i16).to_be_bytes());
    body.extend_from_slice(client);
    body.extend_from_slice(&(-1i32).to_be_bytes()); // a consumer, not a replica
    body.extend_from_slice(&MAX_WAIT_MS.to_be_bytes());
    body.extend_from_slice(&1i32.to_be_bytes()); // min bytes
    body.extend_from_slice(&RESPONSE_BYTES.to_be_bytes());
    body.push(0); // read_uncommitted
    let mut topics: Vec<(&str, Vec<(i32, i64)>)> = Vec::new();
    for &(topic, partition, offset) in wanted {
        match topics.iter_mut().find(|(t, _)| *t == topic) {
            Some((_, partitions)) => partitions.push((partition, offset)),
            None => topics.push((topic, vec![(partition, offset)])),
        }
    }
    body.extend_from_slice(&(topics.len() as i32).to_be_bytes());
    for (topic, partitions) in &topics {
        let name =
            i16::try_from(topic.len()).map_err(|_| format!("topic name too long: {topic}"))?;
        body.extend_from_slice(&name.to_be_bytes());
        body.extend_from_slice(topic.as_bytes());
        body.extend_from_slice(&(partitions.len() as i32).to_be_bytes());
        for (partition, offset) in partitions {
            body.extend_from_slice(&partition.to_be_bytes());
            body.extend_from_slice(&offset.to_be_bytes());
            body.extend_from_slice(&PARTITION_BYTES.to_be_bytes());
        }
    }
    let mut request = (body.len() as i32).to_be_bytes().to_vec();
    request.extend_from_slice(&body);
    Ok(request)
}

fn parse_fetch_response(
    response: &[u8],
    correlation: i32,
) -> Result<Vec<PartitionData<'_>>, String> {
    let mut bytes = Bytes {
        data: response,
        at: 0,
    };
    let answered = bytes.i32()?;
    if answered != correlation {
        return Err(format!(
            "a response to request {answered}, expected {correlation}"
        ));
    }
    let _throttle_ms = bytes.i32()?;
    let mut out = Vec::new();
    for _ in 0..bytes.i32()? {
        let len = bytes.i16()?;
        let topic = bytes.sized(i64::from(len))?.unwrap_or_default();
        for _ in 0..bytes.i32()? {
            let partition = bytes.i32()?;
            let error = bytes.i16()?;
            let high_watermark = bytes.i64()?;
            let _last_stable = bytes.i64()?;
            let aborted = bytes.i32()?;
            bytes.take(16 * usize::try_from(aborted).unwrap_or(0))?;
            let len = bytes.i32()?;
            let records = bytes.sized(i64::from(len))?.unwrap_or_default();
            out.push(PartitionData {
                topic,
                partition,
                error,
                high_watermark,
                records,
            });
        }
    }
    Ok(out)
}

/// How far reading a partition's record set got.
pub(super) struct RecordsRead {
    /// The offset after the last complete batch read (the `from` given when none was).
    pub next: i64,
    /// A batch this reader does not read (compressed, or not v2), at `next`.
    pub unsupported: Option<String>,
}

/// Hands each record of `records` at or after `from` to `each`, in offset order, until `each`
/// returns false (the record is not taken: `next` is its offset). Control batches
/// (transaction markers) are skipped, as consumers do.
pub(super) fn read_records(
    records: &[u8],
    from: i64,
    include_headers: bool,
    each: &mut dyn FnMut(&MessageView<'_>) -> Result<bool, String>,
) -> Result<RecordsRead, String> {
    let mut bytes = Bytes {
        data: records,
        at: 0,
    };
    let mut next = from;
    // A batch's header up to its length: base offset and length.
    while bytes.left() >= 12 {
        let start = bytes.at;
        let base_offset = bytes.i64()?;
        let length = usize::try_from(bytes.i32()?)
            .map_err(|_| format!("a record batch of negative length at offset {base_offset}"))?;
        if bytes.left() < length {
            break; // cut by the fetch's size limit; the next fetch starts there
        }
        let mut batch = Bytes {
            data: &records[start + 12..start + 12 + length],
            at: 0,
        };
        bytes.at = start + 12 + length;
        let _leader_epoch = batch.i32()?;
        let magic = batch.i8()?;
        if magic != 2 {
            return Ok(RecordsRead {
                next,
                unsupported: Some(format!(
                    "a message set of format v{magic} at offset {base_offset}"
                )),
            });
        }
        let _crc = batch.i32()?;
        let attributes = batch.i16()?;
        if attributes & 0x07 != 0 {
            return Ok(RecordsRead {
                next,
                unsupported: Some(format!("a compressed record batch at offset {base_offset}")),
            });
        }
        let last_offset = base_offset + i64::from(batch.i32()?);
        let base_timestamp = batch.i64()?;
        let max_timestamp = batch.i64()?;
        batch.take(8 + 2 + 4)?; // producer id and epoch, base sequence
        let count = batch.i32()?;
        if last_offset < next || attributes & 0x20 != 0 {
            next = next.max(last_offset + 1);
            continue;
        }
        let log_append = attributes & 0x08 != 0;
        for _ in 0..count {
            let _length = batch.varint()?;
            let _attributes = batch.i8()?;
            let timestamp_delta = batch.varint()?;
            let offset = base_offset + batch.varint()?;
            let key_len = batch.varint()?;
            let key = batch.sized(key_len)?;
            let value_len = batch.varint()?;
            let value = batch.sized(value_len)?;
            let header_count = batch.varint()?;
            let mut headers = include_headers.then(HeaderList::new);
            for _ in 0..header_count {
                let name_len = batch.varint()?;
                let name = batch.sized(name_len)?.unwrap_or_default();
                let value_len = batch.varint()?;
                let value = batch.sized(value_len)?;
                if let Some(list) = &mut headers {
                    let name = String::from_utf8_lossy(name).into_owned();
                    list.push((name, value.map(<[u8]>::to_vec)));
                }
            }
            if offset < next {
                continue;
            }
            let millis = if log_append {
                max_timestamp
            } else {
                base_timestamp + timestamp_delta
            };
            let timestamp = if millis < 0 {
                (0, 0)
            } else {
                (millis * 1000, i32::from(log_append))
            };
            let view = MessageView {
                offset,
                key,
                value,
                timestamp,
                headers,
            };
            if !each(&view)? {
                return Ok(RecordsRead {
                    next: offset,
                    unsupported: None,
                });
            }
            next = offset + 1;
        }
        next = next.max(last_offset + 1);
    }
    Ok(RecordsRead {
        next,
        unsupported: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(out: &mut Vec<u8>, n: i64) {
        let mut v = ((n << 1) ^ (n >> 63)) as u64;
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    /// A v2 record batch at `base` holding `values` (offset deltas 0, 1, ...), null keys.
    fn batch(base: i64, attributes: i16, values: &[&[u8]]) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&0i32.to_be_bytes()); // leader epoch
        body.push(2); // magic
        body.extend_from_slice(&0i32.to_be_bytes()); // crc, not checked
        body.extend_from_slice(&attributes.to_be_bytes());
        body.extend_from_slice(&(values.len() as i32 - 1).to_be_bytes());
        body.extend_from_slice(&1_000i64.to_be_bytes()); // base timestamp
        body.extend_from_slice(&1_009i64.to_be_bytes()); // max timestamp
        body.extend_from_slice(&[0xff; 14]); // producer id, epoch, base sequence
        body.extend_from_slice(&(values.len() as i32).to_be_bytes());
        for (delta, value) in values.iter().enumerate() {
            let mut record = vec![0]; // attributes
            varint(&mut record, delta as i64); // timestamp delta
            varint(&mut record, delta as i64); // offset delta
            varint(&mut record, -1); // null key
            varint(&mut record, value.len() as i64);
            record.extend_from_slice(value);
            varint(&mut record, 0); // no headers
            varint(&mut body, record.len() as i64);
            body.extend_from_slice(&record);
        }
        let mut out = base.to_be_bytes().to_vec();
        out.extend_from_slice(&(body.len() as i32).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    fn read(records: &[u8], from: i64, stop_at: i64) -> (Result<RecordsRead, String>, Vec<String>) {
        let mut seen = Vec::new();
        let read = read_records(records, from, false, &mut |view| {
            if view.offset >= stop_at {
                return Ok(false);
            }
            let value = String::from_utf8_lossy(view.value.unwrap_or_default());
            seen.push(format!("{}={value}@{}", view.offset, view.timestamp.0));
            Ok(true)
        });
        (read, seen)
    }

    #[test]
    fn records_are_read_from_an_offset_to_where_the_reader_stops() {
        let mut records = batch(10, 0, &[b"a", b"b", b"c"]);
        records.extend(batch(13, 0, &[b"d", b"e"]));
        let (all, seen) = read(&records, 11, i64::MAX);
        assert_eq!(all.map(|r| (r.next, r.unsupported)), Ok((15, None)));
        assert_eq!(
            seen,
            [
                "11=b@1001000",
                "12=c@1002000",
                "13=d@1000000",
                "14=e@1001000"
            ]
        );
        let (stopped, seen) = read(&records, 10, 13);
        assert_eq!(
            stopped.map(|r| r.next),
            Ok(13),
            "the record not taken is next"
        );
        assert_eq!(seen.len(), 3);
        // Cut inside the second batch: only the first is complete.
        let (cut, seen) = read(&records[..records.len() - 3], 10, i64::MAX);
        assert_eq!(cut.map(|r| r.next), Ok(13));
        assert_eq!(seen.len(), 3);
    }

    #[test]
    fn a_compressed_batch_is_reported_at_its_offset_and_a_corrupt_one_after_its_good_records() {
        let mut records = batch(0, 0, &[b"a", b"b"]);
        records.extend(batch(2, 1, &[b"c"]));
        let (read_, seen) = read(&records, 0, i64::MAX);
        let read_ = read_.expect("read");
        assert_eq!(read_.next, 2);
        assert!(read_
            .unsupported
            .is_some_and(|why| why.contains("compressed")));
        assert_eq!(seen.len(), 2);
        // The last record's value length claims more bytes than the batch holds.
        let mut corrupt = batch(0, 0, &[b"a", b"b", b"c"]);
        let at = corrupt.len() - 3;
        corrupt[at] = 0x7e;
        let (failed, seen) = read(&corrupt, 0, i64::MAX);
        assert!(failed.is_err());
        assert_eq!(seen, ["0=a@1000000", "1=b@1001000"]);
    }
}
