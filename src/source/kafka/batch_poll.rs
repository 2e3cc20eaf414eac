//! The consumer's messages polled many at a time (librdkafka's `rd_kafka_consume_batch_queue`).
//!
//! rust-rdkafka's `poll` returns one message per call, and per message it reads the clock
//! twice, wraps librdkafka's event in an `Arc`, and librdkafka reads the clock again and locks
//! the partition to move the application's position. A batch poll does those once per call.
//! Reading 5 M ticks with plain librdkafka (benches/RESULTS.md): 3.2–4.0 CPU-s polled one by
//! one, 2.2–2.4 CPU-s in batches of 1,024, and ~0.8 s less wall time.
//!
//! Consumer errors (a partition's end among them) come back as messages with an error code,
//! as from `poll`; other errors and logs go to the client's context as before.

use std::ffi::{c_int, CStr};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::bindings as rdsys;
use rdkafka::consumer::{BaseConsumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::types::RDKafkaRespErr;

use super::columns::{HeaderList, MessageView};

/// Messages one poll returns at most.
const BATCH: usize = 1_024;

/// The consumer's queue, polled a batch at a time.
pub(super) struct ConsumerQueue<C: ConsumerContext + 'static> {
    queue: *mut rdsys::rd_kafka_queue_t,
    /// The messages of the last poll, destroyed at the next one (or on drop).
    polled: Vec<*mut rdsys::rd_kafka_message_t>,
    /// Kept alive while the queue and its messages are.
    _consumer: Arc<BaseConsumer<C>>,
}

/// The topic of a polled message: librdkafka's handle, one per topic for the client's life,
/// so a message's topic is compared by identity; its name is read only when the topic
/// changes (per message, `strlen` and a name comparison were ~7 % of the reader thread).
#[derive(Clone, Copy)]
pub(super) struct TopicHandle<'m> {
    handle: *mut rdsys::rd_kafka_topic_t,
    _message: std::marker::PhantomData<&'m ()>,
}

impl<'m> TopicHandle<'m> {
    /// Identifies the topic while the client lives.
    pub fn id(self) -> usize {
        self.handle as usize
    }

    /// The topic's name (empty for a message without a topic).
    pub fn name(self) -> &'m [u8] {
        if self.handle.is_null() {
            return &[];
        }
        // SAFETY: the topic handle and its name (a C string) live as long as the message,
        // which lives for `'m`.
        unsafe { CStr::from_ptr(rdsys::rd_kafka_topic_name(self.handle)) }.to_bytes()
    }
}

/// One item a poll returned.
pub(super) enum Fetched<'m> {
    Message {
        topic: TopicHandle<'m>,
        partition: i32,
        view: MessageView<'m>,
    },
    /// The consumer reached the end of a partition's log, at `offset`.
    PartitionEof {
        topic: &'m [u8],
        partition: i32,
        offset: i64,
    },
    Error(KafkaError),
}

impl<C: ConsumerContext + 'static> ConsumerQueue<C> {
    /// The queue of `consumer`, which must have a group id (the source always sets one): its
    /// fetched messages are delivered there.
    pub fn of(consumer: &Arc<BaseConsumer<C>>) -> Option<Self> {
        use rdkafka::consumer::Consumer;
        // SAFETY: the client pointer is valid while the consumer lives, which the `Arc` kept
        // here holds until the queue's reference is released on drop.
        let queue = unsafe { rdsys::rd_kafka_queue_get_consumer(consumer.client().native_ptr()) };
        (!queue.is_null()).then(|| ConsumerQueue {
            queue,
            polled: Vec::with_capacity(BATCH),
            _consumer: Arc::clone(consumer),
        })
    }

    /// Polls the messages ready now (at most `BATCH`); when there are none, waits up to
    /// `timeout` for the first to arrive. Returns how many it got; `get` reads them.
    pub fn poll(&mut self, timeout: Duration) -> usize {
        self.release();
        self.consume(0, BATCH);
        if self.polled.is_empty() && !timeout.is_zero() {
            // One message: librdkafka waits for the batch to fill or the timeout to pass.
            let ms = c_int::try_from(timeout.as_millis()).unwrap_or(c_int::MAX);
            self.consume(ms, 1);
        }
        self.polled.len()
    }

    /// Message `index` of the last poll; it borrows the queue, so it cannot outlive the
    /// message (the next poll destroys it).
    pub fn get(&self, index: usize, include_headers: bool) -> Option<Fetched<'_>> {
        self.polled
            .get(index)
            .map(|&message| fetched(message, include_headers))
    }

    fn consume(&mut self, timeout_ms: c_int, up_to: usize) {
        let spare = self.polled.spare_capacity_mut();
        let up_to = up_to.min(spare.len());
        // SAFETY: librdkafka writes at most `up_to` message pointers into the spare capacity
        // and returns how many it wrote (or -1 on error, when it wrote none).
        let written = unsafe {
            rdsys::rd_kafka_consume_batch_queue(
                self.queue,
                timeout_ms,
                spare.as_mut_ptr().cast(),
                up_to,
            )
        };
        if let Ok(written) = usize::try_from(written) {
            // SAFETY: the first `written` slots were initialised by librdkafka.
            unsafe { self.polled.set_len(written.min(up_to)) };
        }
    }

    fn release(&mut self) {
        for message in self.polled.drain(..) {
            // SAFETY: each pointer came from this queue's last poll and is destroyed once.
            unsafe { rdsys::rd_kafka_message_destroy(message) };
        }
    }
}

impl<C: ConsumerContext + 'static> Drop for ConsumerQueue<C> {
    fn drop(&mut self) {
        self.release();
        // SAFETY: releases the reference `rd_kafka_queue_get_consumer` gave.
        unsafe { rdsys::rd_kafka_queue_destroy(self.queue) };
    }
}

/// What `message` holds, borrowed for `'m`.
///
/// `message` must be alive for `'m`: `ConsumerQueue::get` ties `'m` to a borrow of the queue,
/// whose next poll (needing it mutably) destroys the message.
fn fetched<'m>(message: *mut rdsys::rd_kafka_message_t, include_headers: bool) -> Fetched<'m> {
    // SAFETY: `message` is alive for `'m` (above).
    let raw = unsafe { &*message };
    let topic = TopicHandle {
        handle: raw.rkt,
        _message: std::marker::PhantomData,
    };
    match raw.err {
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR => {}
        RDKafkaRespErr::RD_KAFKA_RESP_ERR__PARTITION_EOF => {
            return Fetched::PartitionEof {
                topic: topic.name(),
                partition: raw.partition,
                offset: raw.offset,
            }
        }
        code => {
            return Fetched::Error(KafkaError::MessageConsumption(RDKafkaErrorCode::from(code)))
        }
    }
    let mut kind = rdsys::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
    // SAFETY: reads the message's timestamp and writes its type into `kind`.
    let ms = unsafe { rdsys::rd_kafka_message_timestamp(message, &mut kind) };
    let timestamp = match kind {
        rdsys::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_CREATE_TIME => (ms * 1000, 0),
        rdsys::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME => (ms * 1000, 1),
        rdsys::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE => (0, 0),
    };
    Fetched::Message {
        topic,
        partition: raw.partition,
        view: MessageView {
            offset: raw.offset,
            // SAFETY: librdkafka's key and payload are `len` bytes that live as long as the
            // message (or null).
            key: unsafe { bytes(raw.key, raw.key_len) },
            value: unsafe { bytes(raw.payload, raw.len) },
            timestamp,
            headers: include_headers.then(|| headers_of(message)),
        },
    }
}

/// `len` bytes at `at`, or None for a null pointer.
///
/// # Safety
/// `at` is null or points at `len` bytes that live for `'a`.
unsafe fn bytes<'a>(at: *const std::ffi::c_void, len: usize) -> Option<&'a [u8]> {
    // SAFETY: the caller's contract.
    (!at.is_null()).then(|| unsafe { std::slice::from_raw_parts(at.cast::<u8>(), len) })
}

/// A message's headers, copied out of librdkafka's buffer.
fn headers_of(message: *mut rdsys::rd_kafka_message_t) -> HeaderList {
    let mut headers = std::ptr::null_mut();
    // SAFETY: `message` is alive; librdkafka sets `headers` to the message's own list,
    // which lives as long as the message.
    let found = unsafe { rdsys::rd_kafka_message_headers(message, &mut headers) };
    let mut list = HeaderList::new();
    if found != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR || headers.is_null() {
        return list;
    }
    for index in 0.. {
        let (mut name, mut value, mut size) = (std::ptr::null(), std::ptr::null(), 0usize);
        // SAFETY: reads the header at `index` of the live list, or fails past its end.
        let got = unsafe {
            rdsys::rd_kafka_header_get_all(headers, index, &mut name, &mut value, &mut size)
        };
        if got != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR || name.is_null() {
            break;
        }
        // SAFETY: a header's name is a C string and its value `size` bytes (or null), both
        // living as long as the message.
        let key = unsafe { CStr::from_ptr(name) }
            .to_string_lossy()
            .into_owned();
        list.push((key, unsafe { bytes(value, size) }.map(<[u8]>::to_vec)));
    }
    list
}
