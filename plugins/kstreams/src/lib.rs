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
//! the suppression tests' `groupBy((k, v) -> (v, k))` (`value_as_key`);
//! and the foreign-key join tests' extractors and joiners: `after_bar`
//! (`value.split("\\|")[1]`), `after_bar_unless_return_null` (the same, or
//! none for `returnNull`), `no_foreign_key` (`value -> null`), `before_bar`
//! (`value.split("\\|")[0]`), `before_dash`
//! (`Integer.parseInt(value.split("-")[0])`), `key_before_colon`
//! (`key.split(":")[0]`), `paren_joiner` (`"(" + v1 + "," + v2 + ")"`) and
//! `rejoin_joiner` (`"rejoin(" + v1 + "," + v2 + ")"`).

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

/// The `i`th field of `text` split at `sep`, as Java's `split(sep)[i]`
/// (which throws when there is none: an error here).
fn field(text: &str, sep: char, i: usize) -> Result<String> {
    text.split(sep)
        .nth(i)
        .map(str::to_owned)
        .ok_or_else(|| eddy_sdk::Error::invalid(format!("'{text}' has no field {i} split at '{sep}'")))
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
        r.select_key("after_bar", |rec: &Record| -> Result<Option<String>> {
            field(rec.value_str()?, '|', 1).map(Some)
        })
        .doc("value.split(\"\\\\|\")[1]: the part after '|'");
        r.select_key("after_bar_unless_return_null", |rec: &Record| -> Result<Option<String>> {
            let fk = field(rec.value_str()?, '|', 1)?;
            Ok((fk != "returnNull").then_some(fk))
        })
        .doc("the part after '|', or none when that is 'returnNull'");
        r.select_key("no_foreign_key", |_: &Record| -> Result<Option<String>> { Ok(None) })
            .doc("value -> null: no key at all");
        r.select_key("before_bar", |rec: &Record| -> Result<Option<String>> {
            field(rec.value_str()?, '|', 0).map(Some)
        })
        .doc("value.split(\"\\\\|\")[0]: the part before '|'");
        r.select_key("before_dash", |rec: &Record| -> Result<Option<String>> {
            let text = field(rec.value_str()?, '-', 0)?;
            let n: i32 = text.parse().map_err(|e| eddy_sdk::Error::invalid(format!("'{text}' is not an int: {e}")))?;
            Ok(Some(n.to_string()))
        })
        .doc("Integer.parseInt(value.split(\"-\")[0]), as decimal text");
        r.select_key("key_before_colon", |rec: &Record| -> Result<Option<String>> {
            let key = rec.key().map(String::from_utf8_lossy).unwrap_or_default();
            field(&key, ':', 0).map(Some)
        })
        .doc("key.split(\":\")[0]: the key's part before ':'");
        r.joiner("paren_joiner", |l: Option<&[u8]>, r: Option<&[u8]>| -> Result<String> {
            Ok(format!("({},{})", side(l), side(r)))
        })
        .doc("\"(\" + value1 + \",\" + value2 + \")\"");
        r.joiner("rejoin_joiner", |l: Option<&[u8]>, r: Option<&[u8]>| -> Result<String> {
            Ok(format!("rejoin({},{})", side(l), side(r)))
        })
        .doc("\"rejoin(\" + value1 + \",\" + value2 + \")\"");
        r.joiner("plus_joiner_but_boom", |l: Option<&[u8]>, r: Option<&[u8]>| -> Result<String> {
            if l == Some(b"boom") || r == Some(b"boom") {
                return Err(eddy_sdk::Error::failed("the joiner refuses \"boom\""));
            }
            Ok(format!("{}+{}", side(l), side(r)))
        })
        .doc("plus_joiner, failing for a side \"boom\" (to test the error policy)");
        r.joiner("pair_joiner", |l: Option<&[u8]>, r: Option<&[u8]>| -> Result<String> {
            Ok(format!("[{}, {}]", side(l), side(r)))
        })
        .doc("the developer guide's [left, right]");
    }
}

eddy_sdk::export_plugin!(KStreams);
