//! `log.fields`: static fields (e.g. `service: registry`, `environment:
//! prod`) added to every log line, in the text and the JSON format, from
//! any task or thread. Done at the writer: each formatted event reaches it
//! as one write, into which the fields are spliced (after the opening `{`
//! of a JSON line, before the newline of a text line).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::Arc;

use serde_yaml_ng::Value;
use tracing_subscriber::fmt::MakeWriter;

/// A `MakeWriter` for stderr that adds the fields to each line.
#[derive(Clone)]
pub struct FieldsWriter {
    json: bool,
    /// `"k":v,` (JSON) or ` k=v` (text); empty: lines pass unchanged.
    splice: Arc<str>,
}

impl FieldsWriter {
    /// For `log.formatter` JSON (`json`) or text, with `log.fields`.
    pub fn new(json: bool, fields: &BTreeMap<String, Value>) -> FieldsWriter {
        let splice = if json {
            json_splice(fields)
        } else {
            text_splice(fields)
        };
        FieldsWriter {
            json,
            splice: splice.into(),
        }
    }
}

impl<'a> MakeWriter<'a> for FieldsWriter {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line(self.clone())
    }
}

/// One event's writer.
pub struct Line(FieldsWriter);

impl Write for Line {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let out = splice(&self.0, buf);
        io::stderr().lock().write_all(&out)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// `buf` with the fields spliced in; unchanged when it is not a whole line
/// of the expected shape.
fn splice(w: &FieldsWriter, buf: &[u8]) -> Vec<u8> {
    let splice = w.splice.as_bytes();
    if splice.is_empty() {
        return buf.to_vec();
    }
    let mut out = Vec::with_capacity(buf.len() + splice.len());
    if w.json {
        match buf.strip_prefix(b"{") {
            Some(rest) => {
                out.push(b'{');
                out.extend_from_slice(splice);
                out.extend_from_slice(rest);
            }
            None => out.extend_from_slice(buf),
        }
    } else {
        match buf.strip_suffix(b"\n") {
            Some(line) => {
                out.extend_from_slice(line);
                out.extend_from_slice(splice);
                out.push(b'\n');
            }
            None => out.extend_from_slice(buf),
        }
    }
    out
}

fn json_splice(fields: &BTreeMap<String, Value>) -> String {
    fields
        .iter()
        .filter_map(|(k, v)| {
            let key = serde_json::to_string(k).ok()?;
            let value = serde_json::to_string(v)
                .or_else(|_| serde_json::to_string(&scalar_text(v)))
                .ok()?;
            Some(format!("{key}:{value},"))
        })
        .collect()
}

fn text_splice(fields: &BTreeMap<String, Value>) -> String {
    fields
        .iter()
        .map(|(k, v)| {
            let text = scalar_text(v);
            let plain = !text.is_empty()
                && !text.contains(|c: char| c.is_whitespace() || c == '"' || c == '=');
            if plain {
                format!(" {k}={text}")
            } else {
                format!(" {k}={text:?}")
            }
        })
        .collect()
}

/// A YAML value as text: strings as they are, the rest as YAML flow.
fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => serde_yaml_ng::to_string(other)
            .map(|s| s.trim_end().to_string())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn fields() -> BTreeMap<String, Value> {
        let mut m = BTreeMap::new();
        m.insert("service".to_string(), Value::from("registry"));
        m.insert("environment".to_string(), Value::from("prod eu"));
        m.insert("replica".to_string(), Value::from(3));
        m
    }

    #[test]
    fn json_lines_get_the_fields() {
        let w = FieldsWriter::new(true, &fields());
        let out = splice(&w, b"{\"level\":\"INFO\"}\n");
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["service"], "registry");
        assert_eq!(v["environment"], "prod eu");
        assert_eq!(v["replica"], 3);
        assert_eq!(v["level"], "INFO");
    }

    #[test]
    fn text_lines_get_the_fields() {
        let w = FieldsWriter::new(false, &fields());
        let out = splice(&w, b"INFO berth: hello\n");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "INFO berth: hello environment=\"prod eu\" replica=3 service=registry\n"
        );
    }

    #[test]
    fn no_fields_no_change() {
        let w = FieldsWriter::new(true, &BTreeMap::new());
        assert_eq!(splice(&w, b"{\"a\":1}\n"), b"{\"a\":1}\n");
    }
}
