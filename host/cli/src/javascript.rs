//! JavaScript functions: `segfn build handler.js` turns a Segment function's script into
//! one module for the same ABI. It finds (or builds, with `toolchain`) the JavaScript
//! runtime guest (`js-runtime/`, QuickJS), instantiates it with stand-in imports, has
//! it evaluate its globals and the script (`segfn_js_init`), and snapshots the
//! initialised instance with wizer, so that an invocation only instantiates the snapshot
//! and calls the handler. A syntax error or a top-level exception fails the build with
//! the script's file, line and column. See docs/JAVASCRIPT.md.

use crate::toolchain::{self, BuildError, BuildOptions, Method};
use segfn_engine::snapshot::mark_snapshot;
use segfn_sdk::abi;
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use wasmtime::{Caller, Config, Engine, Linker, Module, Store, StoreLimits, StoreLimitsBuilder};

/// Segment's preloaded libraries given to a script that names them.
#[path = "../../../js-runtime/js/libraries.rs"]
mod libraries;

/// The runtime guest's own export that evaluates the globals and the script.
const INIT_EXPORT: &str = "segfn_js_init";

/// Where a prebuilt runtime guest may be named instead of built from `js-runtime/`.
pub const RUNTIME_ENV: &str = "SEGFN_JS_RUNTIME";

/// How long evaluating a script's top level may take at build time.
const INIT_DEADLINE: Duration = Duration::from_secs(10);

/// Why a script could not be turned into a module.
#[derive(Debug, thiserror::Error)]
pub enum JsBuildError {
    /// The script could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The script.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The runtime guest could not be found or built.
    #[error("the JavaScript runtime guest: {0}")]
    Runtime(String),
    /// The runtime guest failed to build.
    #[error("building the JavaScript runtime guest (js-runtime/): {0}")]
    RuntimeBuild(#[from] BuildError),
    /// The script has a syntax error, or its top level threw.
    #[error("{file}:{line}:{column}: {message}")]
    Script {
        /// The script's file name.
        file: String,
        /// 1-based line.
        line: u32,
        /// 1-based column.
        column: u32,
        /// What QuickJS said, e.g. `SyntaxError: unexpected token`.
        message: String,
    },
    /// The script failed without a location (e.g. out of memory).
    #[error("{file}: {message}")]
    ScriptNoLocation {
        /// The script's file name.
        file: String,
        /// What went wrong.
        message: String,
    },
    /// Instantiating, initialising or snapshotting failed.
    #[error("pre-initialising the script: {0}")]
    Snapshot(String),
}

/// A built JavaScript function.
#[derive(Debug)]
pub struct JsModule {
    /// The snapshot, a module for the segfn ABI.
    pub wasm: Vec<u8>,
    /// The runtime guest's size before the snapshot, in bytes.
    pub runtime_bytes: usize,
    /// How long evaluating and snapshotting took.
    pub elapsed: Duration,
}

/// The runtime guest built into this segfn by its `build.rs`; empty when it could not
/// be built there.
const EMBEDDED_RUNTIME: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/segfn_js.wasm"));

/// The runtime guest's bytes: `$SEGFN_JS_RUNTIME` when set, else the one built into
/// segfn, else [`runtime_wasm`]'s build from the source tree (minutes, once: said on
/// stderr first).
pub fn runtime_bytes(target_dir: Option<&Path>) -> Result<Cow<'static, [u8]>, JsBuildError> {
    if std::env::var_os(RUNTIME_ENV).is_none() {
        if !EMBEDDED_RUNTIME.is_empty() {
            return Ok(Cow::Borrowed(EMBEDDED_RUNTIME));
        }
        eprintln!(
            "segfn: this segfn was built without the JavaScript runtime (see its build warning); \
             building it now from {}, once: a few minutes",
            runtime_crate_dir().display()
        );
    }
    let wasm = runtime_wasm(target_dir)?;
    std::fs::read(&wasm)
        .map(Cow::Owned)
        .map_err(|e| JsBuildError::Runtime(format!("reading {}: {e}", wasm.display())))
}

/// Whether the runtime guest is built into this segfn.
pub fn runtime_embedded() -> bool {
    !EMBEDDED_RUNTIME.is_empty()
}

/// The runtime guest's `.wasm`: `$SEGFN_JS_RUNTIME` when set, else the `js-runtime`
/// crate of the source tree this segfn was built from, built (or found fresh by cargo)
/// with the same toolchain as functions.
pub fn runtime_wasm(target_dir: Option<&Path>) -> Result<PathBuf, JsBuildError> {
    if let Some(path) = std::env::var_os(RUNTIME_ENV) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(JsBuildError::Runtime(format!(
                "{RUNTIME_ENV}={} is not a file",
                path.display()
            )))
        };
    }
    let dir = runtime_crate_dir();
    if !dir.join("Cargo.toml").is_file() {
        return Err(JsBuildError::Runtime(format!(
            "{} is not there (segfn was built from another tree): set {RUNTIME_ENV} to a built segfn_js.wasm",
            dir.display()
        )));
    }
    let method: Method = toolchain::detect()?;
    let options = BuildOptions {
        target_dir: target_dir.map(Path::to_owned),
    };
    Ok(toolchain::build(&dir, &method, &options)?)
}

/// The `js-runtime` crate of the source tree this crate is in (`host/cli/`).
pub fn runtime_crate_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap_or(Path::new("."))
        .join("js-runtime")
}

/// Reads `script` and pre-initialises `runtime` (the runtime guest's bytes) with it.
pub async fn build_file(runtime: &[u8], script: &Path) -> Result<JsModule, JsBuildError> {
    let source = std::fs::read_to_string(script).map_err(|source| JsBuildError::Read {
        path: script.to_owned(),
        source,
    })?;
    let file = script
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| "handler.js".into());
    build(runtime, &file, &source).await
}

/// Evaluates the runtime's globals and `source` (named `file` in errors and stacks) in
/// an instance of `runtime`, and snapshots it.
pub async fn build(runtime: &[u8], file: &str, source: &str) -> Result<JsModule, JsBuildError> {
    let started = Instant::now();
    let snap = |e: wasmtime::Error| JsBuildError::Snapshot(format!("{e:#}"));
    let mut wizer = wasmtime_wizer::Wizer::new();
    // The init export is for the build only: the snapshot drops it.
    wizer.init_func(INIT_EXPORT);
    let (context, instrumented) = wizer.instrument(runtime).map_err(snap)?;

    let mut config = Config::new();
    config.epoch_interruption(true);
    let engine = Engine::new(&config).map_err(snap)?;
    let module = Module::new(&engine, &instrumented).map_err(snap)?;
    let mut linker: Linker<StoreLimits> = Linker::new(&engine);
    stand_in_imports(&mut linker).map_err(snap)?;
    // A top level that allocates without end stops at the memory an invocation may
    // have by default (a larger snapshot could not run an event anyway), rather than
    // at 4 GiB of this process's memory.
    let mut store = Store::new(
        &engine,
        StoreLimitsBuilder::new()
            .memory_size(segfn_engine::Limits::default().memory_bytes)
            .trap_on_grow_failure(true)
            .build(),
    );
    store.limiter(|limits| limits);
    store.set_epoch_deadline(1);
    store.epoch_deadline_trap();
    // A script whose top level never ends is stopped, as an invocation would be.
    let ticker = {
        let engine = engine.clone();
        tokio::spawn(async move {
            tokio::time::sleep(INIT_DEADLINE).await;
            engine.increment_epoch();
        })
    };
    let result = init(&mut store, &linker, &module, file, source).await;
    ticker.abort();
    let instance = result?;
    let wasm = wizer
        .snapshot(
            &context,
            &mut Snapshotted {
                store: &mut store,
                instance,
            },
        )
        .await
        .map_err(snap)?;
    Ok(JsModule {
        wasm: mark_snapshot(wasm),
        runtime_bytes: runtime.len(),
        elapsed: started.elapsed(),
    })
}

/// Instantiates the runtime and calls its init export with the script.
async fn init(
    store: &mut Store<StoreLimits>,
    linker: &Linker<StoreLimits>,
    module: &Module,
    file: &str,
    source: &str,
) -> Result<wasmtime::Instance, JsBuildError> {
    let snap = |e: wasmtime::Error| JsBuildError::Snapshot(format!("{e:#}"));
    let instance = linker
        .instantiate_async(&mut *store, module)
        .await
        .map_err(snap)?;
    // Segment's libraries the script names go into its snapshot with it, and only then.
    let libraries: Vec<serde_json::Value> = libraries::named_in(source)
        .flat_map(|library| library.files)
        .map(|(file, text)| serde_json::json!({"file": file, "source": text}))
        .collect();
    let input =
        serde_json::json!({"file": file, "source": source, "libraries": libraries}).to_string();
    let alloc = instance
        .get_typed_func::<u32, u32>(&mut *store, abi::EXPORT_ALLOC)
        .map_err(snap)?;
    let ptr = alloc
        .call_async(&mut *store, input.len() as u32)
        .await
        .map_err(snap)?;
    let memory = instance
        .get_memory(&mut *store, abi::EXPORT_MEMORY)
        .ok_or_else(|| JsBuildError::Runtime("the runtime exports no memory".into()))?;
    memory
        .write(&mut *store, ptr as usize, input.as_bytes())
        .map_err(|e| JsBuildError::Snapshot(e.to_string()))?;
    let init = instance
        .get_typed_func::<(u32, u32), u64>(&mut *store, INIT_EXPORT)
        .map_err(|e| JsBuildError::Runtime(format!("not a segfn JavaScript runtime ({e:#})")))?;
    let packed = init
        .call_async(&mut *store, (ptr, input.len() as u32))
        .await
        .map_err(|e| {
            let text = format!("{e:#}");
            // The two limits of the build, said plainly (without the Wasm backtrace).
            let message = if text.contains("forcing trap when growing memory") {
                format!(
                    "its top level needs more than the {} MiB of memory an invocation may have",
                    segfn_engine::Limits::default().memory_bytes >> 20
                )
            } else if e.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt) {
                format!(
                    "its top level ran for more than {} s",
                    INIT_DEADLINE.as_secs()
                )
            } else {
                format!("evaluating the script's top level failed: {text}")
            };
            JsBuildError::ScriptNoLocation {
                file: file.to_owned(),
                message,
            }
        })?;
    let (ptr, len) = abi::unpack(packed);
    let mut answer = vec![0; len as usize];
    memory
        .read(&*store, ptr as usize, &mut answer)
        .map_err(|e| JsBuildError::Snapshot(e.to_string()))?;
    script_answer(file, &answer)?;
    Ok(instance)
}

/// `{"ok": true}`, or the script's error with its location.
fn script_answer(file: &str, answer: &[u8]) -> Result<(), JsBuildError> {
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(default)]
        ok: bool,
        #[serde(default)]
        error: Option<String>,
        #[serde(default)]
        file: Option<String>,
        #[serde(default)]
        line: Option<u32>,
        #[serde(default)]
        column: Option<u32>,
    }
    let answer: Answer = serde_json::from_slice(answer)
        .map_err(|e| JsBuildError::Snapshot(format!("the runtime's answer: {e}")))?;
    if answer.ok {
        return Ok(());
    }
    let message = answer.error.unwrap_or_else(|| "the script failed".into());
    match (answer.file, answer.line, answer.column) {
        (Some(f), Some(line), Some(column)) if f == file => Err(JsBuildError::Script {
            file: f,
            line,
            column,
            message,
        }),
        // A failure inside the runtime's own globals (e.g. out of memory): no user line.
        _ => Err(JsBuildError::ScriptNoLocation {
            file: file.to_owned(),
            message,
        }),
    }
}

/// The imports at build time: a clock and randomness for the runtime's set-up; logging
/// is dropped (no invocation is running) and the rest traps, as the script's top level
/// may not call out (the prelude refuses `fetch` there before it gets this far).
fn stand_in_imports(linker: &mut Linker<StoreLimits>) -> wasmtime::Result<()> {
    let m = abi::IMPORT_MODULE;
    linker.func_wrap(m, abi::IMPORT_LOG, |_: i32, _: u32, _: u32| {})?;
    linker.func_wrap(m, abi::IMPORT_NOW_MS, || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    })?;
    linker.func_wrap(
        m,
        abi::IMPORT_RANDOM_FILL,
        |mut caller: Caller<'_, StoreLimits>, ptr: u32, len: u32| -> wasmtime::Result<()> {
            let memory = caller
                .get_export(abi::EXPORT_MEMORY)
                .and_then(|e| e.into_memory())
                .ok_or_else(|| wasmtime::Error::msg("no memory"))?;
            let data = memory.data_mut(&mut caller);
            let range = data
                .get_mut(ptr as usize..(ptr as usize).saturating_add(len as usize))
                .ok_or_else(|| wasmtime::Error::msg("random_fill: range outside memory"))?;
            getrandom::fill(range).map_err(|e| wasmtime::Error::msg(e.to_string()))
        },
    )?;
    for name in [
        abi::IMPORT_FETCH,
        abi::IMPORT_FETCH_ALL,
        abi::IMPORT_PANIC,
        abi::IMPORT_SECRET,
    ] {
        let ty = match name {
            n if n == abi::IMPORT_FETCH || n == abi::IMPORT_FETCH_ALL => wasmtime::FuncType::new(
                linker.engine(),
                [wasmtime::ValType::I32, wasmtime::ValType::I32],
                [wasmtime::ValType::I64],
            ),
            _ => wasmtime::FuncType::new(
                linker.engine(),
                [wasmtime::ValType::I32, wasmtime::ValType::I32],
                [],
            ),
        };
        linker.func_new(m, name, ty, move |_, _, _| {
            Err(wasmtime::Error::msg(format!(
                "the script's top level called the host's `{name}`, which only handlers may"
            )))
        })?;
    }
    Ok(())
}

/// The instance after init, as wizer reads it.
struct Snapshotted<'a> {
    store: &'a mut Store<StoreLimits>,
    instance: wasmtime::Instance,
}

impl wasmtime_wizer::InstanceState for Snapshotted<'_> {
    async fn global_get(
        &mut self,
        name: &str,
        _: wasmtime_wizer::ValType,
    ) -> wasmtime_wizer::SnapshotVal {
        use wasmtime::Val;
        use wasmtime_wizer::SnapshotVal;
        let value = self
            .instance
            .get_global(&mut *self.store, name)
            .map(|g| g.get(&mut *self.store));
        match value {
            Some(Val::I32(x)) => SnapshotVal::I32(x),
            Some(Val::I64(x)) => SnapshotVal::I64(x),
            Some(Val::F32(x)) => SnapshotVal::F32(x),
            Some(Val::F64(x)) => SnapshotVal::F64(x),
            Some(Val::V128(x)) => SnapshotVal::V128(x.as_u128()),
            // wizer asks only for the globals its instrumentation exported, all numbers.
            _ => SnapshotVal::I32(0),
        }
    }

    async fn memory_contents(&mut self, name: &str, contents: impl FnOnce(&[u8]) + Send) {
        match self.instance.get_memory(&mut *self.store, name) {
            Some(memory) => contents(memory.data(&*self.store)),
            None => contents(&[]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_errors_carry_the_users_location() {
        let error = script_answer(
            "fn.js",
            br#"{"error": "SyntaxError: unexpected token", "file": "fn.js", "line": 3, "column": 7}"#,
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "fn.js:3:7: SyntaxError: unexpected token"
        );
        let error =
            script_answer("fn.js", br#"{"error": "InternalError: out of memory"}"#).unwrap_err();
        assert_eq!(error.to_string(), "fn.js: InternalError: out of memory");
        assert!(script_answer("fn.js", br#"{"ok": true}"#).is_ok());
    }
}
