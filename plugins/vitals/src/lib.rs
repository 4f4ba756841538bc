//! Patient vitals: drops readings that cannot be real and flags critical ones.
//!
//! A reading is JSON: `{"patient": "p1", "heart_rate": 72, "systolic": 120,
//! "diastolic": 80}`. `valid_reading` rejects out-of-range values,
//! `is_critical` picks readings that need a nurse now, `to_alert` turns a
//! critical reading into an alert, and `patient_key` keys a reading by patient.
//!
//! `remember_reading` (a processor) and `emit_medians` (its punctuator) give
//! each patient's median vitals over the last minute: the processor keeps
//! every reading in the host store `readings` under `patient \0 timestamp`
//! and the patient in the store `patients`; every minute of stream time the
//! punctuator scans each patient's readings by prefix, forwards the medians of
//! the last minute's readings and deletes older ones. Records must be keyed
//! by patient, so that all of a patient's readings meet in one task.
//!
//! `average_pressure` (an aggregator) keeps a patient's average blood
//! pressure over the readings of a window (`examples/vitals/pressure.yaml`:
//! 5-minute windows with a grace period, so a reading that arrives very late
//! is dropped rather than counted in a newer window).
//!
//! `collect_reading` (an aggregator) and `minute_medians` (a map-values) give
//! per-minute medians with a tumbling window instead of a processor: the
//! aggregate keeps a window's readings (`examples/vitals/window-medians.yaml`:
//! one-minute windows, suppressed until they close), and `minute_medians`
//! turns a window's final readings into their medians.

use eddy_sdk::{Context, Error, Json, OwnedRecord, Plugin, Record, Registry, Result, Store};
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

/// Median vitals of one patient over a minute.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct Medians {
    /// Patient identifier.
    pub patient: String,
    /// The end of the minute (the punctuation time), inclusive.
    pub until: i64,
    /// Readings in the minute.
    pub readings: usize,
    /// Median beats per minute.
    pub heart_rate: f64,
    /// Median systolic pressure.
    pub systolic: f64,
    /// Median diastolic pressure.
    pub diastolic: f64,
}

/// The span of the medians, in milliseconds.
pub const MEDIAN_SPAN_MS: i64 = 60_000;

/// The median of `values` (the mean of the middle two for an even count).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// The store key of a reading: patient, a zero byte, then the timestamp
/// big-endian with the sign bit flipped, so keys sort by patient then time.
fn reading_key(patient: &str, timestamp: i64) -> Vec<u8> {
    let mut key = Vec::with_capacity(patient.len() + 9);
    key.extend_from_slice(patient.as_bytes());
    key.push(0);
    key.extend_from_slice(&((timestamp as u64) ^ (1 << 63)).to_be_bytes());
    key
}

fn reading_time(key: &[u8]) -> Option<i64> {
    let bytes: [u8; 8] = key.get(key.len().checked_sub(8)?..)?.try_into().ok()?;
    Some((u64::from_be_bytes(bytes) ^ (1 << 63)) as i64)
}

fn remember_reading(rec: &Record, _: &mut Context) -> Result<()> {
    let reading: Reading = rec.json()?;
    if reading.patient.contains('\0') {
        return Err(Error::invalid("a patient id cannot contain a zero byte"));
    }
    let patients = Store::open("patients")?;
    if patients.get(reading.patient.as_bytes()).is_none() {
        patients.put(reading.patient.as_bytes(), "")?;
    }
    Store::open("readings")?.put(&reading_key(&reading.patient, rec.timestamp()), Json(&reading))
}

fn emit_medians(now: i64, ctx: &mut Context) -> Result<()> {
    let (patients, readings) = (Store::open("patients")?, Store::open("readings")?);
    let since = now - MEDIAN_SPAN_MS;
    let known: Vec<Vec<u8>> = patients.range(None, None).map(|(k, _)| k).collect();
    for patient in known {
        let mut prefix = patient.clone();
        prefix.push(0);
        let (mut hr, mut sys, mut dia) = (Vec::new(), Vec::new(), Vec::new());
        for (key, value) in readings.prefix(&prefix) {
            let time = reading_time(&key).ok_or_else(|| Error::failed("bad reading key in the store"))?;
            if time <= since {
                readings.delete(&key)?;
                continue;
            }
            let r: Reading = serde_json::from_slice(&value)?;
            hr.push(r.heart_rate);
            sys.push(r.systolic);
            dia.push(r.diastolic);
        }
        let name = String::from_utf8_lossy(&patient).into_owned();
        if hr.is_empty() {
            patients.delete(&patient)?;
            continue;
        }
        let medians = Medians {
            patient: name.clone(),
            until: now,
            readings: hr.len(),
            heart_rate: median(&mut hr),
            systolic: median(&mut sys),
            diastolic: median(&mut dia),
        };
        ctx.forward(OwnedRecord::new(name, Json(medians))?.with_timestamp(now));
    }
    Ok(())
}

/// A patient's average blood pressure over the readings of a window.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct Pressure {
    /// Readings averaged.
    pub readings: u32,
    /// Average systolic pressure, mmHg.
    pub systolic: f64,
    /// Average diastolic pressure, mmHg.
    pub diastolic: f64,
}

fn average_pressure(current: Option<&[u8]>, rec: &Record) -> Result<Json<Pressure>> {
    let reading: Reading = rec.json()?;
    let avg: Pressure = match current {
        Some(c) => serde_json::from_slice(c).map_err(|e| Error::failed(format!("stored average: {e}")))?,
        None => Pressure::default(),
    };
    let n = f64::from(avg.readings);
    Ok(Json(Pressure {
        readings: avg.readings + 1,
        systolic: (avg.systolic * n + reading.systolic) / (n + 1.0),
        diastolic: (avg.diastolic * n + reading.diastolic) / (n + 1.0),
    }))
}

/// One patient's readings in a window, as `collect_reading` keeps them.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct WindowReadings {
    /// Patient identifier.
    pub patient: String,
    /// Beats per minute, one per reading, in the order they came.
    pub heart_rate: Vec<f64>,
    /// Systolic pressures, mmHg.
    pub systolic: Vec<f64>,
    /// Diastolic pressures, mmHg.
    pub diastolic: Vec<f64>,
}

/// Median vitals of one patient over a window (its start is in the
/// windowed key).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct WindowMedians {
    /// Patient identifier.
    pub patient: String,
    /// Readings in the window.
    pub readings: usize,
    /// Median beats per minute.
    pub heart_rate: f64,
    /// Median systolic pressure.
    pub systolic: f64,
    /// Median diastolic pressure.
    pub diastolic: f64,
}

fn collect_reading(current: Option<&[u8]>, rec: &Record) -> Result<Json<WindowReadings>> {
    let reading: Reading = rec.json()?;
    let mut window: WindowReadings = match current {
        Some(c) => serde_json::from_slice(c).map_err(|e| Error::failed(format!("stored readings: {e}")))?,
        None => WindowReadings { patient: reading.patient.clone(), ..WindowReadings::default() },
    };
    if window.patient != reading.patient {
        return Err(Error::invalid(format!(
            "a reading of patient '{}' in the window of patient '{}': key readings by patient first",
            reading.patient, window.patient
        )));
    }
    window.heart_rate.push(reading.heart_rate);
    window.systolic.push(reading.systolic);
    window.diastolic.push(reading.diastolic);
    Ok(Json(window))
}

fn minute_medians(rec: &Record) -> Result<Json<WindowMedians>> {
    let mut window: WindowReadings = rec.json()?;
    let readings = window.heart_rate.len();
    if readings == 0 || window.systolic.len() != readings || window.diastolic.len() != readings {
        return Err(Error::invalid("a window's readings need as many values of each vital, and at least one"));
    }
    Ok(Json(WindowMedians {
        patient: window.patient,
        readings,
        heart_rate: median(&mut window.heart_rate),
        systolic: median(&mut window.systolic),
        diastolic: median(&mut window.diastolic),
    }))
}

/// When a monitor took a reading: its `at` field (ms since the epoch), for
/// readings that reach the log later than they were taken.
fn measured_at(rec: &Record) -> Result<i64> {
    #[derive(Deserialize)]
    struct Taken {
        at: i64,
    }
    Ok(rec.json::<Taken>()?.at)
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
        r.processor("remember_reading", remember_reading)
            .doc("keeps each reading in the `readings` store (stores: patients, readings)");
        r.timestamp_extractor("measured_at", measured_at)
            .doc("a reading's event time: its `at` field, when the monitor took it");
        r.aggregate("average_pressure", average_pressure)
            .doc("a patient's average systolic and diastolic pressure over a window's readings");
        r.aggregate("collect_reading", collect_reading)
            .doc("keeps a patient's readings of a window (for their medians: minute_medians)");
        r.map_values("minute_medians", minute_medians)
            .doc("a window's readings (from collect_reading) to the patient's median vitals");
        r.punctuator("emit_medians", emit_medians)
            .doc("forwards each patient's median vitals over the last minute and forgets older readings");
    }
}

eddy_sdk::export_plugin!(Vitals);

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_sdk::{OwnedRecord, forwarded};

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
    fn medians_of_the_last_minute_per_patient() {
        for (t, hr) in [(1_000, 60.0), (40_000, 80.0), (61_000, 100.0), (70_000, 90.0)] {
            let json = format!(r#"{{"patient":"p9","heart_rate":{hr},"systolic":120,"diastolic":80}}"#);
            let rec = OwnedRecord::new("p9", json).unwrap().with_timestamp(t).encode();
            assert!(forwarded(t, |ctx| remember_reading(&rec.record(), ctx)).unwrap().is_empty());
        }
        let out = forwarded(90_000, |ctx| emit_medians(90_000, ctx)).unwrap();
        let medians: Vec<Medians> =
            out.iter().map(|(_, r)| serde_json::from_slice(r.value.as_ref().unwrap()).unwrap()).collect();
        // The reading at 1 s is older than a minute: forgotten, not counted.
        assert_eq!(
            medians,
            [Medians {
                patient: "p9".into(),
                until: 90_000,
                readings: 3,
                heart_rate: 90.0,
                systolic: 120.0,
                diastolic: 80.0
            }]
        );
        assert_eq!(Store::open("readings").unwrap().prefix(b"p9\0").count(), 3);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn a_window_keeps_its_readings_and_gives_their_medians() {
        let mut window: Option<Vec<u8>> = None;
        for (hr, sys) in [(80.0, 120.0), (60.0, 130.0), (70.0, 110.0), (90.0, 140.0)] {
            let json = format!(r#"{{"patient":"p3","heart_rate":{hr},"systolic":{sys},"diastolic":80}}"#);
            let Json(next) = collect_reading(window.as_deref(), &reading(&json).record()).unwrap();
            window = Some(serde_json::to_vec(&next).unwrap());
        }
        let window = window.unwrap();
        let rec = OwnedRecord::new("p3", window.clone()).unwrap().encode();
        let Json(medians) = minute_medians(&rec.record()).unwrap();
        assert_eq!(
            medians,
            WindowMedians { patient: "p3".into(), readings: 4, heart_rate: 75.0, systolic: 125.0, diastolic: 80.0 }
        );
        // Another patient's reading under this key is a keying mistake.
        let other = reading(r#"{"patient":"p4","heart_rate":70,"systolic":120,"diastolic":80}"#);
        assert!(matches!(collect_reading(Some(&window), &other.record()), Err(eddy_sdk::Error::InvalidRecord(_))));
        let empty = OwnedRecord::new("p3", r#"{"patient":"p3","heart_rate":[],"systolic":[],"diastolic":[]}"#)
            .unwrap()
            .encode();
        assert!(minute_medians(&empty.record()).is_err());
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
