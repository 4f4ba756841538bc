//! Patient vitals: drops readings that cannot be real and flags critical ones.
//!
//! A reading is JSON: `{"patient": "p1", "heart_rate": 72, "systolic": 120,
//! "diastolic": 80}`. `valid_reading` rejects out-of-range values,
//! `is_critical` picks readings that need a nurse now, `to_alert` turns a
//! critical reading into an alert, and `patient_key` keys a reading by patient.

use eddy_sdk::{Json, Plugin, Record, Registry, Result};
use serde::{Deserialize, Serialize};

/// One vitals reading from a bedside monitor.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Reading {
    /// Patient identifier.
    pub patient: String,
    /// Beats per minute.
    pub heart_rate: f64,
    /// Systolic blood pressure, mmHg.
    pub systolic: f64,
    /// Diastolic blood pressure, mmHg.
    pub diastolic: f64,
}

/// An alert raised for a critical reading.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct Alert {
    /// Patient identifier.
    pub patient: String,
    /// Why the reading is critical.
    pub reasons: Vec<String>,
    /// The reading's event time.
    pub at: i64,
}

/// True if every value is physiologically possible.
pub fn plausible(r: &Reading) -> bool {
    (20.0..=250.0).contains(&r.heart_rate)
        && (50.0..=260.0).contains(&r.systolic)
        && (20.0..=160.0).contains(&r.diastolic)
        && r.systolic > r.diastolic
}

/// What makes a reading critical; empty if it is not.
pub fn critical_reasons(r: &Reading) -> Vec<String> {
    let mut reasons = Vec::new();
    if r.heart_rate > 130.0 {
        reasons.push(format!("tachycardia ({} bpm)", r.heart_rate));
    }
    if r.heart_rate < 40.0 {
        reasons.push(format!("bradycardia ({} bpm)", r.heart_rate));
    }
    if r.systolic >= 180.0 || r.diastolic >= 120.0 {
        reasons.push(format!("hypertensive crisis ({}/{})", r.systolic, r.diastolic));
    }
    if r.systolic < 90.0 {
        reasons.push(format!("hypotension ({}/{})", r.systolic, r.diastolic));
    }
    reasons
}

fn valid_reading(rec: &Record) -> Result<bool> {
    Ok(plausible(&rec.json::<Reading>()?))
}

fn is_critical(rec: &Record) -> Result<bool> {
    Ok(!critical_reasons(&rec.json::<Reading>()?).is_empty())
}

fn to_alert(rec: &Record) -> Result<Json<Alert>> {
    let reading: Reading = rec.json()?;
    Ok(Json(Alert { reasons: critical_reasons(&reading), patient: reading.patient, at: rec.timestamp() }))
}

fn patient_key(rec: &Record) -> Result<String> {
    Ok(rec.json::<Reading>()?.patient)
}

struct Vitals;

impl Plugin for Vitals {
    fn register(r: &mut Registry) {
        r.predicate("valid_reading", valid_reading).doc("drops physiologically impossible readings");
        r.predicate("is_critical", is_critical).doc("true for readings that need attention now");
        r.map_values("to_alert", to_alert).doc("turns a critical reading into an alert");
        r.select_key("patient_key", patient_key).doc("keys a reading by its patient id");
    }
}

eddy_sdk::export_plugin!(Vitals);

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_sdk::OwnedRecord;

    fn reading(json: &str) -> eddy_sdk::EncodedRecord {
        OwnedRecord::new("bed-1", json).unwrap().with_timestamp(1000).encode()
    }

    #[test]
    fn rejects_impossible_and_malformed_readings() {
        let ok = reading(r#"{"patient":"p1","heart_rate":72,"systolic":120,"diastolic":80}"#);
        let bad = reading(r#"{"patient":"p1","heart_rate":400,"systolic":120,"diastolic":80}"#);
        let garbage = reading("not json");
        assert!(valid_reading(&ok.record()).unwrap());
        assert!(!valid_reading(&bad.record()).unwrap());
        assert!(matches!(valid_reading(&garbage.record()), Err(eddy_sdk::Error::InvalidRecord(_))));
    }

    #[test]
    fn alerts_name_every_reason() {
        let rec = reading(r#"{"patient":"p2","heart_rate":150,"systolic":190,"diastolic":100}"#);
        assert!(is_critical(&rec.record()).unwrap());
        let Json(alert) = to_alert(&rec.record()).unwrap();
        assert_eq!(alert.patient, "p2");
        assert_eq!(alert.reasons, ["tachycardia (150 bpm)", "hypertensive crisis (190/100)"]);
        assert_eq!(alert.at, 1000);
    }
}
