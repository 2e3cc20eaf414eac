//! A record read against the byte layout of the one before it.
//!
//! Records from one producer are written alike: the same fields in the same order, the same
//! spacing, only the values differ. Field by field, the fast path scans every name byte by
//! byte, skips whitespace around it and looks the name up; on the tick stream names and
//! punctuation are ~60 % of a record's bytes. Against the last record's layout, all that
//! between two values is one comparison with the bytes that stood there (`,"price":`), and
//! each value's field is known from its place. A record that differs anywhere is read field
//! by field instead, and its layout is kept for the next.
//!
//! The layout is taken from a record the field-by-field reader accepted, so a record matching
//! it has the same names, once each, and the same punctuation; its values are read by the
//! same code. A record is accepted this way exactly when it would be accepted field by field.

use super::{Cursor, FlatDecoder, Slot};

/// Where a value of the learned record was, and the field it belongs to.
#[derive(Debug, Clone, Copy)]
pub(super) struct Span {
    pub(super) start: usize,
    pub(super) end: usize,
    /// `None` for a field the schema leaves out.
    pub(super) field: Option<usize>,
}

/// The bytes around the values of the last record read field by field.
#[derive(Debug, Default)]
pub(super) struct Layout {
    /// The record's bytes between its values: before the first, between each two, and after
    /// the last.
    text: Vec<u8>,
    /// Per value: where the bytes before it end in `text`, and its field.
    members: Vec<(usize, Option<usize>)>,
    /// Scratch for the spans of the record being read field by field.
    pub(super) spans: Vec<Span>,
}

impl Layout {
    /// Keeps the layout of `record`, whose values are at `self.spans`. A record with no
    /// members, or with bytes above ASCII between its values, leaves no layout.
    pub(super) fn learn(&mut self, record: &[u8]) {
        self.text.clear();
        self.members.clear();
        let mut from = 0;
        for span in &self.spans {
            self.text.extend_from_slice(&record[from..span.start]);
            self.members.push((self.text.len(), span.field));
            from = span.end;
        }
        self.text.extend_from_slice(&record[from..]);
        if self.spans.is_empty() || !self.text.is_ascii() {
            self.members.clear();
        }
    }

    /// Reads `record` into `slots` if it has this layout: `Some(non_ascii)` when it does, with
    /// whether a string value held a byte above ASCII.
    pub(super) fn read(
        &self,
        decoder: &FlatDecoder,
        record: &[u8],
        slots: &mut [Slot],
    ) -> Option<bool> {
        if self.members.is_empty() {
            return None;
        }
        let mut cursor = Cursor {
            bytes: record,
            at: 0,
            non_ascii: false,
        };
        let mut from = 0;
        for &(to, field) in &self.members {
            let expected = &self.text[from..to];
            let end = cursor.at + expected.len();
            if !same(record.get(cursor.at..end)?, expected) {
                return None;
            }
            cursor.at = end;
            from = to;
            match field {
                Some(index) => slots[index] = cursor.value(decoder.kinds[index])?,
                None => cursor.skip_value(0)?,
            }
        }
        (record.get(cursor.at..)? == &self.text[from..]).then_some(cursor.non_ascii)
    }
}

/// Whether two slices of equal length hold the same bytes. The separators compared here are
/// a few to ~25 bytes: compared in words, inline, where a slice comparison calls `memcmp`
/// (that call was 3 % of the seed pipeline's CPU, twelve times per tick).
fn same(a: &[u8], b: &[u8]) -> bool {
    debug_assert_eq!(a.len(), b.len());
    let word = |s: &[u8], at: usize| {
        s.get(at..)
            .and_then(<[u8]>::first_chunk::<8>)
            .map(|w| u64::from_le_bytes(*w))
    };
    let len = a.len().min(b.len());
    if len >= 8 {
        // Whole words, then the last eight bytes (overlapping the words before).
        (0..len / 8).all(|k| word(a, 8 * k) == word(b, 8 * k))
            && word(a, len - 8) == word(b, len - 8)
    } else {
        a.iter().zip(b).all(|(x, y)| x == y)
    }
}
