//! Folder and file names of the file sink's output: partition values escaped as Spark's
//! `ExternalCatalogUtils.escapePathName` does, so no value can leave the output folder, and
//! the names of the sink's own data files, to recognise a crashed attempt's leftovers.

use std::fmt::Write as _;
use std::path::Path;

use super::format::SUFFIXES;

/// Escapes one path name as Spark's `ExternalCatalogUtils.escapePathName`: `%XX` (upper-case
/// hex) for control characters (NUL included), `"`, `#`, `%`, `'`, `*`, `/`, `:`, `=`, `?`,
/// `\`, DEL, `{`, `}`, `[`, `]` and `^` (and, on Windows, space, `<`, `>`, `|`); other
/// characters, non-ASCII included, are kept. A whole value of `.` or `..` becomes `%2E` or
/// `%2E%2E`, so it can never name the current or the parent folder.
pub fn escape_path_name(value: &str) -> String {
    if value == "." || value == ".." {
        return "%2E".repeat(value.len());
    }
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        if needs_escaping(c) {
            let _ = write!(escaped, "%{:02X}", c as u32);
        } else {
            escaped.push(c);
        }
    }
    escaped
}

/// Reverses [`escape_path_name`] as Spark's `unescapePathName` does: each `%` followed by two
/// hex digits becomes that character; anything else is kept.
pub fn unescape_path_name(name: &str) -> String {
    let bytes = name.as_bytes();
    let mut out = String::with_capacity(name.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && bytes[i + 1].is_ascii_hexdigit()
            && bytes[i + 2].is_ascii_hexdigit()
        {
            // Both are ASCII, so the slice is on char boundaries.
            if let Ok(code) = u8::from_str_radix(&name[i + 1..i + 3], 16) {
                out.push(char::from(code));
                i += 3;
                continue;
            }
        }
        let c = name[i..].chars().next().expect("i is on a char boundary");
        out.push(c);
        i += c.len_utf8();
    }
    out
}

fn needs_escaping(c: char) -> bool {
    matches!(
        c,
        '\u{00}'
            ..='\u{1F}'
                | '"'
                | '#'
                | '%'
                | '\''
                | '*'
                | '/'
                | ':'
                | '='
                | '?'
                | '\\'
                | '\u{7F}'
                | '{'
                | '}'
                | '['
                | ']'
                | '^'
    ) || (cfg!(windows) && matches!(c, ' ' | '<' | '>' | '|'))
}

/// One folder or file name that names neither this folder nor its parent and holds no
/// separator: joining it to a folder stays inside that folder.
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && Path::new(name).components().count() == 1
        && matches!(
            Path::new(name).components().next(),
            Some(std::path::Component::Normal(_))
        )
}

/// Whether `name` is a data file (final or temporary) that this sink writes for `batch_id`:
/// `part-<id:05>-<uuid><suffix>`, optionally as `.<that>.tmp`. Spark's own files
/// (`part-00000-<uuid>-c000.snappy.parquet`) do not match.
pub fn is_data_file_of(name: &str, batch_id: u64) -> bool {
    let name = match name.strip_prefix('.') {
        Some(hidden) => match hidden.strip_suffix(".tmp") {
            Some(name) => name,
            None => return false,
        },
        None => name,
    };
    let Some(rest) = name.strip_prefix(&format!("part-{batch_id:05}-")) else {
        return false;
    };
    let (Some(uuid), Some(suffix)) = (rest.get(..36), rest.get(36..)) else {
        return false;
    };
    uuid::Uuid::try_parse(uuid).is_ok() && SUFFIXES.contains(&suffix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escapes_like_spark() {
        // Expected values follow from the rule: %XX upper-case hex of the code point.
        assert_eq!(escape_path_name("BTCUSDT"), "BTCUSDT");
        assert_eq!(escape_path_name("a/b"), "a%2Fb");
        assert_eq!(escape_path_name("../../x"), "..%2F..%2Fx");
        assert_eq!(escape_path_name(".."), "%2E%2E");
        assert_eq!(escape_path_name("."), "%2E");
        assert_eq!(escape_path_name("..."), "...");
        assert_eq!(escape_path_name("%2e%2e"), "%252e%252e");
        assert_eq!(escape_path_name("a\0b"), "a%00b");
        assert_eq!(escape_path_name("x=1:2"), "x%3D1%3A2");
        assert_eq!(escape_path_name("C:\\t"), "C%3A%5Ct");
        assert_eq!(escape_path_name("{}[]^"), "%7B%7D%5B%5D%5E");
        assert_eq!(escape_path_name("\"#'*?\u{7f}\n"), "%22%23%27%2A%3F%7F%0A");
        assert_eq!(escape_path_name("é-ü"), "é-ü");
    }

    #[test]
    fn unescapes_like_spark() {
        assert_eq!(unescape_path_name("a%2Fb"), "a/b");
        assert_eq!(unescape_path_name("%2e%2E"), "..");
        assert_eq!(unescape_path_name("100%"), "100%");
        assert_eq!(unescape_path_name("%4"), "%4");
        assert_eq!(unescape_path_name("%zz%41"), "%zzA");
        assert_eq!(unescape_path_name("é%20"), "é ");
    }

    #[test]
    fn recognises_only_its_own_files_of_the_batch() {
        let uuid = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
        assert!(is_data_file_of(
            &format!("part-00003-{uuid}.zstd.parquet"),
            3
        ));
        assert!(is_data_file_of(
            &format!(".part-00003-{uuid}.parquet.tmp"),
            3
        ));
        assert!(is_data_file_of(
            &format!("part-123456-{uuid}.snappy.parquet"),
            123456
        ));
        assert!(!is_data_file_of(
            &format!("part-00003-{uuid}.zstd.parquet"),
            4
        ));
        assert!(!is_data_file_of(
            &format!("part-00003-{uuid}-c000.snappy.parquet"),
            3
        ));
        assert!(!is_data_file_of(&format!(".part-00003-{uuid}.parquet"), 3));
        assert!(!is_data_file_of("part-00003-not-a-uuid.zstd.parquet", 3));
    }

    proptest! {
        #[test]
        fn escaped_values_are_one_plain_name_and_round_trip(value in "\\PC{0,12}|[./%\\\\\u{0}-\u{1f}]{0,6}") {
            let escaped = escape_path_name(&value);
            prop_assert!(value.is_empty() || is_plain_name(&escaped), "{escaped:?}");
            let folder = format!("col={escaped}");
            prop_assert!(is_plain_name(&folder));
            prop_assert_eq!(unescape_path_name(&escaped), value);
        }
    }
}
