//! Bench: the logic of the stateless benchmark (see `scripts/bench.sh`).
//! `is_ok` keeps readings whose status is ok; `shout` uppercases the value.
//! The benchmark runs the same logic as a native closure for comparison.
//! `count_in_store` (a processor with the store `counts`) counts per key
//! through the host's state interface, a get and a put per record.
//!
//! `is_ok_json` and `to_usd` are the JSON pipeline of the benchmark against
//! Kafka Streams (`scripts/bench-kafka.sh`, whose Java twin is
//! `bench/kafka-streams/.../Payments.java`): each parses the payment into a
//! struct, as Jackson does there.

use std::borrow::Cow;

use eddy_sdk::{Context, Error, OwnedRecord, Plugin, Record, Registry, Result, Store};
use serde::{Deserialize, Serialize};

/// True if a JSON value carries `"status":"ok"`.
pub fn is_ok(value: &[u8]) -> bool {
    const PATTERN: &[u8] = br#""status":"ok""#;
    value.windows(PATTERN.len()).any(|w| w[0] == b'"' && w == PATTERN)
}

/// The value with ASCII letters uppercased.
pub fn shout(value: &[u8]) -> Vec<u8> {
    value.to_ascii_uppercase()
}

/// A payment as the JSON benchmark's input carries it:
/// `{"id":123,"customer":"c-17","status":"ok","amount":12.5,"currency":"EUR"}`.
#[derive(Debug, Deserialize)]
pub struct Payment<'a> {
    /// The payment's number.
    pub id: i64,
    /// Who paid (borrowed unless the JSON escapes it).
    #[serde(borrow)]
    pub customer: Cow<'a, str>,
    /// `ok` or `error`.
    #[serde(borrow)]
    pub status: Cow<'a, str>,
    /// The amount in `currency`.
    pub amount: f64,
    /// USD, EUR, GBP or JPY.
    #[serde(borrow)]
    pub currency: Cow<'a, str>,
}

/// A payment in US dollars: what `to_usd` writes.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct UsdPayment<'a> {
    /// The payment's number.
    pub id: i64,
    /// Who paid.
    #[serde(borrow)]
    pub customer: Cow<'a, str>,
    /// The amount in US dollars.
    pub usd: f64,
}

/// US dollars per unit of a currency: the benchmark's fixed rate table.
pub fn usd_rate(currency: &str) -> Option<f64> {
    match currency {
        "USD" => Some(1.0),
        "EUR" => Some(1.08),
        "GBP" => Some(1.27),
        "JPY" => Some(0.0067),
        _ => None,
    }
}

/// True if the payment's `status` is `ok`; an error if the value is not a
/// payment.
pub fn is_ok_json(value: &[u8]) -> Result<bool> {
    let payment: Payment<'_> = serde_json::from_slice(value)?;
    Ok(payment.status == "ok")
}

/// The payment as `{"id":..,"customer":..,"usd":..}`, its amount converted
/// with [`usd_rate`]; an error if the value is not a payment or its currency
/// has no rate.
pub fn to_usd(value: &[u8]) -> Result<Vec<u8>> {
    let payment: Payment<'_> = serde_json::from_slice(value)?;
    let rate = usd_rate(&payment.currency)
        .ok_or_else(|| Error::invalid(format!("no rate for currency '{}'", payment.currency)))?;
    let usd = UsdPayment { id: payment.id, customer: payment.customer, usd: payment.amount * rate };
    Ok(serde_json::to_vec(&usd)?)
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
        r.predicate("is_ok_json", |rec: &Record| is_ok_json(rec.value().unwrap_or_default()))
            .doc("parses a payment; true if its status is ok");
        r.map_values("to_usd", |rec: &Record| to_usd(rec.value().unwrap_or_default()))
            .doc("parses a payment; writes {id, customer, usd}");
    }
}

eddy_sdk::export_plugin!(Bench);

#[cfg(test)]
mod tests {
    use super::*;

    const OK_EUR: &[u8] = br#"{"id":123,"customer":"c-17","status":"ok","amount":12.5,"currency":"EUR"}"#;

    #[test]
    fn is_ok_json_reads_the_status_field() {
        assert!(is_ok_json(OK_EUR).unwrap());
        let error = br#"{"id":1,"customer":"c-1","status":"error","amount":1.0,"currency":"USD"}"#;
        assert!(!is_ok_json(error).unwrap());
        // Parsed, not searched: "ok" elsewhere does not count.
        let elsewhere = br#"{"id":1,"customer":"ok","status":"error","amount":1.0,"currency":"USD"}"#;
        assert!(!is_ok_json(elsewhere).unwrap());
        assert!(matches!(is_ok_json(b"not json"), Err(Error::InvalidRecord(_))));
        assert!(matches!(is_ok_json(br#"{"id":1}"#), Err(Error::InvalidRecord(_))));
    }

    #[test]
    fn to_usd_converts_with_the_rate_table() {
        let out = to_usd(OK_EUR).unwrap();
        let usd: UsdPayment<'_> = serde_json::from_slice(&out).unwrap();
        assert_eq!(usd, UsdPayment { id: 123, customer: "c-17".into(), usd: 12.5 * 1.08 });
        assert!(std::str::from_utf8(&out).unwrap().starts_with(r#"{"id":123,"customer":"c-17","usd":13.5"#));
        let yen = br#"{"id":7,"customer":"c-\"q\"","status":"ok","amount":1000,"currency":"JPY"}"#;
        let out = to_usd(yen).unwrap();
        let usd: UsdPayment<'_> = serde_json::from_slice(&out).unwrap();
        assert_eq!((usd.customer.as_ref(), usd.usd), ("c-\"q\"", 1000.0 * 0.0067));
    }

    #[test]
    fn to_usd_rejects_an_unknown_currency() {
        let chf = br#"{"id":1,"customer":"c-1","status":"ok","amount":1.0,"currency":"CHF"}"#;
        assert!(matches!(to_usd(chf), Err(Error::InvalidRecord(m)) if m.contains("CHF")));
    }
}
