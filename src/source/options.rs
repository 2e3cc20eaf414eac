//! Reader and writer options as Spark passes them (a map of strings), read with errors that
//! name the option and the accepted values. Option names are case-insensitive, as in Spark.

use std::collections::BTreeMap;

use crate::error::Result;
use crate::illegal;

/// Options of one source or sink.
#[derive(Debug, Clone, Default)]
pub struct Options {
    map: BTreeMap<String, (String, String)>,
    owner: String,
}

impl Options {
    /// Wraps a map; `owner` names the source or sink in error messages.
    pub fn new(map: &BTreeMap<String, String>, owner: &str) -> Self {
        Options {
            map: map
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), (k.clone(), v.clone())))
                .collect(),
            owner: owner.to_string(),
        }
    }

    /// The raw value, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.map
            .get(&name.to_ascii_lowercase())
            .map(|(_, v)| v.as_str())
    }

    /// The value, or an error saying it is needed.
    pub fn required(&self, name: &str, hint: &str) -> Result<&str> {
        self.get(name)
            .ok_or_else(|| illegal!("{}: option '{name}' must be specified ({hint})", self.owner))
    }

    /// A boolean option.
    pub fn bool(&self, name: &str, default: bool) -> Result<bool> {
        match self.get(name).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if v == "true" => Ok(true),
            Some(v) if v == "false" => Ok(false),
            Some(v) => Err(illegal!(
                "{}: option '{name}' must be 'true' or 'false', got '{v}'",
                self.owner
            )),
        }
    }

    /// A positive integer option.
    pub fn positive(&self, name: &str) -> Result<Option<u64>> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => match v.trim().parse::<u64>() {
                Ok(n) if n > 0 => Ok(Some(n)),
                _ => Err(illegal!(
                    "{}: option '{name}' must be a positive integer, got '{v}'",
                    self.owner
                )),
            },
        }
    }

    /// Options under a prefix (e.g. `kafka.`), with the prefix removed and original case kept.
    pub fn with_prefix(&self, prefix: &str) -> Vec<(String, String)> {
        let prefix = prefix.to_ascii_lowercase();
        self.map
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(_, (original, v))| (original[prefix.len()..].to_string(), v.clone()))
            .collect()
    }
}

/// Whether an option's value is a secret that must never be logged or reported.
pub fn is_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["password", "secret", "jaas", "token", "key"]
        .iter()
        .any(|word| name.contains(word))
        && !name.ends_with("location")
}

/// Replaces secret values in a text (an error from a client library) with `***`.
pub fn redact(text: &str, options: &[(String, String)]) -> String {
    let mut text = text.to_string();
    for (name, value) in options {
        if is_secret(name) && !value.is_empty() {
            text = text.replace(value.as_str(), "***");
        }
    }
    text
}

/// A size in bytes: digits, optionally followed by `k`, `m` or `g` (powers of 1024, with or
/// without a trailing `b`, any case), as Spark reads `spark.sql.files.maxPartitionBytes`.
pub fn parse_bytes(text: &str) -> Option<usize> {
    let lower = text.trim().to_ascii_lowercase();
    let lower = lower.strip_suffix('b').unwrap_or(&lower);
    let (digits, shift) = match lower.char_indices().last()? {
        (at, 'k') => (&lower[..at], 10),
        (at, 'm') => (&lower[..at], 20),
        (at, 'g') => (&lower[..at], 30),
        _ => (lower, 0),
    };
    let value: usize = digits.trim().parse().ok()?;
    value.checked_mul(1 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_case_insensitive_and_errors_name_the_option() {
        let map = BTreeMap::from([("maxOffsetsPerTrigger".to_string(), "0".to_string())]);
        let options = Options::new(&map, "kafka");
        let error = options
            .positive("maxoffsetspertrigger")
            .expect_err("zero is not positive");
        assert!(error.to_string().contains("'maxoffsetspertrigger'"));
    }

    #[test]
    fn secrets_are_redacted() {
        let options = vec![("sasl.password".to_string(), "hunter2".to_string())];
        assert_eq!(
            redact("auth failed for hunter2", &options),
            "auth failed for ***"
        );
        assert!(!is_secret("ssl.truststore.location"));
    }

    #[test]
    fn sizes_are_bytes_or_powers_of_1024() {
        assert_eq!(parse_bytes("67108864"), Some(64 << 20));
        assert_eq!(parse_bytes("64m"), Some(64 << 20));
        assert_eq!(parse_bytes(" 64MB "), Some(64 << 20));
        assert_eq!(parse_bytes("512k"), Some(512 << 10));
        assert_eq!(parse_bytes("1g"), Some(1 << 30));
        assert_eq!(parse_bytes("0"), Some(0));
        for bad in ["", "m", "kb", "-1m", "1.5g", "64 mega", "1t"] {
            assert_eq!(parse_bytes(bad), None, "{bad}");
        }
    }
}
