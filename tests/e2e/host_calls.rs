//! Host calls out of turn: from `segfn_alloc` while the host places the input or a
//! fetch response, from a start function; and loops at load time, cut at the deadline
//! the function will run with.

use crate::support::*;
use segfn_engine::{Fault, Limits, OutcomeKind, Runtime, RuntimeOptions};
use serde_json::json;
use std::time::{Duration, Instant};

/// A guest whose allocator calls `fetch` whenever `$armed` is set; `handle` arms it
/// (when `arm_in_handle`) and then fetches the partner once.
fn reentrant_guest(url: &str, armed_from_start: bool) -> String {
    let frame = fetch_frame("GET", url);
    format!(
        r#"(module
  (import "segfn" "fetch" (func $fetch (param i32 i32) (result i64)))
  (memory (export "memory") 2)
  (global $next (mut i32) (i32.const 65536))
  (global $armed (mut i32) (i32.const {armed}))
  (data (i32.const 2048) "{frame}")
  (data (i32.const 1024) "{{\"abi\":1,\"kind\":\"success\"}}")
  (func (export "segfn_abi_version") (result i32) (i32.const 1))
  (func (export "segfn_alloc") (param $len i32) (result i32)
    (local $p i32)
    (if (global.get $armed) (then (drop (call $fetch (i32.const 2048) (i32.const {frame_len})))))
    (local.set $p (global.get $next))
    (global.set $next (i32.add (global.get $next) (local.get $len)))
    (if (i32.gt_u (global.get $next) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow (i32.const 16)))))
    (local.get $p))
  (func (export "segfn_handle") (param i32 i32) (result i64)
    (global.set $armed (i32.const 1))
    (drop (call $fetch (i32.const 2048) (i32.const {frame_len})))
    (i64.or (i64.shl (i64.const 1024) (i64.const 32)) (i64.const 26)))
)"#,
        armed = i32::from(armed_from_start),
        frame = wat_bytes(&frame),
        frame_len = frame.len(),
    )
}

#[tokio::test]
async fn fetch_from_the_allocator_is_refused_and_the_deadline_holds() {
    let partner = Partner::start().await;
    let limits = Limits {
        deadline: Duration::from_secs(1),
        ..Limits::default()
    };
    let opts = options(&partner.allow(), &json!({}), limits);
    for (armed_from_start, expected) in [
        (true, "fetch was called outside segfn_handle"),
        (false, "fetch was called from inside another host call"),
    ] {
        let f = load_wat(&reentrant_guest(&partner.url("/x"), armed_from_start))
            .await
            .expect("loads: the probe does not allocate");
        let started = Instant::now();
        let r = invoke_event(&f, &opts, track("E", "u"), json!({})).await;
        assert!(started.elapsed() < Duration::from_millis(900), "{r:?}");
        assert_eq!(r.outcome.kind, OutcomeKind::BadRequest, "{r:?}");
        assert_eq!(r.fault, Some(Fault::Abi));
        let message = r.outcome.message.unwrap();
        assert!(message.contains(expected), "{message}");
    }
    // Only the handler's own fetch reached the partner (none from the allocator).
    assert_eq!(partner.received().len(), 1);
}

/// With a small instance pool shared by everyone, a flood of re-entrant invocations
/// leaves no stacks or slots behind: an ordinary guest still runs afterwards.
#[tokio::test]
async fn reentrant_guests_cannot_exhaust_the_pool() {
    let partner = Partner::start().await;
    let runtime = Runtime::new(&RuntimeOptions {
        pooling: true,
        max_instances: 8,
        ..RuntimeOptions::default()
    })
    .unwrap();
    let wasm = wat::parse_str(reentrant_guest(&partner.url("/x"), false)).unwrap();
    let bad = runtime.load(&wasm).await.unwrap();
    let good = runtime
        .load(&wat::parse_str(WatGuest::default().wat()).unwrap())
        .await
        .unwrap();
    let opts = options(&partner.allow(), &json!({}), Limits::default());
    for _ in 0..5 {
        let runs: Vec<_> = (0..8)
            .map(|_| {
                let (bad, opts) = (bad.clone(), opts.clone());
                tokio::spawn(
                    async move { invoke_event(&bad, &opts, track("E", "u"), json!({})).await },
                )
            })
            .collect();
        for run in runs {
            let r = run.await.unwrap();
            assert_ne!(r.fault, Some(Fault::Host), "{r:?}");
        }
    }
    let r = invoke_event(&good, &opts, track("E", "u"), json!({})).await;
    assert_eq!(r.outcome.kind, OutcomeKind::Success, "{r:?}");
}

#[tokio::test]
async fn a_start_function_may_not_call_the_host() {
    let wat = r#"(module
  (import "segfn" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (func $start (call $log (i32.const 1) (i32.const 0) (i32.const 4)))
  (start $start)
  (func (export "segfn_abi_version") (result i32) (i32.const 1))
  (func (export "segfn_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "segfn_handle") (param i32 i32) (result i64) (i64.const 0)))"#;
    let err = load_wat(wat).await.unwrap_err().to_string();
    assert!(err.contains("log was called outside segfn_handle"), "{err}");
}

#[tokio::test]
async fn a_load_time_loop_is_cut_at_the_functions_deadline() {
    let wat = r#"(module
  (memory (export "memory") 1)
  (func $start (loop $l (br $l)))
  (start $start)
  (func (export "segfn_abi_version") (result i32) (i32.const 1))
  (func (export "segfn_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "segfn_handle") (param i32 i32) (result i64) (i64.const 0)))"#;
    for deadline_ms in [300u64, 3000] {
        let runtime = Runtime::new(&RuntimeOptions {
            pooling: false,
            load_deadline: Duration::from_millis(deadline_ms),
            ..RuntimeOptions::default()
        })
        .unwrap();
        let started = Instant::now();
        let err = runtime
            .load(&wat::parse_str(wat).unwrap())
            .await
            .unwrap_err()
            .to_string();
        let took = started.elapsed();
        assert!(
            err.contains(&format!("within the deadline of {deadline_ms} ms")),
            "{err}"
        );
        assert!(
            took >= Duration::from_millis(deadline_ms)
                && took < Duration::from_millis(deadline_ms + 1000),
            "{took:?}"
        );
    }
}

#[tokio::test]
async fn a_fetch_all_list_that_lies_about_its_size_is_an_abi_fault() {
    // A count of 50 frames in 8 bytes.
    let list = [50u32.to_le_bytes(), 0u32.to_le_bytes()].concat();
    let guest = WatGuest {
        handle_body: "(drop (call $fetch_all (i32.const 4096) (i32.const 8)))",
        data: vec![(4096, list)],
        ..WatGuest::default()
    };
    let f = guest.load().await.expect("loads");
    let opts = options(&[], &json!({}), Limits::default());
    let r = invoke_event(&f, &opts, track("E", "u"), json!({})).await;
    assert_eq!(r.outcome.kind, OutcomeKind::BadRequest, "{r:?}");
    assert_eq!(r.fault, Some(Fault::Abi));
    assert!(
        r.outcome
            .message
            .unwrap()
            .contains("fetch_all: frame list claims 50 frames"),
    );
}

#[tokio::test]
async fn a_fetch_all_longer_than_the_fetches_left_is_refused_before_it_is_read() {
    // 101 empty frames: one more than a single event's fetch limit.
    let mut list = 101u32.to_le_bytes().to_vec();
    for _ in 0..101 {
        list.extend_from_slice(&0u32.to_le_bytes());
    }
    let len = list.len();
    let guest = WatGuest {
        handle_body: &format!("(drop (call $fetch_all (i32.const 4096) (i32.const {len})))"),
        data: vec![(4096, list)],
        ..WatGuest::default()
    };
    let f = guest.load().await.expect("loads");
    let opts = options(&[], &json!({}), Limits::default());
    let r = invoke_event(&f, &opts, track("E", "u"), json!({})).await;
    assert_eq!(r.fault, Some(Fault::Abi), "{r:?}");
    let message = r.outcome.message.unwrap();
    assert!(
        message.contains("101 requests, more than the 100 fetches left"),
        "{message}"
    );
}

/// A secret that straddles the log limit is read whole and redacted before the line is
/// cut: no prefix of it is kept.
#[tokio::test]
async fn a_secret_across_the_log_limit_leaves_no_prefix() {
    let secret = "sk_live_straddle_secret";
    let cap = Limits::default().log_bytes;
    let mut line = vec![b'x'; cap - 5];
    line.extend_from_slice(secret.as_bytes());
    let len = line.len();
    let guest = WatGuest {
        handle_body: &format!("(call $log (i32.const 1) (i32.const 8192) (i32.const {len}))"),
        data: vec![(8192, line)],
        ..WatGuest::default()
    };
    let f = guest.load().await.expect("loads");
    let settings = json!({ "apiKey": secret });
    let opts = options(&[], &settings, Limits::default());
    let r = invoke_event(&f, &opts, track("E", "u"), settings).await;
    let logged = &r.logs[0].message;
    assert!(!logged.contains("sk_l"), "{}", &logged[logged.len() - 20..]);
}

/// A value the guest declares secret (what `segfn_sdk::Secret` does when settings are
/// read) is redacted from what the guest logs afterwards, though no setting's name says
/// it is secret.
#[tokio::test]
async fn a_declared_secret_is_redacted_from_later_logs() {
    let secret = b"plain-looking-value-42";
    let mut line = b"calling with ".to_vec();
    line.extend_from_slice(secret);
    let len = line.len();
    let guest = WatGuest {
        handle_body: &format!(
            "(call $secret (i32.const 8192) (i32.const {}))
             (call $log (i32.const 1) (i32.const 12288) (i32.const {len}))",
            secret.len()
        ),
        data: vec![(8192, secret.to_vec()), (12288, line)],
        ..WatGuest::default()
    };
    let f = guest.load().await.expect("loads");
    let settings = json!({ "region": "plain-looking-value-42" });
    let opts = options(&[], &settings, Limits::default());
    let r = invoke_event(&f, &opts, track("E", "u"), settings).await;
    assert_eq!(r.logs[0].message, "calling with [redacted]", "{:?}", r.logs);
}

/// Each new declared secret rebuilds the redactor, so their number is bounded as a
/// settings object's secrets are: the 257th distinct value (four ASCII letters each)
/// ends the invocation.
#[tokio::test]
async fn declaring_too_many_secrets_ends_the_invocation() {
    let guest = WatGuest {
        handle_body: "(local $i i32)
            (loop $more
              (i32.store (i32.const 8192) (i32.add (i32.const 0x41414141)
                (i32.add (i32.rem_u (local.get $i) (i32.const 26))
                  (i32.shl (i32.div_u (local.get $i) (i32.const 26)) (i32.const 8)))))
              (call $secret (i32.const 8192) (i32.const 4))
              (local.set $i (i32.add (local.get $i) (i32.const 1)))
              (br_if $more (i32.lt_u (local.get $i) (i32.const 300))))",
        ..WatGuest::default()
    };
    let f = guest.load().await.expect("loads");
    let settings = json!({});
    let opts = options(&[], &settings, Limits::default());
    let r = invoke_event(&f, &opts, track("E", "u"), settings).await;
    assert_eq!(r.outcome.kind, OutcomeKind::BadRequest, "{:?}", r.outcome);
    let message = r.outcome.message.unwrap_or_default();
    assert!(message.contains("more than 256 secret values"), "{message}");
}

/// The `secret` call could hold a core past the deadline (32,000 repetitive bytes ran
/// 32 s under a 1 s deadline, outcome `success`): one value is now capped at 8 KiB, and
/// the largest set a guest may declare (eight repetitive, overlapping values of 8 KiB,
/// 64 KiB in all, each rebuilding the redactor) costs milliseconds.
#[tokio::test]
async fn declared_secrets_cannot_hold_the_invocation_past_its_deadline() {
    let limits = Limits {
        deadline: Duration::from_secs(1),
        ..Limits::default()
    };
    let long = b"ab".repeat(16_000);
    let guest = WatGuest {
        handle_body: "(call $secret (i32.const 65536) (i32.const 32000))",
        data: vec![(65536, long)],
        ..WatGuest::default()
    };
    let f = guest.load().await.expect("loads");
    let started = Instant::now();
    let opts = options(&[], &json!({}), limits.clone());
    let r = invoke_event(&f, &opts, track("E", "u"), json!({})).await;
    assert!(started.elapsed() < Duration::from_secs(1), "{r:?}");
    assert_eq!(r.fault, Some(Fault::Abi), "{r:?}");
    let message = r.outcome.message.unwrap_or_default();
    assert!(message.contains("at most 8 KiB each"), "{message}");

    // Eight values of 8,192 bytes at 65536 + i * 8192, each "ab" repeated with a
    // different last byte, then a log line holding them all.
    let values: Vec<Vec<u8>> = (0..8u8)
        .map(|i| {
            let mut v = b"ab".repeat(4096);
            v[8191] = b'0' + i;
            v
        })
        .collect();
    let line = values.concat();
    let guest = WatGuest {
        handle_body: "(local $i i32)
            (loop $more
              (call $secret (i32.add (i32.const 65536) (i32.mul (local.get $i) (i32.const 8192)))
                (i32.const 8192))
              (local.set $i (i32.add (local.get $i) (i32.const 1)))
              (br_if $more (i32.lt_u (local.get $i) (i32.const 8))))
            (call $log (i32.const 1) (i32.const 65536) (i32.const 65536))",
        data: vec![(65536, line)],
        ..WatGuest::default()
    };
    let f = guest.load().await.expect("loads");
    let started = Instant::now();
    let r = invoke_event(&f, &opts, track("E", "u"), json!({})).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "{took:?}: {r:?}");
    assert_eq!(r.outcome.kind, OutcomeKind::Success, "{r:?}");
    // The line is cut at the 16 KiB log limit, after the first two values: the third
    // was read only in part, and nothing of it shows.
    assert_eq!(r.logs[0].message, "[redacted][redacted]…", "{:?}", r.logs);
}

/// Each declared value rebuilds the redactor over every secret so far: declaring many
/// mid-sized values one by one (64 of 1 KiB: within the count and size caps) would
/// rebuild quadratically on the async worker. The work of all rebuilds together is
/// capped; past it the invocation ends, saying so.
#[tokio::test]
async fn rebuilding_the_redactor_value_by_value_is_bounded() {
    let guest = WatGuest {
        handle_body: "(local $i i32)
            (loop $more
              (i32.store (i32.const 65536) (i32.add (i32.const 0x41414141) (local.get $i)))
              (call $secret (i32.const 65536) (i32.const 1024))
              (local.set $i (i32.add (local.get $i) (i32.const 1)))
              (br_if $more (i32.lt_u (local.get $i) (i32.const 64))))",
        data: vec![(65536, vec![b'z'; 1024])],
        ..WatGuest::default()
    };
    let f = guest.load().await.expect("loads");
    let started = Instant::now();
    let opts = options(&[], &json!({}), Limits::default());
    let r = invoke_event(&f, &opts, track("E", "u"), json!({})).await;
    assert!(started.elapsed() < Duration::from_secs(1), "{r:?}");
    assert_eq!(r.fault, Some(Fault::Abi), "{r:?}");
    let message = r.outcome.message.unwrap_or_default();
    assert!(message.contains("rebuilt more than 4 MiB"), "{message}");
}
