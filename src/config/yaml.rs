//! YAML text to an untyped tree, read the way registry:2's parser (go-yaml
//! v2) reads it: a key given twice is kept with its last value (with a
//! warning), merge keys (`<<: *defaults`) are applied, and nesting is
//! bounded by a cheap scan *before* the parser runs (a deeply nested flow
//! collection costs the parser quadratic time).

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_yaml_ng::{Mapping, Value};

/// Deepest nesting accepted (mappings and sequences, flow or block). Real
/// configurations stay under 10; the YAML parser refuses beyond 128 anyway,
/// but only after spending time on the whole input.
pub const MAX_DEPTH: usize = 64;

/// Largest configuration text accepted (file or one variable's value).
pub const MAX_LEN: usize = 1 << 20;

/// Parses `yaml` into a tree; an empty document is `Null`. Duplicate keys
/// add a warning (`where_` prefixes their path, e.g. `REGISTRY_HTTP: `).
/// Errors are plain messages for the caller to wrap with the source name.
pub fn parse(yaml: &str, where_: &str, warnings: &mut Vec<String>) -> Result<Value, String> {
    if yaml.len() > MAX_LEN {
        return Err(format!(
            "{} bytes is more than a configuration may hold ({MAX_LEN})",
            yaml.len()
        ));
    }
    let depth = nesting_depth(yaml);
    if depth > MAX_DEPTH {
        return Err(format!(
            "nested more than {MAX_DEPTH} levels deep (found about {depth}); refusing to parse it"
        ));
    }
    let duplicates = RefCell::new(Vec::new());
    let de = serde_yaml_ng::Deserializer::from_str(yaml);
    let seed = Tree {
        path: String::new(),
        duplicates: &duplicates,
    };
    let mut tree = match seed.deserialize(de) {
        Ok(tree) => tree,
        // An empty document has no node to visit.
        Err(_) if yaml.trim().is_empty() || only_comments(yaml) => Value::Null,
        Err(e) => return Err(e.to_string()),
    };
    tree.apply_merge()
        .map_err(|e| format!("merge key `<<`: {e}"))?;
    for key in duplicates.into_inner() {
        warnings.push(format!(
            "{where_}duplicate key `{key}`: the last value is used (as registry:2 does)"
        ));
    }
    Ok(tree)
}

fn only_comments(yaml: &str) -> bool {
    yaml.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#') || t == "---" || t == "..."
    })
}

/// An upper estimate of the nesting depth, without parsing: open flow
/// brackets (`[`, `{`) plus, per line, the stack of indentation levels and
/// the `- ` sequence markers starting the line. Quotes are not tracked, so
/// a bracket inside a string counts too; that only over-estimates.
pub fn nesting_depth(yaml: &str) -> usize {
    let mut max = 0;
    let mut flow: usize = 0;
    let mut indents: Vec<usize> = Vec::new();
    for line in yaml.lines() {
        let body = line.trim_start_matches(' ');
        let indent = line.len() - body.len();
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        if flow == 0 {
            while indents.last().is_some_and(|&top| top >= indent) {
                indents.pop();
            }
            indents.push(indent);
        }
        let mut rest = body;
        let mut dashes = 0;
        while let Some(r) = rest.strip_prefix("- ").or_else(|| rest.strip_prefix("-\t")) {
            dashes += 1;
            rest = r.trim_start();
        }
        let mut line_max = flow;
        for c in rest.chars() {
            match c {
                '#' => break,
                '[' | '{' => {
                    flow += 1;
                    line_max = line_max.max(flow);
                }
                ']' | '}' => flow = flow.saturating_sub(1),
                _ => {}
            }
        }
        max = max.max(indents.len() + dashes + line_max);
    }
    max
}

/// Builds a [`Value`] like serde_yaml_ng's own, but a repeated key replaces
/// the earlier value and is recorded instead of failing.
struct Tree<'a> {
    path: String,
    duplicates: &'a RefCell<Vec<String>>,
}

impl Tree<'_> {
    fn child(&self, key: &Value) -> Tree<'_> {
        let name = match key {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => "?".into(),
        };
        Tree {
            path: if self.path.is_empty() {
                name
            } else {
                format!("{}.{name}", self.path)
            },
            duplicates: self.duplicates,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Tree<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Tree<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(Tree {
            path: format!("{}[{}]", self.path, out.len()),
            duplicates: self.duplicates,
        })? {
            out.push(v);
        }
        Ok(Value::Sequence(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Mapping::new();
        while let Some(key) = map.next_key_seed(Tree {
            path: self.path.clone(),
            duplicates: self.duplicates,
        })? {
            let value = map.next_value_seed(self.child(&key))?;
            if key.as_str() == Some("<<") {
                // Several merge keys: merge them all, earlier ones first.
                match out.remove("<<") {
                    None => {}
                    Some(Value::Sequence(mut prev)) => {
                        prev.push(value);
                        out.insert(key, Value::Sequence(prev));
                        continue;
                    }
                    Some(prev) => {
                        out.insert(key, Value::Sequence(vec![prev, value]));
                        continue;
                    }
                }
            } else if out.contains_key(&key) {
                self.duplicates
                    .borrow_mut()
                    .push(self.child(&key).path.clone());
            }
            out.insert(key, value);
        }
        Ok(Value::Mapping(out))
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, _data: A) -> Result<Value, A::Error> {
        // The parser's error already names the key and the position.
        Err(de::Error::custom(
            "YAML tags (`!name`) are not supported in a configuration",
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_last_wins_and_warn() {
        let mut w = Vec::new();
        let v = parse("a: 1\nb:\n  c: 1\n  c: 2\na: 3\n", "", &mut w).unwrap();
        assert_eq!(v["a"], Value::from(3));
        assert_eq!(v["b"]["c"], Value::from(2));
        assert_eq!(
            w,
            vec![
                "duplicate key `b.c`: the last value is used (as registry:2 does)",
                "duplicate key `a`: the last value is used (as registry:2 does)",
            ]
        );
    }

    #[test]
    fn merge_keys_apply_and_own_keys_win() {
        let mut w = Vec::new();
        let yaml =
            "base: &b\n  x: 1\n  y: 2\nother: &o\n  z: 3\nuse:\n  <<: *b\n  <<: *o\n  y: 5\n";
        let v = parse(yaml, "", &mut w).unwrap();
        assert_eq!(v["use"]["x"], Value::from(1));
        assert_eq!(v["use"]["y"], Value::from(5));
        assert_eq!(v["use"]["z"], Value::from(3));
        assert!(v["use"].get("<<").is_none());
        assert!(w.is_empty(), "{w:?}");
    }

    #[test]
    fn empty_and_comment_only_documents_are_null() {
        let mut w = Vec::new();
        assert_eq!(parse("", "", &mut w).unwrap(), Value::Null);
        assert_eq!(parse("# nothing\n\n", "", &mut w).unwrap(), Value::Null);
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let mut w = Vec::new();
        for deep in [
            "[".repeat(100_000),
            "{a: ".repeat(1000),
            "- ".repeat(1000) + "x",
            (0..200)
                .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
                .collect(),
        ] {
            let err = parse(&deep, "", &mut w).unwrap_err();
            assert!(err.contains("nested more than 64 levels"), "{err}");
        }
        // Ordinary shapes are far below the limit.
        assert!(nesting_depth("a:\n  b:\n    - c: [1, {d: 2}]\n") <= 6);
    }
}
