//! Lenient deserializers matching Go's YAML decoder, which turns any scalar
//! into a string field (`secret: 12345`, or `REGISTRY_HTTP_SECRET=12345`
//! parsed as a YAML number) and accepts negative ints where we use `usize`.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// A string that also accepts numbers and booleans, as Go's decoder does.
pub struct LenientString(pub String);

impl<'de> Deserialize<'de> for LenientString {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = LenientString;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(LenientString(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(LenientString(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(LenientString(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(LenientString(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(LenientString(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(LenientString(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(LenientString(String::new()))
            }
        }
        de.deserialize_any(V)
    }
}

/// A list of strings that also accepts a single scalar as a one-item list.
struct OneOrMany(Vec<String>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Many(Vec<LenientString>),
            One(LenientString),
        }
        // Untagged enums hide the inner error, so say what is expected.
        match Either::deserialize(de) {
            Ok(Either::Many(v)) => Ok(OneOrMany(v.into_iter().map(|s| s.0).collect())),
            Ok(Either::One(s)) => Ok(OneOrMany(vec![s.0])),
            Err(_) => Err(de::Error::custom(
                "invalid type, expected a string or a list of strings",
            )),
        }
    }
}

/// `deserialize_with` for `String` fields.
pub fn string<'de, D: Deserializer<'de>>(de: D) -> Result<String, D::Error> {
    LenientString::deserialize(de).map(|s| s.0)
}

/// `deserialize_with` for `Vec<String>` fields (a lone scalar is one item).
pub fn string_vec<'de, D: Deserializer<'de>>(de: D) -> Result<Vec<String>, D::Error> {
    OneOrMany::deserialize(de).map(|v| v.0)
}

/// `deserialize_with` for `http.headers`: name → list of values.
pub fn headers<'de, D: Deserializer<'de>>(
    de: D,
) -> Result<BTreeMap<String, Vec<String>>, D::Error> {
    let m: BTreeMap<String, OneOrMany> = BTreeMap::deserialize(de)?;
    Ok(m.into_iter().map(|(k, v)| (k, v.0)).collect())
}

/// `deserialize_with` for counts where Go uses `int` and treats `<= 0` as
/// "use the default": negatives become 0 and the loader applies the default.
pub fn count<'de, D: Deserializer<'de>>(de: D) -> Result<usize, D::Error> {
    let v = i64::deserialize(de)?;
    Ok(usize::try_from(v).unwrap_or(0))
}

/// `deserialize_with` for `bool` fields: YAML 1.2's `true`/`false` plus the
/// YAML 1.1 spellings registry:2's parser (go-yaml v2) takes: `y`, `yes`,
/// `on` and `n`, `no`, `off`, in lower, Title or UPPER case.
pub fn bool<'de, D: Deserializer<'de>>(de: D) -> Result<bool, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a boolean")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
            Ok(v)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
            yaml11_bool(v).ok_or_else(|| de::Error::invalid_type(de::Unexpected::Str(v), &self))
        }
    }
    de.deserialize_any(V)
}

/// go-yaml v2's boolean table (`resolve.go`): each word in lower, Title
/// and UPPER case only (`yEs` is a string there too).
pub fn yaml11_bool(s: &str) -> Option<bool> {
    const TRUE: &[&str] = &["y", "yes", "on", "true"];
    const FALSE: &[&str] = &["n", "no", "off", "false"];
    let lower = s.to_ascii_lowercase();
    let title = |w: &str| {
        let mut c = w.chars();
        c.next()
            .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
            .unwrap_or_default()
    };
    let spelled = |w: &str| s == w || s == title(w) || s == w.to_ascii_uppercase();
    if TRUE.contains(&lower.as_str()) && TRUE.iter().any(|w| spelled(w)) {
        Some(true)
    } else if FALSE.contains(&lower.as_str()) && FALSE.iter().any(|w| spelled(w)) {
        Some(false)
    } else {
        None
    }
}

/// serde's messages in words of the YAML: `expected struct HttpConfig`
/// becomes `expected a mapping`, `expected enum FsSync` becomes `expected
/// one of the documented values`; Rust integer type names become "an
/// integer". The rest is kept.
pub fn humanize(message: &str) -> String {
    // serde_yaml_ng's own wording for a non-scalar given to an enum.
    let message = message.replace("a Value::Tagged enum", "one of the documented values");
    let mut out: Vec<String> = Vec::new();
    let mut words = message.split(' ').peekable();
    while let Some(word) = words.next() {
        let next_is_type = words
            .peek()
            .is_some_and(|n| n.starts_with(|c: char| c.is_ascii_uppercase()));
        match word {
            "struct" if next_is_type => {
                let name = words.next().unwrap_or_default();
                out.push(format!("a mapping{}", trailing_punct(name)));
            }
            "enum" if next_is_type => {
                let name = words.next().unwrap_or_default();
                out.push(format!(
                    "one of the documented values{}",
                    trailing_punct(name)
                ));
            }
            w => {
                let bare = w.trim_end_matches([',', '.', ';', ':']);
                let replaced = match bare {
                    "u8" | "u16" | "u32" | "u64" | "usize" => Some("a non-negative integer"),
                    "i8" | "i16" | "i32" | "i64" | "isize" => Some("an integer"),
                    "f32" | "f64" => Some("a number"),
                    _ => None,
                };
                match replaced {
                    Some(r) => out.push(format!("{r}{}", &w[bare.len()..])),
                    None => out.push(w.to_string()),
                }
            }
        }
    }
    out.join(" ")
}

fn trailing_punct(word: &str) -> &str {
    let bare = word.trim_end_matches([',', '.', ';', ':']);
    &word[bare.len()..]
}
