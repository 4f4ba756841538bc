//! Bench: the logic of the stateless benchmark (see `scripts/bench.sh`).
//! `is_ok` keeps readings whose status is ok; `shout` uppercases the value.
//! The benchmark runs the same logic as a native closure for comparison.
//! `count_in_store` (a processor with the store `counts`) counts per key
//! through the host's state interface, a get and a put per record.

use eddy_sdk::{Context, OwnedRecord, Plugin, Record, Registry, Result, Store};

/// True if a JSON value carries `"status":"ok"`.
pub fn is_ok(value: &[u8]) -> bool {
    const PATTERN: &[u8] = br#""status":"ok""#;
    value.windows(PATTERN.len()).any(|w| w[0] == b'"' && w == PATTERN)
}

/// The value with ASCII letters uppercased.
pub fn shout(value: &[u8]) -> Vec<u8> {
    value.to_ascii_uppercase()
}

fn count_in_store(rec: &Record, ctx: &mut Context) -> Result<()> {
    let Some(key) = rec.key() else { return Ok(()) };
    let store = Store::open("counts")?;
    let count = store.get(key).and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok()).map_or(0, i64::from_be_bytes) + 1;
    store.put(key, count.to_be_bytes().to_vec())?;
    ctx.forward(OwnedRecord::new(key, count.to_be_bytes().to_vec())?);
    Ok(())
}

struct Bench;

impl Plugin for Bench {
    fn register(r: &mut Registry) {
        r.predicate("is_ok", |rec: &Record| Ok(is_ok(rec.value().unwrap_or_default())));
        r.map_values("shout", |rec: &Record| -> Result<Vec<u8>> { Ok(shout(rec.value().unwrap_or_default())) });
        r.predicate("keep_all", |_: &Record| Ok(true)).doc("true: measures the cost of a call alone");
        r.processor("count_in_store", count_in_store).doc("counts per key in the store `counts`");
        r.joiner("pair", |l: Option<&[u8]>, r: Option<&[u8]>| -> Result<Vec<u8>> {
            Ok([l.unwrap_or_default(), b"|", r.unwrap_or_default()].concat())
        })
        .doc("left | right: a join's cost without the joiner's");
    }
}

eddy_sdk::export_plugin!(Bench);
