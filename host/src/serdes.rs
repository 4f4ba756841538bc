//! Serdes: how the bytes of keys and values are checked, read from JSON lines
//! (`eddy produce`, test inputs) and shown as JSON (`eddy consume`, test
//! outputs).

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The format of a key or value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Serde {
    /// Any bytes.
    #[default]
    Bytes,
    /// UTF-8 text.
    String,
    /// A JSON document.
    Json,
    /// A 64-bit signed integer, 8 bytes big-endian (Kafka's `LongSerializer`).
    I64,
}

/// Why bytes do not fit a serde, or a JSON value cannot be turned into bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SerdeError(pub String);

impl FromStr for Serde {
    type Err = SerdeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "bytes" => Ok(Serde::Bytes),
            "string" => Ok(Serde::String),
            "json" => Ok(Serde::Json),
            "i64" | "long" => Ok(Serde::I64),
            other => Err(SerdeError(format!("unknown serde '{other}': use bytes, string, json or i64"))),
        }
    }
}

impl fmt::Display for Serde {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Serde::Bytes => "bytes",
            Serde::String => "string",
            Serde::Json => "json",
            Serde::I64 => "i64",
        })
    }
}

impl Serde {
    /// Checks that `data` is well-formed for this serde.
    pub fn check(self, data: &[u8]) -> Result<(), SerdeError> {
        match self {
            Serde::Bytes => Ok(()),
            Serde::String => {
                std::str::from_utf8(data).map(|_| ()).map_err(|e| SerdeError(format!("not UTF-8 text: {e}")))
            }
            Serde::Json => serde_json::from_slice::<serde::de::IgnoredAny>(data)
                .map(|_| ())
                .map_err(|e| SerdeError(format!("not JSON: {e}"))),
            Serde::I64 if data.len() == 8 => Ok(()),
            Serde::I64 => Err(SerdeError(format!("an i64 is 8 bytes, got {}", data.len()))),
        }
    }

    /// Turns a JSON value from an input line into bytes of this serde. A JSON
    /// string becomes its text for `bytes` and `string`; `json` keeps the
    /// document as JSON text; `i64` takes an integer.
    pub fn from_json(self, v: &Value) -> Result<Bytes, SerdeError> {
        match (self, v) {
            (Serde::Bytes | Serde::String, Value::String(s)) => Ok(Bytes::from(s.clone())),
            (Serde::Bytes, other) => Ok(Bytes::from(other.to_string())),
            (Serde::String, other) => {
                Err(SerdeError(format!("expected a JSON string for a string serde, got {other}")))
            }
            (Serde::Json, other) => Ok(Bytes::from(other.to_string())),
            (Serde::I64, Value::Number(n)) => match n.as_i64() {
                Some(i) => Ok(Bytes::copy_from_slice(&i.to_be_bytes())),
                None => Err(SerdeError(format!("{n} is not a 64-bit integer"))),
            },
            (Serde::I64, Value::String(s)) => s
                .parse::<i64>()
                .map(|i| Bytes::copy_from_slice(&i.to_be_bytes()))
                .map_err(|_| SerdeError(format!("{s:?} is not a 64-bit integer"))),
            (Serde::I64, other) => Err(SerdeError(format!("expected an integer for an i64 serde, got {other}"))),
        }
    }

    /// Shows bytes of this serde as a JSON value. Bytes that do not fit the
    /// serde are shown as `{"hex": ...}` rather than lost.
    pub fn to_json(self, data: &[u8]) -> Value {
        let shown = match self {
            Serde::Json => serde_json::from_slice(data).ok(),
            Serde::I64 => <[u8; 8]>::try_from(data).ok().map(|b| Value::from(i64::from_be_bytes(b))),
            Serde::String | Serde::Bytes => std::str::from_utf8(data).ok().map(|s| Value::String(s.to_owned())),
        };
        shown.unwrap_or_else(|| serde_json::json!({ "hex": hex(data) }))
    }
}

/// Lowercase hex of `data`.
pub fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn checks_each_format() {
        assert!(Serde::String.check(b"caf\xc3\xa9").is_ok());
        assert!(Serde::String.check(b"\xff").is_err());
        assert!(Serde::Json.check(br#"{"a":[1,2]}"#).is_ok());
        assert!(Serde::Json.check(br#"{"a":"#).unwrap_err().0.starts_with("not JSON"));
        assert!(Serde::I64.check(&7i64.to_be_bytes()).is_ok());
        assert_eq!(Serde::I64.check(b"abc").unwrap_err().0, "an i64 is 8 bytes, got 3");
        assert!(Serde::Bytes.check(b"\xff\x00").is_ok());
    }

    #[test]
    fn json_lines_round_trip() {
        for (serde, v) in [
            (Serde::String, json!("hello")),
            (Serde::Json, json!({"hr": 72, "ok": true})),
            (Serde::I64, json!(-42)),
            (Serde::Bytes, json!("raw")),
        ] {
            let b = serde.from_json(&v).unwrap();
            serde.check(&b).unwrap();
            assert_eq!(serde.to_json(&b), v, "{serde}");
        }
        assert_eq!(Serde::I64.from_json(&json!("7")).unwrap(), Bytes::copy_from_slice(&7i64.to_be_bytes()));
        assert!(Serde::I64.from_json(&json!(1.5)).is_err());
        assert_eq!(Serde::Json.to_json(b"{oops"), json!({"hex": "7b6f6f7073"}));
        assert_eq!("long".parse::<Serde>().unwrap(), Serde::I64);
        assert!("xml".parse::<Serde>().unwrap_err().0.contains("use bytes, string, json or i64"));
    }
}
