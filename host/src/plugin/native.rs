//! Native plugins: Rust closures plugged into the same host as WASM plugins.
//! The benchmark runs the same logic both ways to measure what WASM costs.

use std::sync::Arc;

use super::{
    CallError, ChainOutcome, ChainStep, FunctionInfo, FunctionKind, Instance, Manifest, Outcome, Plugin, PluginError,
};
use crate::record::Record;

type NativeFn = Arc<dyn Fn(&Record) -> Outcome + Send + Sync>;

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
        mut self,
        name: &str,
        kind: FunctionKind,
        f: impl Fn(&Record) -> Outcome + Send + Sync + 'static,
    ) -> Self {
        self.manifest.functions.push(FunctionInfo {
            name: name.to_owned(),
            kind: kind.as_str().to_owned(),
            description: String::new(),
        });
        self.functions.push(Arc::new(f));
        self
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
        let f =
            self.functions.get(index as usize).ok_or_else(|| CallError::Protocol(format!("no function {index}")))?;
        out.extend(records.iter().map(|r| f(r)));
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
            let no_function = || CallError::Protocol(format!("no function {}", s.function));
            functions.push(self.functions.get(s.function as usize).ok_or_else(no_function)?);
        }
        'records: for r in records {
            let mut current: Option<Record> = None;
            for (i, (step, f)) in steps.iter().zip(&functions).enumerate() {
                let outcome = f(current.as_ref().unwrap_or(r));
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
