//! WebAssembly plugins: components run in wasmtime.
//!
//! One process-wide [`Engine`] uses the pooling allocator (instantiation takes
//! microseconds), epoch interruption (a runaway call traps after the app's
//! timeout) and no component-model concurrency (a call costs less). Compiled
//! components are cached on disk, keyed by the SHA-256 of their bytes and the
//! engine's compatibility hash. Plugins get WASI with no ambient authority: no
//! files, no network, no environment variables, no stdin; their stderr is
//! captured and shown when they trap.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use eddy_codec::{ERR_INVALID_RECORD, RESULT_DROPPED, RESULT_ERR, RESULT_OK, RESULT_UNCHANGED, Reader, Writer};
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker, Resource, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits, StoreLimitsBuilder,
};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::{
    CallError, ChainOutcome, ChainStep, FunctionInfo, FunctionKind, Instance, Manifest, Outcome, Plugin, PluginError,
    RecordError,
};
use crate::record::Record;
use crate::store::{StoreAccess, StoreError};

/// A plugin's handle on one of its node's stores: the store's position in
/// the call's [`StoreAccess`], valid only during the call that opened it.
pub struct StoreHandle {
    slot: u32,
    call: u64,
}

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "plugin",
        imports: { "eddy:plugin/state": trappable },
        with: { "eddy:plugin/state.store": super::StoreHandle },
    });
}

use generated::eddy::plugin::context::{self, Level};
use generated::eddy::plugin::state;

/// How often the epoch ticks; call timeouts are counted in ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);
/// Bytes of a plugin's stderr kept to explain a trap.
const STDERR_CAPACITY: usize = 64 * 1024;

/// Limits applied to every instance of a plugin.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most linear memory one instance may use.
    pub memory_bytes: usize,
    /// Longest one call (one batch) may run before it traps.
    pub call_timeout: Duration,
}

impl Default for Limits {
    /// 256 MiB of memory and 10 s per batch.
    fn default() -> Self {
        Limits { memory_bytes: 256 << 20, call_timeout: Duration::from_secs(10) }
    }
}

/// The process-wide engine, created on first use, with its epoch ticker.
pub fn engine() -> Result<&'static Engine, PluginError> {
    static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
    let made = ENGINE.get_or_init(|| {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(256)
            .total_core_instances(2048)
            .total_memories(256)
            .total_tables(2048)
            .max_memory_size(1 << 30);
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .concurrency_support(false)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        if std::env::var_os("EDDY_PERF_MAP").is_some() {
            // Names JIT-compiled plugin code for `perf report`.
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config).map_err(|e| format!("cannot start wasmtime: {e:#}"))?;
        let ticker = engine.weak();
        std::thread::Builder::new()
            .name("eddy-epoch".into())
            .spawn(move || {
                while let Some(engine) = ticker.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .map_err(|e| format!("cannot start the epoch thread: {e}"))?;
        Ok(engine)
    });
    made.as_ref().map_err(|e| PluginError::Instance { name: "(engine)".into(), problem: e.clone() })
}

/// Where compiled components are cached: `$EDDY_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/eddy`, else `~/.cache/eddy`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("EDDY_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("eddy");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".cache").join("eddy"),
        None => std::env::temp_dir().join("eddy-cache"),
    }
}

/// Store data of one instance.
struct HostState {
    plugin: Arc<str>,
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    stderr: MemoryOutputPipe,
    /// The stores of the processor call in progress, if any.
    access: Option<StoreAccess>,
    /// Number of the current (or last) processor call.
    call: u64,
}

/// Most entries one `range` call returns; the guest pages through more.
const MAX_RANGE: u32 = 4096;

impl HostState {
    /// The call's stores and the slot `handle` names, or a trap if the
    /// handle is not usable now.
    fn slot(&mut self, handle: &Resource<StoreHandle>) -> wasmtime::Result<(&mut StoreAccess, u32)> {
        let h = self.table.get(handle)?;
        let (slot, call) = (h.slot, h.call);
        match self.access.as_mut() {
            Some(access) if call == self.call => Ok((access, slot)),
            _ => Err(wasmtime::Error::msg("a store handle was used outside the call that opened it")),
        }
    }
}

/// Turns a store failure into a trap, remembering it for the host.
fn store_result<T>(access: &mut StoreAccess, result: Result<T, StoreError>) -> wasmtime::Result<T> {
    result.map_err(|e| {
        let message = e.to_string();
        access.fail(e);
        wasmtime::Error::msg(message)
    })
}

impl state::Host for HostState {}

impl state::HostStore for HostState {
    fn open(&mut self, name: String) -> wasmtime::Result<Result<Resource<StoreHandle>, String>> {
        let Some(access) = self.access.as_ref() else {
            return Ok(Err(format!("store '{name}': stores are open only during a processor or punctuator call")));
        };
        let Some(slot) = access.open(&name) else {
            return Ok(Err(format!(
                "store '{name}' is not declared by this node; it declares: {}",
                access.names().join(", ")
            )));
        };
        Ok(Ok(self.table.push(StoreHandle { slot, call: self.call })?))
    }

    fn get(&mut self, handle: Resource<StoreHandle>, key: Vec<u8>) -> wasmtime::Result<Option<Vec<u8>>> {
        let (access, slot) = self.slot(&handle)?;
        let value = access.get(slot, &key);
        Ok(store_result(access, value)?.map(|v| v.to_vec()))
    }

    fn get_many(
        &mut self,
        handle: Resource<StoreHandle>,
        keys: Vec<Vec<u8>>,
    ) -> wasmtime::Result<Vec<Option<Vec<u8>>>> {
        let (access, slot) = self.slot(&handle)?;
        let mut values = Vec::with_capacity(keys.len());
        for key in keys {
            let value = access.get(slot, &key);
            values.push(store_result(access, value)?.map(|v| v.to_vec()));
        }
        Ok(values)
    }

    fn put(
        &mut self,
        handle: Resource<StoreHandle>,
        key: Vec<u8>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), String>> {
        let (access, slot) = self.slot(&handle)?;
        Ok(access.put(slot, Bytes::from(key), Some(Bytes::from(value))).map_err(|e| e.to_string()))
    }

    fn delete(&mut self, handle: Resource<StoreHandle>, key: Vec<u8>) -> wasmtime::Result<Result<(), String>> {
        let (access, slot) = self.slot(&handle)?;
        Ok(access.put(slot, Bytes::from(key), None).map_err(|e| e.to_string()))
    }

    fn range(
        &mut self,
        handle: Resource<StoreHandle>,
        from: Option<Vec<u8>>,
        to: Option<Vec<u8>>,
        limit: u32,
    ) -> wasmtime::Result<Vec<state::Entry>> {
        let (access, slot) = self.slot(&handle)?;
        let entries = access.range(slot, from.as_deref(), to.as_deref(), limit.min(MAX_RANGE) as usize);
        Ok(store_result(access, entries)?.into_iter().map(|(key, value)| state::Entry { key, value }).collect())
    }

    fn drop(&mut self, handle: Resource<StoreHandle>) -> wasmtime::Result<()> {
        self.table.delete(handle)?;
        Ok(())
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl context::Host for HostState {
    fn log(&mut self, level: Level, message: String) {
        let plugin = &*self.plugin;
        match level {
            Level::Trace => tracing::trace!(plugin, "{message}"),
            Level::Debug => tracing::debug!(plugin, "{message}"),
            Level::Info => tracing::info!(plugin, "{message}"),
            Level::Warn => tracing::warn!(plugin, "{message}"),
            Level::Error => tracing::error!(plugin, "{message}"),
        }
    }
}

/// A compiled, linked plugin component, ready to instantiate.
pub struct WasmPlugin {
    name: Arc<str>,
    pre: generated::PluginPre<HostState>,
    manifest: Manifest,
    limits: Limits,
}

impl WasmPlugin {
    /// Loads the component at `path` (compiling it, or taking it from the
    /// cache) and reads its manifest.
    pub fn load(path: &Path, limits: Limits) -> Result<WasmPlugin, PluginError> {
        let bytes =
            std::fs::read(path).map_err(|source| PluginError::Read { path: path.display().to_string(), source })?;
        WasmPlugin::from_bytes(&path.display().to_string(), &bytes, limits)
    }

    /// Like [`WasmPlugin::load`], for bytes already in memory; `name` is
    /// used in errors.
    pub fn from_bytes(name: &str, bytes: &[u8], limits: Limits) -> Result<WasmPlugin, PluginError> {
        let invalid = |problem: String| PluginError::Invalid { path: name.to_owned(), problem };
        check_header(bytes).map_err(invalid)?;
        let engine = engine()?;
        let component = compile_cached(engine, bytes).map_err(invalid)?;
        let mut linker = Linker::<HostState>::new(engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| invalid(format!("linking WASI: {e:#}")))?;
        context::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)
            .map_err(|e| invalid(format!("linking eddy:plugin/context: {e:#}")))?;
        state::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)
            .map_err(|e| invalid(format!("linking eddy:plugin/state: {e:#}")))?;
        let instance_pre = linker.instantiate_pre(&component).map_err(|e| {
            invalid(format!(
                "it imports something Eddy does not provide ({e:#}); a plugin may import only WASI 0.2, eddy:plugin/context and eddy:plugin/state"
            ))
        })?;
        let pre = generated::PluginPre::new(instance_pre).map_err(|e| {
            invalid(format!(
                "it does not implement the Eddy plugin world: {e:#}; build it with eddy-sdk (`eddy plugin build`)"
            ))
        })?;
        let mut plugin = WasmPlugin { name: Arc::from(name), pre, manifest: Manifest::default(), limits };
        let (mut store, bindings) = plugin.instantiate_raw()?;
        let m = bindings.eddy_plugin_operators().call_describe(&mut store).map_err(|e| PluginError::Instance {
            name: name.to_owned(),
            problem: format!("describe() failed: {}", trap_message(&e, &store)),
        })?;
        plugin.manifest = Manifest {
            name: m.name,
            version: m.version,
            sdk: m.sdk,
            functions: m
                .functions
                .into_iter()
                .map(|f| FunctionInfo { name: f.name, kind: f.kind, description: f.description })
                .collect(),
            topology: m.topology,
        };
        Ok(plugin)
    }

    fn instantiate_raw(&self) -> Result<(Store<HostState>, generated::Plugin), PluginError> {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        let wasi = WasiCtx::builder()
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let state = HostState {
            plugin: self.name.clone(),
            wasi,
            table: ResourceTable::new(),
            // A plugin that asks for more memory than its limit traps at once
            // (and says so), instead of failing an allocation it may not check.
            limits: StoreLimitsBuilder::new()
                .memory_size(self.limits.memory_bytes)
                .instances(64)
                .trap_on_grow_failure(true)
                .build(),
            stderr,
            access: None,
            call: 0,
        };
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(self.deadline_ticks());
        store.epoch_deadline_trap();
        let bindings = self.pre.instantiate(&mut store).map_err(|e| PluginError::Instance {
            name: self.name.to_string(),
            problem: format!("cannot instantiate: {e:#}"),
        })?;
        Ok((store, bindings))
    }

    fn deadline_ticks(&self) -> u64 {
        (self.limits.call_timeout.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
    }
}

impl Plugin for WasmPlugin {
    fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    fn instantiate(&self) -> Result<Box<dyn Instance>, PluginError> {
        let (store, bindings) = self.instantiate_raw()?;
        Ok(Box::new(WasmInstance { store, bindings, deadline: self.deadline_ticks(), input: Vec::new() }))
    }
}

/// One instance of a [`WasmPlugin`].
struct WasmInstance {
    store: Store<HostState>,
    bindings: generated::Plugin,
    deadline: u64,
    /// Reused buffer for the packed input batch.
    input: Vec<u8>,
}

impl WasmInstance {
    /// Encodes `records` as an input batch into the reused buffer, and arms
    /// the call's deadline.
    fn encode(&mut self, records: &[Record]) -> Writer {
        let mut w = Writer::reuse(std::mem::take(&mut self.input));
        w.put_u32(records.len() as u32);
        for r in records {
            r.encode(&mut w);
        }
        self.store.set_epoch_deadline(self.deadline);
        w
    }
}

impl WasmInstance {
    /// Turns a call's result into outcomes appended to `out`: a trap or a
    /// refused batch is an error, and output that does not decode appends
    /// nothing.
    fn outcomes<T>(
        &self,
        result: wasmtime::Result<Result<Vec<u8>, generated::eddy::plugin::types::Error>>,
        out: &mut Vec<T>,
        decode: impl FnOnce(Bytes, &mut Vec<T>) -> Result<(), eddy_codec::DecodeError>,
    ) -> Result<(), CallError> {
        match result {
            Err(e) => Err(CallError::Trap(trap_message(&e, &self.store))),
            Ok(Err(e)) => Err(CallError::Protocol(format!("{e:?}"))),
            Ok(Ok(output)) => {
                let start = out.len();
                decode(Bytes::from(output), out).map_err(|e| {
                    out.truncate(start);
                    CallError::Protocol(e.to_string())
                })
            }
        }
    }
}

impl Instance for WasmInstance {
    fn call_chain(
        &mut self,
        steps: &[ChainStep],
        records: &[Record],
        out: &mut Vec<ChainOutcome>,
    ) -> Result<(), CallError> {
        let wit_steps: Vec<generated::eddy::plugin::types::ChainStep> = steps
            .iter()
            .map(|s| generated::eddy::plugin::types::ChainStep { function: s.function, negate: s.negate })
            .collect();
        let w = self.encode(records);
        let result = self.bindings.eddy_plugin_operators().call_invoke_chain(&mut self.store, &wit_steps, w.as_slice());
        self.input = w.into_inner();
        self.outcomes(result, out, |output, out| decode_chain(records.len(), output, out))
    }

    fn process(
        &mut self,
        index: u32,
        kind: FunctionKind,
        records: &[Record],
        state: &mut StoreAccess,
        out: &mut Vec<Outcome>,
    ) -> Result<(), CallError> {
        let data = self.store.data_mut();
        data.call += 1;
        data.access = Some(std::mem::take(state));
        let result = self.call(index, kind, records, out);
        *state = self.store.data_mut().access.take().unwrap_or_default();
        result
    }

    fn call(
        &mut self,
        index: u32,
        kind: FunctionKind,
        records: &[Record],
        out: &mut Vec<Outcome>,
    ) -> Result<(), CallError> {
        let w = self.encode(records);
        let result = self.bindings.eddy_plugin_operators().call_invoke(&mut self.store, index, w.as_slice());
        self.input = w.into_inner();
        self.outcomes(result, out, |output, out| decode_outcomes(kind, records.len(), output, out))
    }
}

/// A trap's message, with what the guest wrote to stderr (its panic message).
fn trap_message(e: &wasmtime::Error, store: &Store<HostState>) -> String {
    let mut msg = match e.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => "the call ran past its timeout".to_owned(),
        Some(trap) => trap.to_string(),
        // wasmtime's words when the limiter refuses to grow a memory.
        None if format!("{e:#}").contains("growing memory") => {
            format!("the plugin went past its memory limit ({e:#})")
        }
        None => format!("{e:#}"),
    };
    let said = String::from_utf8_lossy(&store.data().stderr.contents()).trim().to_owned();
    if !said.is_empty() {
        let last: Vec<&str> = said.lines().rev().take(5).collect();
        msg.push_str("; plugin stderr: ");
        msg.push_str(&last.into_iter().rev().collect::<Vec<_>>().join(" | "));
    }
    msg
}

fn record_error(code: u8, message: &[u8]) -> RecordError {
    let message = String::from_utf8_lossy(message).into_owned();
    if code == ERR_INVALID_RECORD { RecordError::Invalid(message) } else { RecordError::Failed(message) }
}

/// Decodes a chain output batch into one outcome per input record.
fn decode_chain(count: usize, buf: Bytes, out: &mut Vec<ChainOutcome>) -> Result<(), eddy_codec::DecodeError> {
    let mut r = Reader::new(&buf);
    for _ in 0..count {
        let at = r.position();
        out.push(match r.u8()? {
            RESULT_UNCHANGED => ChainOutcome::Passed(None),
            RESULT_OK => ChainOutcome::Passed(Some(Record::from_view(&r.record()?, &buf))),
            RESULT_DROPPED => {
                r.u32()?;
                ChainOutcome::Dropped
            }
            RESULT_ERR => {
                let step = r.u32()?;
                let code = r.u8()?;
                ChainOutcome::Failed { step, error: record_error(code, r.bytes()?) }
            }
            _ => return Err(eddy_codec::DecodeError { at, what: "unknown chain result tag" }),
        });
    }
    if !r.is_empty() {
        return Err(eddy_codec::DecodeError { at: r.position(), what: "bytes left after the last result" });
    }
    Ok(())
}

/// Decodes an output batch into one outcome per input record.
fn decode_outcomes(
    kind: FunctionKind,
    count: usize,
    buf: Bytes,
    out: &mut Vec<Outcome>,
) -> Result<(), eddy_codec::DecodeError> {
    let mut r = Reader::new(&buf);
    let share = |s: Option<&[u8]>| s.map(|s| buf.slice_ref(s));
    for _ in 0..count {
        if r.u8()? == RESULT_ERR {
            let code = r.u8()?;
            out.push(Outcome::Failed(record_error(code, r.bytes()?)));
            continue;
        }
        out.push(match kind {
            FunctionKind::Predicate => Outcome::Keep(r.u8()? != 0),
            FunctionKind::Map => Outcome::Record(Record::from_view(&r.record()?, &buf)),
            FunctionKind::MapValues
            | FunctionKind::Aggregator
            | FunctionKind::Reducer
            | FunctionKind::Joiner
            | FunctionKind::Merger => Outcome::Value(share(r.opt_bytes()?)),
            FunctionKind::SelectKey => Outcome::Key(share(r.opt_bytes()?)),
            FunctionKind::FlatMap => {
                let n = r.u32()?;
                let mut records = Vec::with_capacity(n.min(1024) as usize);
                for _ in 0..n {
                    records.push(Record::from_view(&r.record()?, &buf));
                }
                Outcome::Records(records)
            }
            FunctionKind::FlatMapValues => {
                let n = r.u32()?;
                let mut values = Vec::with_capacity(n.min(1024) as usize);
                for _ in 0..n {
                    values.push(share(r.opt_bytes()?));
                }
                Outcome::Values(values)
            }
            FunctionKind::Peek => Outcome::Done,
            FunctionKind::TimestampExtractor => Outcome::Timestamp(r.i64()?),
            FunctionKind::Processor | FunctionKind::Punctuator => {
                let n = r.u32()?;
                let mut records = Vec::with_capacity(n.min(1024) as usize);
                for _ in 0..n {
                    let at = r.position();
                    let child = match r.opt_bytes()? {
                        Some(name) => Some(
                            std::str::from_utf8(name)
                                .map_err(|_| eddy_codec::DecodeError { at, what: "child name is not UTF-8" })?
                                .to_owned(),
                        ),
                        None => None,
                    };
                    records.push((child, Record::from_view(&r.record()?, &buf)));
                }
                Outcome::Forward(records)
            }
        });
    }
    if !r.is_empty() {
        return Err(eddy_codec::DecodeError { at: r.position(), what: "bytes left after the last result" });
    }
    Ok(())
}

/// Explains bytes that are not a component before wasmtime tries them.
fn check_header(bytes: &[u8]) -> Result<(), String> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err("it is not WebAssembly (a .wasm file starts with the bytes \\0asm)".into());
    }
    if bytes[4..8] == [1, 0, 0, 0] {
        return Err(
            "it is a core WebAssembly module, not a component; build the plugin for wasm32-wasip2 with `eddy plugin build`".into(),
        );
    }
    Ok(())
}

/// Compiles a component, or loads it from the on-disk cache.
fn compile_cached(engine: &Engine, bytes: &[u8]) -> Result<Component, String> {
    let mut compat = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut compat);
    let digest = Sha256::digest(bytes);
    let key: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let dir = cache_dir();
    let path = dir.join(format!("{key}-{:016x}.cwasm", compat.finish()));
    if path.exists() {
        // SAFETY: the file is one this function wrote with `Component::serialize`
        // for an engine with the same compatibility hash, in Eddy's own cache.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(c) => return Ok(c),
            Err(e) => tracing::warn!("ignoring unusable cache entry {}: {e:#}", path.display()),
        }
    }
    let component = Component::new(engine, bytes).map_err(|e| format!("it is not a valid component: {e:#}"))?;
    match component.serialize() {
        Ok(compiled) => {
            let tmp = dir.join(format!(".{key}.{}.tmp", std::process::id()));
            let written = std::fs::create_dir_all(&dir)
                .and_then(|()| std::fs::write(&tmp, &compiled))
                .and_then(|()| std::fs::rename(&tmp, &path));
            if let Err(e) = written {
                tracing::debug!("cannot cache the compiled plugin in {}: {e}", dir.display());
            }
        }
        Err(e) => tracing::debug!("cannot serialize the compiled plugin: {e:#}"),
    }
    Ok(component)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explains_non_components() {
        assert!(check_header(b"hello world").unwrap_err().contains("not WebAssembly"));
        assert!(check_header(b"\0asm\x01\0\0\0").unwrap_err().contains("core WebAssembly module"));
        assert!(check_header(b"\0asm\x0d\0\x01\0").is_ok());
    }

    #[test]
    fn decodes_every_kind_and_rejects_trailing_bytes() {
        let mut w = Writer::new();
        w.put_u8(0);
        w.put_opt_bytes(Some(b"v"));
        w.put_error(ERR_INVALID_RECORD, "nope");
        let mut out = Vec::new();
        decode_outcomes(FunctionKind::MapValues, 2, Bytes::from(w.as_slice().to_vec()), &mut out).unwrap();
        assert_eq!(
            out,
            [Outcome::Value(Some(Bytes::from_static(b"v"))), Outcome::Failed(RecordError::Invalid("nope".into()))]
        );
        let mut w2 = Writer::new();
        w2.put_u8(0);
        w2.put_u8(1);
        w2.put_u8(9);
        assert!(decode_outcomes(FunctionKind::Predicate, 1, Bytes::from(w2.into_inner()), &mut Vec::new()).is_err());
    }
}
