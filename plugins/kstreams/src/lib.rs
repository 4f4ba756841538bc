//! Kafka Streams' own test helpers as plugin functions, so the conformance
//! suite (`tests/conformance`) can run Kafka Streams' test cases with the
//! same logic: `MockInitializer.STRING_INIT` with `MockAggregator.TOSTRING_ADDER`
//! (`zero_then_plus`: "0", then agg + "+" + value), the `() -> ""` initializer
//! with the same adder (`empty_then_plus`), and `MockReducer.STRING_ADDER`
//! (`plus`: v1 + "+" + v2); and the joiners `MockValueJoiner.TOSTRING_JOINER`
//! (`plus_joiner`: left + "+" + right) and the developer guide's
//! `[left, right]` (`pair_joiner`), where a missing side prints "null" as
//! Java's string concatenation does; the session merger of
//! `SessionWindowedKStreamImplTest` (`zero_then_plus_merger`: aggOne + "+" +
//! aggTwo, from STRING_INIT); the global-table tests' key mapper
//! (`second_token`: the value's second comma-separated token, or none); and
//! the suppression tests' `groupBy((k, v) -> (v, k))` (`value_as_key`).

use eddy_sdk::{Plugin, Record, Registry, Result};

/// `agg + "+" + value`, starting from `init` when there is no aggregate.
fn add(init: &str, current: Option<&[u8]>, rec: &Record) -> Result<String> {
    let agg = current.map_or(init.to_owned(), |c| String::from_utf8_lossy(c).into_owned());
    Ok(format!("{agg}+{}", rec.value_str()?))
}

/// A side of a join as Java's string concatenation prints it.
fn side(v: Option<&[u8]>) -> String {
    v.map_or("null".to_owned(), |v| String::from_utf8_lossy(v).into_owned())
}

struct KStreams;

impl Plugin for KStreams {
    fn register(r: &mut Registry) {
        r.aggregate("zero_then_plus", |c: Option<&[u8]>, rec: &Record| add("0", c, rec))
            .doc("STRING_INIT (\"0\") then TOSTRING_ADDER: agg + \"+\" + value");
        r.aggregate("empty_then_plus", |c: Option<&[u8]>, rec: &Record| add("", c, rec))
            .doc("\"\" then agg + \"+\" + value");
        r.merger("zero_then_plus_merger", |merged: Option<&[u8]>, session: &[u8]| -> Result<String> {
            let merged = merged.map_or("0".to_owned(), |m| String::from_utf8_lossy(m).into_owned());
            Ok(format!("{merged}+{}", String::from_utf8_lossy(session)))
        })
        .doc("session merger: aggOne + \"+\" + aggTwo, aggOne starting at STRING_INIT (\"0\")");
        r.select_key("value_as_key", |rec: &Record| -> Result<Option<Vec<u8>>> { Ok(rec.value().map(<[u8]>::to_vec)) })
            .doc("the value becomes the key");
        r.reduce("plus", |c: &[u8], rec: &Record| -> Result<String> {
            Ok(format!("{}+{}", String::from_utf8_lossy(c), rec.value_str()?))
        })
        .doc("STRING_ADDER: v1 + \"+\" + v2");
        r.joiner("plus_joiner", |l: Option<&[u8]>, r: Option<&[u8]>| -> Result<String> {
            Ok(format!("{}+{}", side(l), side(r)))
        })
        .doc("TOSTRING_JOINER: left + \"+\" + right");
        r.select_key("second_token", |rec: &Record| -> Result<Option<String>> {
            Ok(rec.value_str()?.split(',').nth(1).map(str::to_owned))
        })
        .doc("the value's second comma-separated token, or none");
        r.joiner("pair_joiner", |l: Option<&[u8]>, r: Option<&[u8]>| -> Result<String> {
            Ok(format!("[{}, {}]", side(l), side(r)))
        })
        .doc("the developer guide's [left, right]");
    }
}

eddy_sdk::export_plugin!(KStreams);
