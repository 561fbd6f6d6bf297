//! Hostile and broken guests, written in WAT: each ends with the right outcome within
//! its limit; the host never panics or hangs.

use crate::support::*;
use segfn_engine::{Limits, LoadError, OutcomeKind};
use serde_json::json;
use std::time::{Duration, Instant};

fn opts(limits: Limits) -> segfn_engine::InvokeOptions {
    options(&[], &json!({}), limits)
}

/// Runs a track event through `f` with no settings and no allowed hosts.
async fn run(f: &segfn_engine::LoadedFunction, limits: Limits) -> segfn_engine::Report {
    invoke_event(f, &opts(limits), track("E", "u"), json!({})).await
}

#[tokio::test]
async fn infinite_loop_ends_at_the_deadline() {
    let f = guest_running("(loop $l (br $l))").await;
    let deadline = Duration::from_millis(300);
    let started = Instant::now();
    let r = run(
        &f,
        Limits {
            deadline,
            ..Limits::default()
        },
    )
    .await;
    let took = started.elapsed();
    assert_eq!(r.outcome.kind, OutcomeKind::Retry, "{r:#?}");
    assert!(r.outcome.message.unwrap().contains("deadline of 300 ms"));
    assert!(took >= deadline, "ended early: {took:?}");
    assert!(
        took < deadline + Duration::from_millis(500),
        "ended late: {took:?}"
    );
    // The loop ran for 300 ms: the count says so (it said 32 when the fuel in a
    // register was lost with the stopped instance).
    assert!(
        r.stats.instructions > 10_000_000,
        "instructions: {}",
        r.stats.instructions
    );
}

#[tokio::test]
async fn instruction_cap_trips_with_its_name() {
    let f = guest_running("(loop $l (br $l))").await;
    let limits = Limits {
        instructions: Some(5_000_000),
        ..Limits::default()
    };
    let r = run(&f, limits).await;
    assert_eq!(r.outcome.kind, OutcomeKind::BadRequest);
    assert!(
        r.outcome
            .message
            .unwrap()
            .contains("instruction limit of 5000000")
    );
    assert!(r.stats.instructions >= 5_000_000);
}

#[tokio::test]
async fn memory_growth_bomb_is_capped() {
    // Grows 16 pages at a time until refused, then aborts, as an allocator would.
    let body = "(loop $l (if (i32.eq (memory.grow (i32.const 16)) (i32.const -1)) (then unreachable)) (br $l))";
    let f = guest_running(body).await;
    let limits = Limits {
        memory_bytes: 16 << 20,
        ..Limits::default()
    };
    let r = run(&f, limits).await;
    assert_eq!(r.outcome.kind, OutcomeKind::BadRequest, "{r:#?}");
    assert_eq!(
        r.outcome.message.as_deref(),
        Some("the function exceeded its memory limit of 16 MiB")
    );
    assert!(r.stats.memory_bytes <= 16 << 20);
}

#[tokio::test]
async fn memory_declared_beyond_the_cap_fails_cleanly() {
    let wasm = wat::parse_str(WatGuest::default().wat().replace(
        "(memory (export \"memory\") 2)",
        "(memory (export \"memory\") 4000)",
    ))
    .unwrap();
    // Loading probes with default limits (128 MiB): 4000 pages is ~250 MiB.
    let err = runtime().load(&wasm).await.unwrap_err();
    assert!(matches!(err, LoadError::Instantiate(_)), "{err}");
}

#[tokio::test]
async fn huge_output_is_refused_by_size() {
    let body = "(return (i64.const 0x7fffffff))";
    let f = guest_running(body).await;
    let r = run(&f, Limits::default()).await;
    assert_eq!(r.outcome.kind, OutcomeKind::BadRequest);
    assert!(
        r.outcome
            .message
            .unwrap()
            .contains("exceeds the output limit of 4 MiB")
    );
}

#[tokio::test]
async fn output_outside_memory_is_an_abi_fault() {
    let body = "(return (i64.or (i64.shl (i64.const 131000) (i64.const 32)) (i64.const 1000)))";
    let f = guest_running(body).await;
    let r = run(&f, Limits::default()).await;
    assert_eq!(r.outcome.kind, OutcomeKind::BadRequest);
    assert!(r.outcome.message.unwrap().contains("outside its memory"));
}

#[tokio::test]
async fn garbage_and_truncated_output_are_bad_requests() {
    for result in [
        "\u{0}\u{1}garbage",
        r#"{"abi":1,"kind":"succ"#,
        r#"{"abi":1,"kind":"exploded"}"#,
        "",
    ] {
        let f = WatGuest {
            result,
            ..WatGuest::default()
        }
        .load()
        .await
        .unwrap();
        let r = run(&f, Limits::default()).await;
        assert_eq!(
            r.outcome.kind,
            OutcomeKind::BadRequest,
            "{result:?}: {r:#?}"
        );
        assert!(
            r.outcome
                .message
                .unwrap()
                .contains("not a valid result object"),
            "{result:?}"
        );
    }
}

#[tokio::test]
async fn missing_exports_are_refused_at_load() {
    let wat = WatGuest::default()
        .wat()
        .replace("(export \"segfn_handle\")", "");
    let err = load_wat(&wat).await.unwrap_err();
    assert!(
        matches!(
            err,
            LoadError::Export {
                name: "segfn_handle",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("segfn_sdk::export!"));

    let wat = WatGuest::default()
        .wat()
        .replace("(memory (export \"memory\") 2)", "(memory 2)");
    let err = load_wat(&wat).await.unwrap_err();
    assert!(
        matches!(err, LoadError::Export { name: "memory", .. }),
        "{err}"
    );
}

#[tokio::test]
async fn wrong_abi_version_is_refused_at_load() {
    let err = WatGuest {
        abi: 2,
        ..WatGuest::default()
    }
    .load()
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            LoadError::AbiVersion {
                found: 2,
                expected: 1
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn unknown_imports_and_non_wasm_are_refused() {
    let wat = WatGuest::default()
        .wat()
        .replace("(memory (export", "(import \"wasi_snapshot_preview1\" \"fd_write\" (func (param i32 i32 i32 i32) (result i32)))\n  (memory (export");
    let err = load_wat(&wat).await.unwrap_err();
    assert!(
        err.to_string().contains("wasi_snapshot_preview1::fd_write"),
        "{err}"
    );
    assert!(err.to_string().contains("not WASI"), "{err}");
    let err = runtime().load(b"\0asm\x01\0\0\0garbage").await.unwrap_err();
    assert!(matches!(err, LoadError::Compile(_)), "{err}");
    let err = runtime().load(b"not wasm at all").await.unwrap_err();
    assert!(matches!(err, LoadError::Compile(_)), "{err}");
}

#[tokio::test]
async fn a_reported_panic_is_a_bad_request_with_its_message() {
    let msg = b"panicked at src/lib.rs:3:5: boom";
    let body = format!(
        "(call $panic (i32.const 4096) (i32.const {})) unreachable",
        msg.len()
    );
    let f = WatGuest {
        handle_body: &body,
        data: vec![(4096, msg.to_vec())],
        ..WatGuest::default()
    }
    .load()
    .await
    .unwrap();
    let r = run(&f, Limits::default()).await;
    assert_eq!(r.outcome.kind, OutcomeKind::BadRequest);
    assert_eq!(
        r.outcome.message.as_deref(),
        Some("the function panicked: panicked at src/lib.rs:3:5: boom")
    );
}

#[tokio::test]
async fn log_flood_is_truncated_and_noted() {
    let body = "(local.set $ptr (i32.const 0)) (loop $l (call $log (i32.const 1) (i32.const 4096) (i32.const 100)) (local.set $ptr (i32.add (local.get $ptr) (i32.const 1))) (br_if $l (i32.lt_u (local.get $ptr) (i32.const 100000))))";
    let f = WatGuest {
        handle_body: body,
        data: vec![(4096, vec![b'x'; 100])],
        ..WatGuest::default()
    }
    .load()
    .await
    .unwrap();
    let limits = Limits {
        log_bytes: 1000,
        ..Limits::default()
    };
    let r = run(&f, limits).await;
    assert_eq!(r.outcome.kind, OutcomeKind::Success);
    let kept: usize = r
        .logs
        .iter()
        .take(r.logs.len() - 1)
        .map(|l| l.message.len())
        .sum();
    assert_eq!(kept, 1000);
    let last = r.logs.last().unwrap();
    assert!(
        last.message
            .contains("log limit of 1000 B or 1000 lines reached; 99990 later line(s) dropped"),
        "{last:?}"
    );
}

#[tokio::test]
async fn empty_log_lines_are_capped_by_count() {
    let body = "(loop $l (call $log (i32.const 1) (i32.const 0) (i32.const 0)) (br $l))";
    let f = guest_running(body).await;
    let limits = Limits {
        deadline: Duration::from_millis(200),
        ..Limits::default()
    };
    let r = run(&f, limits).await;
    assert_eq!(r.outcome.kind, OutcomeKind::Retry);
    assert_eq!(r.logs.len(), 1001, "1000 lines and the note");
}

#[tokio::test]
async fn batch_results_must_match_the_batch() {
    let f = WatGuest {
        result: r#"{"abi":1,"kind":"success","results":[]}"#,
        ..WatGuest::default()
    }
    .load()
    .await
    .unwrap();
    let events = vec![track("A", "u"), track("B", "u")];
    let r = f
        .invoke(
            &opts(Limits::default()),
            segfn_sdk::abi::Call::Batch { events },
            json!({}),
        )
        .await;
    assert_eq!(r.outcome.kind, OutcomeKind::BadRequest);
    assert!(
        r.outcome
            .message
            .unwrap()
            .contains("0 results for a batch of 2")
    );
    let r = run(&f, Limits::default()).await;
    assert_eq!(r.outcome.kind, OutcomeKind::BadRequest);
}

#[tokio::test]
async fn an_allocator_that_returns_null_is_a_fault_not_a_write_at_zero() {
    let wat = WatGuest::default().wat().replace(
        "(local.set $p (global.get $next))",
        "(return (i32.const 0))",
    );
    let f = load_wat(&wat).await.unwrap();
    let r = run(&f, Limits::default()).await;
    assert_eq!(r.outcome.kind, OutcomeKind::BadRequest);
    assert!(
        r.outcome
            .message
            .unwrap()
            .contains("returned 0 (out of memory)")
    );
}

#[tokio::test]
async fn log_with_a_bad_pointer_is_an_abi_fault() {
    let f = guest_running("(call $log (i32.const 1) (i32.const -16) (i32.const 64))").await;
    let r = run(&f, Limits::default()).await;
    assert_eq!(r.outcome.kind, OutcomeKind::BadRequest);
    assert!(
        r.outcome
            .message
            .unwrap()
            .contains("outside the function's memory")
    );
}

#[tokio::test]
async fn malformed_fetch_frames_are_abi_faults() {
    // A frame whose head length points past its end.
    let frame = [0xff, 0xff, 0, 0, b'{'];
    let body = "(drop (call $fetch (i32.const 4096) (i32.const 5)))";
    let f = WatGuest {
        handle_body: body,
        data: vec![(4096, frame.to_vec())],
        ..WatGuest::default()
    }
    .load()
    .await
    .unwrap();
    let r = run(&f, Limits::default()).await;
    assert_eq!(r.outcome.kind, OutcomeKind::BadRequest);
    assert!(r.outcome.message.unwrap().contains("broke the segfn ABI"));
}

/// Runs a guest that fetches `url` once, with `allow` as the allow-list.
pub(crate) async fn fetch_once(url: &str, allow: &[String]) -> segfn_engine::Report {
    let f = fetching_guest(url, 1).await;
    invoke_event(
        &f,
        &options(allow, &json!({}), Limits::default()),
        track("E", "u"),
        json!({}),
    )
    .await
}

/// A guest that calls `fetch(url)` `times` times and then succeeds.
pub(crate) async fn fetching_guest(url: &str, times: u32) -> segfn_engine::LoadedFunction {
    let frame = fetch_frame("GET", url);
    let body = format!(
        "(local.set $ptr (i32.const 0)) (loop $l (drop (call $fetch (i32.const 4096) (i32.const {len}))) (local.set $ptr (i32.add (local.get $ptr) (i32.const 1))) (br_if $l (i32.lt_u (local.get $ptr) (i32.const {times}))))",
        len = frame.len()
    );
    WatGuest {
        handle_body: &body,
        data: vec![(4096, frame)],
        ..WatGuest::default()
    }
    .load()
    .await
    .unwrap()
}

#[tokio::test]
async fn fetch_count_is_limited() {
    let partner = Partner::start().await;
    let f = fetching_guest(&partner.url("/x"), 10).await;
    let limits = Limits {
        fetches: 3,
        ..Limits::default()
    };
    let r = invoke_event(
        &f,
        &options(&partner.allow(), &json!({}), limits),
        track("E", "u"),
        json!({}),
    )
    .await;
    assert_eq!(partner.received().len(), 3);
    // Three calls and the first refusal are traced; the rest are counted.
    assert_eq!(r.requests.len(), 4);
    assert!(
        r.logs
            .iter()
            .any(|l| l.message == "[segfn] fetch limit of 3 reached; 7 later fetch(es) refused"),
        "{:?}",
        r.logs
    );
    assert!(
        r.requests[3]
            .error
            .as_deref()
            .unwrap()
            .contains("limit of 3 fetches"),
        "{:?}",
        r.requests[3]
    );
}

#[tokio::test]
async fn a_slow_partner_cannot_outlast_the_deadline() {
    let partner = Partner::start().await;
    partner.answer(Answer::delayed(30_000));
    let f = fetching_guest(&partner.url("/slow"), 1).await;
    let deadline = Duration::from_millis(400);
    let started = Instant::now();
    let r = invoke_event(
        &f,
        &options(
            &partner.allow(),
            &json!({}),
            Limits {
                deadline,
                ..Limits::default()
            },
        ),
        track("E", "u"),
        json!({}),
    )
    .await;
    let took = started.elapsed();
    assert!(
        took < deadline + Duration::from_millis(500),
        "took {took:?}"
    );
    // Either the fetch timed out (and the guest then finished) or the deadline hit.
    match r.outcome.kind {
        OutcomeKind::Retry => assert!(r.outcome.message.unwrap().contains("deadline")),
        OutcomeKind::Success => assert!(
            r.requests[0]
                .error
                .as_deref()
                .unwrap()
                .starts_with("timeout")
        ),
        other => panic!("unexpected {other}: {r:#?}"),
    }
}

#[tokio::test]
async fn oversized_responses_are_cut_off() {
    let partner = Partner::start().await;
    let r = fetch_once(&partner.url("/huge"), &partner.allow()).await;
    assert_eq!(r.outcome.kind, OutcomeKind::Success);
    let err = r.requests[0].error.as_deref().unwrap();
    assert!(
        err.starts_with("limit: the response body exceeds the limit of 1 MiB"),
        "{err}"
    );
}

/// A guest that writes 200 bytes on pages 24 KiB apart (more runs of written pages than
/// the dirty-page reset copies back; some beyond the 4 MiB kept resident), changes its
/// data segment and grows its memory, then checks in the next event that all of it is
/// as the module declares it. `SECTION` marks it as an interpreter snapshot or not.
const LITTERING_GUEST: &str = r#"(module
  SECTION
  (memory (export "memory") 80)
  (global $next (mut i32) (i32.const 4096))
  (data (i32.const 8) "A")
  (data (i32.const 1024) "{\"abi\":1,\"kind\":\"success\"}")
  (func (export "segfn_abi_version") (result i32) (i32.const 1))
  (func (export "segfn_alloc") (param $len i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $next))
    (global.set $next (i32.add (global.get $next) (local.get $len)))
    (local.get $p))
  (func (export "segfn_handle") (param $ptr i32) (param $len i32) (result i64)
    (local $i i32) (local $a i32)
    (if (i32.ne (memory.size) (i32.const 80)) (then unreachable))
    (if (i32.ne (i32.load8_u (i32.const 8)) (i32.const 65)) (then unreachable))
    (loop $litter
      (local.set $a (i32.add (i32.const 65536) (i32.mul (local.get $i) (i32.const 24576))))
      (if (i32.ne (i32.load8_u (local.get $a)) (i32.const 0)) (then unreachable))
      (i32.store8 (local.get $a) (i32.const 255))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $litter (i32.lt_u (local.get $i) (i32.const 200))))
    (i32.store8 (i32.const 8) (i32.const 66))
    (drop (memory.grow (i32.const 1)))
    (i32.store8 (i32.const 5242880) (i32.const 255))
    (i64.or (i64.shl (i64.const 1024) (i64.const 32)) (i64.const 26))))"#;

#[tokio::test]
async fn nothing_a_guest_leaves_in_a_pooled_slot_reaches_the_next_event() {
    let runtime = segfn_engine::Runtime::new(&segfn_engine::RuntimeOptions {
        max_instances: 2,
        ..segfn_engine::RuntimeOptions::default()
    })
    .expect("a pooled runtime");
    for (section, reset) in [
        ("", segfn_engine::MemoryReset::DirtyPages),
        (
            r#"(@custom "segfn:interpreter-snapshot" "")"#,
            segfn_engine::MemoryReset::CopyImage,
        ),
    ] {
        let wasm = wat::parse_str(LITTERING_GUEST.replace("SECTION", section)).unwrap();
        let f = runtime.load(&wasm).await.expect("the guest loads");
        assert_eq!(f.allocation(), segfn_engine::Allocation::Pooled);
        assert_eq!(f.memory_reset(), Some(reset));
        for i in 0..10 {
            let r = run(&f, Limits::default()).await;
            assert_eq!(
                r.outcome.kind,
                OutcomeKind::Success,
                "{reset:?}, event {i}: {r:#?}"
            );
        }
    }
}
