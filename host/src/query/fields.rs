//! Field selection for JSON values, as a GraphQL selection set: `?fields=a,b.c`
//! keeps field `a` and field `c` of object `b`, and nothing else.
//!
//! A selection applies to an object's fields; to an array it applies to each
//! element; a number, string, boolean or null is kept as it is. A selected
//! field the value lacks is left out, not an error.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// A parsed `fields` selection: a tree of field names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fields {
    /// Each selected field with what is selected inside it.
    children: BTreeMap<String, Fields>,
    /// The field is selected whole.
    whole: bool,
}

/// Why a `fields` selection cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("fields {spec:?}: {why} (write them as `a,b.c`: field names, nested ones joined by dots)")]
pub struct FieldsError {
    /// The selection as given.
    pub spec: String,
    /// What is wrong with it.
    pub why: String,
}

impl Fields {
    /// Reads a comma-separated list of dotted paths (`a,b.c`).
    pub fn parse(spec: &str) -> Result<Fields, FieldsError> {
        let error = |why: &str| FieldsError { spec: spec.to_owned(), why: why.to_owned() };
        let mut root = Fields::default();
        for path in spec.split(',').map(str::trim) {
            if path.is_empty() {
                return Err(error("an empty field"));
            }
            let names: Vec<&str> = path.split('.').map(str::trim).collect();
            if names.iter().any(|n| n.is_empty()) {
                return Err(error("an empty field name in a path"));
            }
            let mut at = &mut root;
            for (i, name) in names.iter().enumerate() {
                at = at.children.entry((*name).to_owned()).or_default();
                if at.whole {
                    // Selected whole already: `a` then `a.b`.
                    break;
                }
                if i + 1 == names.len() {
                    // `a.b` then `a`: all of `a`.
                    at.whole = true;
                    at.children.clear();
                }
            }
        }
        Ok(root)
    }

    /// `value` with only the selected fields.
    pub fn select(&self, value: Value) -> Value {
        match value {
            Value::Object(mut map) => {
                let mut out = Map::new();
                for (name, inner) in &self.children {
                    if let Some(v) = map.remove(name) {
                        out.insert(name.clone(), if inner.whole { v } else { inner.select(v) });
                    }
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.into_iter().map(|v| self.select(v)).collect()),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn selects_fields_and_nested_paths() {
        let value =
            json!({"name": "Ada", "address": {"city": "London", "zip": "N1"}, "tags": [{"k": 1, "x": 2}], "n": 3});
        let pick = |spec: &str| Fields::parse(spec).unwrap().select(value.clone());
        assert_eq!(pick("name"), json!({"name": "Ada"}));
        assert_eq!(pick("name,address.city"), json!({"name": "Ada", "address": {"city": "London"}}));
        assert_eq!(pick("address.city,address"), json!({"address": {"city": "London", "zip": "N1"}}), "whole wins");
        assert_eq!(pick("address,address.city"), json!({"address": {"city": "London", "zip": "N1"}}));
        assert_eq!(pick("tags.k"), json!({"tags": [{"k": 1}]}), "applies to each element of an array");
        assert_eq!(pick("missing,address.none"), json!({"address": {}}), "missing fields are left out");
        assert_eq!(pick(" n , name "), json!({"n": 3, "name": "Ada"}));
        assert_eq!(Fields::parse("a").unwrap().select(json!(7)), json!(7), "a number stays as it is");
        for bad in ["", "a,,b", "a..b", ".a", "a."] {
            assert!(Fields::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Fields::parse("a..b").unwrap_err().to_string().contains("empty field name"));
    }
}
