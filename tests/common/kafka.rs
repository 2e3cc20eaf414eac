//! A real Kafka broker for the integration tests.
//!
//! Uses the broker named by `FERROSTREAM_KAFKA_BOOTSTRAP` when set (CI starts one up front
//! with `scripts/kafka.sh start`), else starts one with that script. A broker started here
//! outlives the test binary, so the next test binary reuses it at no cost; stop it with
//! `scripts/kafka.sh stop`.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use arrow::array::RecordBatch;
use ferrostream::source::kafka::KafkaSource;
use ferrostream::source::{Cancel, ReadLimit, Source, SourceOffset};

/// Environment variable naming an already running broker, as `host:port`.
pub const BOOTSTRAP_ENV: &str = "FERROSTREAM_KAFKA_BOOTSTRAP";

/// Returns the bootstrap address (`127.0.0.1:PORT`) of a running broker, starting one
/// with `scripts/kafka.sh start` if the environment names none.
///
/// Tests run on many threads; the first caller starts the broker and the others wait for
/// it. Panics with the script's output if the broker cannot be started.
pub fn bootstrap() -> String {
    static BOOTSTRAP: OnceLock<String> = OnceLock::new();
    BOOTSTRAP.get_or_init(find_or_start).clone()
}

fn find_or_start() -> String {
    if let Ok(from_env) = std::env::var(BOOTSTRAP_ENV) {
        let from_env = from_env.trim();
        if !from_env.is_empty() {
            return from_env.to_owned();
        }
    }

    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join("kafka.sh");
    // A cold start downloads the broker's jars from Maven Central first (about 20 s).
    let output = Command::new(&script)
        .arg("start")
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "could not run {}: {error}; set {BOOTSTRAP_ENV} to a running broker instead",
                script.display()
            )
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let bootstrap = stdout.trim();
    if !output.status.success() || bootstrap.is_empty() {
        panic!(
            "{} start failed ({}); set {BOOTSTRAP_ENV} to use a broker that is already \
             running.\n{}",
            script.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    bootstrap.to_owned()
}

/// What `each_batch` hands on per batch: the source, the batch's range and its rows.
pub type EachBatch<'a> =
    dyn FnMut(&mut KafkaSource, &SourceOffset, &SourceOffset, Vec<RecordBatch>) + 'a;

/// Reads `source` from its initial offset, a batch per `latestOffset` (its configured limit),
/// until there is no new data, handing `each` the source, each batch's range and its rows.
pub fn each_batch(source: &mut KafkaSource, each: &mut EachBatch<'_>) {
    let cancel = Cancel::default();
    let mut start = source.initial_offset().expect("initial");
    loop {
        let end = source
            .latest_offset(&start, ReadLimit::Configured)
            .expect("latest");
        if end == start {
            break;
        }
        let batches = source.get_batch(&start, &end, &cancel).expect("batch");
        each(source, &start, &end, batches);
        start = end;
    }
}
