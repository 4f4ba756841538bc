//! Write Eddy plugins in Rust.
//!
//! A plugin is a set of plain Rust functions over records, registered by name
//! in a [`Registry`], and optionally a [`Topology`] built in code. The SDK
//! hides the WIT bindings and the packed batch encoding: build the crate for
//! `wasm32-wasip2` (`eddy plugin build`) and the result is a component the
//! `eddy` host runs.
//!
//! ```no_run
//! use eddy_sdk::{Plugin, Record, Registry, Result};
//!
//! struct Shout;
//!
//! impl Plugin for Shout {
//!     fn register(r: &mut Registry) {
//!         r.predicate("non_empty", |rec: &Record| Ok(!rec.value().unwrap_or_default().is_empty()))
//!             .doc("drops empty values");
//!         r.map_values("upper", upper);
//!     }
//! }
//!
//! fn upper(rec: &Record) -> Result<String> {
//!     Ok(rec.value_str()?.to_uppercase())
//! }
//!
//! eddy_sdk::export_plugin!(Shout);
//! ```

extern crate self as eddy_sdk;

mod record;
mod registry;
mod state;
mod topology;

pub use record::{EncodedRecord, IntoValue, Json, OwnedRecord, Record};
pub use registry::{Context, FunctionBuilder, Registry, forwarded};
pub use state::{Range, Store};
pub use topology::{Branch, JoinWindow, Topology, Window};

use std::fmt;

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

/// The WIT bindings generated for the `eddy:plugin` world; plugin authors do
/// not need them directly.
#[doc(hidden)]
#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "plugin",
        pub_export_macro: true,
        export_macro_name: "__export_eddy_plugin",
        default_bindings_module: "eddy_sdk::bindings",
        runtime_path: "eddy_sdk::__wit_bindgen::rt",
    });
}

/// Why a function could not process a record. The host applies the
/// application's error policy (`fail`, `skip` or `dead-letter`) to that record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The record is malformed for this function: bad JSON, a missing field,
    /// a value out of range.
    InvalidRecord(String),
    /// The function failed for another reason.
    Failed(String),
}

impl Error {
    /// An [`Error::InvalidRecord`] with this message.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidRecord(message.into())
    }

    /// An [`Error::Failed`] with this message.
    pub fn failed(message: impl Into<String>) -> Self {
        Error::Failed(message.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidRecord(m) => write!(f, "invalid record: {m}"),
            Error::Failed(m) => write!(f, "failed: {m}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::InvalidRecord(format!("JSON: {e}"))
    }
}

impl From<std::str::Utf8Error> for Error {
    fn from(e: std::str::Utf8Error) -> Self {
        Error::InvalidRecord(format!("not UTF-8: {e}"))
    }
}

/// The result type of plugin functions.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A plugin: the functions it registers and, optionally, its topology.
pub trait Plugin {
    /// Registers the plugin's functions. Called once per instance.
    fn register(registry: &mut Registry);

    /// A topology built in code, used when the application file has no
    /// `topology:` section. None by default.
    fn topology() -> Option<Topology> {
        None
    }
}

/// Severity of a line written with [`log`].
pub use bindings::eddy::plugin::context::Level;

/// Writes a line to the host's log, tagged with the plugin's name. Outside
/// WebAssembly (in a plugin's native unit tests) it writes to stderr.
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    bindings::eddy::plugin::context::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message}");
}

/// Exports a [`Plugin`] as the component's `eddy:plugin/operators` interface.
/// Use it once, in the plugin crate's `lib.rs`.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        #[doc(hidden)]
        pub struct __EddyExports;

        impl $crate::bindings::exports::eddy::plugin::operators::Guest for __EddyExports {
            fn describe() -> $crate::bindings::eddy::plugin::types::Manifest {
                $crate::__describe::<$plugin>(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
            }

            fn invoke(
                function: u32,
                batch: ::std::vec::Vec<u8>,
            ) -> ::std::result::Result<::std::vec::Vec<u8>, $crate::bindings::eddy::plugin::types::Error> {
                $crate::__invoke::<$plugin>(function, &batch)
            }

            fn invoke_chain(
                steps: ::std::vec::Vec<$crate::bindings::eddy::plugin::types::ChainStep>,
                batch: ::std::vec::Vec<u8>,
            ) -> ::std::result::Result<::std::vec::Vec<u8>, $crate::bindings::eddy::plugin::types::Error> {
                $crate::__invoke_chain::<$plugin>(&steps, &batch)
            }
        }

        // Exported only in the component: a native build (unit tests, a
        // benchmark linking the plugin's logic) has no WIT symbols to export.
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::__export_eddy_plugin!(__EddyExports with_types_in $crate::bindings);
    };
}

#[doc(hidden)]
pub fn __describe<P: Plugin>(name: &str, version: &str) -> bindings::eddy::plugin::types::Manifest {
    registry::manifest::<P>(name, version)
}

#[doc(hidden)]
pub fn __invoke_chain<P: Plugin>(
    steps: &[bindings::eddy::plugin::types::ChainStep],
    batch: &[u8],
) -> std::result::Result<Vec<u8>, bindings::eddy::plugin::types::Error> {
    registry::invoke_chain::<P>(steps, batch)
}

#[doc(hidden)]
pub fn __invoke<P: Plugin>(
    function: u32,
    batch: &[u8],
) -> std::result::Result<Vec<u8>, bindings::eddy::plugin::types::Error> {
    registry::invoke::<P>(function, batch)
}
