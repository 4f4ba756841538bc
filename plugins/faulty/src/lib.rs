//! Faulty: a test plugin that misbehaves on purpose, to prove the host's error
//! policies. `checked_upper` returns an error for values containing "bad";
//! `panicky_upper` traps (panics) on values containing "boom"; `spin` loops
//! forever on values containing "spin"; `lower` lowercases; `fragile_sum`
//! sums integers, failing on non-integers and trapping on "boom".

use eddy_sdk::{Error, Plugin, Record, Registry, Result};

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

fn fragile_sum(current: Option<&[u8]>, rec: &Record) -> Result<String> {
    let v = rec.value_str()?;
    assert!(!v.contains("boom"), "boom in {v:?}");
    let n: i64 = v.trim().parse().map_err(|_| Error::invalid(format!("{v:?} is not an integer")))?;
    let sum: i64 = current.and_then(|c| std::str::from_utf8(c).ok()).and_then(|c| c.parse().ok()).unwrap_or(0);
    Ok((sum + n).to_string())
}

struct Faulty;

impl Plugin for Faulty {
    fn register(r: &mut Registry) {
        r.map_values("checked_upper", checked_upper).doc("uppercases; error on 'bad'");
        r.map_values("panicky_upper", panicky_upper).doc("uppercases; traps on 'boom'");
        r.predicate("spin", spin).doc("true; loops forever on 'spin'");
        r.map_values("lower", |rec: &Record| Ok(rec.value_str()?.to_lowercase())).doc("lowercases");
        r.aggregate("fragile_sum", fragile_sum).doc("sums integers; error on 'bad', traps on 'boom'");
    }
}

eddy_sdk::export_plugin!(Faulty);
