//! The shared engines: wasmtime configured for fuel, epochs and pooled instances (one
//! engine for compiled functions, one for interpreter snapshots, which differ in how a
//! pooled slot's memory is reset), the linker with the host functions, and loading
//! (compiling and validating) functions.

use crate::error::LoadError;
use crate::fetch::FetchClient;
use crate::invocation::InvokeOptions;
use crate::invocation::{InvocationState, new_store};
use crate::limits::Limits;
use segfn_sdk::abi;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime::{Config, ExternType, FuncType, InstancePre, Linker, Module, ValType};

/// How often the epoch advances; deadlines are checked, and long-running guests yield
/// to other tasks, at this granularity.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// How a pooled memory slot is made fresh for the next instance of a module.
///
/// Measured on a 2-core VM (host/engine/examples/translate.rs, which counts page faults):
/// unmapping the memory (wasmtime's default) makes every page an event touches fault in
/// again: 157 faults and 812 µs per event for a JavaScript snapshot, 12 faults and
/// 110 µs for the Rust forwarder. The two kinds of module want different cures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryReset {
    /// Compiled functions: the pages the event wrote are found with Linux's
    /// `PAGEMAP_SCAN` (Linux 6.7 and later) and copied back from the module's image;
    /// they stay resident and the rest is unmapped. The Rust forwarder: 0 faults,
    /// 70-72 µs; resident memory stays what events write. Where the kernel lacks the
    /// call, the memory is unmapped as wasmtime does by default: keeping it resident
    /// without knowing what was written would copy back the first `KEEP_RESIDENT` (4 MiB)
    /// bytes and hold them resident in every slot used.
    DirtyPages,
    /// Interpreter snapshots (`segfn build handler.js`): QuickJS writes ~100 pages
    /// scattered over its 2 MiB image in each event, more runs than the scan resets
    /// (wasmtime copies back at most 32, then unmaps the rest: 62 faults, 530 µs), so
    /// the first `SNAPSHOT_KEEP_RESIDENT` (8 MiB) bytes of memory (the stack, the image
    /// and zeros) are copied back instead and memory beyond them unmapped: 0 faults,
    /// 340 µs. Each slot that ran a snapshot keeps its memory up to that resident.
    CopyImage,
}

/// The most of each pooled memory slot kept resident between instances.
pub(crate) const KEEP_RESIDENT: usize = 4 << 20;

/// The same for interpreter snapshots: their 2 MiB shadow stack comes first in memory,
/// then the image and the heap. Past the resident part, pages are unmapped and fault
/// back in on every event (with 4 MiB: 81 faults and 35-50% more time per event for a
/// function naming `moment`); resetting the stack's untouched pages costs a `memset`
/// of zeros, within the run-to-run noise (docs/JAVASCRIPT.md).
const SNAPSHOT_KEEP_RESIDENT: usize = 8 << 20;

/// Without a pool one engine runs both kinds of module (`Runtime::snapshot_engine`), so
/// it is configured for the more demanding one.
const ON_DEMAND: MemoryReset = MemoryReset::CopyImage;

/// The native stack Wasm code of a snapshot may use: QuickJS's interpreter takes about
/// 1 KiB of it per JavaScript call, and its own limit (about 5,000 calls) must come first,
/// so runaway recursion is a `RangeError`, not a trap. Compiled functions keep
/// wasmtime's 512 KiB. Only touched pages of a fiber stack are ever resident.
const SNAPSHOT_WASM_STACK: usize = 16 << 20;

/// Tables are small; resetting them with a `memset` spares an `madvise` per instance.
const TABLE_KEEP_RESIDENT: usize = 64 << 10;

/// Engine-wide settings.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Use the pooling allocator (fast instantiation, reserves address space up front).
    /// Falls back to on-demand allocation when the pool cannot be reserved.
    pub pooling: bool,
    /// Instances the pool holds, i.e. invocations that can run at once.
    pub max_instances: u32,
    /// Cache compiled modules on disk (wasmtime's cache, under the user's cache dir).
    pub disk_cache: bool,
    /// How long loading may take to instantiate a trial instance (start function
    /// included) and ask its ABI version: the deadline the functions will run with.
    pub load_deadline: Duration,
    /// The memory limit functions will run with: no pooled memory slot is larger.
    pub max_memory_bytes: usize,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            pooling: true,
            max_instances: 256,
            disk_cache: false,
            load_deadline: Limits::default().deadline,
            max_memory_bytes: Limits::default().memory_bytes,
        }
    }
}

/// How a runtime allocates instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocation {
    /// From a pool whose memory slots reserve 4 GiB each (fastest).
    Pooled,
    /// From a pool whose memory slots are the memory limit (bounds checked in code).
    PooledBoundsChecked,
    /// One by one, as needed (slowest to instantiate).
    OnDemand,
}

/// The engines that compile and run functions. Cheap to clone; one per process.
#[derive(Clone)]
pub struct Runtime {
    /// For compiled functions ([`MemoryReset::DirtyPages`]).
    compiled: Arc<Engine>,
    /// For interpreter snapshots ([`MemoryReset::CopyImage`]), made when the first is
    /// loaded: a process that runs none reserves no second pool.
    snapshots: Arc<Mutex<Option<Arc<Engine>>>>,
    options: RuntimeOptions,
}

/// One wasmtime engine with the host's functions linked, and its own epoch ticker.
struct Engine {
    engine: wasmtime::Engine,
    linker: Linker<InvocationState>,
    allocation: Allocation,
    reset: MemoryReset,
    _ticker: EpochTicker,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").finish_non_exhaustive()
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    fn start(engine: wasmtime::Engine) -> EpochTicker {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("segfn-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .expect("spawning the epoch thread");
        EpochTicker { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A function compiled, validated and linked, ready for any number of invocations.
#[derive(Clone)]
pub struct LoadedFunction {
    pub(crate) pre: InstancePre<InvocationState>,
    pub(crate) runtime: Runtime,
    allocation: Allocation,
    reset: MemoryReset,
}

impl std::fmt::Debug for LoadedFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedFunction").finish_non_exhaustive()
    }
}

fn base_config(options: &RuntimeOptions, reset: MemoryReset) -> Config {
    let mut config = Config::new();
    config.consume_fuel(true);
    config.epoch_interruption(true);
    config.cranelift_opt_level(wasmtime::OptLevel::Speed);
    if reset == MemoryReset::CopyImage {
        // The fiber stack holds the Wasm stack and the host calls made from it.
        config.max_wasm_stack(SNAPSHOT_WASM_STACK);
        config.async_stack_size(SNAPSHOT_WASM_STACK + (1 << 20));
    }
    if options.disk_cache
        && let Ok(cache) = wasmtime::Cache::from_file(None)
    {
        config.cache(Some(cache));
    }
    config
}

/// The instance pool's layout: how many slots, and how much address space each
/// memory slot takes.
fn pool_config(options: &RuntimeOptions, reset: MemoryReset, memory_slot: Option<u64>) -> Config {
    let mut config = base_config(options, reset);
    let mut pool = wasmtime::PoolingAllocationConfig::new();
    pool.total_core_instances(options.max_instances)
        .total_memories(options.max_instances)
        .total_tables(options.max_instances)
        // A fetch places its response through `segfn_alloc`, a call nested in the
        // handler's call: two fiber stacks per instance at most, since host calls
        // cannot nest further (invocation.rs). Fewer would let one tenant's fetching guests
        // exhaust the stacks every invocation needs.
        .total_stacks(options.max_instances.saturating_mul(2))
        // No memory grows past the memory limit, so no slot needs to hold more.
        .max_memory_size(options.max_memory_bytes)
        .table_keep_resident(TABLE_KEEP_RESIDENT);
    match reset {
        MemoryReset::DirtyPages => {
            if wasmtime::PoolingAllocationConfig::is_pagemap_scan_available() {
                pool.linear_memory_keep_resident(KEEP_RESIDENT)
                    .pagemap_scan(wasmtime::Enabled::Yes);
            }
        }
        MemoryReset::CopyImage => {
            pool.linear_memory_keep_resident(SNAPSHOT_KEEP_RESIDENT)
                .pagemap_scan(wasmtime::Enabled::No);
        }
    }
    if let Some(slot) = memory_slot {
        // A reservation no larger than the limit: compiled code checks bounds
        // explicitly instead of relying on a 4 GiB guard region.
        config.memory_reservation(slot);
        config.memory_guard_size(64 << 10);
        config.memory_reservation_for_growth(0);
    }
    config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
    config
}

impl Engine {
    /// An engine whose pooled slots are reset as `reset` says. With pooling, the pool
    /// is first laid out for the fastest code (each memory slot reserves 4 GiB of
    /// address space, so bounds are checked by the hardware); where that much address
    /// space cannot be reserved (`ulimit -v`, strict overcommit) the slots shrink to the
    /// memory limit (bounds checked in code); failing that, instances are allocated on
    /// demand. Each step down is logged as a warning with its cause.
    fn new(options: &RuntimeOptions, reset: MemoryReset) -> Result<Engine, wasmtime::Error> {
        let (engine, allocation) = if options.pooling {
            let slot = (options.max_memory_bytes as u64).next_multiple_of(64 << 10);
            match wasmtime::Engine::new(&pool_config(options, reset, None)) {
                Ok(engine) => (engine, Allocation::Pooled),
                Err(wide) => {
                    match wasmtime::Engine::new(&pool_config(options, reset, Some(slot))) {
                        Ok(engine) => {
                            tracing::warn!(
                                error = %format!("{wide:#}"),
                                slots = options.max_instances,
                                "the instance pool could not reserve 4 GiB per memory; using slots of {} with bounds checks in code (a little slower)",
                                crate::limits::bytes(options.max_memory_bytes)
                            );
                            (engine, Allocation::PooledBoundsChecked)
                        }
                        Err(narrow) => {
                            tracing::warn!(
                                error = %format!("{narrow:#}"),
                                "the instance pool could not reserve its address space even with small slots; instantiating on demand (slower)"
                            );
                            (
                                wasmtime::Engine::new(&base_config(options, ON_DEMAND))?,
                                Allocation::OnDemand,
                            )
                        }
                    }
                }
            }
        } else {
            (
                wasmtime::Engine::new(&base_config(options, ON_DEMAND))?,
                Allocation::OnDemand,
            )
        };
        let mut linker = Linker::new(&engine);
        crate::imports::add_to_linker(&mut linker)?;
        Ok(Engine {
            _ticker: EpochTicker::start(engine.clone()),
            engine,
            linker,
            allocation,
            reset,
        })
    }
}

impl Runtime {
    /// A runtime with the given options: the engine for compiled functions now, the one
    /// for interpreter snapshots when the first is loaded (see [`MemoryReset`]).
    pub fn new(options: &RuntimeOptions) -> Result<Runtime, wasmtime::Error> {
        Ok(Runtime {
            compiled: Arc::new(Engine::new(options, MemoryReset::DirtyPages)?),
            snapshots: Arc::default(),
            options: options.clone(),
        })
    }

    /// The engine for interpreter snapshots, made on first use.
    fn snapshot_engine(&self) -> Result<Arc<Engine>, wasmtime::Error> {
        // Without a pool there is nothing to reset: one engine does for both.
        if self.compiled.allocation == Allocation::OnDemand {
            return Ok(self.compiled.clone());
        }
        let mut engine = self.snapshots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(engine) = engine.as_ref() {
            return Ok(engine.clone());
        }
        let made = Arc::new(Engine::new(&self.options, MemoryReset::CopyImage)?);
        *engine = Some(made.clone());
        Ok(made)
    }

    /// Whether instances come from the pooling allocator (it may have been unavailable).
    pub fn pooling(&self) -> bool {
        self.compiled.allocation != Allocation::OnDemand
    }

    /// How instances of compiled functions are allocated.
    pub fn allocation(&self) -> Allocation {
        self.compiled.allocation
    }

    /// Loads a function from a `.wasm` (or `.wat`, for tests) file.
    pub async fn load_file(&self, path: &Path) -> Result<LoadedFunction, LoadError> {
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|source| LoadError::Read {
                path: path.to_owned(),
                source,
            })?;
        self.load(&bytes).await
    }

    /// Compiles and validates a function: its exports and imports must follow the ABI,
    /// and a trial instance must report the host's ABI version.
    pub async fn load(&self, wasm: &[u8]) -> Result<LoadedFunction, LoadError> {
        let set = if crate::snapshot::is_snapshot(wasm) {
            self.snapshot_engine().map_err(|e| {
                LoadError::Compile(format!(
                    "making the engine for interpreter snapshots: {e:#}"
                ))
            })?
        } else {
            self.compiled.clone()
        };
        let engine = set.engine.clone();
        let bytes = wasm.to_vec();
        // Compilation is CPU-bound; keep it off the async workers.
        let module = tokio::task::spawn_blocking(move || Module::new(&engine, &bytes))
            .await
            .map_err(|e| LoadError::Compile(e.to_string()))?
            .map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        validate_exports(&module)?;
        validate_imports(&module)?;
        let pre = set
            .linker
            .instantiate_pre(&module)
            .map_err(|e| LoadError::Instantiate(format!("{e:#}")))?;
        let function = LoadedFunction {
            pre,
            runtime: self.clone(),
            allocation: set.allocation,
            reset: set.reset,
        };
        let found = function.probe_abi_version().await?;
        if found != abi::VERSION {
            return Err(LoadError::AbiVersion {
                found,
                expected: abi::VERSION,
            });
        }
        Ok(function)
    }

    /// How long loading, and describing a function, may take.
    pub(crate) fn load_deadline(&self) -> Duration {
        self.options.load_deadline
    }
}

impl LoadedFunction {
    /// The engine the function was compiled for; its stores come from it.
    pub(crate) fn engine(&self) -> &wasmtime::Engine {
        self.pre.module().engine()
    }

    /// How its instances are allocated.
    pub fn allocation(&self) -> Allocation {
        self.allocation
    }

    /// How a pooled slot's memory is made fresh for its next instance; `None` when
    /// instances are not pooled (each gets new memory).
    pub fn memory_reset(&self) -> Option<MemoryReset> {
        (self.allocation != Allocation::OnDemand).then_some(self.reset)
    }

    /// Calls `segfn_abi_version` in a throwaway instance, within the load deadline.
    async fn probe_abi_version(&self) -> Result<u32, LoadError> {
        let limit = self.runtime.load_deadline();
        let options = InvokeOptions {
            limits: Limits {
                deadline: limit,
                ..Limits::default()
            },
            client: FetchClient::new(Default::default())
                .map_err(|e| LoadError::Instantiate(e.to_string()))?,
            redactor: Arc::default(),
            capture_bodies: false,
        };
        let mut store = new_store(self.engine(), options, Instant::now() + limit, 0);
        let probe = async {
            let instance = self.pre.instantiate_async(&mut store).await?;
            let version =
                instance.get_typed_func::<(), u32>(&mut store, abi::EXPORT_ABI_VERSION)?;
            version.call_async(&mut store, ()).await
        };
        let late = || {
            LoadError::Instantiate(format!(
                "instantiating it and calling {} did not finish within the deadline of {} ms (a loop in its start function?)",
                abi::EXPORT_ABI_VERSION,
                limit.as_millis()
            ))
        };
        match tokio::time::timeout(limit, probe).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e))
                if matches!(
                    e.downcast_ref::<wasmtime::Trap>(),
                    Some(wasmtime::Trap::Interrupt)
                ) =>
            {
                Err(late())
            }
            Ok(Err(e)) => Err(LoadError::Instantiate(format!("{e:#}"))),
            Err(_) => Err(late()),
        }
    }
}

/// A function signature: parameter and result types.
type Signature = (Vec<ValType>, Vec<ValType>);

fn func(params: &[ValType], results: &[ValType]) -> Signature {
    (params.to_vec(), results.to_vec())
}

fn signature(ty: &FuncType) -> Signature {
    (ty.params().collect(), ty.results().collect())
}

fn same(a: &Signature, b: &Signature) -> bool {
    a.0.len() == b.0.len()
        && a.1.len() == b.1.len()
        && a.0.iter().zip(&b.0).all(|(x, y)| ValType::eq(x, y))
        && a.1.iter().zip(&b.1).all(|(x, y)| ValType::eq(x, y))
}

fn validate_exports(module: &Module) -> Result<(), LoadError> {
    use ValType::{I32, I64};
    let required: [(&'static str, &'static str, Option<Signature>); 4] = [
        (abi::EXPORT_MEMORY, "a memory", None),
        (
            abi::EXPORT_ABI_VERSION,
            "a function () -> i32",
            Some(func(&[], &[I32])),
        ),
        (
            abi::EXPORT_ALLOC,
            "a function (i32) -> i32",
            Some(func(&[I32], &[I32])),
        ),
        (
            abi::EXPORT_HANDLE,
            "a function (i32, i32) -> i64",
            Some(func(&[I32, I32], &[I64])),
        ),
    ];
    for (name, expected, sig) in required {
        let ok = match (module.get_export(name), &sig) {
            (Some(ExternType::Memory(m)), None) => !m.is_64() && !m.is_shared(),
            (Some(ExternType::Func(f)), Some(sig)) => same(&signature(&f), sig),
            _ => false,
        };
        if !ok {
            return Err(LoadError::Export { name, expected });
        }
    }
    Ok(())
}

fn validate_imports(module: &Module) -> Result<(), LoadError> {
    for import in module.imports() {
        if import.module() != abi::IMPORT_MODULE || !abi::IMPORTS.contains(&import.name()) {
            let hint = if import.module() == "env" && import.name().starts_with("__segfn") {
                ": did the function call segfn_sdk::export!(YourFunction)?"
            } else if import.module().starts_with("wasi") {
                ": segfn functions are built for wasm32-unknown-unknown, not WASI"
            } else {
                ""
            };
            return Err(LoadError::Import {
                module: import.module().to_owned(),
                name: import.name().to_owned(),
                provided: abi::IMPORTS
                    .iter()
                    .map(|n| format!("{}::{n}", abi::IMPORT_MODULE))
                    .collect::<Vec<_>>()
                    .join(", "),
                hint,
            });
        }
    }
    Ok(())
}
