//! The store's write path under concurrent load: what the gateway asks of it per message.
//!
//! ```sh
//! cargo bench -p switchboard-store --bench write_path -- [--url URL] [--tasks 64]
//!     [--messages 20000] [--keys]
//! ```
//!
//! `--tasks` callers at once (default 64, like the load benchmark's connections) each store a
//! message with its outcome (`record_sent`, as a synchronous send does), with `--keys` also
//! claiming a unique idempotency key before it and completing it in the same write, until
//! `--messages` messages are done. Without `--url` the store is a new SQLite file in a temporary directory. Prints
//! messages per second, the latency of one message's writes (p50, p99), and this process's CPU
//! time per message. Runs on two runtime threads, like a 2-CPU machine.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_store::{KeyAnswer, NewMessage, SendOutcome, Store, StoredResponse};

struct Args {
    url: Option<String>,
    tasks: usize,
    messages: usize,
    keys: bool,
}

fn args() -> Args {
    let mut args = Args {
        url: None,
        tasks: 64,
        messages: 20_000,
        keys: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--url" => args.url = it.next(),
            "--tasks" => args.tasks = it.next().and_then(|n| n.parse().ok()).expect("--tasks N"),
            "--messages" => {
                args.messages = it
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--messages N")
            }
            "--keys" => args.keys = true,
            // `cargo bench` passes `--bench`.
            _ => {}
        }
    }
    args
}

/// User + system CPU time of this process so far.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map_or(vec![], |(_, rest)| rest.split(' ').collect());
    // After the command name: utime is the 12th field, stime the 13th, in clock ticks (100/s).
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

fn message(id: &str) -> NewMessage {
    NewMessage {
        id: id.to_owned(),
        client: "bench".to_owned(),
        to: "+14085551234".to_owned(),
        from: "+15550783881".to_owned(),
        message_type: "text".to_owned(),
        refs: None,
        callback_url: None,
        route: vec!["kaleyra/in".to_owned(), "kaleyra/sg".to_owned()],
        status: "queued".to_owned(),
        created_at_ms: 1_790_000_000_000,
    }
}

async fn one_message(store: &dyn Store, n: usize, keys: bool) {
    let id = format!("01BENCH{n:020}");
    let key = format!("key-{n}");
    if keys {
        store
            .claim_key(
                "bench",
                &key,
                "fingerprint",
                1_790_000_000_000,
                86_400_000,
                Some(&id),
            )
            .await
            .expect("claim_key");
    }
    let outcome = SendOutcome {
        status: "accepted".to_owned(),
        provider: Some("kaleyra".to_owned()),
        endpoint: Some("kaleyra/in".to_owned()),
        provider_message_id: Some(format!("kaleyra-{n}")),
        error: None,
        at_ms: 1_790_000_000_010,
    };
    let response = StoredResponse {
        status: 202,
        body: format!(r#"{{"message_id":"{id}","status":"accepted"}}"#).into_bytes(),
        retry_after_secs: None,
    };
    let answer = keys.then_some(KeyAnswer {
        client: "bench",
        key: &key,
        response: &response,
        message_id: Some(&id),
    });
    store
        .record_sent(&message(&id), &outcome, answer)
        .await
        .expect("record_sent");
}

fn main() {
    let args = args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = args
        .url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("bench.db").display()));
    runtime.block_on(async {
        let store = switchboard_store::open(&url).await.expect("open the store");
        // A short warm-up, not measured.
        let warm = (0..args.tasks).map(|t| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { one_message(&*store, usize::MAX / 2 + t, false).await })
        });
        for task in warm.collect::<Vec<_>>() {
            task.await.expect("warm-up");
        }

        let next = Arc::new(AtomicUsize::new(0));
        let cpu0 = cpu_time();
        let start = Instant::now();
        let workers: Vec<_> = (0..args.tasks)
            .map(|_| {
                let (store, next) = (Arc::clone(&store), Arc::clone(&next));
                let (total, keys) = (args.messages, args.keys);
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= total {
                            return latencies;
                        }
                        let t = Instant::now();
                        one_message(&*store, n, keys).await;
                        latencies.push(t.elapsed());
                    }
                })
            })
            .collect();
        let mut latencies = Vec::with_capacity(args.messages);
        for worker in workers {
            latencies.extend(worker.await.expect("worker"));
        }
        let elapsed = start.elapsed();
        let cpu = cpu_time().saturating_sub(cpu0);
        latencies.sort();
        let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
        let n = latencies.len() as f64;
        println!(
            "write_path: {} messages ({}), {} tasks: {:.0} messages/s, p50 {:.2} ms, p99 {:.2} ms, CPU {:.0} µs/message",
            latencies.len(),
            if args.keys {
                "claim_key + insert_message + record_outcome + complete_key"
            } else {
                "insert_message + record_outcome"
            },
            args.tasks,
            n / elapsed.as_secs_f64(),
            at(0.50).as_secs_f64() * 1e3,
            at(0.99).as_secs_f64() * 1e3,
            cpu.as_secs_f64() * 1e6 / n,
        );
        if let Some(stats) = store.write_stats() {
            let mean = |h: &switchboard_store::Histogram| h.sum / h.count.max(1) as f64;
            println!(
                "writer: {} batches ({} failed), {:.1} writes per batch, commit {:.0} µs on average",
                stats.batches,
                stats.failed_batches,
                mean(&stats.batch_size),
                mean(&stats.commit_seconds) * 1e6,
            );
        }
        store.close().await;
    });
}
