//! Spark interval strings (`"10 seconds"`, `"1 hour 30 minutes"`, `"interval 1 day"`) as
//! `window()`, `withWatermark()` and `trigger(processingTime=...)` accept them, parsed to
//! microseconds.
//!
//! The grammar is that of Spark 3.5's `IntervalUtils.stringToInterval`: case-insensitive,
//! any whitespace between words, an optional `interval` prefix, then pairs of a signed number
//! and a full unit name, singular or plural. Spark accepts no abbreviations (`"10 sec"` and
//! `"5 min"` fail there too), so neither do we; the error suggests the full name instead.
//! Only seconds take a fraction (`"1.5 seconds"`), truncated to the microsecond. A day is
//! 24 hours and a week 7 days, as in Spark. Months and years are rejected when they add up to
//! a non-zero amount (Spark's `window()` rule), because a month has no fixed length; Spark's
//! `withWatermark` counts a month as 31 days instead, which we do not copy.
//! After the `interval` prefix Spark runs its SQL parser; of its extra forms we accept quoted
//! values (`interval '1' hour`, `interval '1 hour'`) but not `'1 10:00:00' DAY TO SECOND`.

use super::WindowError;

const MICROS_PER_MILLI: i64 = 1_000;
const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_MINUTE: i64 = 60 * MICROS_PER_SECOND;
const MICROS_PER_HOUR: i64 = 60 * MICROS_PER_MINUTE;
const MICROS_PER_DAY: i64 = 24 * MICROS_PER_HOUR;
const MICROS_PER_WEEK: i64 = 7 * MICROS_PER_DAY;
/// Spark keeps nine fractional digits of a second (nanoseconds) before truncating.
const MAX_FRACTION_DIGITS: usize = 9;

/// What one unit word adds to the interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Months(i64),
    Micros(i64),
}

/// The unit names Spark knows, singular; the plural adds an `s`.
const UNITS: [(&str, Unit); 9] = [
    ("year", Unit::Months(12)),
    ("month", Unit::Months(1)),
    ("week", Unit::Micros(MICROS_PER_WEEK)),
    ("day", Unit::Micros(MICROS_PER_DAY)),
    ("hour", Unit::Micros(MICROS_PER_HOUR)),
    ("minute", Unit::Micros(MICROS_PER_MINUTE)),
    ("second", Unit::Micros(MICROS_PER_SECOND)),
    ("millisecond", Unit::Micros(MICROS_PER_MILLI)),
    ("microsecond", Unit::Micros(1)),
];

/// Parses a Spark interval string to microseconds. Zero and negative values are accepted
/// (a watermark delay of `"0 seconds"` and a negative `startTime` are legal); use
/// [`parse_positive_interval`] or [`parse_non_negative_interval`] where they are not.
pub fn parse_interval(text: &str) -> Result<i64, WindowError> {
    let invalid = |reason: String| WindowError::InvalidInterval {
        text: text.to_string(),
        reason,
    };
    let lowered = text.trim().to_ascii_lowercase();
    let body = strip_interval_prefix(&lowered).map_err(&invalid)?;
    if body.is_empty() {
        return Err(invalid("it is empty".to_string()));
    }
    let mut months: i64 = 0;
    let mut micros: i64 = 0;
    let mut words = body.split_whitespace();
    while let Some(value_word) = words.next() {
        let Some(unit_word) = words.next() else {
            return Err(invalid(format!("expected a unit after '{value_word}'")));
        };
        let value = parse_number(unquote(value_word)).map_err(&invalid)?;
        let unit = parse_unit(unit_word).map_err(&invalid)?;
        let too_large = || invalid(format!("'{value_word} {unit_word}' is too large"));
        match unit {
            Unit::Micros(per_unit) => {
                if value.fraction_micros != 0 && per_unit != MICROS_PER_SECOND {
                    return Err(invalid(format!(
                        "'{value_word} {unit_word}': only seconds may have a fractional part"
                    )));
                }
                let term = value
                    .whole
                    .checked_mul(per_unit)
                    .and_then(|whole| whole.checked_add(value.fraction_micros))
                    .ok_or_else(too_large)?;
                micros = micros.checked_add(term).ok_or_else(too_large)?;
            }
            Unit::Months(per_unit) => {
                if value.fraction_micros != 0 {
                    return Err(invalid(format!(
                        "'{value_word} {unit_word}': only seconds may have a fractional part"
                    )));
                }
                let term = value.whole.checked_mul(per_unit).ok_or_else(too_large)?;
                months = months.checked_add(term).ok_or_else(too_large)?;
            }
        }
    }
    // Spark checks the month total, not each word: "1 year -12 months" is zero months.
    if months != 0 {
        return Err(WindowError::MonthsNotSupported {
            text: text.to_string(),
        });
    }
    Ok(micros)
}

/// Parses an interval that must be longer than zero: a window size, a slide or a session gap.
pub fn parse_positive_interval(text: &str) -> Result<i64, WindowError> {
    let micros = parse_interval(text)?;
    if micros <= 0 {
        return Err(WindowError::NotPositive {
            text: text.to_string(),
        });
    }
    Ok(micros)
}

/// Parses an interval that may be zero but not negative: a watermark delay (Spark:
/// "delay threshold should not be negative") or a processing-time trigger interval.
pub fn parse_non_negative_interval(text: &str) -> Result<i64, WindowError> {
    let micros = parse_interval(text)?;
    if micros < 0 {
        return Err(WindowError::Negative {
            text: text.to_string(),
        });
    }
    Ok(micros)
}

/// Writes microseconds as an interval string that [`parse_interval`] reads back to the same
/// value, e.g. `"1 hour 30 minutes"`, so error messages and progress show durations the way
/// users typed them.
pub fn format_interval(micros: i64) -> String {
    if micros == 0 {
        return "0 seconds".to_string();
    }
    let sign = if micros < 0 { "-" } else { "" };
    // unsigned_abs: i64::MIN has no positive i64 counterpart.
    let mut rest = micros.unsigned_abs();
    let mut parts = Vec::new();
    for (name, unit) in [
        ("day", MICROS_PER_DAY),
        ("hour", MICROS_PER_HOUR),
        ("minute", MICROS_PER_MINUTE),
        ("second", MICROS_PER_SECOND),
        ("millisecond", MICROS_PER_MILLI),
        ("microsecond", 1),
    ] {
        let unit = unit.unsigned_abs();
        let count = rest / unit;
        rest %= unit;
        if count > 0 {
            let plural = if count == 1 { "" } else { "s" };
            parts.push(format!("{sign}{count} {name}{plural}"));
        }
    }
    parts.join(" ")
}

/// Removes Spark's optional `interval` prefix (and quotes around the whole rest, which
/// Spark's SQL parser accepts after it).
fn strip_interval_prefix(lowered: &str) -> Result<&str, String> {
    let Some(rest) = lowered.strip_prefix("interval") else {
        return Ok(lowered);
    };
    if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
        return Err(format!(
            "'{}' is not a number; write 'interval' apart from the value",
            lowered.split_whitespace().next().unwrap_or(lowered)
        ));
    }
    let rest = rest.trim();
    let unquoted = unquote(rest);
    if unquoted.len() != rest.len() && unquoted.contains(char::is_whitespace) {
        return Ok(unquoted.trim());
    }
    Ok(rest)
}

/// Removes one pair of matching single or double quotes.
fn unquote(word: &str) -> &str {
    for quote in ['\'', '"'] {
        if let Some(inner) = word
            .strip_prefix(quote)
            .and_then(|rest| rest.strip_suffix(quote))
        {
            return inner;
        }
    }
    word
}

/// A signed number of units; the fraction is already in microseconds and carries the sign.
struct Number {
    whole: i64,
    fraction_micros: i64,
}

/// Reads `[+-]digits[.digits]` (or `.digits`), as Spark's interval parser does.
fn parse_number(word: &str) -> Result<Number, String> {
    let not_a_number = || format!("'{word}' is not a number");
    let (negative, unsigned) = match word.as_bytes().first() {
        Some(b'-') => (true, &word[1..]),
        Some(b'+') => (false, &word[1..]),
        _ => (false, word),
    };
    let (whole_digits, fraction_digits) = match unsigned.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (unsigned, None),
    };
    let all_digits = |digits: &str| digits.bytes().all(|b| b.is_ascii_digit());
    let fraction_digits = fraction_digits.unwrap_or("");
    if !all_digits(whole_digits)
        || !all_digits(fraction_digits)
        || (whole_digits.is_empty() && fraction_digits.is_empty())
    {
        return Err(not_a_number());
    }
    if fraction_digits.len() > MAX_FRACTION_DIGITS {
        return Err(format!(
            "'{word}' has more than {MAX_FRACTION_DIGITS} fractional digits"
        ));
    }
    let whole = if whole_digits.is_empty() {
        0
    } else {
        whole_digits
            .parse::<i64>()
            .map_err(|_| format!("'{word}' is too large"))?
    };
    // Pad to nanoseconds, then truncate to microseconds as Spark does.
    let fraction_micros = format!("{fraction_digits:0<MAX_FRACTION_DIGITS$}")
        .parse::<i64>()
        .map_err(|_| not_a_number())?
        / 1_000;
    Ok(if negative {
        Number {
            whole: -whole,
            fraction_micros: -fraction_micros,
        }
    } else {
        Number {
            whole,
            fraction_micros,
        }
    })
}

/// Matches a unit word exactly (Spark's parser does: `"hourly"` is not `"hour"`).
fn parse_unit(word: &str) -> Result<Unit, String> {
    let singular = word.strip_suffix('s').unwrap_or(word);
    if let Some((_, unit)) = UNITS
        .iter()
        .find(|(name, _)| *name == word || *name == singular)
    {
        return Ok(*unit);
    }
    let hint = match word {
        "s" | "sec" | "secs" => " (write 'seconds')",
        "m" | "min" | "mins" => " (write 'minutes')",
        "h" | "hr" | "hrs" => " (write 'hours')",
        "d" => " (write 'days')",
        "w" | "wk" | "wks" => " (write 'weeks')",
        "ms" | "msec" | "msecs" | "milli" | "millis" => " (write 'milliseconds')",
        "us" | "µs" | "usec" | "usecs" | "micro" | "micros" => " (write 'microseconds')",
        "ns" | "nano" | "nanos" | "nanosecond" | "nanoseconds" => {
            " (timestamps have microsecond precision; write 'microseconds')"
        }
        _ => "",
    };
    Err(format!("unknown unit '{word}'{hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn micros(text: &str) -> i64 {
        parse_interval(text).unwrap_or_else(|error| panic!("{text:?} should parse: {error}"))
    }

    #[test]
    fn parses_the_units_spark_accepts() {
        assert_eq!(micros("1 hour"), MICROS_PER_HOUR);
        assert_eq!(micros("15 minutes"), 15 * MICROS_PER_MINUTE);
        assert_eq!(micros("10 seconds"), 10 * MICROS_PER_SECOND);
        assert_eq!(micros("1 day"), MICROS_PER_DAY);
        assert_eq!(micros("1 week"), MICROS_PER_WEEK);
        assert_eq!(micros("500 milliseconds"), 500 * MICROS_PER_MILLI);
        assert_eq!(micros("100 microseconds"), 100);
        assert_eq!(micros("1 second"), MICROS_PER_SECOND);
    }

    #[test]
    fn combines_units_signs_case_and_spacing() {
        let two_and_a_half_hours = 2 * MICROS_PER_HOUR + 30 * MICROS_PER_MINUTE;
        assert_eq!(micros("2 hours 30 minutes"), two_and_a_half_hours);
        assert_eq!(micros("  2   HOURS\t30 Minutes "), two_and_a_half_hours);
        assert_eq!(micros("interval 1 hour"), MICROS_PER_HOUR);
        assert_eq!(micros("INTERVAL   1 HOUR"), MICROS_PER_HOUR);
        assert_eq!(micros("interval '1' hour"), MICROS_PER_HOUR);
        assert_eq!(
            micros("interval '2 hours 30 minutes'"),
            two_and_a_half_hours
        );
        assert_eq!(micros("-15 minutes"), -15 * MICROS_PER_MINUTE);
        assert_eq!(micros("1 hour -30 minutes"), 30 * MICROS_PER_MINUTE);
        assert_eq!(micros("+5 seconds"), 5 * MICROS_PER_SECOND);
        assert_eq!(micros("0 seconds"), 0);
        // Months and years that cancel out are zero months, which Spark lets through.
        assert_eq!(micros("1 year -12 months 1 day"), MICROS_PER_DAY);
    }

    #[test]
    fn only_seconds_take_a_fraction_truncated_to_microseconds() {
        assert_eq!(micros("1.5 seconds"), 1_500_000);
        assert_eq!(micros(".25 seconds"), 250_000);
        assert_eq!(micros("1. second"), MICROS_PER_SECOND);
        assert_eq!(micros("0.123456789 seconds"), 123_456);
        assert_eq!(micros("-1.5 seconds"), -1_500_000);
        let error = parse_interval("1.5 hours").unwrap_err().to_string();
        assert!(error.contains("only seconds"), "{error}");
        assert!(parse_interval("0.1234567890 seconds").is_err());
        assert!(parse_interval(". seconds").is_err());
    }

    #[test]
    fn rejects_abbreviations_with_the_full_name() {
        let error = parse_interval("10 sec").unwrap_err().to_string();
        assert!(
            error.contains("'10 sec'") && error.contains("write 'seconds'"),
            "{error}"
        );
        let error = parse_interval("5 min").unwrap_err().to_string();
        assert!(error.contains("write 'minutes'"), "{error}");
        for text in [
            "1 hr",
            "3 ms",
            "1 hourly",
            "1 hourss",
            "2 nanoseconds",
            "1 fortnight",
        ] {
            assert!(parse_interval(text).is_err(), "{text:?} should be rejected");
        }
    }

    #[test]
    fn rejects_months_and_years_saying_why() {
        for text in ["1 month", "2 years", "1 day 1 month"] {
            let error = parse_interval(text).unwrap_err();
            assert_eq!(
                error,
                WindowError::MonthsNotSupported {
                    text: text.to_string()
                }
            );
            assert!(error.to_string().contains("no fixed length"));
        }
    }

    #[test]
    fn rejects_malformed_text_naming_it() {
        for text in [
            "",
            "   ",
            "interval",
            "hour",
            "1",
            "1 hour 30",
            "1hour",
            "intervals 1 hour",
            "ten seconds",
            "1,5 seconds",
            "99999999999999999999 seconds",
            "9223372036854775807 days",
        ] {
            match parse_interval(text) {
                Err(WindowError::InvalidInterval { text: named, .. }) => assert_eq!(named, text),
                other => panic!("{text:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn positive_and_non_negative_variants() {
        assert_eq!(parse_positive_interval("1 minute"), Ok(MICROS_PER_MINUTE));
        assert!(matches!(
            parse_positive_interval("0 seconds"),
            Err(WindowError::NotPositive { .. })
        ));
        assert!(matches!(
            parse_positive_interval("-1 seconds"),
            Err(WindowError::NotPositive { .. })
        ));
        assert_eq!(parse_non_negative_interval("0 seconds"), Ok(0));
        assert!(matches!(
            parse_non_negative_interval("-1 second"),
            Err(WindowError::Negative { .. })
        ));
        // The underlying parse error wins over the sign check.
        assert!(matches!(
            parse_positive_interval("1 month"),
            Err(WindowError::MonthsNotSupported { .. })
        ));
    }

    #[test]
    fn formats_readably() {
        assert_eq!(format_interval(0), "0 seconds");
        assert_eq!(format_interval(MICROS_PER_HOUR), "1 hour");
        assert_eq!(
            format_interval(-(MICROS_PER_HOUR + 30 * MICROS_PER_MINUTE)),
            "-1 hour -30 minutes"
        );
        assert_eq!(
            format_interval(1_500_001),
            "1 second 500 milliseconds 1 microsecond"
        );
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(value in any::<i64>()) {
            prop_assert_eq!(parse_interval(&format_interval(value)), Ok(value));
        }

        #[test]
        fn never_panics_on_arbitrary_text(text in "\\PC{0,40}") {
            let _ = parse_interval(&text);
        }

        #[test]
        fn never_panics_on_interval_like_text(
            text in "(interval )?[-+.0-9 ]{0,12}(seconds?|minutes?|hours?|days?|months?|x)?"
        ) {
            let _ = parse_interval(&text);
        }
    }
}
