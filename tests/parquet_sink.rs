//! The Parquet file sink on real files: exactly-once by batch id, Hive partitioning with
//! escaped folder names that never leave the output folder, codecs, manifests.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray, TimestampNanosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::util::display::array_value_to_string;
use ferrostream::error::Error;
use ferrostream::plan::OutputMode;
use ferrostream::sink::file::{committed_files, FileSink};
use ferrostream::sink::Sink;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, LogicalType};

const DEFAULT_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

// ---------------------------------------------------------------- helpers

fn tick_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("symbol", DataType::Utf8, true),
        Field::new("price", DataType::Float64, true),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("volume", DataType::Int64, true),
    ]))
}

type Tick = (Option<&'static str>, f64, i64, i64);

fn ticks(rows: &[Tick]) -> RecordBatch {
    let symbol: ArrayRef = Arc::new(StringArray::from(
        rows.iter().map(|r| r.0).collect::<Vec<_>>(),
    ));
    let price: ArrayRef = Arc::new(Float64Array::from(
        rows.iter().map(|r| r.1).collect::<Vec<_>>(),
    ));
    let ts: ArrayRef = Arc::new(
        TimestampMicrosecondArray::from(rows.iter().map(|r| r.2).collect::<Vec<_>>())
            .with_timezone("UTC"),
    );
    let volume: ArrayRef = Arc::new(Int64Array::from(
        rows.iter().map(|r| r.3).collect::<Vec<_>>(),
    ));
    RecordBatch::try_new(tick_schema(), vec![symbol, price, ts, volume]).expect("valid batch")
}

fn sink(root: &Path, partition_by: &[&str], options: &[(&str, &str)]) -> FileSink {
    try_sink(root, partition_by, options, tick_schema()).expect("sink")
}

fn try_sink(
    root: &Path,
    partition_by: &[&str],
    options: &[(&str, &str)],
    schema: SchemaRef,
) -> ferrostream::Result<FileSink> {
    let partition_by: Vec<String> = partition_by.iter().map(|s| s.to_string()).collect();
    let options: BTreeMap<String, String> = options
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    FileSink::new("parquet", root, &partition_by, &options, schema)
}

fn append(sink: &mut FileSink, batch_id: u64, batches: &[RecordBatch]) {
    sink.add_batch(batch_id, &tick_schema(), batches, OutputMode::Append)
        .expect("batch written");
}

/// Percent-decoding as in RFC 3986 (what Hive-partitioning readers apply to folder names),
/// written independently of the sink's own unescaping.
fn percent_decode(text: &str) -> String {
    let mut bytes = Vec::new();
    let raw = text.as_bytes();
    let mut i = 0;
    while i < raw.len() {
        let hex = raw
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (raw[i], hex) {
            (b'%', Some(byte)) => {
                bytes.push(byte);
                i += 3;
            }
            (byte, _) => {
                bytes.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(bytes).expect("utf-8")
}

/// The partition values a relative data file path carries: `col=value` folders, decoded;
/// the default partition becomes None.
fn partition_values(relative: &Path) -> Vec<(String, Option<String>)> {
    let components: Vec<String> = relative
        .components()
        .map(|c| match c {
            Component::Normal(name) => name.to_string_lossy().to_string(),
            other => panic!("{} has a non-plain component {other:?}", relative.display()),
        })
        .collect();
    components[..components.len() - 1]
        .iter()
        .map(|folder| {
            let (column, value) = folder
                .split_once('=')
                .unwrap_or_else(|| panic!("{folder} is not a col=value folder"));
            let value = (value != DEFAULT_PARTITION).then(|| percent_decode(value));
            (percent_decode(column), value)
        })
        .collect()
}

fn read_file(path: &Path) -> Vec<RecordBatch> {
    let file = fs::File::open(path).expect("open data file");
    ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("a parquet file")
        .build()
        .expect("reader")
        .collect::<Result<Vec<_>, _>>()
        .expect("readable")
}

/// One row as text, columns in `order`, with `extra` column values inserted by name.
fn row_texts(
    batch: &RecordBatch,
    order: &[&str],
    extra: &[(String, Option<String>)],
) -> Vec<String> {
    (0..batch.num_rows())
        .map(|row| {
            order
                .iter()
                .map(|name| {
                    if let Some((_, value)) = extra.iter().find(|(c, _)| c == name) {
                        return value.clone().unwrap_or_else(|| "<null>".into());
                    }
                    let column = batch
                        .column_by_name(name)
                        .unwrap_or_else(|| panic!("no column {name}"));
                    if column.is_null(row) {
                        "<null>".to_string()
                    } else {
                        array_value_to_string(column, row).expect("display")
                    }
                })
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect()
}

/// Every committed row (partition values from the folder names), sorted.
fn committed_rows(root: &Path, order: &[&str]) -> Vec<String> {
    let mut rows = Vec::new();
    for relative in committed_files(root).expect("manifests") {
        let values = partition_values(&relative);
        for batch in read_file(&root.join(&relative)) {
            for (column, _) in &values {
                assert!(
                    batch.column_by_name(column).is_none(),
                    "partition column {column} must not be stored in the file"
                );
            }
            rows.extend(row_texts(&batch, order, &values));
        }
    }
    rows.sort();
    rows
}

fn input_rows(batches: &[RecordBatch], order: &[&str]) -> Vec<String> {
    let mut rows: Vec<String> = batches
        .iter()
        .flat_map(|b| row_texts(b, order, &[]))
        .collect();
    rows.sort();
    rows
}

/// Every file and folder under `root` (hidden ones included), relative, with the bytes of
/// each file.
fn tree(root: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in fs::read_dir(&folder).expect("list") {
            let path = entry.expect("entry").path();
            let relative = path.strip_prefix(root).expect("inside").to_path_buf();
            if path.is_dir() {
                out.insert(relative, None);
                folders.push(path);
            } else {
                out.insert(relative, Some(fs::read(&path).expect("read")));
            }
        }
    }
    out
}

fn data_file_names(root: &Path) -> Vec<PathBuf> {
    tree(root)
        .into_iter()
        .filter(|(p, bytes)| bytes.is_some() && !p.starts_with("_ferrostream_metadata"))
        .map(|(p, _)| p)
        .collect()
}

fn compressions(path: &Path) -> Vec<Compression> {
    let file = fs::File::open(path).expect("open");
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).expect("parquet");
    builder
        .metadata()
        .row_groups()
        .iter()
        .flat_map(|rg| rg.columns().iter().map(|c| c.compression()))
        .collect()
}

const ORDER: [&str; 4] = ["symbol", "price", "ts", "volume"];

fn three_batches() -> Vec<Vec<RecordBatch>> {
    vec![
        vec![
            ticks(&[
                (Some("BTCUSDT"), 64000.5, 1_700_000_000_000_000, 3),
                (Some("ETHUSDT"), 3100.25, 1_700_000_001_000_000, 10),
                (Some("BTCUSDT"), 64010.0, 1_700_000_002_000_000, 1),
            ]),
            ticks(&[
                (Some("SOLUSDT"), 150.0, 1_700_000_003_000_000, 7),
                (Some("BTCUSDT"), 64020.0, 1_700_000_004_000_000, 2),
            ]),
        ],
        vec![
            ticks(&[(Some("ETHUSDT"), 3101.0, 1_700_000_005_000_000, 4)]),
            ticks(&[
                (Some("ETHUSDT"), 3101.0, 1_700_000_005_000_000, 4), // a true duplicate row
                (Some("BTCUSDT"), 64030.0, 1_700_000_006_000_000, 5),
            ]),
        ],
        vec![ticks(&[
            (Some("SOLUSDT"), 151.5, 1_700_000_007_000_000, 8),
            (Some("SOLUSDT"), 152.0, 1_700_000_008_000_000, 9),
            (Some("ETHUSDT"), 3102.0, 1_700_000_009_000_000, 6),
        ])],
    ]
}

fn distinct_symbols(batches: &[RecordBatch]) -> BTreeSet<String> {
    batches
        .iter()
        .flat_map(|b| row_texts(b, &["symbol"], &[]))
        .collect()
}

// ---------------------------------------------------------------- tests

#[test]
fn three_partitioned_batches_read_back_as_the_input_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("out");
    let mut sink = sink(&root, &["symbol"], &[]);
    let batches = three_batches();
    for (id, batch) in batches.iter().enumerate() {
        append(&mut sink, id as u64, batch);
    }

    let all: Vec<RecordBatch> = batches.iter().flatten().cloned().collect();
    assert_eq!(committed_rows(&root, &ORDER), input_rows(&all, &ORDER));

    // One file per partition value per batch, however many record batches a batch had.
    let files = committed_files(&root).expect("manifests");
    let expected_files: usize = batches.iter().map(|b| distinct_symbols(b).len()).sum();
    assert_eq!(files.len(), expected_files, "{files:?}");
    let mut seen = 0;
    for (id, batch) in batches.iter().enumerate() {
        let prefix = format!("part-{id:05}-");
        let of_batch: Vec<&PathBuf> = files
            .iter()
            .filter(|f| {
                f.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(&prefix)
            })
            .collect();
        let folders: BTreeSet<String> = of_batch
            .iter()
            .map(|f| f.parent().unwrap().to_string_lossy().to_string())
            .collect();
        let wanted: BTreeSet<String> = distinct_symbols(batch)
            .into_iter()
            .map(|s| format!("symbol={s}"))
            .collect();
        assert_eq!(folders, wanted, "batch {id}");
        assert_eq!(of_batch.len(), wanted.len(), "batch {id}");
        // Commit order: batch 0's files, then batch 1's, then batch 2's.
        assert!(files[seen..seen + of_batch.len()]
            .iter()
            .all(|f| of_batch.contains(&f)));
        seen += of_batch.len();
        for file in of_batch {
            let name = file.file_name().unwrap().to_string_lossy().to_string();
            assert!(name.ends_with(".snappy.parquet"), "{name}");
            let uuid = &name[prefix.len()..name.len() - ".snappy.parquet".len()];
            assert_eq!(uuid.len(), 36, "{name}");
        }
    }
    // No data file outside the manifests, no temporary file left.
    let mut on_disk = data_file_names(&root);
    on_disk.sort();
    let mut listed = files.clone();
    listed.sort();
    assert_eq!(on_disk, listed);

    // The manifest counts rows.
    let manifest: serde_json::Value = serde_json::from_slice(
        &fs::read(root.join("_ferrostream_metadata").join("1")).expect("manifest 1"),
    )
    .expect("json");
    assert_eq!(manifest["batchId"], 1);
    let rows: u64 = manifest["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["rows"].as_u64().expect("rows"))
        .sum();
    assert_eq!(
        rows as usize,
        batches[1].iter().map(|b| b.num_rows()).sum::<usize>()
    );
    assert!(sink.description().contains("out"));
}

#[test]
fn replaying_a_committed_batch_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("out");
    let mut first = sink(&root, &["symbol"], &[]);
    for (id, batch) in three_batches().iter().enumerate() {
        append(&mut first, id as u64, batch);
    }
    let before = tree(&root);
    let committed = committed_files(&root).expect("manifests");

    // Different rows under a committed id, from the same sink and from a restarted one.
    let replay = [ticks(&[(Some("DOGEUSDT"), 0.1, 1_700_000_100_000_000, 1)])];
    append(&mut first, 1, &replay);
    let mut restarted = sink(&root, &["symbol"], &[]);
    append(&mut restarted, 1, &replay);
    append(&mut restarted, 0, &replay);

    assert_eq!(
        tree(&root),
        before,
        "a replayed batch changed the output folder"
    );
    assert_eq!(committed_files(&root).expect("manifests"), committed);
}

#[test]
fn files_of_an_uncommitted_attempt_are_never_committed_and_are_cleaned_on_rerun() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("out");
    let batches = three_batches();
    let mut crashed = sink(&root, &["symbol"], &[]);
    append(&mut crashed, 0, &batches[0]);
    drop(crashed);

    // The process died during batch 1: a renamed data file, a temporary one, and a
    // half-written manifest, but no manifest `1`.
    let folder = root.join("symbol=BTCUSDT");
    let uuid = "11111111-2222-4333-8444-555555555555";
    let orphan = folder.join(format!("part-00001-{uuid}.zstd.parquet"));
    let orphan_tmp = folder.join(format!(".part-00001-{uuid}.zstd.parquet.tmp"));
    let foreign = folder.join(format!("part-00001-{uuid}-c000.snappy.parquet"));
    for path in [&orphan, &foreign] {
        let file = fs::File::create(path).expect("create");
        let data = ticks(&[(Some("BTCUSDT"), 1.0, 1, 1)])
            .project(&[1, 2, 3])
            .expect("project");
        let mut writer = ArrowWriter::try_new(file, data.schema(), None).expect("writer");
        writer.write(&data).expect("write");
        writer.close().expect("close");
    }
    fs::write(&orphan_tmp, b"PAR1 half a file").expect("tmp");
    fs::write(
        root.join("_ferrostream_metadata").join(".1.5f2c.tmp"),
        br#"{"batchId": 1, "files": [{"path": "symbol=BTCUSDT/part-00001-x.zstd.parquet""#,
    )
    .expect("manifest tmp");

    let committed = committed_files(&root).expect("manifests");
    let orphan_relative = orphan.strip_prefix(&root).unwrap().to_path_buf();
    assert!(!committed.contains(&orphan_relative), "{committed:?}");
    assert!(committed.iter().all(|f| {
        f.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("part-00000-")
    }));
    assert_eq!(
        committed_rows(&root, &ORDER),
        input_rows(&batches[0], &ORDER)
    );

    // The restarted query reruns batch 1.
    let mut restarted = sink(&root, &["symbol"], &[]);
    append(&mut restarted, 1, &batches[1]);
    assert!(
        !orphan.exists(),
        "the crashed attempt's file is still there"
    );
    assert!(
        !orphan_tmp.exists(),
        "the crashed attempt's temporary file is still there"
    );
    assert!(foreign.exists(), "a file that is not ours was deleted");
    let both: Vec<RecordBatch> = batches[..2].iter().flatten().cloned().collect();
    assert_eq!(committed_rows(&root, &ORDER), input_rows(&both, &ORDER));
}

#[test]
fn hostile_partition_values_stay_inside_the_output_folder_and_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("out");
    let hostile: Vec<Option<&str>> = vec![
        Some("../../x"),
        Some("a/b"),
        Some(".."),
        Some("."),
        Some("/etc/passwd"),
        Some("%2e%2e"),
        Some("a\0b"),
        Some("..\\..\\win"),
        Some("C:x"),
        Some("line\nbreak"),
        Some("sym=bol"),
        Some("..."),
        Some("ünï"),
        Some(""),
        None,
    ];
    let schema = Arc::new(Schema::new(vec![
        Field::new("p", DataType::Utf8, true),
        Field::new("id", DataType::Int64, false),
    ]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(StringArray::from(hostile.clone())),
            Arc::new(Int64Array::from_iter_values(0..hostile.len() as i64)),
        ],
    )
    .expect("batch");
    let mut sink = try_sink(&root, &["p"], &[], Arc::clone(&schema)).expect("sink");
    sink.add_batch(0, &schema, &[batch], OutputMode::Append)
        .expect("written");

    // Nothing was created next to the output folder.
    let siblings: Vec<String> = fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(siblings, vec!["out".to_string()]);

    let canonical_root = root.canonicalize().expect("root");
    let mut found: BTreeMap<i64, Option<String>> = BTreeMap::new();
    for relative in committed_files(&root).expect("manifests") {
        assert_eq!(
            relative.components().count(),
            2,
            "one folder level per partition column: {}",
            relative.display()
        );
        let full = root.join(&relative).canonicalize().expect("exists");
        assert!(
            full.starts_with(&canonical_root),
            "{} escaped",
            full.display()
        );
        let values = partition_values(&relative);
        assert_eq!(values.len(), 1);
        assert_eq!(values[0].0, "p");
        for batch in read_file(&full) {
            let ids = batch
                .column_by_name("id")
                .expect("id")
                .as_any()
                .downcast_ref::<Int64Array>()
                .expect("int64")
                .clone();
            for id in ids.values() {
                assert!(
                    found.insert(*id, values[0].1.clone()).is_none(),
                    "row {id} twice"
                );
            }
        }
    }
    assert_eq!(found.len(), hostile.len(), "every row written once");
    for (id, original) in hostile.iter().enumerate() {
        // Null and empty both go to the default partition (Spark's rule).
        let expected = original.filter(|v| !v.is_empty()).map(str::to_string);
        assert_eq!(found[&(id as i64)], expected, "value {original:?}");
    }

    // Folder names spelled out from the rule (percent-encode, `.`/`..` whole).
    for folder in [
        "p=..%2F..%2Fx",
        "p=a%2Fb",
        "p=%2E%2E",
        "p=%2E",
        "p=%2Fetc%2Fpasswd",
        "p=%252e%252e",
        "p=a%00b",
        "p=..%5C..%5Cwin",
        "p=C%3Ax",
        "p=line%0Abreak",
        "p=sym%3Dbol",
        "p=...",
        "p=__HIVE_DEFAULT_PARTITION__",
    ] {
        assert!(root.join(folder).is_dir(), "{folder} missing");
    }
}

#[test]
fn nested_partition_folders_render_values_like_spark() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("out");
    let schema = Arc::new(Schema::new(vec![
        Field::new("v", DataType::Float64, true),
        Field::new("day", DataType::Date32, true),
        Field::new("up", DataType::Boolean, true),
        Field::new("n", DataType::Int64, true),
    ]));
    // 19783 days after 1970-01-01 is 2024-03-01.
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(Float64Array::from(vec![1.5, 2.5, 3.5])),
            Arc::new(Date32Array::from(vec![19783, 19783, 19784])),
            Arc::new(BooleanArray::from(vec![Some(true), Some(true), None])),
            Arc::new(Int64Array::from(vec![-5, -5, 7])),
        ],
    )
    .expect("batch");
    let mut sink = try_sink(&root, &["day", "up", "n"], &[], Arc::clone(&schema)).expect("sink");
    sink.add_batch(4, &schema, &[batch], OutputMode::Append)
        .expect("written");
    let folders: BTreeSet<String> = committed_files(&root)
        .expect("manifests")
        .iter()
        .map(|f| f.parent().unwrap().to_string_lossy().to_string())
        .collect();
    let expected: BTreeSet<String> = [
        "day=2024-03-01/up=true/n=-5",
        "day=2024-03-02/up=__HIVE_DEFAULT_PARTITION__/n=7",
    ]
    .into_iter()
    .map(str::to_string)
    .collect();
    assert_eq!(folders, expected);
    let rows = committed_rows(&root, &["v", "day", "up", "n"]);
    assert_eq!(
        rows,
        vec![
            "1.5|2024-03-01|true|-5".to_string(),
            "2.5|2024-03-01|true|-5".to_string(),
            "3.5|2024-03-02|<null>|7".to_string(),
        ]
    );
}

#[test]
fn update_and_complete_output_modes_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("out");
    let mut sink = sink(&root, &["symbol"], &[]);
    let batch = three_batches().remove(0);
    for (mode, name) in [
        (OutputMode::Update, "Update"),
        (OutputMode::Complete, "Complete"),
    ] {
        let error = sink
            .add_batch(0, &tick_schema(), &batch, mode)
            .expect_err("refused");
        let message = error.to_string();
        assert!(matches!(error, Error::Analysis(_)), "{error:?}");
        assert!(message.contains(name), "{message}");
        assert!(message.contains("append"), "{message}");
    }
    assert!(committed_files(&root).expect("manifests").is_empty());
    assert!(!root.join("_ferrostream_metadata").join("0").exists());
    assert!(data_file_names(&root).is_empty());
}

#[test]
fn snappy_is_the_default_codec_as_in_spark_and_the_option_chooses_others() {
    let cases: [(&[(&str, &str)], &str); 5] = [
        (&[], ".snappy.parquet"),
        (&[("COMPRESSION", "Zstd")], ".zstd.parquet"),
        (&[("parquet.compression", "snappy")], ".snappy.parquet"),
        (&[("compression", "none")], ".parquet"),
        (&[("compression", "uncompressed")], ".parquet"),
    ];
    for (options, suffix) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("out");
        let mut sink = sink(&root, &["symbol"], options);
        append(&mut sink, 0, &three_batches()[0]);
        let files = committed_files(&root).expect("manifests");
        assert!(!files.is_empty());
        for file in files {
            let name = file.file_name().unwrap().to_string_lossy().to_string();
            assert!(name.ends_with(suffix), "{name} for {options:?}");
            assert!(
                suffix != ".parquet"
                    || !name.ends_with("zstd.parquet") && !name.ends_with("snappy.parquet"),
                "{name}"
            );
            let codecs = compressions(&root.join(&file));
            assert!(!codecs.is_empty());
            for codec in codecs {
                let ok = match suffix {
                    ".zstd.parquet" => matches!(codec, Compression::ZSTD(_)),
                    ".snappy.parquet" => codec == Compression::SNAPPY,
                    _ => codec == Compression::UNCOMPRESSED,
                };
                assert!(ok, "{codec:?} in {name} for {options:?}");
            }
        }
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let error = try_sink(dir.path(), &[], &[("compression", "lz77")], tick_schema())
        .err()
        .expect("refused");
    let message = error.to_string();
    assert!(matches!(error, Error::IllegalArgument(_)), "{error:?}");
    for word in ["compression", "lz77", "zstd", "snappy", "none"] {
        assert!(message.contains(word), "{message} lacks {word}");
    }
}

#[test]
fn an_empty_batch_commits_an_empty_manifest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("out");
    let mut sink = sink(&root, &["symbol"], &[]);
    append(&mut sink, 0, &[]);
    append(&mut sink, 1, &[ticks(&[])]);
    for id in ["0", "1"] {
        let manifest: serde_json::Value = serde_json::from_slice(
            &fs::read(root.join("_ferrostream_metadata").join(id)).expect("manifest"),
        )
        .expect("json");
        assert_eq!(manifest["batchId"].to_string(), id);
        assert_eq!(manifest["files"], serde_json::json!([]));
    }
    assert!(committed_files(&root).expect("manifests").is_empty());
    assert!(data_file_names(&root).is_empty());
}

#[test]
fn an_unpartitioned_batch_is_one_file_with_microsecond_utc_timestamps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("out");
    let schema = Arc::new(Schema::new(vec![
        Field::new("v", DataType::Int64, false),
        Field::new(
            "t",
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            false,
        ),
    ]));
    let part = |values: Vec<i64>| {
        let nanos: Vec<i64> = values
            .iter()
            .map(|v| v * 1_000_000_000 + 123_456_000)
            .collect();
        RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int64Array::from(values)),
                Arc::new(TimestampNanosecondArray::from(nanos).with_timezone("UTC")),
            ],
        )
        .expect("batch")
    };
    let batches = [part(vec![1, 2]), part(vec![3]), part(vec![4, 5, 6])];
    let mut sink = try_sink(&root, &[], &[], Arc::clone(&schema)).expect("sink");
    sink.add_batch(0, &schema, &batches, OutputMode::Append)
        .expect("written");
    let files = committed_files(&root).expect("manifests");
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].components().count(), 1, "at the root: {files:?}");

    let file = fs::File::open(root.join(&files[0])).expect("open");
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).expect("parquet");
    let column = builder.metadata().file_metadata().schema_descr().column(1);
    assert_eq!(
        column.logical_type_ref(),
        Some(&LogicalType::timestamp(
            true,
            parquet::basic::TimeUnit::MICROS
        ))
    );
    let read: Vec<RecordBatch> = builder
        .build()
        .expect("reader")
        .map(|b| b.expect("batch"))
        .collect();
    let rows: usize = read.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 6);
    let first = row_texts(&read[0], &["v", "t"], &[]);
    assert_eq!(first[0], "1|1970-01-01T00:00:01.123456Z");
}

#[test]
fn a_file_that_cannot_be_written_leaves_no_file_of_its_batch() {
    // 20 folders: the sink writes them in groups (16 at a time), so when the last folder
    // cannot be created (a file is in its way) the first group is already renamed into
    // place and the second is open; neither may stay.
    let symbols: Vec<String> = (0..20).map(|i| format!("S{i:02}")).collect();
    let times = (0..20).map(|i| 1_700_000_000_000_000 + i);
    let batch = [RecordBatch::try_new(
        tick_schema(),
        vec![
            Arc::new(StringArray::from_iter_values(&symbols)),
            Arc::new(Float64Array::from_iter_values((0..20).map(f64::from))),
            Arc::new(TimestampMicrosecondArray::from_iter_values(times).with_timezone("UTC")),
            Arc::new(Int64Array::from(vec![1; 20])),
        ],
    )
    .expect("batch")];
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("out");
    let mut sink = sink(&root, &["symbol"], &[]);
    let blocker = root.join("symbol=S19");
    fs::write(&blocker, b"in the way").expect("blocker");
    let error = sink
        .add_batch(0, &tick_schema(), &batch, OutputMode::Append)
        .expect_err("refused");
    assert!(error.to_string().contains("symbol=S19"), "{error}");
    let left: Vec<PathBuf> = data_file_names(&root)
        .into_iter()
        .filter(|p| p.as_path() != Path::new("symbol=S19"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(!root.join("_ferrostream_metadata").join("0").exists());

    fs::remove_file(&blocker).expect("unblock");
    append(&mut sink, 0, &batch);
    assert_eq!(committed_rows(&root, &ORDER), input_rows(&batch, &ORDER));
    assert_eq!(data_file_names(&root).len(), 20);
}

#[test]
fn files_are_byte_for_byte_what_a_plain_arrow_writer_writes() {
    // The sink prepares the Parquet schema and the footer's Arrow schema once per sink
    // instead of per file; the files must not notice.
    for (options, compression) in [
        (&[][..], Compression::SNAPPY),
        (
            &[("compression", "zstd")][..],
            Compression::ZSTD(parquet::basic::ZstdLevel::try_new(3).expect("level")),
        ),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("out");
        let batch = three_batches().remove(0).remove(0);
        let mut sink = sink(&root, &[], options);
        append(&mut sink, 0, std::slice::from_ref(&batch));
        let files = committed_files(&root).expect("manifests");
        assert_eq!(files.len(), 1, "{files:?}");
        let written = fs::read(root.join(&files[0])).expect("read");

        let properties = parquet::file::properties::WriterProperties::builder()
            .set_compression(compression)
            .set_coerce_types(true)
            .build();
        let mut plain = Vec::new();
        let mut writer =
            ArrowWriter::try_new(&mut plain, batch.schema(), Some(properties)).expect("writer");
        writer.write(&batch).expect("write");
        writer.close().expect("close");
        assert!(written == plain, "{options:?}: the sink's file differs");
    }
}

#[test]
fn a_corrupt_manifest_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("out");
    let mut sink = sink(&root, &["symbol"], &[]);
    append(&mut sink, 0, &three_batches()[0]);
    let bad = root.join("_ferrostream_metadata").join("1");
    fs::write(&bad, b"{\"batchId\": 1, \"files\": [").expect("write");
    let error = committed_files(&root).expect_err("corrupt");
    assert!(matches!(error, Error::Sink(_)), "{error:?}");
    assert!(
        error.to_string().contains(&bad.display().to_string()),
        "{error}"
    );

    // A manifest naming a path outside the folder is refused too.
    fs::write(
        &bad,
        br#"{"batchId": 1, "files": [{"path": "../../etc/passwd", "rows": 1, "bytes": 1}]}"#,
    )
    .expect("write");
    let error = committed_files(&root).expect_err("outside");
    assert!(
        error.to_string().contains(&bad.display().to_string()),
        "{error}"
    );
}

#[test]
fn bad_partition_columns_are_refused_with_their_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = try_sink(dir.path(), &["sym"], &[], tick_schema())
        .err()
        .expect("unknown column");
    assert!(missing.to_string().contains("sym"), "{missing}");

    let two = Arc::new(Schema::new(vec![
        Field::new("a", DataType::Utf8, true),
        Field::new("b", DataType::Utf8, true),
    ]));
    let all = try_sink(dir.path(), &["a", "b"], &[], two)
        .err()
        .expect("all columns");
    assert!(all.to_string().contains("all columns"), "{all}");

    let nested = Arc::new(Schema::new(vec![
        Field::new("v", DataType::Int64, true),
        Field::new(
            "w",
            DataType::Struct(vec![Field::new("start", DataType::Int64, true)].into()),
            true,
        ),
    ]));
    let error = try_sink(dir.path(), &["w"], &[], nested)
        .err()
        .expect("struct");
    assert!(error.to_string().contains("`w`"), "{error}");

    // Case-insensitive resolution, as Spark by default.
    let sink = try_sink(dir.path(), &["SYMBOL"], &[], tick_schema());
    assert!(sink.is_ok());
}

#[test]
fn small_files_are_compacted_and_the_manifest_stays_exact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let mut sink = sink(root, &["symbol"], &[("minFilesToCompact", "5")]);
    let mut input = Vec::new();
    for batch_id in 0..23u64 {
        let price = batch_id as f64;
        let batch = ticks(&[
            (Some("BTCUSDT"), price, batch_id as i64 * 1_000_000, 1),
            (Some("ETHUSDT"), price, batch_id as i64 * 1_000_000, 2),
        ]);
        append(&mut sink, batch_id, std::slice::from_ref(&batch));
        input.push(batch);
        // After every commit: the committed rows are exactly the input so far, and the
        // folders hold exactly the committed files (nothing a listing reader would see twice).
        let order = ["symbol", "price", "ts", "volume"];
        assert_eq!(committed_rows(root, &order), input_rows(&input, &order));
        let committed: BTreeSet<PathBuf> = committed_files(root)
            .expect("manifests")
            .into_iter()
            .collect();
        let on_disk: BTreeSet<PathBuf> = data_file_names(root).into_iter().collect();
        assert_eq!(committed, on_disk, "after batch {batch_id}");
    }
    // 23 one-row files per symbol would be there without compaction; with a compaction at
    // every 5th small file, each folder holds at most 4.
    for symbol in ["BTCUSDT", "ETHUSDT"] {
        let files = committed_files(root)
            .expect("manifests")
            .into_iter()
            .filter(|p| p.starts_with(format!("symbol={symbol}")))
            .count();
        assert!(files < 5, "{symbol}: {files} files");
    }
    // A restarted sink knows the live files and keeps compacting from there.
    let mut again = sink_again(root);
    append(&mut again, 23, &[ticks(&[(Some("BTCUSDT"), 99.0, 0, 3)])]);
    assert_eq!(committed_rows(root, &["symbol"]).len(), 47);
}

fn sink_again(root: &Path) -> FileSink {
    sink(root, &["symbol"], &[("minFilesToCompact", "5")])
}

#[test]
fn files_a_committed_compaction_replaced_are_deleted_on_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let mut first = sink(root, &[], &[("minFilesToCompact", "3")]);
    for batch_id in 0..2u64 {
        append(
            &mut first,
            batch_id,
            &[ticks(&[(Some("A"), 1.0, 0, batch_id as i64)])],
        );
    }
    let before: Vec<PathBuf> = data_file_names(root);
    assert_eq!(before.len(), 2);
    // Keep copies of the two small files, compact them away, then put them back as if a
    // crash had struck between the manifest and the deletion.
    let saved: Vec<(PathBuf, Vec<u8>)> = before
        .iter()
        .map(|p| (p.clone(), fs::read(root.join(p)).expect("read")))
        .collect();
    append(&mut first, 2, &[ticks(&[(Some("A"), 1.0, 0, 2)])]);
    assert_eq!(data_file_names(root).len(), 1);
    for (path, bytes) in &saved {
        fs::write(root.join(path), bytes).expect("restore");
    }
    let _restarted = sink(root, &[], &[("minFilesToCompact", "3")]);
    assert_eq!(data_file_names(root).len(), 1);
    assert_eq!(committed_rows(root, &["volume"]).len(), 3);
}

#[test]
fn json_and_csv_sinks_write_committed_files() {
    for (format, suffix) in [("json", ".json"), ("csv", ".csv")] {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let options: BTreeMap<String, String> = [("header".to_string(), "true".to_string())].into();
        let mut sink = FileSink::new(
            format,
            root,
            &["symbol".to_string()],
            &options,
            tick_schema(),
        )
        .expect("sink");
        append(
            &mut sink,
            0,
            &[ticks(&[
                (Some("BTCUSDT"), 1.5, 0, 7),
                (Some("ETHUSDT"), 2.5, 0, 8),
            ])],
        );
        let files = committed_files(root).expect("manifests");
        assert_eq!(files.len(), 2, "{format}");
        let btc = files
            .iter()
            .find(|p| p.starts_with("symbol=BTCUSDT"))
            .expect("BTCUSDT file");
        assert!(btc.to_string_lossy().ends_with(suffix));
        let text = fs::read_to_string(root.join(btc)).expect("read");
        match format {
            "json" => assert_eq!(
                text.trim(),
                r#"{"price":1.5,"ts":"1970-01-01T00:00:00Z","volume":7}"#
            ),
            _ => assert_eq!(
                text.lines().collect::<Vec<_>>(),
                ["price,ts,volume", "1.5,1970-01-01T00:00:00.000+00:00,7"]
            ),
        }
    }
}
