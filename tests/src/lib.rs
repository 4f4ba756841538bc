//! Paths of the example plugins, compiled to components by this crate's build
//! script, for the end-to-end tests in `tests/`.

/// The `vitals` plugin component.
pub const VITALS: &str = env!("EDDY_PLUGIN_VITALS");
/// The `words` plugin component.
pub const WORDS: &str = env!("EDDY_PLUGIN_WORDS");
/// The `faulty` test plugin component (errors, traps, loops on purpose).
pub const FAULTY: &str = env!("EDDY_PLUGIN_FAULTY");
/// The `bench` plugin component.
pub const BENCH: &str = env!("EDDY_PLUGIN_BENCH");
/// The `customers` plugin component (per-customer running totals).
pub const CUSTOMERS: &str = env!("EDDY_PLUGIN_CUSTOMERS");
/// The `kstreams` plugin component: Kafka Streams' test helpers, for the
/// conformance suite.
pub const KSTREAMS: &str = env!("EDDY_PLUGIN_KSTREAMS");
/// The `activity` plugin component: user sessions of clicks (session
/// windows with a merger).
pub const ACTIVITY: &str = env!("EDDY_PLUGIN_ACTIVITY");
