//! The registry of a plugin's functions and the batch loop that runs them.

use std::sync::OnceLock;

use eddy_codec::{
    DecodeError, ERR_FAILED, ERR_INVALID_RECORD, RESULT_DROPPED, RESULT_ERR, RESULT_OK, RESULT_UNCHANGED, Reader,
    RecordView, Writer,
};

use crate::bindings::eddy::plugin::types::{ChainStep, Error as WitError, FunctionInfo, Manifest};
use crate::record::{IntoValue, OwnedRecord, Record};
use crate::{Error, Plugin, Result};

/// The header that carries a key's current aggregate (see `wit/plugin.wit`).
const AGGREGATE_HEADER: &str = "eddy.aggregate";
const JOIN_RIGHT_HEADER: &str = "eddy.join.right";

/// Writes the ok payload of one record's result.
type Body = Box<dyn Fn(&Record<'_>, &mut Writer) -> Result<()> + Send + Sync>;

struct Function {
    name: String,
    kind: &'static str,
    description: String,
    body: Body,
}

/// The functions a plugin offers, by name. Filled by [`Plugin::register`].
#[derive(Default)]
pub struct Registry {
    functions: Vec<Function>,
}

/// Returned by each registration, to add a description.
pub struct FunctionBuilder<'a> {
    function: &'a mut Function,
}

impl FunctionBuilder<'_> {
    /// A one-line description, shown by `eddy plugin inspect`.
    pub fn doc(self, description: &str) -> Self {
        self.function.description = description.to_owned();
        self
    }
}

fn write_value(w: &mut Writer, v: impl IntoValue) -> Result<()> {
    w.put_opt_bytes(v.into_value()?.as_deref());
    Ok(())
}

impl Registry {
    fn add(&mut self, name: &str, kind: &'static str, body: Body) -> FunctionBuilder<'_> {
        assert!(self.functions.iter().all(|f| f.name != name), "plugin registers function '{name}' twice");
        self.functions.push(Function { name: name.to_owned(), kind, description: String::new(), body });
        let function = self.functions.last_mut().expect("just pushed");
        FunctionBuilder { function }
    }

    /// A predicate, for `filter`, `filter-not` and `split` branches.
    pub fn predicate<F>(&mut self, name: &str, f: F) -> FunctionBuilder<'_>
    where
        F: Fn(&Record<'_>) -> Result<bool> + Send + Sync + 'static,
    {
        self.add(
            name,
            "predicate",
            Box::new(move |r, w| {
                w.put_u8(f(r)? as u8);
                Ok(())
            }),
        )
    }

    /// A function from a record to a new record (key, value, timestamp, headers).
    pub fn map<F>(&mut self, name: &str, f: F) -> FunctionBuilder<'_>
    where
        F: Fn(&Record<'_>) -> Result<OwnedRecord> + Send + Sync + 'static,
    {
        self.add(
            name,
            "map",
            Box::new(move |r, w| {
                f(r)?.write(w, r.timestamp());
                Ok(())
            }),
        )
    }

    /// A function from a record to a new value; key and timestamp are kept.
    pub fn map_values<V, F>(&mut self, name: &str, f: F) -> FunctionBuilder<'_>
    where
        V: IntoValue,
        F: Fn(&Record<'_>) -> Result<V> + Send + Sync + 'static,
    {
        self.add(name, "map-values", Box::new(move |r, w| write_value(w, f(r)?)))
    }

    /// A function from a record to a new key; value and timestamp are kept.
    pub fn select_key<K, F>(&mut self, name: &str, f: F) -> FunctionBuilder<'_>
    where
        K: IntoValue,
        F: Fn(&Record<'_>) -> Result<K> + Send + Sync + 'static,
    {
        self.add(name, "select-key", Box::new(move |r, w| write_value(w, f(r)?)))
    }

    /// A function from a record to zero or more records.
    pub fn flat_map<I, F>(&mut self, name: &str, f: F) -> FunctionBuilder<'_>
    where
        I: IntoIterator<Item = OwnedRecord>,
        F: Fn(&Record<'_>) -> Result<I> + Send + Sync + 'static,
    {
        self.add(
            name,
            "flat-map",
            Box::new(move |r, w| {
                let at = w.len();
                w.put_u32(0);
                let mut n = 0;
                for out in f(r)? {
                    out.write(w, r.timestamp());
                    n += 1;
                }
                w.patch_u32(at, n);
                Ok(())
            }),
        )
    }

    /// A function from a record to zero or more values, each keeping the key.
    pub fn flat_map_values<V, I, F>(&mut self, name: &str, f: F) -> FunctionBuilder<'_>
    where
        V: IntoValue,
        I: IntoIterator<Item = V>,
        F: Fn(&Record<'_>) -> Result<I> + Send + Sync + 'static,
    {
        self.add(
            name,
            "flat-map-values",
            Box::new(move |r, w| {
                let at = w.len();
                w.put_u32(0);
                let mut n = 0;
                for v in f(r)? {
                    write_value(w, v)?;
                    n += 1;
                }
                w.patch_u32(at, n);
                Ok(())
            }),
        )
    }

    /// An aggregator: from a key's current aggregate (`None` before its first
    /// record) and a record to the new aggregate. For `aggregate` nodes.
    pub fn aggregate<V, F>(&mut self, name: &str, f: F) -> FunctionBuilder<'_>
    where
        V: IntoValue,
        F: Fn(Option<&[u8]>, &Record<'_>) -> Result<V> + Send + Sync + 'static,
    {
        self.add(name, "aggregator", Box::new(move |r, w| write_value(w, f(r.header(AGGREGATE_HEADER), r)?)))
    }

    /// A session merger: when a record bridges sessions, merges each
    /// session's aggregate (the second argument) into the aggregate merged so
    /// far (the first; `None` for the first session: start from the
    /// aggregate's initial value). For `aggregate` nodes with session
    /// windows (`merger:`).
    pub fn merger<V, F>(&mut self, name: &str, f: F) -> FunctionBuilder<'_>
    where
        V: IntoValue,
        F: Fn(Option<&[u8]>, &[u8]) -> Result<V> + Send + Sync + 'static,
    {
        self.add(
            name,
            "merger",
            Box::new(move |r, w| {
                let session = r.value().ok_or_else(|| Error::failed("a merger got no session aggregate"))?;
                write_value(w, f(r.header(AGGREGATE_HEADER), session)?)
            }),
        )
    }

    /// A reducer: from a key's current aggregate and a record to the new
    /// aggregate; a key's first value is its aggregate. For `reduce` nodes.
    pub fn reduce<V, F>(&mut self, name: &str, f: F) -> FunctionBuilder<'_>
    where
        V: IntoValue,
        F: Fn(&[u8], &Record<'_>) -> Result<V> + Send + Sync + 'static,
    {
        self.add(
            name,
            "reducer",
            Box::new(move |r, w| {
                let agg = r.header(AGGREGATE_HEADER).ok_or_else(|| Error::failed("a reducer got no aggregate"))?;
                write_value(w, f(agg, r)?)
            }),
        )
    }

    /// A processor: gets each record with a [`Context`] to forward records to
    /// the node's children, and may use the stores its node declares
    /// ([`crate::Store`]). For `process` nodes.
    pub fn processor<F>(&mut self, name: &str, f: F) -> FunctionBuilder<'_>
    where
        F: Fn(&Record<'_>, &mut Context<'_>) -> Result<()> + Send + Sync + 'static,
    {
        self.add(name, "processor", Box::new(move |r, w| Context::run(w, r.timestamp(), |ctx| f(r, ctx))))
    }

    /// A punctuator: called on a schedule (`punctuate:` of a `process`
    /// node) with the punctuation time, for each task; forwards records and
    /// uses stores like a processor.
    pub fn punctuator<F>(&mut self, name: &str, f: F) -> FunctionBuilder<'_>
    where
        F: Fn(i64, &mut Context<'_>) -> Result<()> + Send + Sync + 'static,
    {
        self.add(name, "punctuator", Box::new(move |r, w| Context::run(w, r.timestamp(), |ctx| f(r.timestamp(), ctx))))
    }

    /// A value joiner: the joined value from the left value and the right
    /// value (either is `None` where an outer or left join has no record on
    /// that side). For `join` nodes.
    pub fn joiner<V, F>(&mut self, name: &str, f: F) -> FunctionBuilder<'_>
    where
        V: IntoValue,
        F: Fn(Option<&[u8]>, Option<&[u8]>) -> Result<V> + Send + Sync + 'static,
    {
        self.add(name, "joiner", Box::new(move |r, w| write_value(w, f(r.value(), r.header(JOIN_RIGHT_HEADER))?)))
    }

    /// A timestamp extractor: a record's event time in ms since the epoch,
    /// read from its contents (such as a JSON field). For a source's
    /// `timestamp-extractor`.
    pub fn timestamp_extractor<F>(&mut self, name: &str, f: F) -> FunctionBuilder<'_>
    where
        F: Fn(&Record<'_>) -> Result<i64> + Send + Sync + 'static,
    {
        self.add(
            name,
            "timestamp-extractor",
            Box::new(move |r, w| {
                w.put_i64(f(r)?);
                Ok(())
            }),
        )
    }

    /// A function called for its side effect (such as [`crate::log`]); the
    /// record passes on unchanged.
    pub fn peek<F>(&mut self, name: &str, f: F) -> FunctionBuilder<'_>
    where
        F: Fn(&Record<'_>) + Send + Sync + 'static,
    {
        self.add(
            name,
            "peek",
            Box::new(move |r, _| {
                f(r);
                Ok(())
            }),
        )
    }
}

/// What a processor or punctuator uses to send records on.
pub struct Context<'w> {
    out: &'w mut Writer,
    count: u32,
    timestamp: i64,
}

/// Runs processor or punctuator logic outside a component (in a plugin's
/// unit tests) and returns what it forwarded: each record with the child it
/// was sent to (`None`: every child). Stores are then in-memory maps of the
/// current thread ([`crate::Store`]).
///
/// ```
/// use eddy_sdk::{OwnedRecord, forwarded};
/// let out = forwarded(7, |ctx| {
///     ctx.forward_to("alerts", OwnedRecord::new("k", "v")?);
///     Ok(())
/// })
/// .unwrap();
/// assert_eq!(out[0].0.as_deref(), Some("alerts"));
/// assert_eq!(out[0].1.timestamp, Some(7));
/// ```
pub fn forwarded(
    timestamp: i64,
    f: impl FnOnce(&mut Context<'_>) -> Result<()>,
) -> Result<Vec<(Option<String>, OwnedRecord)>> {
    let mut w = Writer::new();
    Context::run(&mut w, timestamp, f)?;
    let bad = |e: DecodeError| Error::failed(format!("forwarded records do not decode: {e}"));
    let mut r = Reader::new(w.as_slice());
    let count = r.u32().map_err(bad)?;
    let mut out = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let child = r.opt_bytes().map_err(bad)?.map(|c| String::from_utf8_lossy(c).into_owned());
        let record = Record::new(r.record().map_err(bad)?).to_owned_record();
        out.push((child, record));
    }
    Ok(out)
}

impl Context<'_> {
    fn run(w: &mut Writer, timestamp: i64, f: impl FnOnce(&mut Context<'_>) -> Result<()>) -> Result<()> {
        let at = w.len();
        w.put_u32(0);
        let mut ctx = Context { out: w, count: 0, timestamp };
        f(&mut ctx)?;
        let count = ctx.count;
        w.patch_u32(at, count);
        Ok(())
    }

    /// The time of the call: the input record's timestamp, or the
    /// punctuation time. Forwarded records without a timestamp get it.
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// Sends `record` to every child of the node.
    pub fn forward(&mut self, record: OwnedRecord) {
        self.out.put_opt_bytes(None);
        record.write(self.out, self.timestamp);
        self.count += 1;
    }

    /// Sends `record` to the child node named `child` only.
    pub fn forward_to(&mut self, child: &str, record: OwnedRecord) {
        self.out.put_opt_bytes(Some(child.as_bytes()));
        record.write(self.out, self.timestamp);
        self.count += 1;
    }
}

static REGISTRY: OnceLock<Registry> = OnceLock::new();

fn registry<P: Plugin>() -> &'static Registry {
    REGISTRY.get_or_init(|| {
        let mut r = Registry::default();
        P::register(&mut r);
        r
    })
}

pub(crate) fn manifest<P: Plugin>(name: &str, version: &str) -> Manifest {
    let functions = registry::<P>()
        .functions
        .iter()
        .map(|f| FunctionInfo { name: f.name.clone(), kind: f.kind.to_owned(), description: f.description.clone() })
        .collect();
    Manifest {
        name: name.to_owned(),
        version: version.to_owned(),
        sdk: concat!("eddy-sdk ", env!("CARGO_PKG_VERSION")).to_owned(),
        functions,
        topology: P::topology().map(|t| t.to_json()),
    }
}

pub(crate) fn invoke<P: Plugin>(function: u32, batch: &[u8]) -> std::result::Result<Vec<u8>, WitError> {
    let f = registry::<P>().functions.get(function as usize).ok_or(WitError::UnknownFunction(function))?;
    let out = run_batch(&f.body, batch).map_err(|e| WitError::MalformedBatch(e.to_string()));
    crate::state::end_call();
    out
}

pub(crate) fn invoke_chain<P: Plugin>(steps: &[ChainStep], batch: &[u8]) -> std::result::Result<Vec<u8>, WitError> {
    let functions = &registry::<P>().functions;
    let mut resolved = Vec::with_capacity(steps.len());
    for s in steps {
        let f = functions.get(s.function as usize).ok_or(WitError::UnknownFunction(s.function))?;
        resolved.push((f, s.negate));
    }
    run_chain(&resolved, batch).map_err(|e| WitError::MalformedBatch(e.to_string()))
}

fn error_code(e: &Error) -> (u8, &str) {
    match e {
        Error::InvalidRecord(m) => (ERR_INVALID_RECORD, m),
        Error::Failed(m) => (ERR_FAILED, m),
    }
}

/// Runs each record through every step; a changed record is re-encoded into
/// `current` so the next step sees it.
fn run_chain(steps: &[(&Function, bool)], batch: &[u8]) -> std::result::Result<Vec<u8>, DecodeError> {
    let mut input = Reader::new(batch);
    let count = input.u32()?;
    let mut out = Writer::with_capacity(batch.len() / 4 + 8);
    let (mut payload, mut current, mut next) = (Writer::new(), Writer::new(), Writer::new());
    'records: for _ in 0..count {
        let original = input.record()?;
        let mut changed = false;
        for (i, (f, negate)) in steps.iter().enumerate() {
            let view = if changed { Reader::new(current.as_slice()).record()? } else { original };
            payload.truncate(0);
            if let Err(e) = (f.body)(&Record::new(view), &mut payload) {
                let (code, message) = error_code(&e);
                out.put_u8(RESULT_ERR);
                out.put_u32(i as u32);
                out.put_u8(code);
                out.put_bytes(message.as_bytes());
                continue 'records;
            }
            let mut r = Reader::new(payload.as_slice());
            next.truncate(0);
            match f.kind {
                "predicate" => {
                    if (r.u8()? != 0) == *negate {
                        out.put_u8(RESULT_DROPPED);
                        out.put_u32(i as u32);
                        continue 'records;
                    }
                    continue;
                }
                "peek" => continue,
                "map" => next.put_view(&r.record()?),
                "map-values" => next.put_view_with(&view, view.key, r.opt_bytes()?),
                "select-key" => next.put_view_with(&view, r.opt_bytes()?, view.value),
                _ => {
                    out.put_u8(RESULT_ERR);
                    out.put_u32(i as u32);
                    out.put_u8(ERR_FAILED);
                    out.put_bytes(format!("a {} function cannot run in a chain", f.kind).as_bytes());
                    continue 'records;
                }
            }
            std::mem::swap(&mut current, &mut next);
            changed = true;
        }
        if changed {
            out.put_u8(RESULT_OK);
            out.put_view(&Reader::new(current.as_slice()).record()?);
        } else {
            out.put_u8(RESULT_UNCHANGED);
        }
    }
    Ok(out.into_inner())
}

fn run_batch(body: &Body, batch: &[u8]) -> std::result::Result<Vec<u8>, DecodeError> {
    let mut input = Reader::new(batch);
    let count = input.u32()?;
    let mut out = Writer::with_capacity(batch.len() + 8);
    for _ in 0..count {
        let view: RecordView<'_> = input.record()?;
        let mark = out.len();
        out.put_u8(RESULT_OK);
        if let Err(e) = body(&Record::new(view), &mut out) {
            out.truncate(mark);
            let (code, message) = error_code(&e);
            out.put_error(code, message);
        }
    }
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_filter_change_and_report_the_failing_step() {
        let mut reg = Registry::default();
        reg.predicate("short", |r: &Record<'_>| Ok(r.value().unwrap_or_default().len() < 4));
        reg.map_values("upper", |r: &Record<'_>| {
            let v = r.value_str()?;
            if v == "bad" { Err(Error::invalid("bad")) } else { Ok(v.to_uppercase()) }
        });
        reg.select_key("by_value", |r: &Record<'_>| Ok(r.value().map(<[u8]>::to_vec)));
        let steps: Vec<(&Function, bool)> =
            vec![(&reg.functions[0], false), (&reg.functions[1], false), (&reg.functions[2], false)];
        let mut w = Writer::new();
        w.put_u32(3);
        w.put_record(1, Some(b"k"), Some(b"abc"), &[("h", Some(&b"1"[..]))]);
        w.put_record::<&str>(2, None, Some(b"too long"), &[]);
        w.put_record::<&str>(3, None, Some(b"bad"), &[]);
        let out = run_chain(&steps, w.as_slice()).unwrap();
        let mut r = Reader::new(&out);
        assert_eq!(r.u8().unwrap(), RESULT_OK);
        let rec = r.record().unwrap();
        assert_eq!((rec.timestamp, rec.key, rec.value), (1, Some(&b"ABC"[..]), Some(&b"ABC"[..])));
        assert_eq!(rec.header("h").unwrap().value, Some(&b"1"[..]));
        assert_eq!((r.u8().unwrap(), r.u32().unwrap()), (RESULT_DROPPED, 0));
        assert_eq!((r.u8().unwrap(), r.u32().unwrap(), r.u8().unwrap()), (RESULT_ERR, 1, ERR_INVALID_RECORD));
        assert_eq!(r.str().unwrap(), "bad");
        assert!(r.is_empty());
        // Only filters: nothing changes, one byte per record.
        let out = run_chain(&[(&reg.functions[0], true)], w.as_slice()).unwrap();
        assert_eq!(out, [RESULT_DROPPED, 0, 0, 0, 0, RESULT_UNCHANGED, RESULT_DROPPED, 0, 0, 0, 0]);
    }

    #[test]
    fn errors_replace_partial_output() {
        let mut reg = Registry::default();
        reg.flat_map_values("split", |r: &Record<'_>| {
            let s = r.value_str()?;
            if s.contains('!') {
                return Err(Error::failed("bang"));
            }
            Ok(s.split(' ').map(str::to_owned).collect::<Vec<_>>())
        });
        let mut w = Writer::new();
        w.put_u32(2);
        w.put_record::<&str>(1, None, Some(b"a b"), &[]);
        w.put_record::<&str>(2, None, Some(b"c!"), &[]);
        let out = run_batch(&reg.functions[0].body, w.as_slice()).unwrap();
        let mut r = Reader::new(&out);
        assert_eq!(r.u8().unwrap(), RESULT_OK);
        assert_eq!(r.u32().unwrap(), 2);
        assert_eq!(r.opt_bytes().unwrap(), Some(&b"a"[..]));
        assert_eq!(r.opt_bytes().unwrap(), Some(&b"b"[..]));
        assert_eq!(r.u8().unwrap(), eddy_codec::RESULT_ERR);
        assert_eq!(r.u8().unwrap(), ERR_FAILED);
        assert_eq!(r.str().unwrap(), "bang");
        assert!(r.is_empty());
    }
}
