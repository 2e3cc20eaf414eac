//! Numbers of the plain forms producers write (`84569.37`, `1732406400000`), read without
//! lexical-core's general machinery; any other form goes to lexical-core, as before.
//!
//! A decimal of at most 19 digits whose digits make an integer m <= 2^53, with e <= 22 digits
//! after the point, is m / 10^e: both are exact doubles, and IEEE division rounds correctly,
//! so the result is the correctly rounded value lexical-core also gives (Clinger's fast
//! path). The tokens come from `Cursor::number`, so their grammar is already checked.

/// Powers of ten exact in a double.
const POWERS: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// A JSON number token as a double.
pub(super) fn parse_f64(token: &[u8]) -> Option<f64> {
    short_f64(token).or_else(|| lexical_core::parse::<f64>(token).ok())
}

/// A JSON number token as a 64-bit integer (none for a fraction or an exponent).
pub(super) fn parse_i64(token: &[u8]) -> Option<i64> {
    short_i64(token).or_else(|| lexical_core::parse::<i64>(token).ok())
}

/// The sign and the digits after it.
fn sign(token: &[u8]) -> (bool, &[u8]) {
    match token.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, token),
    }
}

fn short_f64(token: &[u8]) -> Option<f64> {
    let (negative, digits) = sign(token);
    let mut mantissa: u64 = 0;
    let mut count = 0;
    let mut scale = None;
    for (at, &byte) in digits.iter().enumerate() {
        match byte {
            b'0'..=b'9' => {
                count += 1;
                if count > 19 {
                    return None;
                }
                mantissa = mantissa * 10 + u64::from(byte - b'0');
            }
            b'.' if scale.is_none() => scale = Some(digits.len() - at - 1),
            _ => return None,
        }
    }
    let scale = scale.unwrap_or(0);
    if count == 0 || mantissa > 1 << 53 || scale >= POWERS.len() {
        return None;
    }
    let value = mantissa as f64 / POWERS[scale];
    Some(if negative { -value } else { value })
}

fn short_i64(token: &[u8]) -> Option<i64> {
    let (negative, digits) = sign(token);
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut value: i64 = 0;
    for &byte in digits {
        if !byte.is_ascii_digit() {
            return None;
        }
        value = value * 10 + i64::from(byte - b'0');
    }
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn agree(token: &str) {
        let lexical = lexical_core::parse::<f64>(token.as_bytes()).ok();
        assert_eq!(
            parse_f64(token.as_bytes()).map(f64::to_bits),
            lexical.map(f64::to_bits),
            "{token}"
        );
        assert_eq!(
            parse_i64(token.as_bytes()),
            lexical_core::parse::<i64>(token.as_bytes()).ok(),
            "{token}"
        );
    }

    #[test]
    fn edges_agree_with_lexical() {
        for token in [
            "0",
            "-0",
            "0.0",
            "-0.0",
            "84569.37",
            "9007199254740992",
            "9007199254740993",
            "0.9007199254740993",
            "1.0000000000000000000001",
            "123456789012345678",
            "1234567890123456789",
            "-9223372036854775808",
            "9223372036854775807",
            "9223372036854775808",
            "1e5",
            "1.5E-7",
            "0.0000000000000000000001",
            "0.00000000000000000000001",
        ] {
            agree(token);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn decimals_agree_with_lexical(
            negative in any::<bool>(),
            whole in prop_oneof![0u64..1000, 0u64..10_000_000_000, any::<u64>()],
            fraction in prop::option::of((any::<u64>(), 1usize..24)),
        ) {
            let mut token = format!("{}{whole}", if negative { "-" } else { "" });
            if let Some((digits, width)) = fraction {
                let digits = format!("{digits:020}");
                token.push('.');
                token.push_str(&digits[..width.min(digits.len())]);
            }
            agree(&token);
        }

        #[test]
        fn doubles_written_by_rust_agree(x in any::<f64>().prop_filter("finite", |x| x.is_finite())) {
            agree(&x.to_string());
        }
    }
}
