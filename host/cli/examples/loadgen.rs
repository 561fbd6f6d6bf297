//! Constant-rate HTTP/1.1 load generator for `scripts/bench`: latency at a fixed offered
//! load, which `wrk` cannot give (it sends the next request when the previous answer
//! arrives, so a slow server is offered less load and its queueing never shows; wrk2,
//! which fixes that, is not packaged in Debian).
//!
//! Each of `--connections` kept-alive connections sends its share of `--rate` requests
//! per second on a fixed schedule. A request's latency runs from its scheduled time
//! when the connection was still busy with the previous one (the wait a real sender
//! would see), otherwise from when it was written, so the client's own timer slack is
//! not charged to the server. Every request carries a fresh `messageId`. Prints one
//! JSON line.
//!
//! Run: `cargo run --release -p segfn --example loadgen -- --help`

use clap::Parser;
use std::rc::Rc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

#[derive(Debug, Parser)]
struct Args {
    /// Server address, e.g. 127.0.0.1:8080.
    #[arg(long)]
    addr: String,
    /// Requests per second, in total.
    #[arg(long)]
    rate: f64,
    /// Kept-alive connections sharing the rate.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds measured.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Seconds sent first and not measured.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// File with the event's JSON on one line, its messageId "@@ID@@".
    #[arg(long)]
    template: std::path::PathBuf,
    /// Authorization header value.
    #[arg(long)]
    auth: String,
    /// Unique per run, so runs never repeat each other's messageIds.
    #[arg(long)]
    prefix: String,
}

/// What one connection saw after the warm-up.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    /// Answers received, warm-up included (the server's CPU time covers those too).
    answered: u64,
    non2xx: u64,
    errors: u64,
}

/// Reads one response (status line, headers, `Content-Length` body); returns the status.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<u16> {
    buf.clear();
    let mut chunk = [0u8; 16 << 10];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(status)
}

async fn connection(
    args: &Args,
    (head, tail): (&str, &str),
    index: usize,
    start: Instant,
) -> Tally {
    let mut tally = Tally::default();
    let interval = Duration::from_secs_f64(args.connections as f64 / args.rate);
    let measured_from = start + Duration::from_secs_f64(args.warmup);
    let end = measured_from + Duration::from_secs_f64(args.seconds);
    let mut next = start + Duration::from_secs_f64(index as f64 / args.rate);
    let mut free_at = start;
    let mut stream: Option<TcpStream> = None;
    let mut buf = Vec::with_capacity(4096);
    let mut counter = 0u64;
    while next < end {
        tokio::time::sleep_until(next).await;
        let measured = next >= measured_from;
        if stream.is_none() {
            match TcpStream::connect(&args.addr).await {
                Ok(s) => {
                    s.set_nodelay(true).ok();
                    stream = Some(s);
                }
                Err(_) => {
                    tally.errors += u64::from(measured);
                    next += interval;
                    continue;
                }
            }
        }
        let Some(s) = stream.as_mut() else { continue };
        counter += 1;
        let body = format!("{head}{}-{index}-{counter}{tail}", args.prefix);
        let request = format!(
            "POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAuthorization: {}\r\nContent-Length: {}\r\n\r\n{body}",
            args.addr,
            args.auth,
            body.len()
        );
        let written = Instant::now();
        let from = if free_at > next { next } else { written };
        let answer = match s.write_all(request.as_bytes()).await {
            Ok(()) => read_response(s, &mut buf).await,
            Err(e) => Err(e),
        };
        let done = Instant::now();
        free_at = done;
        next += interval;
        tally.answered += u64::from(answer.is_ok());
        match answer {
            Ok(status) if measured => {
                tally
                    .latencies_us
                    .push((done - from).as_micros().min(u32::MAX as u128) as u32);
                if !(200..300).contains(&status) {
                    tally.non2xx += 1;
                }
            }
            Ok(_) => {}
            Err(_) => {
                // The server closed the connection or failed: reconnect on the next turn.
                stream = None;
                tally.errors += u64::from(measured);
            }
        }
    }
    tally
}

fn percentile_ms(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p) as usize).min(sorted.len() - 1);
    f64::from(sorted[i]) / 1e3
}

// One thread: the client must take as little of the machine's 2 cores as it can.
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Rc::new(Args::parse());
    anyhow::ensure!(
        args.rate > 0.0 && args.connections > 0,
        "rate and connections must be positive"
    );
    let template = std::fs::read_to_string(&args.template)?;
    let (head, tail) = template
        .trim_end()
        .split_once("@@ID@@")
        .ok_or_else(|| anyhow::anyhow!("the template has no @@ID@@"))?;
    let template: Rc<(String, String)> = Rc::new((head.to_owned(), tail.to_owned()));
    let start = Instant::now() + Duration::from_millis(50);
    let set = tokio::task::LocalSet::new();
    let tallies = set
        .run_until(async {
            let handles: Vec<_> = (0..args.connections)
                .map(|i| {
                    let (args, template) = (args.clone(), template.clone());
                    tokio::task::spawn_local(async move {
                        connection(&args, (&template.0, &template.1), i, start).await
                    })
                })
                .collect();
            let mut tallies = Vec::with_capacity(handles.len());
            for h in handles {
                tallies.push(h.await.unwrap_or_default());
            }
            tallies
        })
        .await;
    let mut latencies: Vec<u32> = Vec::new();
    let (mut non2xx, mut errors, mut answered) = (0, 0, 0);
    for t in tallies {
        answered += t.answered;
        latencies.extend(t.latencies_us);
        non2xx += t.non2xx;
        errors += t.errors;
    }
    latencies.sort_unstable();
    println!(
        "{}",
        serde_json::json!({
            "rate": args.rate,
            "connections": args.connections,
            "seconds": args.seconds,
            "requests": latencies.len(),
            "answered_with_warmup": answered,
            "achieved_rate": latencies.len() as f64 / args.seconds,
            "non2xx": non2xx,
            "errors": errors,
            "p50_ms": percentile_ms(&latencies, 0.50),
            "p90_ms": percentile_ms(&latencies, 0.90),
            "p99_ms": percentile_ms(&latencies, 0.99),
            "p999_ms": percentile_ms(&latencies, 0.999),
            "max_ms": latencies.last().map_or(0.0, |&m| f64::from(m) / 1e3),
        })
    );
    Ok(())
}
