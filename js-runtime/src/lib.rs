//! `segfn-js`: a JavaScript runtime guest. QuickJS (through `rquickjs`) evaluates the
//! runtime's globals (`js/prelude.js`, lodash) and a Segment function's script once, in
//! `segfn_js_init`, which `segfn build handler.js` calls before it snapshots the instance
//! with wizer; each invocation then only runs `segfn_handle` (the SDK's ABI exports) on
//! the snapshot: the envelope goes to the prelude's dispatcher, which calls `onTrack` and
//! friends, and this crate runs QuickJS's job queue and the script's timers until the
//! handler's promise settles. The host functions reach JavaScript through `native`.

mod native;
mod sign;
mod zlib;

use rquickjs::{CatchResultExt, Context, Ctx, Function, Runtime, Value, context::EvalOptions};
use std::cell::RefCell;

/// The globals every script sees, evaluated before it.
const PRELUDE: &str = include_str!("../js/prelude.js");
/// lodash 4.17.21, unchanged (js/SOURCES.md), exposed as `_`.
const LODASH: &str = include_str!("../js/lodash.min.js");

/// How deep JavaScript may recurse before QuickJS throws a `RangeError`, in bytes of the
/// guest's shadow stack (2 MiB, build.rs): 5,000 nested calls pass and 8,000 do not
/// (Node 20: about 10,800). Each JavaScript call also takes about 1 KiB of the host's
/// native Wasm stack, which the engine gives snapshots 16 MiB of
/// (host/engine/src/runtime.rs `SNAPSHOT_WASM_STACK`), so runaway recursion is a
/// JavaScript error the handler may catch, not a trap.
const MAX_STACK: usize = 1792 << 10;

/// How much an invocation may allocate before QuickJS's cycle collector first runs.
const GC_HEADROOM: usize = 32 << 20;

/// The interpreter and the context the script was evaluated in; set by [`init`].
struct Engine {
    runtime: Runtime,
    context: Context,
}

thread_local! {
    static ENGINE: RefCell<Option<Engine>> = const { RefCell::new(None) };
}

/// What evaluating the runtime and the script came to: `Ok` or the error the build
/// reports, as JSON (`{"error": ..., "file": ..., "line": ..., "column": ...}`).
pub fn init(file_name: &str, source: &str, libraries: &[LibrarySource]) -> Result<(), String> {
    let runtime = Runtime::new().map_err(|e| error_json(&format!("QuickJS: {e}")))?;
    runtime.set_max_stack_size(MAX_STACK);
    // Rejections without a handler go to the prelude, which reports those still
    // unhandled once the handler has settled.
    runtime.set_host_promise_rejection_tracker(Some(Box::new(
        |ctx: Ctx<'_>, promise: Value<'_>, reason: Value<'_>, handled: bool| {
            if let Ok(track) = global(&ctx, "__segfn_rejection") {
                let _ = track.call::<_, ()>((promise, reason, handled));
            }
        },
    )));
    let context = Context::full(&runtime).map_err(|e| error_json(&format!("QuickJS: {e}")))?;
    context.with(|ctx| -> Result<(), String> {
        native::install(&ctx).map_err(|e| error_json(&format!("QuickJS: {e}")))?;
        eval(&ctx, "segfn:lodash.js", LODASH)?;
        eval(&ctx, "segfn:prelude.js", PRELUDE)?;
        // lodash took the engine's own Math.random when it was evaluated, whose state
        // the snapshot would freeze (the same `_.random`, `_.shuffle` in every event):
        // a fresh lodash now takes the prelude's, reseeded in every invocation.
        eval(
            &ctx,
            "segfn:lodash-rebind.js",
            "globalThis._ = _.runInContext();",
        )?;
        // Segment's libraries the script names (js/libraries.rs), which the build
        // hands over with it.
        for library in libraries {
            eval(&ctx, &library.file, &library.source)?;
        }
        eval(&ctx, file_name, source)?;
        // Handlers declared with `const`/`let` are global bindings but not properties of
        // the global object: a second script in the same context sees them.
        eval(&ctx, "segfn:bind.js", BIND)?;
        Ok(())
    })?;
    // Garbage from evaluating the globals goes before the snapshot, and no collection
    // runs in an invocation unless it allocates [`GC_HEADROOM`] more: a collection
    // walks every object of the heap (lodash's included), touching most of the
    // snapshot's pages, and an instance lives for one event anyway.
    runtime.run_gc();
    let used = usize::try_from(runtime.memory_usage().malloc_size).unwrap_or(0);
    runtime.set_gc_threshold(used.saturating_add(GC_HEADROOM));
    ENGINE.with(|e| *e.borrow_mut() = Some(Engine { runtime, context }));
    Ok(())
}

/// Collects the script's handlers, however they were declared.
const BIND: &str = "__segfn_bind({onTrack: typeof onTrack === 'function' ? onTrack : undefined, onIdentify: typeof onIdentify === 'function' ? onIdentify : undefined, onPage: typeof onPage === 'function' ? onPage : undefined, onScreen: typeof onScreen === 'function' ? onScreen : undefined, onGroup: typeof onGroup === 'function' ? onGroup : undefined, onAlias: typeof onAlias === 'function' ? onAlias : undefined, onDelete: typeof onDelete === 'function' ? onDelete : undefined, onBatch: typeof onBatch === 'function' ? onBatch : undefined, onRequest: typeof onRequest === 'function' ? onRequest : undefined});";

/// Evaluates one script; an exception becomes the build's error JSON.
fn eval(ctx: &Ctx<'_>, file_name: &str, source: &str) -> Result<(), String> {
    let mut options = EvalOptions::default();
    options.global = true;
    options.strict = false;
    options.filename = Some(file_name.to_owned());
    match ctx
        .eval_with_options::<Value, _>(source, options)
        .catch(ctx)
    {
        Ok(_) => Ok(()),
        Err(caught) => Err(describe_caught(ctx, caught)),
    }
}

/// The prelude's description of a thrown value, as the build's error JSON.
fn describe_caught<'js>(ctx: &Ctx<'js>, caught: rquickjs::CaughtError<'js>) -> String {
    let value = match caught {
        rquickjs::CaughtError::Exception(e) => e.into_value(),
        rquickjs::CaughtError::Value(v) => v,
        rquickjs::CaughtError::Error(e) => return error_json(&e.to_string()),
    };
    let described = ctx
        .globals()
        .get::<_, Function>("__segfn_describe_init_error")
        .and_then(|f| f.call::<_, String>((value.clone(),)));
    match described {
        Ok(json) => json,
        // The prelude itself failed before defining the helper.
        Err(_) => error_json(
            &value
                .as_exception()
                .and_then(|e| e.message())
                .unwrap_or_else(|| "the script threw".to_owned()),
        ),
    }
}

fn error_json(message: &str) -> String {
    serde_json::json!({ "error": message }).to_string()
}

/// Runs one envelope through the script and returns the result JSON (ABI `segfn_handle`).
pub fn handle(input: &[u8]) -> Vec<u8> {
    let answer = ENGINE.with(|engine| {
        let engine = engine.borrow();
        let Some(engine) = engine.as_ref() else {
            return failure(
                "this module was not pre-initialised: build it with `segfn build handler.js`",
            );
        };
        // The host sends UTF-8 JSON; checking it is much cheaper than the lossy scan.
        match std::str::from_utf8(input) {
            Ok(input) => run(engine, input),
            Err(_) => run(engine, &String::from_utf8_lossy(input)),
        }
    });
    answer.into_bytes()
}

/// Starts the dispatch, then drives promises and timers until the result is there. The
/// job queue is the runtime's, run outside `Context::with` (which holds the runtime).
fn run(engine: &Engine, input: &str) -> String {
    let started = engine.context.with(|ctx| {
        global(&ctx, "__segfn_dispatch")
            .and_then(|f| f.call::<_, ()>((input,)))
            .catch(&ctx)
            .map_err(|e| e.to_string())
    });
    if let Err(e) = started {
        return failure(&format!("the runtime failed to start the handler: {e}"));
    }
    loop {
        // The host's fetch is synchronous, so every job is runnable now.
        while engine.runtime.is_job_pending() {
            // A job's exception rejects the promise it belongs to; the dispatcher sees it.
            let _ = engine.runtime.execute_pending_job();
        }
        // Then the requests this turn made, together; their promises settle, and the
        // jobs waiting on them run in the next round.
        let flushed = engine.context.with(|ctx| {
            global(&ctx, "__segfn_flush_fetches")
                .and_then(|f| f.call::<_, bool>(()))
                .catch(&ctx)
                .map_err(|e| e.to_string())
        });
        match flushed {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => return failure(&format!("sending the fetch requests failed: {e}")),
        }
        let fired = engine.context.with(|ctx| {
            global(&ctx, "__segfn_fire_timer")
                .and_then(|f| f.call::<_, bool>(()))
                .catch(&ctx)
                .map_err(|e| e.to_string())
        });
        match fired {
            Ok(true) => continue,
            Ok(false) => break,
            Err(e) => return failure(&format!("a timer failed: {e}")),
        }
    }
    let result = engine.context.with(|ctx| {
        let _ = global(&ctx, "__segfn_report_rejections").and_then(|f| f.call::<_, ()>(()));
        global(&ctx, "__segfn_take_result")
            .and_then(|f| f.call::<_, Option<String>>(()))
            .catch(&ctx)
            .map_err(|e| e.to_string())
    });
    match result {
        Ok(Some(result)) => result,
        Ok(None) => failure(
            "the handler's promise never settled: it awaits something that nothing resolves",
        ),
        Err(e) => failure(&format!("the runtime failed to read the result: {e}")),
    }
}

/// One of the prelude's hooks on the global object.
fn global<'js>(ctx: &Ctx<'js>, name: &str) -> rquickjs::Result<Function<'js>> {
    ctx.globals().get(name)
}

/// A whole-call `bad_request` result.
fn failure(message: &str) -> String {
    serde_json::json!({"abi": segfn_sdk::abi::VERSION, "kind": "bad_request", "message": message})
        .to_string()
}

/// The ABI glue, on wasm only: the SDK's exports call `__segfn_handle_envelope`, and
/// `segfn build` calls `segfn_js_init` before the snapshot.
#[cfg(target_family = "wasm")]
mod exports {
    /// Called by the SDK's `segfn_handle` export.
    #[unsafe(no_mangle)]
    fn __segfn_handle_envelope(input: &[u8]) -> Vec<u8> {
        super::handle(input)
    }

    /// `segfn_js_init(ptr, len) -> packed`: the input (from `segfn_alloc`) is
    /// `{"file": ..., "source": ..., "libraries": [{"file", "source"}, ...]}`; the answer
    /// is `{"ok": true}` or the error JSON.
    #[unsafe(export_name = "segfn_js_init")]
    extern "C" fn segfn_js_init(ptr: u32, len: u32) -> u64 {
        // SAFETY: the host wrote `len` bytes at `ptr`, memory it got from `segfn_alloc`
        // with that length and alignment 1, so the Vec owns it.
        let input =
            unsafe { Vec::from_raw_parts(ptr as usize as *mut u8, len as usize, len as usize) };
        let answer = match serde_json::from_slice::<super::InitInput>(&input) {
            Ok(input) => match super::init(&input.file, &input.source, &input.libraries) {
                Ok(()) => r#"{"ok":true}"#.to_owned(),
                Err(error) => error,
            },
            Err(e) => super::error_json(&format!("bad init input: {e}")),
        };
        let output = answer.into_bytes().into_boxed_slice();
        let len = output.len() as u32;
        // The host reads it and snapshots; the leak is a few bytes in the snapshot.
        let ptr = Box::into_raw(output) as *mut u8 as usize as u32;
        segfn_sdk::abi::pack(ptr, len)
    }

    /// QuickJS's clock (wasm-shim's only import), served by the host's `now_ms`.
    #[unsafe(no_mangle)]
    extern "C" fn __rquickjs_host_now_us() -> f64 {
        segfn_sdk::now_millis() as f64 * 1000.0
    }
}

/// What `segfn_js_init` reads.
#[derive(Debug, serde::Deserialize)]
#[cfg_attr(not(target_family = "wasm"), allow(dead_code))]
struct InitInput {
    file: String,
    source: String,
    #[serde(default)]
    libraries: Vec<LibrarySource>,
}

/// A library evaluated before the script (one of js/libraries.rs's, chosen by the build).
#[derive(Debug, serde::Deserialize)]
pub struct LibrarySource {
    /// Its name in error messages, e.g. `segfn:moment.js`.
    pub file: String,
    /// Its text.
    pub source: String,
}

#[cfg(test)]
mod tests;
