//! Native plugins: Rust closures plugged into the same host as WASM plugins.
//! The benchmark runs the same logic both ways to measure what WASM costs.

use std::sync::Arc;

use super::{
    CallError, ChainOutcome, ChainStep, FunctionInfo, FunctionKind, Instance, Manifest, Outcome, Plugin, PluginError,
};
use crate::record::Record;
use crate::store::StoreAccess;

type NativeFn = Arc<dyn Fn(&Record, &mut StoreAccess) -> Outcome + Send + Sync>;

/// A plugin made of Rust closures, one per function.
///
/// ```
/// use eddy_host::plugin::{FunctionKind, NativePlugin, Outcome, Plugin};
/// let plugin = NativePlugin::new("demo")
///     .function("non_empty", FunctionKind::Predicate, |r| Outcome::Keep(r.value.as_ref().is_some_and(|v| !v.is_empty())));
/// assert_eq!(plugin.manifest().functions[0].kind, "predicate");
/// ```
#[derive(Clone)]
pub struct NativePlugin {
    manifest: Manifest,
    functions: Vec<NativeFn>,
}

impl NativePlugin {
    /// A plugin named `name` with no functions yet.
    pub fn new(name: &str) -> Self {
        NativePlugin {
            manifest: Manifest {
                name: name.to_owned(),
                version: "native".into(),
                sdk: "native".into(),
                ..Default::default()
            },
            functions: Vec::new(),
        }
    }

    /// Adds a function; `f` must return the outcome variant of its kind.
    pub fn function(
        self,
        name: &str,
        kind: FunctionKind,
        f: impl Fn(&Record) -> Outcome + Send + Sync + 'static,
    ) -> Self {
        self.stateful(name, kind, move |r, _| f(r))
    }

    /// Adds a function that uses its node's stores (a processor or
    /// punctuator); `f` must return [`Outcome::Forward`].
    pub fn stateful(
        mut self,
        name: &str,
        kind: FunctionKind,
        f: impl Fn(&Record, &mut StoreAccess) -> Outcome + Send + Sync + 'static,
    ) -> Self {
        self.manifest.functions.push(FunctionInfo {
            name: name.to_owned(),
            kind: kind.as_str().to_owned(),
            description: String::new(),
        });
        self.functions.push(Arc::new(f));
        self
    }

    fn get(&self, index: u32) -> Result<&NativeFn, CallError> {
        self.functions.get(index as usize).ok_or_else(|| CallError::Protocol(format!("no function {index}")))
    }
}

impl Plugin for NativePlugin {
    fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    fn instantiate(&self) -> Result<Box<dyn Instance>, PluginError> {
        Ok(Box::new(self.clone()))
    }
}

impl Instance for NativePlugin {
    fn call(
        &mut self,
        index: u32,
        _kind: FunctionKind,
        records: &[Record],
        out: &mut Vec<Outcome>,
    ) -> Result<(), CallError> {
        let f = self.get(index)?;
        let mut none = StoreAccess::default();
        out.extend(records.iter().map(|r| f(r, &mut none)));
        Ok(())
    }

    fn process(
        &mut self,
        index: u32,
        _kind: FunctionKind,
        records: &[Record],
        state: &mut StoreAccess,
        out: &mut Vec<Outcome>,
    ) -> Result<(), CallError> {
        let f = self.get(index)?;
        out.extend(records.iter().map(|r| f(r, state)));
        Ok(())
    }

    fn call_chain(
        &mut self,
        steps: &[ChainStep],
        records: &[Record],
        out: &mut Vec<ChainOutcome>,
    ) -> Result<(), CallError> {
        let mut functions = Vec::with_capacity(steps.len());
        for s in steps {
            functions.push(self.get(s.function)?);
        }
        let mut none = StoreAccess::default();
        'records: for r in records {
            let mut current: Option<Record> = None;
            for (i, (step, f)) in steps.iter().zip(&functions).enumerate() {
                let outcome = f(current.as_ref().unwrap_or(r), &mut none);
                if let Some(done) = step.apply(i as u32, outcome, &mut current, r) {
                    out.push(done);
                    continue 'records;
                }
            }
            out.push(ChainOutcome::Passed(current));
        }
        Ok(())
    }
}
