//! The fast path of `from_json`: flat JSON objects into columns in one pass.
//!
//! arrow-json tokenises every record onto a tape and then builds each column from it; on the
//! tick stream that was a quarter of all CPU. Most records are a flat object of strings,
//! numbers, booleans and nulls, so this reads such a record once, straight into the columns.
//!
//! It accepts a strict subset of what arrow-json accepts and gives the same values for it:
//! numbers are parsed by the same parser (lexical-core), and a record it is not sure of (a
//! lenient comma, a `\u` escape, a string in a number field, a repeated field, deep nesting,
//! invalid UTF-8, anything malformed) is left to the arrow-json path, record by record. So
//! the slow path keeps deciding every doubtful case, and Spark's semantics stay in one place.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBufferBuilder, BooleanBuilder, Float32Builder, Float64Builder, Int32Builder,
    Int64Builder, StringArray, StructArray,
};
use arrow::buffer::{NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Fields};
use arrow::error::ArrowError;
use rustc_hash::FxHashMap;

mod layout;
mod numbers;
use layout::{Layout, Span};

/// Past this many records the fast path could not read, a column's remaining records go
/// straight to arrow-json (a stream whose records all need it pays for the fast path once).
const MAX_MISSES: usize = 16;

/// Nesting deeper than this, inside a field the schema leaves out, is left to arrow-json.
const MAX_DEPTH: usize = 32;

/// Up to this many fields, a name is found by comparing lengths, then bytes: cheaper than
/// hashing it.
const NARROW: usize = 16;

/// A string column's bytes end a run here, well before `i32` offsets could overflow.
const MAX_RUN_BYTES: usize = 1 << 30;

/// The column types the fast path builds.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Utf8,
    Boolean,
    Int32,
    Int64,
    Float32,
    Float64,
}

/// Reads flat JSON objects into the columns of one schema.
#[derive(Debug, Clone)]
pub(super) struct FlatDecoder {
    fields: Fields,
    kinds: Vec<Kind>,
    /// The fields' names, to check the guess of the next field without a lookup.
    names: Vec<Box<[u8]>>,
    /// Each name's field for a wide schema (a narrow one is searched in `names`); names are
    /// unique (a schema repeating one is left to arrow-json).
    index: FxHashMap<Box<[u8]>, usize>,
    /// Bit `n` is set when a name is `n` bytes long (63 for any longer): most names a
    /// schema leaves out are then passed over without a comparison.
    lengths: u64,
}

/// What one record was.
enum Record {
    /// A JSON object the fast path read whole; its fields are in the slots.
    Object,
    /// Nothing but whitespace: a null struct, as arrow-json's path gives.
    Blank,
    /// Anything else, for arrow-json to decide.
    Unsure,
}

/// One field's value in the record being read, kept until the record is known to be whole.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Missing,
    Null,
    /// A string's bytes in the record, with escapes still in them if `escaped`.
    Str {
        start: usize,
        end: usize,
        escaped: bool,
    },
    Bool(bool),
    Int(i64),
    Float(f64),
}

impl FlatDecoder {
    /// A decoder for `fields`, or `None` when a field's type is not one it builds.
    pub(super) fn new(fields: &Fields) -> Option<FlatDecoder> {
        let kinds = fields
            .iter()
            .map(|field| match field.data_type() {
                DataType::Utf8 => Some(Kind::Utf8),
                DataType::Boolean => Some(Kind::Boolean),
                DataType::Int32 => Some(Kind::Int32),
                DataType::Int64 => Some(Kind::Int64),
                DataType::Float32 => Some(Kind::Float32),
                DataType::Float64 => Some(Kind::Float64),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()?;
        let names: Vec<Box<[u8]>> = fields.iter().map(|f| f.name().as_bytes().into()).collect();
        let index: FxHashMap<Box<[u8]>, usize> = names
            .iter()
            .enumerate()
            .map(|(position, name)| (name.clone(), position))
            .collect();
        if index.len() < names.len() {
            // A repeated name: arrow-json fills the first such field; the guess could not.
            return None;
        }
        let lengths = names.iter().fold(0, |bits, name| bits | length_bit(name));
        Some(FlatDecoder {
            fields: fields.clone(),
            kinds,
            names,
            index,
            lengths,
        })
    }

    /// Decodes `records` into struct arrays, in order: runs read here, and for each record
    /// it could not read, what `slow(records, first_row)` makes of it.
    pub(super) fn decode<E>(
        &self,
        records: &[Option<&[u8]>],
        pieces: &mut Vec<ArrayRef>,
        mut slow: impl FnMut(&[Option<&[u8]>], usize, &mut Vec<ArrayRef>) -> Result<(), E>,
    ) -> Result<(), E>
    where
        E: From<ArrowError>,
    {
        let mut run = Run::new(&self.kinds, records.len());
        let mut slots = vec![Slot::Missing; self.kinds.len()];
        let mut layout = Layout::default();
        let mut misses = 0;
        for (row, record) in records.iter().enumerate() {
            let Some(text) = record else {
                run.push_null();
                continue;
            };
            match self.read(text, &mut slots, &mut layout) {
                Record::Object => run.push(text, &slots),
                Record::Blank => run.push_null(),
                Record::Unsure => {
                    run.finish_into(&self.fields, pieces)?;
                    misses += 1;
                    if misses > MAX_MISSES {
                        return slow(&records[row..], row, pieces);
                    }
                    slow(&records[row..=row], row, pieces)?;
                }
            }
            if run.bytes > MAX_RUN_BYTES {
                run.finish_into(&self.fields, pieces)?;
            }
        }
        Ok(run.finish_into(&self.fields, pieces)?)
    }

    /// Reads one record into `slots` (one per field): against the `layout` of the record
    /// before, else field by field (and then its layout is kept).
    fn read(&self, record: &[u8], slots: &mut [Slot], layout: &mut Layout) -> Record {
        let mut cursor = Cursor {
            bytes: record,
            at: 0,
            non_ascii: false,
        };
        cursor.skip_whitespace();
        if cursor.at == record.len() {
            return Record::Blank;
        }
        let valid = |non_ascii: bool| !non_ascii || std::str::from_utf8(record).is_ok();
        slots.fill(Slot::Missing);
        if let Some(non_ascii) = layout.read(self, record, slots) {
            return if valid(non_ascii) {
                Record::Object
            } else {
                Record::Unsure
            };
        }
        slots.fill(Slot::Missing);
        layout.spans.clear();
        match self.object(&mut cursor, slots, &mut layout.spans) {
            Some(()) if valid(cursor.non_ascii) => {
                layout.learn(record);
                Record::Object
            }
            _ => Record::Unsure,
        }
    }

    /// Reads an object field by field, noting where each value is in `spans`.
    fn object(&self, cursor: &mut Cursor, slots: &mut [Slot], spans: &mut Vec<Span>) -> Option<()> {
        cursor.expect(b'{')?;
        cursor.skip_whitespace();
        if cursor.peek()? == b'}' {
            cursor.at += 1;
        } else {
            // Records usually list their fields in the same order: try the next one first.
            let mut guess = 0;
            loop {
                cursor.expect(b'"')?;
                let (start, end, escaped) = cursor.string()?;
                if escaped {
                    return None;
                }
                let name = &cursor.bytes[start..end];
                cursor.skip_whitespace();
                cursor.expect(b':')?;
                cursor.skip_whitespace();
                let start = cursor.at;
                let field = self.position(name, guess);
                match field {
                    Some(index) => {
                        if !matches!(slots[index], Slot::Missing) {
                            return None;
                        }
                        slots[index] = cursor.value(self.kinds[index])?;
                        guess = index + 1;
                    }
                    None => cursor.skip_value(0)?,
                }
                spans.push(Span {
                    start,
                    end: cursor.at,
                    field,
                });
                cursor.skip_whitespace();
                match cursor.next()? {
                    b',' => cursor.skip_whitespace(),
                    b'}' => break,
                    _ => return None,
                }
            }
        }
        cursor.skip_whitespace();
        (cursor.at == cursor.bytes.len()).then_some(())
    }

    fn position(&self, name: &[u8], guess: usize) -> Option<usize> {
        match self.names.get(guess) {
            Some(guessed) if **guessed == *name => Some(guess),
            _ if self.lengths & length_bit(name) == 0 => None,
            _ if self.names.len() <= NARROW => self
                .names
                .iter()
                .position(|known| known.len() == name.len() && **known == *name),
            _ => self.index.get(name).copied(),
        }
    }
}

/// A position in one record.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
    /// A string held a byte above 0x7f, so the record's UTF-8 must be checked.
    non_ascii: bool,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.next()? == byte).then_some(())
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// A string's body after its opening quote: its span and whether it holds escapes.
    /// Control characters and `\u` escapes are left to arrow-json.
    fn string(&mut self) -> Option<(usize, usize, bool)> {
        let start = self.at;
        let mut escaped = false;
        loop {
            self.at += plain_run(self.bytes.get(self.at..)?);
            match self.next()? {
                b'"' => return Some((start, self.at - 1, escaped)),
                b'\\' => match self.next()? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => escaped = true,
                    _ => return None,
                },
                0x80.. => self.non_ascii = true,
                _ => return None,
            }
        }
    }

    /// A number token in JSON's own grammar, whose span is returned. A token arrow-json
    /// would read further (`01`, `1.2.3`, `1e5e`) is not one.
    fn number(&mut self) -> Option<(usize, usize)> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.next()? {
            b'0' => {}
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.some_digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            self.some_digits()?;
        }
        match self.peek() {
            Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') => None,
            _ => Some((start, self.at)),
        }
    }

    fn digits(&mut self) {
        let rest = &self.bytes[self.at.min(self.bytes.len())..];
        self.at += rest
            .iter()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(rest.len());
    }

    fn some_digits(&mut self) -> Option<()> {
        let start = self.at;
        self.digits();
        (self.at > start).then_some(())
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at + word.len();
        (self.bytes.get(self.at..end)? == word).then(|| self.at = end)
    }

    /// A field's value as a column of `kind` holds it; a value of another JSON type
    /// (which arrow-json may coerce or reject) is not read.
    fn value(&mut self, kind: Kind) -> Option<Slot> {
        match (self.peek()?, kind) {
            (b'n', _) => self.literal(b"null").map(|()| Slot::Null),
            (b'"', Kind::Utf8) => {
                self.at += 1;
                let (start, end, escaped) = self.string()?;
                Some(Slot::Str {
                    start,
                    end,
                    escaped,
                })
            }
            (b't', Kind::Boolean) => self.literal(b"true").map(|()| Slot::Bool(true)),
            (b'f', Kind::Boolean) => self.literal(b"false").map(|()| Slot::Bool(false)),
            (b'-' | b'0'..=b'9', Kind::Int32 | Kind::Int64 | Kind::Float32 | Kind::Float64) => {
                let (start, end) = self.number()?;
                let token = &self.bytes[start..end];
                Some(match kind {
                    Kind::Int32 => Slot::Int(lexical_core::parse::<i32>(token).ok()?.into()),
                    Kind::Int64 => Slot::Int(numbers::parse_i64(token)?),
                    Kind::Float32 => Slot::Float(lexical_core::parse::<f32>(token).ok()?.into()),
                    _ => Slot::Float(numbers::parse_f64(token)?),
                })
            }
            _ => None,
        }
    }

    /// Skips any JSON value of a field the schema leaves out, checking what arrow-json checks
    /// there (its grammar, but not a number's).
    fn skip_value(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'"' => {
                self.at += 1;
                self.string().map(|_| ())
            }
            b'-' | b'0'..=b'9' => {
                // arrow-json takes any run of number characters here and never parses it.
                let rest = &self.bytes[self.at..];
                self.at += rest
                    .iter()
                    .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                    .unwrap_or(rest.len());
                Some(())
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            open @ (b'[' | b'{') if depth < MAX_DEPTH => {
                self.at += 1;
                let close = if open == b'[' { b']' } else { b'}' };
                self.skip_whitespace();
                if self.peek()? == close {
                    self.at += 1;
                    return Some(());
                }
                loop {
                    if open == b'{' {
                        self.expect(b'"')?;
                        self.string()?;
                        self.skip_whitespace();
                        self.expect(b':')?;
                        self.skip_whitespace();
                    }
                    self.skip_value(depth + 1)?;
                    self.skip_whitespace();
                    match self.next()? {
                        b',' => self.skip_whitespace(),
                        b if b == close => return Some(()),
                        _ => return None,
                    }
                }
            }
            _ => None,
        }
    }
}

fn length_bit(name: &[u8]) -> u64 {
    1 << name.len().min(63)
}

/// How many bytes at the start of `text` are plain string content: not a quote, backslash,
/// control character or non-ASCII byte. Eight bytes at a time: in each word, a byte's top bit
/// flags it when it is one of those (the lowest flag is exact, and that is the one used).
fn plain_run(text: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const TOPS: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |word: u64| word.wrapping_sub(ONES) & !word & TOPS;
    let mut at = 0;
    while let Some(chunk) = text.get(at..).and_then(<[u8]>::first_chunk::<8>) {
        let word = u64::from_le_bytes(*chunk);
        let special = zero_byte(word ^ (ONES * u64::from(b'"')))
            | zero_byte(word ^ (ONES * u64::from(b'\\')))
            | (word.wrapping_sub(ONES * 0x20) & !word & TOPS)
            | (word & TOPS);
        if special != 0 {
            return at + (special.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    let rest = &text[at..];
    at + rest
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || !(0x20..0x80).contains(&b))
        .unwrap_or(rest.len())
}

/// The columns of a run of records read by the fast path.
struct Run {
    columns: Vec<Column>,
    /// Which rows are structs (not null records).
    present: BooleanBufferBuilder,
    rows: usize,
    /// Bytes in the run's string columns.
    bytes: usize,
}

/// A column being built. Strings keep their own buffers, so an unescaped string is
/// appended as bytes without another UTF-8 check (the record was checked whole).
enum Column {
    Utf8 {
        offsets: Vec<i32>,
        data: Vec<u8>,
        valid: BooleanBufferBuilder,
    },
    Boolean(BooleanBuilder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
}

impl Run {
    fn new(kinds: &[Kind], capacity: usize) -> Run {
        let columns = kinds
            .iter()
            .map(|kind| match kind {
                Kind::Utf8 => {
                    let mut offsets = Vec::with_capacity(capacity + 1);
                    offsets.push(0);
                    Column::Utf8 {
                        offsets,
                        data: Vec::with_capacity(capacity * 8),
                        valid: BooleanBufferBuilder::new(capacity),
                    }
                }
                Kind::Boolean => Column::Boolean(BooleanBuilder::with_capacity(capacity)),
                Kind::Int32 => Column::Int32(Int32Builder::with_capacity(capacity)),
                Kind::Int64 => Column::Int64(Int64Builder::with_capacity(capacity)),
                Kind::Float32 => Column::Float32(Float32Builder::with_capacity(capacity)),
                Kind::Float64 => Column::Float64(Float64Builder::with_capacity(capacity)),
            })
            .collect();
        Run {
            columns,
            present: BooleanBufferBuilder::new(capacity),
            rows: 0,
            bytes: 0,
        }
    }

    /// Appends a record whose fields are in `slots`.
    fn push(&mut self, record: &[u8], slots: &[Slot]) {
        for (column, slot) in self.columns.iter_mut().zip(slots) {
            match (column, *slot) {
                (
                    Column::Utf8 {
                        offsets,
                        data,
                        valid,
                    },
                    Slot::Str {
                        start,
                        end,
                        escaped,
                    },
                ) => {
                    let text = &record[start..end];
                    if escaped {
                        unescape(text, data);
                    } else {
                        data.extend_from_slice(text);
                    }
                    // The run ends at MAX_RUN_BYTES, far below i32::MAX.
                    offsets.push(data.len() as i32);
                    valid.append(true);
                    self.bytes += end - start;
                }
                (Column::Boolean(values), Slot::Bool(value)) => values.append_value(value),
                // Read as an i32, so it fits.
                (Column::Int32(values), Slot::Int(value)) => values.append_value(value as i32),
                (Column::Int64(values), Slot::Int(value)) => values.append_value(value),
                // Read as an f32, so this is exact.
                (Column::Float32(values), Slot::Float(value)) => values.append_value(value as f32),
                (Column::Float64(values), Slot::Float(value)) => values.append_value(value),
                (column, _) => column.push_null(),
            }
        }
        self.present.append(true);
        self.rows += 1;
    }

    /// Appends a null struct.
    fn push_null(&mut self) {
        for column in &mut self.columns {
            column.push_null();
        }
        self.present.append(false);
        self.rows += 1;
    }

    /// Ends the run: its struct array (if it has rows) goes onto `pieces`, and it starts over.
    fn finish_into(
        &mut self,
        fields: &Fields,
        pieces: &mut Vec<ArrayRef>,
    ) -> Result<(), ArrowError> {
        if self.rows == 0 {
            return Ok(());
        }
        let columns = self.columns.iter_mut().map(Column::finish).collect();
        let present = nulls(&mut self.present);
        self.rows = 0;
        self.bytes = 0;
        let run = StructArray::try_new(fields.clone(), columns, present)?;
        pieces.push(Arc::new(run));
        Ok(())
    }
}

impl Column {
    fn push_null(&mut self) {
        match self {
            Column::Utf8 {
                offsets,
                data,
                valid,
            } => {
                offsets.push(data.len() as i32);
                valid.append(false);
            }
            Column::Boolean(values) => values.append_null(),
            Column::Int32(values) => values.append_null(),
            Column::Int64(values) => values.append_null(),
            Column::Float32(values) => values.append_null(),
            Column::Float64(values) => values.append_null(),
        }
    }

    /// The column's array; the builder is left empty for the next run.
    fn finish(&mut self) -> ArrayRef {
        match self {
            Column::Utf8 {
                offsets,
                data,
                valid,
            } => {
                let offsets = std::mem::replace(offsets, vec![0]);
                let data = std::mem::take(data);
                // Offsets are monotonic and end at the data's length, as built.
                Arc::new(StringArray::new(
                    OffsetBuffer::new(ScalarBuffer::from(offsets)),
                    data.into(),
                    nulls(valid),
                ))
            }
            Column::Boolean(values) => Arc::new(values.finish()),
            Column::Int32(values) => Arc::new(values.finish()),
            Column::Int64(values) => Arc::new(values.finish()),
            Column::Float32(values) => Arc::new(values.finish()),
            Column::Float64(values) => Arc::new(values.finish()),
        }
    }
}

/// A validity builder's buffer, `None` when every row is valid.
fn nulls(valid: &mut BooleanBufferBuilder) -> Option<NullBuffer> {
    Some(NullBuffer::new(valid.finish())).filter(|nulls| nulls.null_count() > 0)
}

/// Appends a string's text with its (already checked, non-`\u`) escapes resolved.
fn unescape(text: &[u8], out: &mut Vec<u8>) {
    let mut bytes = text.iter();
    while let Some(&byte) = bytes.next() {
        if byte != b'\\' {
            out.push(byte);
            continue;
        }
        out.push(match bytes.next() {
            Some(b'b') => 8,
            Some(b'f') => 12,
            Some(b'n') => b'\n',
            Some(b'r') => b'\r',
            Some(b't') => b'\t',
            Some(&other) => other,
            None => break,
        });
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, StringArray};
    use arrow::datatypes::Field;
    use proptest::prelude::*;

    use super::super::from_json::JsonParser;
    use super::super::ExprMetrics;
    use super::*;

    fn fields() -> Fields {
        Fields::from(vec![
            Field::new("symbol", DataType::Utf8, true),
            Field::new("price", DataType::Float64, true),
            Field::new("n", DataType::Int64, true),
            Field::new("i", DataType::Int32, true),
            Field::new("f", DataType::Float32, true),
            Field::new("b", DataType::Boolean, true),
        ])
    }

    /// The column parsed with and without the fast path: arrays, malformed counts and the
    /// rows of the bad records.
    fn both(rows: &[Option<String>]) -> [(ArrayRef, u64, Vec<usize>); 2] {
        let column = StringArray::from(rows.to_vec());
        let fast = JsonParser::new(&fields(), false).expect("valid");
        let slow = fast.clone().without_fast_path();
        [fast, slow].map(|parser| {
            let metrics = ExprMetrics::default();
            metrics.bad_records.keep();
            let parsed = parser.parse(&column, &metrics).expect("permissive");
            let bad = metrics.bad_records.take().iter().map(|b| b.row).collect();
            (parsed, metrics.malformed_rows(), bad)
        })
    }

    fn number() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            any::<i32>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|x| x.to_string()),
            (any::<f32>(), any::<i16>()).prop_map(|(x, e)| format!("{x:e}{}", e % 400)),
            prop::sample::select(vec![
                "0",
                "-0",
                "01",
                "1.",
                ".5",
                "1e5",
                "1E+5",
                "-1.5e-7",
                "1.2.3",
                "--1",
                "1e",
                "9223372036854775808",
                "2147483648",
                "1e400",
                "-",
                "0.1e1",
                "3.4e39",
            ])
            .prop_map(str::to_string),
        ]
    }

    fn string() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            r#""BTCUSDT""#,
            r#""""#,
            r#""a\"b\\c\/d\b\f\n\r\t""#,
            r#""\u00e9\ud83d\ude00""#,
            r#""\ud800""#,
            "\"é€\"",
            "\"tab\there\"",
            r#""bad\x""#,
            r#""3.5""#,
        ])
        .prop_map(str::to_string)
    }

    fn value() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            number(),
            string(),
            prop::sample::select(vec!["true", "false", "null", "nul", "tru"])
                .prop_map(str::to_string),
        ];
        leaf.prop_recursive(3, 12, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3)
                    .prop_map(|items| format!("[{}]", items.join(","))),
                prop::collection::vec(inner, 0..3).prop_map(|items| {
                    let members: Vec<String> = items
                        .iter()
                        .enumerate()
                        .map(|(k, v)| format!(r#""k{k}":{v}"#))
                        .collect();
                    format!("{{{}}}", members.join(","))
                }),
            ]
        })
    }

    /// A value of the type the field's column holds, as most records have.
    fn typed(key: &str) -> BoxedStrategy<String> {
        let integer = prop_oneof![
            any::<i32>().prop_map(|n| n.to_string()),
            (-1000i64..1000).prop_map(|n| n.to_string()),
        ];
        let typed = match key {
            "symbol" => string().boxed(),
            "n" => prop_oneof![any::<i64>().prop_map(|n| n.to_string()), integer].boxed(),
            "i" => integer.boxed(),
            "b" => prop::sample::select(vec!["true", "false"])
                .prop_map(str::to_string)
                .boxed(),
            "price" | "f" => prop_oneof![
                any::<f64>().prop_map(|x| x.to_string()),
                (any::<f32>(), -60i16..60).prop_map(|(x, e)| format!("{x:e}{e}")),
                (-100_000i64..100_000, 0u32..5).prop_map(|(n, d)| format!(
                    "{}.{:0width$}",
                    n,
                    n.unsigned_abs() % 10u64.pow(d),
                    width = d as usize
                )),
            ]
            .boxed(),
            _ => value().boxed(),
        };
        prop_oneof![8 => typed, 1 => Just("null".to_string()), 1 => value()].boxed()
    }

    fn record() -> impl Strategy<Value = String> {
        let key = prop::sample::select(vec!["symbol", "price", "n", "i", "f", "b", "x", "Price"]);
        let space = prop::sample::select(vec!["", "", "", " ", "\n\t", "\r "]);
        let member = (key, space.clone())
            .prop_flat_map(|(key, space)| (Just(key), typed(key), Just(space)))
            .prop_map(|(key, value, space)| format!(r#"{space}"{key}"{space}:{space}{value}"#));
        let members = prop::collection::vec(member, 0..7);
        (members, space, 0..16usize, any::<u8>()).prop_map(|(members, space, mutation, byte)| {
            let mut text = format!("{space}{{{}}}{space}", members.join(","));
            match mutation {
                0 => {
                    let mut end = usize::from(byte) % (text.len() + 1);
                    while !text.is_char_boundary(end) {
                        end -= 1;
                    }
                    text.truncate(end);
                }
                1 => {
                    let mut at = usize::from(byte) % (text.len() + 1);
                    while !text.is_char_boundary(at) {
                        at -= 1;
                    }
                    text.insert(at, ',');
                }
                2 => text.push_str(r#"{"n":1}"#),
                3 => text = text.replace(',', " "),
                _ => {}
            }
            text
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// The fast path gives exactly what arrow-json gives, record for record.
        #[test]
        fn the_fast_path_agrees_with_arrow_json(
            rows in prop::collection::vec(prop::option::weighted(0.95, record()), 0..24)
        ) {
            let [fast, slow] = both(&rows);
            prop_assert_eq!(fast.0.to_data(), slow.0.to_data());
            prop_assert_eq!(fast.1, slow.1);
            prop_assert_eq!(fast.2, slow.2);
        }
    }

    /// Records of one layout (the same members in the same order, spaced alike) with their
    /// values drawn anew, a few mutated: most are read against the layout of the one before.
    fn records_alike() -> impl Strategy<Value = Vec<Option<String>>> {
        let key = prop::sample::select(vec!["symbol", "price", "n", "i", "f", "b", "x", "Price"]);
        let space = prop::sample::select(vec!["", "", " ", "\n\t"]);
        (prop::collection::vec((key, space.clone()), 1..8), space).prop_flat_map(
            |(members, space)| {
                let row = (
                    members
                        .iter()
                        .map(|(key, _)| typed(key))
                        .collect::<Vec<_>>(),
                    0..24usize,
                    any::<u8>(),
                );
                let rows = prop::collection::vec(row, 1..24);
                rows.prop_map(move |rows| {
                    rows.into_iter()
                        .map(|(values, mutation, byte)| {
                            let body: Vec<String> = members
                                .iter()
                                .zip(&values)
                                .map(|((key, gap), value)| format!(r#"{gap}"{key}":{gap}{value}"#))
                                .collect();
                            let mut text = format!("{space}{{{}}}", body.join(","));
                            let at = usize::from(byte) % text.len();
                            match mutation {
                                0 if text.is_char_boundary(at) => text.truncate(at),
                                1 if text.is_char_boundary(at) => text.insert(at, ' '),
                                2 => text.push_str("{}"),
                                3 => text.push(' '),
                                _ => {}
                            }
                            Some(text)
                        })
                        .collect()
                })
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Records read against the layout of the one before give what arrow-json gives.
        #[test]
        fn records_alike_agree_with_arrow_json(rows in records_alike()) {
            let [fast, slow] = both(&rows);
            prop_assert_eq!(fast.0.to_data(), slow.0.to_data());
            prop_assert_eq!(fast.1, slow.1);
            prop_assert_eq!(fast.2, slow.2);
        }
    }

    #[test]
    fn a_record_of_the_same_layout_is_read_against_it() {
        let decoder = FlatDecoder::new(&fields()).expect("flat types");
        let mut slots = vec![Slot::Missing; 6];
        let mut layout = Layout::default();
        let first = br#"{"symbol":"BTCUSDT","x":[1],"price":1.5,"n":7}"#;
        assert!(matches!(
            decoder.read(first, &mut slots, &mut layout),
            Record::Object
        ));
        let mut template = vec![Slot::Missing; 6];
        let second = br#"{"symbol":"ETHUSDT","x":{"y":2},"price":-2e3,"n":null}"#;
        assert!(layout.read(&decoder, second, &mut template).is_some());
        assert!(matches!(
            decoder.read(second, &mut slots, &mut layout),
            Record::Object
        ));
        assert_eq!(format!("{template:?}"), format!("{slots:?}"));
        assert!(matches!(template[1], Slot::Float(x) if x == -2000.0));
        assert!(matches!(template[2], Slot::Null));
        for other in [
            &br#"{"symbol":"ETHUSDT","x":1,"price":1.5,"n":7,"b":true}"#[..],
            br#"{"symbol":"ETHUSDT","x":1,"price":1.5, "n":7}"#,
            br#"{"symbol":"ETHUSDT","x":1,"price":1.5,"n":7} "#,
            br#"{"symbol":"ETHUSDT","x":1,"price":"1.5","n":7}"#,
        ] {
            assert!(layout.read(&decoder, other, &mut template).is_none());
        }
    }

    #[test]
    fn typical_ticks_take_the_fast_path() {
        let decoder = FlatDecoder::new(&fields()).expect("flat types");
        let mut slots = vec![Slot::Missing; 6];
        for record in [
            r#"{"symbol":"BTCUSDT","price":84569.37,"n":1732406400000,"i":-7,"f":1.5,"b":true}"#,
            r#" { "price" : -0.5e-3 , "symbol" : "a\"b" , "x" : [1, {"y": null}] } "#,
            r#"{}"#,
            "{\"symbol\":\"é\"}",
        ] {
            assert!(
                matches!(
                    decoder.read(record.as_bytes(), &mut slots, &mut Layout::default()),
                    Record::Object
                ),
                "{record}"
            );
        }
        for record in [
            r#"{"symbol":"BTCUSDT",}"#,
            r#"{"price":"1.5"}"#,
            r#"{"price":01}"#,
            r#"{"symbol":"\u00e9"}"#,
            r#"{"n":1}{"n":2}"#,
            r#"{"n":1,"n":2}"#,
            r#"{"n":1.5}"#,
            r#"{"i":2147483648}"#,
        ] {
            assert!(
                matches!(
                    decoder.read(record.as_bytes(), &mut slots, &mut Layout::default()),
                    Record::Unsure
                ),
                "{record}"
            );
        }
        assert!(matches!(
            decoder.read(b" \r\n", &mut slots, &mut Layout::default()),
            Record::Blank
        ));
    }

    #[test]
    fn a_schema_that_repeats_a_name_or_nests_is_left_to_arrow_json() {
        let repeated = Fields::from(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Int64, true),
            Field::new("a", DataType::Utf8, true),
        ]);
        assert!(FlatDecoder::new(&repeated).is_none());
        let nested = Fields::from(vec![Field::new(
            "a",
            DataType::Struct(Fields::from(vec![Field::new("b", DataType::Int64, true)])),
            true,
        )]);
        assert!(FlatDecoder::new(&nested).is_none());
        assert!(FlatDecoder::new(&fields()).is_some());
    }

    #[test]
    fn a_column_of_records_the_fast_path_cannot_read_still_parses() {
        let rows: Vec<Option<String>> = (0..100)
            .map(|k| Some(format!(r#"{{"symbol":"\u00e9{k}","n":{k}}}"#)))
            .collect();
        let [fast, slow] = both(&rows);
        assert_eq!(fast.0.to_data(), slow.0.to_data());
        assert_eq!((fast.1, slow.1), (0, 0));
        let symbols = fast
            .0
            .as_any()
            .downcast_ref::<StructArray>()
            .expect("struct");
        assert_eq!(
            symbols
                .column(0)
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("utf8")
                .value(99),
            "é99"
        );
    }
}
