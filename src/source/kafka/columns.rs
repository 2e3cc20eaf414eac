//! A Kafka message on its way into Arrow: a view of one message (fetched now, or kept from
//! an earlier fetch), and the column builders of one chunk in Spark's Kafka schema.

use std::sync::Arc;

use arrow::array::{
    ArrayBuilder, ArrayRef, BinaryBuilder, Int32Array, Int32Builder, Int64Builder, ListBuilder,
    RecordBatch, StringArray, StringBuilder, StructBuilder, TimestampMicrosecondBuilder,
};
use arrow::buffer::{Buffer, OffsetBuffer};
use arrow::datatypes::{DataType, Field, Fields};

use super::kafka_schema;
use crate::error::Result;

/// A message's headers: keys with optional values, in order (keys may repeat).
pub(super) type HeaderList = Vec<(String, Option<Vec<u8>>)>;

/// One message as the reader routes it.
pub(super) struct MessageView<'a> {
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    /// Microseconds and Spark's timestamp type (0 create time, 1 log append time).
    pub timestamp: (i64, i32),
    /// Present when the source includes headers.
    pub headers: Option<HeaderList>,
}

impl<'a> MessageView<'a> {
    /// A copy that outlives librdkafka's buffer.
    pub fn to_owned(&self) -> Buffered {
        Buffered {
            offset: self.offset,
            key: self.key.map(<[u8]>::to_vec),
            value: self.value.map(<[u8]>::to_vec),
            timestamp: self.timestamp,
            headers: self.headers.clone(),
        }
    }
}

/// One message kept past a batch's end.
pub(super) struct Buffered {
    pub offset: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    timestamp: (i64, i32),
    headers: Option<HeaderList>,
}

impl Buffered {
    /// A view of the kept message.
    pub fn view(&self) -> MessageView<'_> {
        MessageView {
            offset: self.offset,
            key: self.key.as_deref(),
            value: self.value.as_deref(),
            timestamp: self.timestamp,
            headers: self.headers.clone(),
        }
    }
}

/// The fields of one header: `struct<key: string, value: binary>`.
pub(super) fn header_fields() -> Fields {
    Fields::from(vec![
        Field::new("key", DataType::Utf8, true),
        Field::new("value", DataType::Binary, true),
    ])
}

/// Column builders for one chunk, which is one partition's: its `topic` and `partition`
/// columns are written whole when it is finished, not a value per message.
pub(super) struct Columns {
    topic: String,
    partition: i32,
    key: BinaryBuilder,
    value: BinaryBuilder,
    offset: Int64Builder,
    timestamp: TimestampMicrosecondBuilder,
    timestamp_type: Int32Builder,
    headers: Option<ListBuilder<StructBuilder>>,
}

/// Bytes a chunk's messages are expected to take, learnt from the chunks before it: its
/// builders are sized once instead of doubling (and copying) their way up to a chunk of
/// several megabytes.
#[derive(Default, Clone, Copy)]
pub(super) struct SizeHint {
    key_bytes: usize,
    value_bytes: usize,
}

impl SizeHint {
    /// Learns the sizes per message of a finished chunk's builders.
    fn learn(&mut self, columns: &Columns) {
        let rows = columns.offset.len();
        if rows > 0 {
            self.key_bytes = columns.key.values_slice().len().div_ceil(rows);
            self.value_bytes = columns.value.values_slice().len().div_ceil(rows);
        }
    }
}

/// Messages a chunk's builders are sized for at most: a chunk holds `CHUNK_ROWS` messages
/// or fewer, so this bounds only a hint gone wrong.
const MAX_SIZED_ROWS: usize = 1 << 20;

impl Columns {
    /// Builders for a chunk without messages.
    pub fn empty(include_headers: bool) -> Self {
        Self::with_capacity(include_headers, ("", 0), 0, SizeHint::default())
    }

    /// Builders for `rows` messages of partition `tp` of about the sizes `hint` learnt (an
    /// eighth more, so a chunk a little above the average does not double its buffer at the
    /// end).
    pub fn with_capacity(
        include_headers: bool,
        tp: (&str, i32),
        rows: usize,
        hint: SizeHint,
    ) -> Self {
        let rows = rows.min(MAX_SIZED_ROWS);
        let bytes = |per_row: usize| (rows * per_row).saturating_add(rows * per_row / 8);
        Columns {
            headers: include_headers.then(|| {
                ListBuilder::new(StructBuilder::from_fields(header_fields(), 0)).with_field(
                    Arc::new(Field::new("item", DataType::Struct(header_fields()), true)),
                )
            }),
            topic: tp.0.to_string(),
            partition: tp.1,
            key: BinaryBuilder::with_capacity(rows, bytes(hint.key_bytes)),
            value: BinaryBuilder::with_capacity(rows, bytes(hint.value_bytes)),
            offset: Int64Builder::with_capacity(rows),
            timestamp: TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC"),
            timestamp_type: Int32Builder::with_capacity(rows),
        }
    }

    pub fn push(&mut self, message: &MessageView<'_>) {
        self.key.append_option(message.key);
        self.value.append_option(message.value);
        self.offset.append_value(message.offset);
        self.timestamp.append_value(message.timestamp.0);
        self.timestamp_type.append_value(message.timestamp.1);
        if let Some(list) = &mut self.headers {
            let entries = list.values();
            for (key, value) in message.headers.as_deref().unwrap_or_default() {
                if let Some(b) = entries.field_builder::<StringBuilder>(0) {
                    b.append_value(key);
                }
                if let Some(b) = entries.field_builder::<BinaryBuilder>(1) {
                    b.append_option(value.as_deref());
                }
                entries.append(true);
            }
            list.append(true);
        }
    }

    /// The chunk's record batch; `hint` learns its sizes for the next chunk.
    pub fn finish(mut self, hint: &mut SizeHint) -> Result<RecordBatch> {
        hint.learn(&self);
        let rows = self.offset.len();
        let topic = StringArray::new(
            OffsetBuffer::from_repeated_length(self.topic.len(), rows),
            Buffer::from(self.topic.repeat(rows).into_bytes()),
            None,
        );
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.key.finish()),
            Arc::new(self.value.finish()),
            Arc::new(topic),
            Arc::new(Int32Array::from_value(self.partition, rows)),
            Arc::new(self.offset.finish()),
            Arc::new(self.timestamp.finish()),
            Arc::new(self.timestamp_type.finish()),
        ];
        if let Some(headers) = &mut self.headers {
            columns.push(Arc::new(headers.finish()));
        }
        Ok(RecordBatch::try_new(
            kafka_schema(self.headers.is_some()),
            columns,
        )?)
    }
}
