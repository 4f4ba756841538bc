//! Records as JSON lines: what `eddy produce` and test inputs read, and what
//! `eddy consume` and `eddy test` print.
//!
//! A line is an object: `{"key": ..., "value": ..., "timestamp": ...,
//! "headers": {"name": "value"}}`; every field is optional. Keys and values
//! are turned into bytes by a [`Serde`]; with the default (`bytes`) a JSON
//! string becomes its text and any other JSON value becomes its JSON text.

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::record::{Header, Record};
use crate::serdes::Serde;
use crate::window::{WindowedKeys, session_key, split_session_key, split_windowed_key, windowed_key};

/// Why a line is not a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem}")]
pub struct LineError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub problem: String,
}

/// A line's JSON object.
pub fn object(line_no: usize, line: &str) -> Result<Map<String, Value>, LineError> {
    let err = |problem: String| LineError { line: line_no, problem };
    match serde_json::from_str(line).map_err(|e| err(format!("not JSON: {e}")))? {
        Value::Object(obj) => Ok(obj),
        _ => {
            Err(err("expected an object like {\"key\": ..., \"value\": ...} (use --value-only for plain lines)".into()))
        }
    }
}

/// How keys and values of lines are encoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineFormat {
    /// Key serde.
    pub key: Serde,
    /// Value serde.
    pub value: Serde,
    /// How keys carry a window, if they do (see [`crate::window`]): shown
    /// as the key and a `window-start` field (and `window-end`, for
    /// sessions).
    pub windowed: Option<WindowedKeys>,
}

impl LineFormat {
    /// Parses one JSON line into a record; `now` is the timestamp when the
    /// line has none.
    pub fn parse(&self, line_no: usize, line: &str, now: i64) -> Result<Record, LineError> {
        self.parse_object(line_no, object(line_no, line)?, now)
    }

    /// Turns a line's JSON object into a record; `now` is the timestamp when
    /// it has none.
    pub fn parse_object(&self, line_no: usize, mut obj: Map<String, Value>, now: i64) -> Result<Record, LineError> {
        let err = |problem: String| LineError { line: line_no, problem };
        let bytes = |serde: Serde, field: &str, v: Option<Value>| -> Result<Option<Bytes>, LineError> {
            match v {
                None | Some(Value::Null) => Ok(None),
                Some(v) => serde.from_json(&v).map(Some).map_err(|e| err(format!("{field}: {e}"))),
            }
        };
        let mut key = bytes(self.key, "key", obj.remove("key"))?;
        let mut time = |field: &str| match obj.remove(field) {
            Some(Value::Number(n)) if n.is_i64() => Ok(n.as_i64().unwrap_or_default()),
            _ => Err(err(format!("a windowed key needs an integer `{field}`"))),
        };
        match self.windowed {
            None => {}
            Some(WindowedKeys::Time) => {
                let start = time("window-start")?;
                key = key.map(|k| windowed_key(&k, start));
            }
            Some(WindowedKeys::Session) => {
                let (start, end) = (time("window-start")?, time("window-end")?);
                key = key.map(|k| session_key(&k, start, end));
            }
        }
        let value = bytes(self.value, "value", obj.remove("value"))?;
        let timestamp = match obj.remove("timestamp") {
            None | Some(Value::Null) => now,
            Some(Value::Number(n)) => {
                n.as_i64().ok_or_else(|| err(format!("timestamp {n} is not an integer (ms since the epoch)")))?
            }
            Some(other) => {
                return Err(err(format!("timestamp {other} is not an integer (ms since the epoch)")));
            }
        };
        let mut headers = Vec::new();
        match obj.remove("headers") {
            None | Some(Value::Null) => {}
            Some(Value::Object(hs)) => {
                for (name, v) in hs {
                    let value = match v {
                        Value::Null => None,
                        Value::String(s) => Some(Bytes::from(s)),
                        other => Some(Bytes::from(other.to_string())),
                    };
                    headers.push(Header { name, value });
                }
            }
            Some(other) => {
                return Err(err(format!("headers must be an object of name: value, got {other}")));
            }
        }
        if let Some(field) = obj.keys().next() {
            return Err(err(format!("unknown field '{field}': a line has key, value, timestamp and headers")));
        }
        Ok(Record { key, value, timestamp, headers })
    }

    /// Takes a whole line as the value (`--value-only`).
    pub fn parse_value_only(&self, line_no: usize, line: &str, now: i64) -> Result<Record, LineError> {
        let value = match self.value {
            Serde::Json => {
                self.value.check(line.as_bytes()).map_err(|e| LineError { line: line_no, problem: e.0 })?;
                Bytes::copy_from_slice(line.as_bytes())
            }
            serde => serde
                .from_json(&Value::String(line.to_owned()))
                .map_err(|e| LineError { line: line_no, problem: e.0 })?,
        };
        Ok(Record { key: None, value: Some(value), timestamp: now, headers: Vec::new() })
    }

    /// Shows a record as a JSON object: key, value, timestamp, and headers if any.
    pub fn render(&self, r: &Record) -> Map<String, Value> {
        let mut m = Map::new();
        let windowed = match (r.key.as_deref(), self.windowed) {
            (Some(k), Some(WindowedKeys::Time)) => split_windowed_key(k).map(|(k, start)| (k, start, None)),
            (Some(k), Some(WindowedKeys::Session)) => split_session_key(k).map(|(k, start, end)| (k, start, Some(end))),
            _ => None,
        };
        match windowed {
            Some((key, start, end)) => {
                m.insert("key".into(), self.key.to_json(key));
                m.insert("window-start".into(), Value::from(start));
                if let Some(end) = end {
                    m.insert("window-end".into(), Value::from(end));
                }
            }
            None => {
                m.insert("key".into(), r.key.as_deref().map_or(Value::Null, |k| self.key.to_json(k)));
            }
        }
        m.insert("value".into(), r.value.as_deref().map_or(Value::Null, |v| self.value.to_json(v)));
        m.insert("timestamp".into(), Value::from(r.timestamp));
        if !r.headers.is_empty() {
            let hs: Map<String, Value> = r
                .headers
                .iter()
                .map(|h| (h.name.clone(), h.value.as_deref().map_or(Value::Null, |v| Serde::Bytes.to_json(v))))
                .collect();
            m.insert("headers".into(), Value::Object(hs));
        }
        m
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_and_renders_lines() {
        let f = LineFormat { key: Serde::String, value: Serde::Json, windowed: None };
        let r = f.parse(1, r#"{"key":"p1","value":{"hr":72},"timestamp":5,"headers":{"src":"icu"}}"#, 0).unwrap();
        assert_eq!(r.key.as_deref(), Some(&b"p1"[..]));
        assert_eq!(r.value.as_deref(), Some(&br#"{"hr":72}"#[..]));
        assert_eq!(r.header("src"), Some(&b"icu"[..]));
        assert_eq!(
            Value::Object(f.render(&r)),
            json!({"key": "p1", "value": {"hr": 72}, "timestamp": 5, "headers": {"src": "icu"}})
        );
        let t = f.parse(2, r#"{"value":null}"#, 99).unwrap();
        assert_eq!((t.key, t.value, t.timestamp), (None, None, 99));
    }

    #[test]
    fn bad_lines_say_what_and_where() {
        let f = LineFormat::default();
        assert_eq!(f.parse(3, "{oops", 0).unwrap_err().line, 3);
        assert!(f.parse(1, "[1]", 0).unwrap_err().problem.contains("--value-only"));
        assert!(f.parse(1, r#"{"vlaue": 1}"#, 0).unwrap_err().problem.contains("unknown field 'vlaue'"));
        assert!(f.parse(1, r#"{"timestamp": "noon"}"#, 0).unwrap_err().problem.contains("not an integer"));
        let json = LineFormat { key: Serde::Bytes, value: Serde::Json, windowed: None };
        assert!(json.parse_value_only(1, "{not json", 0).is_err());
        assert_eq!(json.parse_value_only(1, r#"{"a":1}"#, 7).unwrap().value.as_deref(), Some(&br#"{"a":1}"#[..]));
    }
}
