//! Plugins: the code that supplies per-record logic to a topology.
//!
//! A [`Plugin`] is loaded code that can make [`Instance`]s; an instance runs
//! one of the plugin's functions over a batch of records. [`wasm::WasmPlugin`]
//! runs a WebAssembly component in wasmtime; [`native::NativePlugin`] runs Rust
//! closures in the same host, for benchmarks and host tests.

pub mod native;
pub mod wasm;

use std::fmt;

use bytes::Bytes;

use crate::record::Record;
use crate::store::StoreAccess;

pub use native::NativePlugin;
pub use wasm::WasmPlugin;

/// What a plugin function does, which fixes its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FunctionKind {
    /// Record to bool: `filter`, `filter-not`, `split` branches.
    Predicate,
    /// Record to record.
    Map,
    /// Record to value.
    MapValues,
    /// Record to records.
    FlatMap,
    /// Record to values.
    FlatMapValues,
    /// Record to key.
    SelectKey,
    /// Record to nothing (a side effect such as logging).
    Peek,
    /// Record and current aggregate (or none) to the new aggregate.
    Aggregator,
    /// Record and current aggregate to the new aggregate (the first value of
    /// a key is its aggregate).
    Reducer,
    /// Record to records forwarded to named children, using host stores.
    Processor,
    /// Punctuation time to records forwarded to named children, using host
    /// stores.
    Punctuator,
    /// Record to its event time (ms since the epoch), read from its contents:
    /// a source's `timestamp-extractor`.
    TimestampExtractor,
    /// Left record and right value (in [`JOIN_RIGHT_HEADER`]) to the joined
    /// value: a join's `joiner`.
    Joiner,
    /// A session's aggregate (the record's value) and the aggregate merged
    /// so far (in [`AGGREGATE_HEADER`], absent before the first session) to
    /// the merged aggregate: a session-window aggregate's `merger`.
    Merger,
}

impl FunctionKind {
    /// Every kind this host knows.
    pub const ALL: [FunctionKind; 14] = [
        FunctionKind::Predicate,
        FunctionKind::Map,
        FunctionKind::MapValues,
        FunctionKind::FlatMap,
        FunctionKind::FlatMapValues,
        FunctionKind::SelectKey,
        FunctionKind::Peek,
        FunctionKind::Aggregator,
        FunctionKind::Reducer,
        FunctionKind::Processor,
        FunctionKind::Punctuator,
        FunctionKind::TimestampExtractor,
        FunctionKind::Joiner,
        FunctionKind::Merger,
    ];

    /// The kind's name in manifests and topology documents.
    pub fn as_str(self) -> &'static str {
        match self {
            FunctionKind::Predicate => "predicate",
            FunctionKind::Map => "map",
            FunctionKind::MapValues => "map-values",
            FunctionKind::FlatMap => "flat-map",
            FunctionKind::FlatMapValues => "flat-map-values",
            FunctionKind::SelectKey => "select-key",
            FunctionKind::Peek => "peek",
            FunctionKind::Aggregator => "aggregator",
            FunctionKind::Reducer => "reducer",
            FunctionKind::Processor => "processor",
            FunctionKind::Punctuator => "punctuator",
            FunctionKind::TimestampExtractor => "timestamp-extractor",
            FunctionKind::Joiner => "joiner",
            FunctionKind::Merger => "merger",
        }
    }

    /// The kind named `name`, if this host knows it.
    pub fn parse(name: &str) -> Option<Self> {
        FunctionKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for FunctionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One function a plugin exports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionInfo {
    /// The name topologies use.
    pub name: String,
    /// Its kind, as the plugin declared it (a newer plugin may declare kinds
    /// this host does not know; using one is a topology error).
    pub kind: String,
    /// A one-line description.
    pub description: String,
}

/// What a plugin offers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    /// The plugin's name.
    pub name: String,
    /// The plugin's version.
    pub version: String,
    /// What built it.
    pub sdk: String,
    /// Its functions; a function's index is its position.
    pub functions: Vec<FunctionInfo>,
    /// A topology built in code (JSON), if any.
    pub topology: Option<String>,
}

impl Manifest {
    /// Index of the function named `name`.
    pub fn index_of(&self, name: &str) -> Option<u32> {
        self.functions.iter().position(|f| f.name == name).map(|i| i as u32)
    }
}

/// Why a function rejected one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordError {
    /// The record is malformed for the function.
    Invalid(String),
    /// The function failed (or trapped) on it.
    Failed(String),
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Invalid(m) => write!(f, "invalid record: {m}"),
            RecordError::Failed(m) => write!(f, "failed: {m}"),
        }
    }
}

/// The result of a function for one input record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A predicate's answer.
    Keep(bool),
    /// A map's new record.
    Record(Record),
    /// A map-values' new value.
    Value(Option<Bytes>),
    /// A select-key's new key.
    Key(Option<Bytes>),
    /// A flat-map's records.
    Records(Vec<Record>),
    /// A flat-map-values' values.
    Values(Vec<Option<Bytes>>),
    /// A processor's or punctuator's records, each for the child node
    /// named, or for every child when `None`.
    Forward(Vec<(Option<String>, Record)>),
    /// A peek ran.
    Done,
    /// A timestamp extractor's event time.
    Timestamp(i64),
    /// The function rejected the record.
    Failed(RecordError),
}

/// The header that carries a key's current aggregate to an aggregator or
/// reducer.
pub const AGGREGATE_HEADER: &str = "eddy.aggregate";

/// The header that carries the right side's value to a joiner.
pub const JOIN_RIGHT_HEADER: &str = "eddy.join.right";

/// The header that tells a punctuator which clock fired: `stream` or `wall`.
pub const PUNCTUATION_HEADER: &str = "eddy.punctuation";

/// One step of a chain of functions run in one call (operator fusion).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainStep {
    /// The function's index in the manifest.
    pub function: u32,
    /// Its kind: a predicate, map, map-values, select-key or peek.
    pub kind: FunctionKind,
    /// For a predicate: keep the records for which it is false.
    pub negate: bool,
}

impl FunctionKind {
    /// True for kinds that may run in a chain: one record in, at most one out.
    pub fn chains(self) -> bool {
        matches!(
            self,
            FunctionKind::Predicate
                | FunctionKind::Map
                | FunctionKind::MapValues
                | FunctionKind::SelectKey
                | FunctionKind::Peek
        )
    }
}

/// The result of a chain for one input record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainOutcome {
    /// Passed every step; `None` if no step changed the record.
    Passed(Option<Record>),
    /// A filter dropped it.
    Dropped,
    /// Step `step` rejected it.
    Failed {
        /// Index of the failing step.
        step: u32,
        /// Why.
        error: RecordError,
    },
}

impl ChainStep {
    /// Applies this step's `outcome` (step number `index`) to the record a
    /// chain carries: `current` if a step changed it, else `original`. Returns
    /// the record's final outcome if the chain stops here.
    pub fn apply(
        &self,
        index: u32,
        outcome: Outcome,
        current: &mut Option<Record>,
        original: &Record,
    ) -> Option<ChainOutcome> {
        let base = |current: &mut Option<Record>| current.take().unwrap_or_else(|| original.clone());
        match outcome {
            Outcome::Keep(keep) if keep != self.negate => None,
            Outcome::Keep(_) => Some(ChainOutcome::Dropped),
            Outcome::Done => None,
            Outcome::Record(new) => {
                *current = Some(new);
                None
            }
            Outcome::Value(value) => {
                *current = Some(Record { value, ..base(current) });
                None
            }
            Outcome::Key(key) => {
                *current = Some(Record { key, ..base(current) });
                None
            }
            Outcome::Failed(error) => Some(ChainOutcome::Failed { step: index, error }),
            other => Some(ChainOutcome::Failed {
                step: index,
                error: RecordError::Failed(format!("a {} step returned {other:?}", self.kind)),
            }),
        }
    }
}

/// Why a whole batch call failed. The instance that failed must not be used
/// again; the runtime makes a new one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The guest trapped (a panic, an out-of-bounds access, a timeout).
    #[error("plugin trapped: {0}")]
    Trap(String),
    /// The guest refused the batch or returned output that does not decode.
    #[error("plugin broke the batch protocol: {0}")]
    Protocol(String),
}

/// Why a plugin could not be loaded or instantiated.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The file could not be read.
    #[error("cannot read plugin {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The bytes are not a usable Eddy plugin component.
    #[error("{path} is not a usable plugin: {problem}")]
    Invalid {
        /// The file (or the name given to bytes).
        path: String,
        /// What is wrong and what to do.
        problem: String,
    },
    /// An instance could not be created or described.
    #[error("plugin {name}: {problem}")]
    Instance {
        /// The plugin.
        name: String,
        /// What failed.
        problem: String,
    },
}

/// Loaded plugin code: its manifest, and instances on demand.
pub trait Plugin: Send + Sync {
    /// The plugin's functions and optional topology.
    fn manifest(&self) -> &Manifest;

    /// A fresh instance. Instances hold no durable state: the runtime makes
    /// a new one whenever an old one fails.
    fn instantiate(&self) -> Result<Box<dyn Instance>, PluginError>;
}

/// A running copy of a plugin.
pub trait Instance: Send {
    /// Runs function `index` (of kind `kind`) over `records`, appending one
    /// [`Outcome`] per record to `out`. On error nothing is appended and the
    /// instance must be dropped.
    fn call(
        &mut self,
        index: u32,
        kind: FunctionKind,
        records: &[Record],
        out: &mut Vec<Outcome>,
    ) -> Result<(), CallError>;

    /// Runs a processor or punctuator (function `index` of kind `kind`) over
    /// `records` with access to its node's stores, appending one [`Outcome`]
    /// per record to `out`. Errors as for [`Instance::call`]; `state` stays
    /// usable either way.
    fn process(
        &mut self,
        index: u32,
        kind: FunctionKind,
        records: &[Record],
        state: &mut StoreAccess,
        out: &mut Vec<Outcome>,
    ) -> Result<(), CallError>;

    /// Runs a chain of functions over `records`, each record through every
    /// step in turn, appending one [`ChainOutcome`] per record to `out`. Errors
    /// as for [`Instance::call`].
    fn call_chain(
        &mut self,
        steps: &[ChainStep],
        records: &[Record],
        out: &mut Vec<ChainOutcome>,
    ) -> Result<(), CallError>;
}
