//! Faulty: a test plugin that misbehaves on purpose, to prove the host's error
//! policies. `checked_upper` returns an error for values containing "bad";
//! `panicky_upper` traps (panics) on values containing "boom"; `spin` loops
//! forever on values containing "spin"; `lower` lowercases; `fragile_sum`
//! sums integers, failing on non-integers and trapping on "boom".
//! `fragile_tally` (a processor with the store `tally`) marks each value as
//! seen and counts records per key, forwarding the count to the child
//! `counts` and the value to every child; it writes before it fails on
//! "bad", traps on "boom", and forwards to a child that does not exist on
//! "stray". `tick` (a punctuator) forwards one record per call. `hog`
//! allocates without end on values containing "hog" (a memory bomb);
//! `flood` turns a value containing "flood" into 100 000 records of 1 KiB.

use eddy_sdk::{Context, Error, OwnedRecord, Plugin, Record, Registry, Result, Store};

fn checked_upper(rec: &Record) -> Result<String> {
    let v = rec.value_str()?;
    if v.contains("bad") {
        return Err(Error::invalid(format!("value {v:?} is bad")));
    }
    Ok(v.to_uppercase())
}

fn panicky_upper(rec: &Record) -> Result<String> {
    let v = rec.value_str()?;
    assert!(!v.contains("boom"), "boom in {v:?}");
    Ok(v.to_uppercase())
}

fn spin(rec: &Record) -> Result<bool> {
    let v = rec.value_str()?;
    let mut n: u64 = 0;
    while v.contains("spin") {
        n = n.wrapping_add(1);
        std::hint::black_box(n);
    }
    Ok(true)
}

fn hog(rec: &Record) -> Result<String> {
    let v = rec.value_str()?;
    let mut kept: Vec<Vec<u8>> = Vec::new();
    while v.contains("hog") {
        kept.push(Vec::with_capacity(8 << 20));
        std::hint::black_box(&kept);
    }
    Ok(v.to_owned())
}

fn flood(rec: &Record) -> Result<Vec<OwnedRecord>> {
    let v = rec.value_str()?;
    let key = rec.key().unwrap_or_default();
    let copies = if v.contains("flood") { 100_000 } else { 1 };
    let value = if v.contains("flood") { "x".repeat(1024) } else { v.to_owned() };
    (0..copies).map(|_| OwnedRecord::new(key, value.as_str())).collect()
}

fn fragile_sum(current: Option<&[u8]>, rec: &Record) -> Result<String> {
    let v = rec.value_str()?;
    assert!(!v.contains("boom"), "boom in {v:?}");
    let n: i64 = v.trim().parse().map_err(|_| Error::invalid(format!("{v:?} is not an integer")))?;
    let sum: i64 = current.and_then(|c| std::str::from_utf8(c).ok()).and_then(|c| c.parse().ok()).unwrap_or(0);
    Ok((sum + n).to_string())
}

fn fragile_tally(rec: &Record, ctx: &mut Context) -> Result<()> {
    let v = rec.value_str()?;
    let tally = Store::open("tally")?;
    tally.put(format!("seen:{v}").as_bytes(), "1")?;
    assert!(!v.contains("boom"), "boom in {v:?}");
    if v.contains("bad") {
        return Err(Error::invalid(format!("value {v:?} is bad")));
    }
    let key = rec.key().unwrap_or_default();
    let mut count_key = b"count:".to_vec();
    count_key.extend_from_slice(key);
    let count: u64 =
        tally.get(&count_key).and_then(|c| String::from_utf8(c).ok()).and_then(|c| c.parse().ok()).unwrap_or(0) + 1;
    tally.put(&count_key, count.to_string())?;
    ctx.forward_to("counts", OwnedRecord::new(key, count.to_string())?);
    ctx.forward(OwnedRecord::new(key, v)?);
    if v.contains("stray") {
        ctx.forward_to("nowhere", OwnedRecord::new(key, v)?);
    }
    Ok(())
}

fn tick(now: i64, ctx: &mut Context) -> Result<()> {
    ctx.forward(OwnedRecord::new("tick", now.to_string())?);
    Ok(())
}

struct Faulty;

impl Plugin for Faulty {
    fn register(r: &mut Registry) {
        r.map_values("checked_upper", checked_upper).doc("uppercases; error on 'bad'");
        r.map_values("panicky_upper", panicky_upper).doc("uppercases; traps on 'boom'");
        r.predicate("spin", spin).doc("true; loops forever on 'spin'");
        r.map_values("hog", hog).doc("allocates without end on 'hog'");
        r.flat_map("flood", flood).doc("100 000 records of 1 KiB for 'flood'");
        r.map_values("lower", |rec: &Record| Ok(rec.value_str()?.to_lowercase())).doc("lowercases");
        r.aggregate("fragile_sum", fragile_sum).doc("sums integers; error on 'bad', traps on 'boom'");
        r.processor("fragile_tally", fragile_tally)
            .doc("counts per key in store `tally`; fails after writing on 'bad'");
        r.punctuator("tick", tick).doc("forwards a record with the punctuation time");
    }
}

eddy_sdk::export_plugin!(Faulty);
