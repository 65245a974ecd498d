//! Go `time.Duration` strings (`168h`, `1h30m`, `300ms`), because
//! distribution's config writes durations that way and a registry:2 config
//! must load unchanged.

use std::time::Duration;

/// Parses a Go duration string such as `168h`, `1h30m`, `1.5s` or `300ms`.
///
/// Accepts the units `ns`, `us`, `µs`, `μs`, `ms`, `s`, `m`, `h`, decimal
/// fractions, a leading `+`, and the bare `0`. Negative durations are
/// rejected because nothing in the config can use them.
pub fn parse_go_duration(input: &str) -> Result<Duration, String> {
    let orig = input;
    let mut s = input.trim();
    if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    } else if s.starts_with('-') {
        return Err(format!("negative duration {orig:?} is not allowed"));
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(format!("invalid duration {orig:?}"));
    }
    let mut total_nanos: u128 = 0;
    while !s.is_empty() {
        // Number: digits, optional '.' and digits.
        let num_len = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let num = &s[..num_len];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(format!("invalid duration {orig:?}"));
        }
        s = &s[num_len..];
        let unit_len = s
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(s.len());
        let unit = &s[..unit_len];
        s = &s[unit_len..];
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            "" => return Err(format!("missing unit in duration {orig:?}")),
            other => return Err(format!("unknown unit {other:?} in duration {orig:?}")),
        };
        let (int_part, frac_part) = match num.split_once('.') {
            Some((i, f)) => (i, f),
            None => (num, ""),
        };
        let int_val: u128 = if int_part.is_empty() {
            0
        } else {
            int_part
                .parse()
                .map_err(|_| format!("invalid duration {orig:?}"))?
        };
        let mut nanos = int_val
            .checked_mul(unit_nanos)
            .ok_or_else(|| format!("duration {orig:?} is too large"))?;
        if !frac_part.is_empty() {
            // Scale the fraction digit by digit; extra digits beyond
            // nanosecond precision are truncated, as Go does.
            let mut scale = unit_nanos;
            for d in frac_part.chars() {
                scale /= 10;
                if scale == 0 {
                    break;
                }
                let digit = u128::from(d.to_digit(10).unwrap_or(0));
                nanos += digit * scale;
            }
        }
        total_nanos = total_nanos
            .checked_add(nanos)
            .ok_or_else(|| format!("duration {orig:?} is too large"))?;
    }
    // Go's Duration is an int64 of nanoseconds.
    if total_nanos > i64::MAX as u128 {
        return Err(format!("duration {orig:?} is too large"));
    }
    let secs = (total_nanos / 1_000_000_000) as u64;
    let sub = (total_nanos % 1_000_000_000) as u32;
    Ok(Duration::new(secs, sub))
}

/// Formats a duration the compact Go way (`168h`, `1h30m`, `300ms`, `0s`),
/// so `berth config print` output parses back to the same value.
pub fn format_go_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    let nanos = d.subsec_nanos();
    let secs = d.as_secs();
    if secs == 0 {
        return if nanos.is_multiple_of(1_000_000) {
            format!("{}ms", nanos / 1_000_000)
        } else if nanos.is_multiple_of(1_000) {
            format!("{}us", nanos / 1_000)
        } else {
            format!("{nanos}ns")
        };
    }
    let mut out = String::new();
    let h = secs / 3600;
    let m = (secs % 3600) / 60;
    let s = secs % 60;
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        out.push_str(&format!("{s}.{}s", frac.trim_end_matches('0')));
    } else if s > 0 {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// Serde adapter for `Duration` fields written as Go duration strings.
/// Integers are taken as nanoseconds, as Go's YAML decoder does for
/// `time.Duration`.
pub mod serde_go {
    use std::time::Duration;

    use serde::{de, Deserializer, Serializer};

    /// Writes the duration as a Go duration string.
    pub fn serialize<S: Serializer>(d: &Duration, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(&super::format_go_duration(*d))
    }

    /// Reads a Go duration string or an integer number of nanoseconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Duration, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a Go duration such as \"10s\", \"24h\" or \"1h30m\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                super::parse_go_duration(v).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
                Ok(Duration::from_nanos(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
                u64::try_from(v)
                    .map(Duration::from_nanos)
                    .map_err(|_| E::custom("negative duration is not allowed"))
            }
        }
        de.deserialize_any(V)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let ms = Duration::from_millis;
        let s = Duration::from_secs;
        let table: &[(&str, Option<Duration>)] = &[
            ("0", Some(Duration::ZERO)),
            ("0s", Some(Duration::ZERO)),
            ("10s", Some(s(10))),
            ("24h", Some(s(24 * 3600))),
            ("168h", Some(s(168 * 3600))),
            ("1h30m", Some(s(5400))),
            ("1h30m15s", Some(s(5415))),
            ("300ms", Some(ms(300))),
            ("1.5s", Some(ms(1500))),
            (".5s", Some(ms(500))),
            ("1.5h", Some(s(5400))),
            ("2m3.25s", Some(ms(123_250))),
            ("10us", Some(Duration::from_micros(10))),
            ("10µs", Some(Duration::from_micros(10))),
            ("7ns", Some(Duration::from_nanos(7))),
            ("+5s", Some(s(5))),
            ("", None),
            ("10", None),
            ("s", None),
            ("-1s", None),
            ("10x", None),
            ("1..5s", None),
            ("1h 30m", None),
            ("3000000h", None),
        ];
        for (input, want) in table {
            let got = parse_go_duration(input).ok();
            assert_eq!(got, *want, "input {input:?}");
        }
    }

    #[test]
    fn format_round_trips() {
        for input in [
            "0s", "10s", "168h", "1h30m", "300ms", "1.5s", "7ns", "10us", "1h0m5s",
        ] {
            let d = parse_go_duration(input).unwrap();
            let printed = format_go_duration(d);
            assert_eq!(
                parse_go_duration(&printed).unwrap(),
                d,
                "{input} -> {printed}"
            );
        }
        assert_eq!(format_go_duration(Duration::from_secs(168 * 3600)), "168h");
        assert_eq!(format_go_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_go_duration(Duration::from_millis(300)), "300ms");
    }
}
