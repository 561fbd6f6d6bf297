//! The HTTP client for partner calls, measured alone for `scripts/bench`: segfn's
//! `FetchClient` (reqwest with the allow-list's resolver, redirect policy, timeouts and
//! the response cap), a plain `reqwest::Client`, and hyper-util's pooled client (what
//! reqwest is built on, with nothing around it). Each posts the same 2.4 KB JSON body
//! with the same headers to the same partner, with the same number of requests in
//! flight, on a two-worker runtime (one worker per core here); the clients take turns,
//! three rounds each, so drift on the machine falls on all of them. Prints one
//! JSON line per client: requests/s and this process's CPU time per request.
//!
//! Run: `cargo run --release -p segfn-engine --example http_client -- URL [SECONDS [IN_FLIGHT]]`
//! with URL a partner on 127.0.0.1 (bench/partner.js) that answers every POST.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::{Client as HyperClient, connect::HttpConnector};
use segfn_engine::{FetchClient, FetchPolicy};
use segfn_sdk::abi::FetchRequestHead;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What the request carries: the forwarder's headers and a body of an event's size.
const HEADERS: &[(&str, &str)] = &[
    ("content-type", "application/json"),
    ("authorization", "Bearer sk_bench_0123456789abcdef"),
];
const MAX_BODY: usize = 1 << 20;
const TIMEOUT: Duration = Duration::from_secs(5);
const ROUNDS: u32 = 3;

/// This process's user and system CPU time so far.
fn cpu_time() -> Duration {
    // SAFETY: getrusage writes one `rusage` into the zeroed value it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

#[derive(Clone)]
enum Client {
    Segfn(FetchClient),
    Reqwest(reqwest::Client),
    Hyper(Arc<HyperClient<HttpConnector, Full<Bytes>>>),
}

impl Client {
    fn name(&self) -> &'static str {
        match self {
            Client::Segfn(_) => "segfn FetchClient (reqwest, allow-list, caps)",
            Client::Reqwest(_) => "reqwest::Client, defaults",
            Client::Hyper(_) => "hyper-util pooled client",
        }
    }

    /// One request, its body read to the end; panics on anything but a 2xx so a
    /// broken partner cannot pass for a fast one.
    async fn post(&self, url: &str, body: &Bytes) -> usize {
        match self {
            Client::Segfn(c) => {
                let head = FetchRequestHead {
                    method: "POST".into(),
                    url: url.into(),
                    headers: HEADERS
                        .iter()
                        .map(|(n, v)| (n.to_string(), v.to_string()))
                        .collect(),
                };
                let response = c
                    .send(&head, body.to_vec(), TIMEOUT, MAX_BODY)
                    .await
                    .expect("the partner answers");
                assert!((200..300).contains(&response.status));
                response.body.len()
            }
            Client::Reqwest(c) => {
                let mut request = c.post(url).body(body.clone()).timeout(TIMEOUT);
                for (n, v) in HEADERS {
                    request = request.header(*n, *v);
                }
                let response = request.send().await.expect("the partner answers");
                assert!(response.status().is_success());
                response.bytes().await.expect("the body").len()
            }
            Client::Hyper(c) => {
                let mut request = hyper::Request::post(url);
                for (n, v) in HEADERS {
                    request = request.header(*n, *v);
                }
                let request = request.body(Full::new(body.clone())).expect("a request");
                let response = tokio::time::timeout(TIMEOUT, c.request(request))
                    .await
                    .expect("in time")
                    .expect("the partner answers");
                assert!(response.status().is_success());
                let body = response.into_body().collect().await.expect("the body");
                body.to_bytes().len()
            }
        }
    }
}

/// Runs `in_flight` loops of requests for `span`; returns requests done and CPU used.
async fn round(
    client: &Client,
    url: &Arc<str>,
    body: &Bytes,
    in_flight: usize,
    span: Duration,
) -> (u64, Duration) {
    let done = Arc::new(AtomicU64::new(0));
    let cpu = cpu_time();
    let end = Instant::now() + span;
    let loops: Vec<_> = (0..in_flight)
        .map(|_| {
            let (client, url, body, done) =
                (client.clone(), url.clone(), body.clone(), done.clone());
            tokio::spawn(async move {
                while Instant::now() < end {
                    client.post(&url, &body).await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for l in loops {
        l.await.expect("a request loop");
    }
    (done.load(Ordering::Relaxed), cpu_time() - cpu)
}

fn main() -> anyhow::Result<()> {
    let usage = "usage: http_client URL [SECONDS [IN_FLIGHT]]";
    let mut args = std::env::args().skip(1);
    let url: Arc<str> = args.next().ok_or_else(|| anyhow::anyhow!(usage))?.into();
    let seconds: f64 = args.next().map_or(Ok(6.0), |s| s.parse())?;
    let in_flight: usize = args.next().map_or(Ok(16), |s| s.parse())?;

    let authority = url
        .split("//")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .ok_or_else(|| anyhow::anyhow!("{url}: not an http:// URL"))?;
    let event = json!({"type": "track", "event": "Order Completed", "userId": "u-0123456789",
                       "properties": {"note": "x".repeat(2_200)}});
    let body = Bytes::from(serde_json::to_vec(&event)?);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let clients = [
            Client::Segfn(FetchClient::new(FetchPolicy::parse(&[authority])?)?),
            Client::Reqwest(reqwest::Client::builder().no_proxy().build()?),
            Client::Hyper(Arc::new(
                HyperClient::builder(hyper_util::rt::TokioExecutor::new())
                    .build(HttpConnector::new()),
            )),
        ];
        let turns = ROUNDS as usize * clients.len();
        let span = Duration::from_secs_f64(seconds / turns as f64);
        let mut totals = vec![(0u64, Duration::ZERO, Duration::ZERO); clients.len()];
        for c in &clients {
            // Warm: connections open, pools full.
            round(c, &url, &body, in_flight, Duration::from_millis(300)).await;
        }
        for _ in 0..ROUNDS {
            for (c, total) in clients.iter().zip(&mut totals) {
                let (n, cpu) = round(c, &url, &body, in_flight, span).await;
                total.0 += n;
                total.1 += cpu;
                total.2 += span;
            }
        }
        for (c, (n, cpu, wall)) in clients.iter().zip(totals) {
            println!(
                "{}",
                json!({"client": c.name(), "in_flight": in_flight, "requests": n,
                       "requests_per_s": n as f64 / wall.as_secs_f64(),
                       "cpu_us_per_request": cpu.as_secs_f64() * 1e6 / n.max(1) as f64})
            );
        }
        anyhow::Ok(())
    })
}
