//! Bench: the logic of the stateless benchmark (see `scripts/bench.sh`).
//! `is_ok` keeps readings whose status is ok; `shout` uppercases the value.
//! The benchmark runs the same logic as a native closure for comparison.

use eddy_sdk::{Plugin, Record, Registry, Result};

/// True if a JSON value carries `"status":"ok"`.
pub fn is_ok(value: &[u8]) -> bool {
    const PATTERN: &[u8] = br#""status":"ok""#;
    value.windows(PATTERN.len()).any(|w| w[0] == b'"' && w == PATTERN)
}

/// The value with ASCII letters uppercased.
pub fn shout(value: &[u8]) -> Vec<u8> {
    value.to_ascii_uppercase()
}

struct Bench;

impl Plugin for Bench {
    fn register(r: &mut Registry) {
        r.predicate("is_ok", |rec: &Record| Ok(is_ok(rec.value().unwrap_or_default())));
        r.map_values("shout", |rec: &Record| -> Result<Vec<u8>> { Ok(shout(rec.value().unwrap_or_default())) });
        r.predicate("keep_all", |_: &Record| Ok(true)).doc("true: measures the cost of a call alone");
    }
}

eddy_sdk::export_plugin!(Bench);
