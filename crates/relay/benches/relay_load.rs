//! Load benchmark for the relay (a plain binary, not a timed test).
//!
//! It starts its own relay process on 127.0.0.1 (SQLite in a temp dir, or PostgreSQL: a private
//! cluster started like the tests do, with `fsync=on`, or `--postgres URL`), connects `--clients`
//! sender/receiver pairs (sender *i* sends to receiver *i+1*) and measures, over `--seconds` after
//! `--warmup`:
//!
//! - **accepted/s**: `SendEnvelope` requests answered `Ok` — the relay committed the envelope
//!   and flushed before answering (docs/PROTOCOL.md, section 13, "Durability and load
//!   benchmark", which also holds the measured figures);
//! - **delivered/s**: envelopes pushed to and acknowledged by (`PushAck`) their receivers;
//! - **p50/p99/max latency** from the sender writing the request to the receiver reading the push
//!   (the envelope carries the send time; one process, one clock);
//! - relay CPU, load-generator CPU and whole-machine CPU over the window (the load generator
//!   runs on the same machine and competes with the relay for the same cores);
//! - then `--idle` further connections (authenticated, as an idle client is; `--idle-anon` for
//!   bare unauthenticated WebSockets): relay RSS and PSS before and after, divided by the count,
//!   and the relay's own `connections_open` gauge (concurrent connections reached).
//!
//! Without `--rate` every sender sends as fast as its previous envelope is acknowledged
//! (closed loop: maximum throughput). `--rate N` paces all senders together to N envelopes/s
//! (open loop, for latency at a given load). `--echo` runs the same load against a bare
//! WebSocket forwarding server (axum, the relay's own WebSocket stack, no storage, no
//! authentication, no protocol decoding): same frame count and sizes per message (send,
//! response, push, ack) — the ceiling for this machine and this load generator.
//!
//! ```text
//! cargo bench -p sotto-relay --bench relay_load -- [--backend sqlite|postgres] [--postgres URL]
//!     [--clients N] [--seconds S] [--warmup S] [--rate N] [--size BYTES] [--idle M]
//!     [--idle-anon] [--echo]
//! ```
//!
//! Bounded: at most 1,000 pairs, 120 s of sending and 10,000 idle connections. It raises its own
//! `RLIMIT_NOFILE` (inherited by the relay it starts) and never targets anything but the
//! servers it started on 127.0.0.1 (or the PostgreSQL URL given).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)] // bench tool

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Client, Relay, address, random_key};
use futures_util::{SinkExt, StreamExt};
use sotto_relay_wire::{Frame, Push, Request};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const MAX_PAIRS: u64 = 1000;
const MAX_SECONDS: u64 = 120;
const MAX_IDLE: u64 = 10_000;

struct Args {
    postgres: bool,
    postgres_url: Option<String>,
    pairs: usize,
    seconds: u64,
    warmup: u64,
    rate: u64,
    size: usize,
    idle: usize,
    idle_anon: bool,
    echo: bool,
}

fn parse_args() -> Args {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let num = |name: &str, default: u64, max: u64| {
        value(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
            .min(max)
    };
    let flag = |name: &str| args.iter().any(|a| a == name);
    let postgres_url = value("--postgres");
    let postgres = postgres_url.is_some()
        || match value("--backend").as_deref() {
            None | Some("sqlite") => false,
            Some("postgres") => true,
            Some(other) => panic!("--backend sqlite|postgres, not {other}"),
        };
    Args {
        postgres,
        postgres_url,
        pairs: num("--clients", 100, MAX_PAIRS).max(1) as usize,
        seconds: num("--seconds", 10, MAX_SECONDS).max(1),
        warmup: num("--warmup", 2, 30),
        rate: num("--rate", 0, 1_000_000),
        size: num("--size", 256, 65_536).max(16) as usize,
        idle: num("--idle", 1000, MAX_IDLE) as usize,
        idle_anon: flag("--idle-anon"),
        echo: flag("--echo"),
    }
}

/// Raises the soft (and, if allowed, hard) open-file limit; children inherit it.
fn raise_nofile(want: u64) -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let cur = getrlimit(Resource::Nofile);
    let hard = cur.maximum.unwrap_or(u64::MAX);
    let raised = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(want),
            maximum: Some(want.max(hard)),
        },
    );
    if raised.is_err() {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(hard),
                maximum: Some(hard),
            },
        );
    }
    getrlimit(Resource::Nofile).current.unwrap_or(0)
}

fn proc_status_kib(pid: u32, file: &str, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/{file}"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// (RSS, PSS) in KiB.
fn mem_kib(pid: u32) -> (u64, u64) {
    (
        proc_status_kib(pid, "status", "VmRSS:"),
        proc_status_kib(pid, "smaps_rollup", "Pss:"),
    )
}

/// utime + stime of a process, in clock ticks (1/100 s).
fn cpu_ticks(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.to_string();
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0)
}

/// (busy, total) jiffies of the whole machine.
fn machine_ticks() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = s
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The server under test: a relay (with its storage) or the bare echo server.
enum Target {
    Relay {
        relay: Relay,
        _dir: tempfile::TempDir,
        _cluster: Option<common::pg::Cluster>,
    },
    Echo {
        child: Child,
        addr: String,
    },
}

impl Target {
    fn pid(&self) -> u32 {
        match self {
            Target::Relay { relay, .. } => relay.pid(),
            Target::Echo { child, .. } => child.id(),
        }
    }

    fn addr(&self) -> String {
        match self {
            Target::Relay { relay, .. } => relay.addr.clone(),
            Target::Echo { addr, .. } => addr.clone(),
        }
    }

    /// Relay gauge/counter from /metrics (None for the echo server).
    async fn metric(&self, name: &str) -> Option<u64> {
        let Target::Relay { relay, .. } = self else {
            return None;
        };
        let text = relay.http_get("/metrics").await.ok()?;
        let key = format!("sotto_relay_{name} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&key).and_then(|v| v.trim().parse().ok()))
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Target::Echo { child, .. } = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn start_target(a: &Args) -> Target {
    if a.echo {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .arg("--echo-server")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line.trim().strip_prefix("echo listening on ").unwrap();
        return Target::Echo {
            addr: addr.to_string(),
            child,
        };
    }
    let dir = tempfile::tempdir().unwrap();
    let mut extra: Vec<String> = [
        "--send-per-minute",
        "100000000",
        "--frames-per-second",
        "1000000",
        "--auth-per-minute",
        "100000000",
        "--max-connections",
        "100000",
        "--max-connections-per-ip",
        "100000",
        "--idle-timeout-secs",
        "3600",
        "--mailbox-cap",
        "1000000",
    ]
    .iter()
    .map(|s| (*s).to_string())
    .collect();
    let mut cluster = None;
    if a.postgres {
        let url = match &a.postgres_url {
            Some(u) => u.clone(),
            None => {
                // The tests' private cluster, but durable: fsync back on (the tests turn it off).
                let c = common::pg::Cluster::start_with(
                    "-c fsync=on -c synchronous_commit=on -c max_connections=200",
                )
                .unwrap();
                let url = c.database("relay_bench").await.unwrap();
                cluster = Some(c);
                url
            }
        };
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        let show = |n: &'static str| {
            let client = &client;
            async move {
                let row = client.query_one(&format!("SHOW {n}"), &[]).await.unwrap();
                row.get::<_, String>(0)
            }
        };
        println!(
            "postgres: fsync={} synchronous_commit={} wal_sync_method={}",
            show("fsync").await,
            show("synchronous_commit").await,
            show("wal_sync_method").await
        );
        extra.push("--database-url".into());
        extra.push(url);
    }
    let extra_ref: Vec<&str> = extra.iter().map(String::as_str).collect();
    let relay = Relay::start(dir.path(), &extra_ref).unwrap();
    Target::Relay {
        relay,
        _dir: dir,
        _cluster: cluster,
    }
}

/// Opens a receiver (authenticated relay client, or echo client with a hello) and returns its
/// socket and the address senders use.
async fn open_receiver(addr: &str, echo: bool, n: u64) -> (Ws, [u8; 36]) {
    if echo {
        let (mut ws, _) =
            tokio_tungstenite::connect_async_with_config(format!("ws://{addr}/ws"), None, true)
                .await
                .unwrap();
        ws.send(Message::Binary(n.to_be_bytes().to_vec().into()))
            .await
            .unwrap();
        let mut to = [0u8; 36];
        to[..8].copy_from_slice(&n.to_be_bytes());
        return (ws, to);
    }
    let key = random_key();
    let mut c = Client::connect(addr).await.unwrap();
    c.authenticate(&key, 1).await.unwrap();
    c.drain_backlog().await.unwrap();
    let a = address(&key, 1);
    let mut to = [0u8; 36];
    to[..32].copy_from_slice(&a.account);
    to[32..].copy_from_slice(&a.device.to_be_bytes());
    (c.into_ws(), to)
}

async fn open_sender(addr: &str, echo: bool) -> Ws {
    if echo {
        let (mut ws, _) =
            tokio_tungstenite::connect_async_with_config(format!("ws://{addr}/ws"), None, true)
                .await
                .unwrap();
        ws.send(Message::Binary(u64::MAX.to_be_bytes().to_vec().into()))
            .await
            .unwrap();
        return ws;
    }
    Client::connect(addr).await.unwrap().into_ws()
}

/// Runs `n` async jobs with at most `width` at once, in order.
async fn in_parallel<T, F, Fut>(n: usize, width: usize, f: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    futures_util::stream::iter((0..n).map(f))
        .buffered(width)
        .collect()
        .await
}

struct Shared {
    epoch: Instant,
    /// Window in µs since epoch: messages sent inside it are counted.
    window: (AtomicU64, AtomicU64),
    stop_send: AtomicBool,
    stop_recv: AtomicBool,
    accepted: AtomicU64,
    rejected: AtomicU64,
    delivered: AtomicU64,
    delivered_total: AtomicU64,
    accepted_total: AtomicU64,
}

impl Shared {
    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }
    fn in_window(&self, t: u64) -> bool {
        t >= self.window.0.load(Ordering::Relaxed) && t < self.window.1.load(Ordering::Relaxed)
    }
}

async fn sender(
    ws: Ws,
    echo: bool,
    to: [u8; 36],
    size: usize,
    pace: Option<(tokio::time::Instant, Duration)>,
    sh: Arc<Shared>,
) {
    let (mut sink, mut stream) = ws.split();
    let recipient = sotto_relay_wire::Address {
        account: to[..32].try_into().unwrap(),
        device: u32::from_be_bytes(to[32..].try_into().unwrap()),
    };
    let mut tick = pace.map(|(start, period)| {
        let mut t = tokio::time::interval_at(start, period);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    let mut body = vec![0x5au8; size];
    let mut id = 1_000u64;
    while !sh.stop_send.load(Ordering::Relaxed) {
        if let Some(t) = &mut tick {
            t.tick().await;
            if sh.stop_send.load(Ordering::Relaxed) {
                break;
            }
        }
        id += 1;
        let sent = sh.now_us();
        body[..8].copy_from_slice(&sent.to_be_bytes());
        let frame = if echo {
            let mut f = Vec::with_capacity(8 + size);
            f.extend_from_slice(&to[..8]);
            f.extend_from_slice(&body);
            f
        } else {
            Frame::Request {
                id,
                request: Request::SendEnvelope {
                    recipient,
                    envelope: body.clone(),
                },
            }
            .encode()
            .unwrap()
        };
        if sink.send(Message::Binary(frame.into())).await.is_err() {
            return;
        }
        let ok = loop {
            match stream.next().await {
                Some(Ok(Message::Binary(b))) => {
                    if echo {
                        break b.first() == Some(&0);
                    }
                    match Frame::decode(&b) {
                        Ok(Frame::Response {
                            id: rid, result, ..
                        }) if rid == id => {
                            break result.is_ok();
                        }
                        _ => {}
                    }
                }
                Some(Ok(_)) => {}
                _ => return,
            }
        };
        if ok {
            sh.accepted_total.fetch_add(1, Ordering::Relaxed);
            if sh.in_window(sent) {
                sh.accepted.fetch_add(1, Ordering::Relaxed);
            }
        } else {
            sh.rejected.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Reads pushes, acknowledges each; returns latencies (µs) of messages sent in the window.
async fn receiver(ws: Ws, echo: bool, sh: Arc<Shared>) -> Vec<u64> {
    let (mut sink, mut stream) = ws.split();
    let mut lat = Vec::new();
    loop {
        let msg = match tokio::time::timeout(Duration::from_millis(200), stream.next()).await {
            Err(_) => {
                if sh.stop_recv.load(Ordering::Relaxed) {
                    break;
                }
                continue;
            }
            Ok(Some(Ok(m))) => m,
            Ok(_) => break,
        };
        let Message::Binary(b) = msg else { continue };
        let (stamp, ack) = if echo {
            (&b[..8], Message::Binary(vec![1u8].into()))
        } else {
            match Frame::decode(&b) {
                Ok(Frame::Push(Push::Envelope(d))) => {
                    let stamp = u64::from_be_bytes(d.envelope[..8].try_into().unwrap());
                    if sink
                        .send(Message::Binary(
                            Frame::PushAck {
                                message_id: d.message_id,
                            }
                            .encode()
                            .unwrap()
                            .into(),
                        ))
                        .await
                        .is_err()
                    {
                        break;
                    }
                    record(&sh, stamp, &mut lat);
                    continue;
                }
                _ => continue,
            }
        };
        let stamp = u64::from_be_bytes(stamp.try_into().unwrap());
        if sink.send(ack).await.is_err() {
            break;
        }
        record(&sh, stamp, &mut lat);
    }
    lat
}

fn record(sh: &Shared, stamp: u64, lat: &mut Vec<u64>) {
    sh.delivered_total.fetch_add(1, Ordering::Relaxed);
    if sh.in_window(stamp) {
        sh.delivered.fetch_add(1, Ordering::Relaxed);
        lat.push(sh.now_us().saturating_sub(stamp));
    }
}

fn main() {
    if std::env::args().any(|a| a == "--echo-server") {
        echo_server::run();
        return;
    }
    let a = parse_args();
    let nofile = raise_nofile(4 * (MAX_IDLE + 2 * MAX_PAIRS) + 1024);
    // Two worker threads, like the machine's cores; the relay has its own process.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(bench(a, nofile));
}

async fn bench(a: Args, nofile: u64) {
    let target = start_target(&a).await;
    let (pid, addr) = (target.pid(), target.addr());
    let what = match (&target, a.postgres) {
        (Target::Echo { .. }, _) => "bare WebSocket echo/forward server",
        (_, true) => "relay, PostgreSQL",
        (_, false) => "relay, SQLite",
    };
    println!(
        "{what} on {addr} (pid {pid}); {} pairs, {} B envelopes, {}; RLIMIT_NOFILE {nofile}; \
         load average {}",
        a.pairs,
        a.size,
        if a.rate == 0 {
            "closed loop (max)".to_string()
        } else {
            format!("paced at {}/s", a.rate)
        },
        loadavg()
    );
    let sh = Arc::new(Shared {
        epoch: Instant::now(),
        window: (AtomicU64::new(u64::MAX), AtomicU64::new(u64::MAX)),
        stop_send: AtomicBool::new(false),
        stop_recv: AtomicBool::new(false),
        accepted: AtomicU64::new(0),
        rejected: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
        delivered_total: AtomicU64::new(0),
        accepted_total: AtomicU64::new(0),
    });

    let setup = Instant::now();
    let receivers: Vec<(Ws, [u8; 36])> = in_parallel(a.pairs, 32, |i| {
        let addr = addr.clone();
        async move { open_receiver(&addr, a.echo, i as u64).await }
    })
    .await;
    let senders: Vec<Ws> = in_parallel(a.pairs, 32, |_| {
        let addr = addr.clone();
        async move { open_sender(&addr, a.echo).await }
    })
    .await;
    println!(
        "{} connections set up in {:.1} s",
        2 * a.pairs,
        setup.elapsed().as_secs_f64()
    );
    let targets: Vec<[u8; 36]> = receivers.iter().map(|r| r.1).collect();
    let mut rx_tasks = Vec::new();
    for (ws, _) in receivers {
        rx_tasks.push(tokio::spawn(receiver(ws, a.echo, sh.clone())));
    }
    let start = tokio::time::Instant::now() + Duration::from_millis(100);
    let period = (a.rate > 0).then(|| Duration::from_secs_f64(a.pairs as f64 / a.rate as f64));
    let mut tx_tasks = Vec::new();
    for (i, ws) in senders.into_iter().enumerate() {
        let to = targets[(i + 1) % targets.len()];
        // Spread the paced senders evenly over one period.
        let pace = period.map(|p| (start + p.mul_f64(i as f64 / a.pairs as f64), p));
        tx_tasks.push(tokio::spawn(sender(
            ws,
            a.echo,
            to,
            a.size,
            pace,
            sh.clone(),
        )));
    }

    tokio::time::sleep(Duration::from_secs(a.warmup)).await;
    let w0 = sh.now_us();
    sh.window.0.store(w0, Ordering::Relaxed);
    sh.window.1.store(u64::MAX, Ordering::Relaxed);
    let (relay0, me0, m0) = (
        cpu_ticks(&pid.to_string()),
        cpu_ticks("self"),
        machine_ticks(),
    );
    let load_at_start = loadavg();
    tokio::time::sleep(Duration::from_secs(a.seconds)).await;
    let w1 = sh.now_us();
    sh.window.1.store(w1, Ordering::Relaxed);
    let (relay1, me1, m1) = (
        cpu_ticks(&pid.to_string()),
        cpu_ticks("self"),
        machine_ticks(),
    );
    let window_s = (w1 - w0) as f64 / 1e6;
    sh.stop_send.store(true, Ordering::Relaxed);
    for t in tx_tasks {
        let _ = t.await;
    }
    // Let receivers drain what was accepted (bounded wait), then stop them.
    let drain = Instant::now();
    while sh.delivered_total.load(Ordering::Relaxed) < sh.accepted_total.load(Ordering::Relaxed)
        && drain.elapsed() < Duration::from_secs(30)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drain_s = drain.elapsed().as_secs_f64();
    let backlog_acked = target.metric("envelopes_acked_total").await;
    let mut lat = Vec::new();
    // Receivers keep running (and acking) during the idle-connection phase; stopped below.
    let accepted = sh.accepted.load(Ordering::Relaxed);
    let rejected = sh.rejected.load(Ordering::Relaxed);
    sh.stop_recv.store(true, Ordering::Relaxed);
    for t in rx_tasks {
        lat.extend(t.await.unwrap_or_default());
    }
    let delivered = sh.delivered.load(Ordering::Relaxed);
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    let ticks = 100.0 * window_s; // clock ticks per core over the window
    println!(
        "window {window_s:.1} s (load average at start {load_at_start}): accepted {accepted} = \
         {:.0}/s, delivered+acked {delivered} = {:.0}/s (of those sent in the window; \
         drained in {drain_s:.1} s after the window), rejected {rejected}",
        accepted as f64 / window_s,
        delivered as f64 / window_s,
    );
    println!(
        "latency send->push: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} samples)",
        pct(0.50),
        pct(0.99),
        pct(1.0),
        lat.len()
    );
    println!(
        "CPU over the window: server {:.0}% of one core, load generator {:.0}%, whole machine \
         {:.0}% of {} cores",
        (relay1 - relay0) as f64 / ticks * 100.0,
        (me1 - me0) as f64 / ticks * 100.0,
        (m1.0 - m0.0) as f64 / (m1.1 - m0.1).max(1) as f64 * 100.0,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    if let Some(acked) = backlog_acked {
        println!(
            "relay counters: accepted_total {:?}, pushed_total {:?}, acked_total {acked}",
            target.metric("envelopes_accepted_total").await,
            target.metric("envelopes_pushed_total").await,
        );
    }

    // Idle connections: memory growth per connection, and concurrency reached.
    // The pairs are closed by now: the idle connections are measured alone.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let before = mem_kib(pid);
    let idle_start = Instant::now();
    let idle_conns: Vec<Option<Ws>> = in_parallel(a.idle, 64, |i| {
        let addr = addr.clone();
        async move {
            if a.echo {
                Some(open_receiver(&addr, true, 1_000_000 + i as u64).await.0)
            } else if a.idle_anon {
                Client::connect(&addr).await.ok().map(Client::into_ws)
            } else {
                let key = random_key();
                let mut c = Client::connect(&addr).await.ok()?;
                c.authenticate(&key, 1).await.ok()?;
                c.drain_backlog().await.ok()?;
                Some(c.into_ws())
            }
        }
    })
    .await;
    let opened = idle_conns.iter().filter(|c| c.is_some()).count();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let after = mem_kib(pid);
    let open_gauge = target.metric("connections_open").await;
    if a.idle > 0 {
        println!(
            "idle connections: {opened} of {} opened in {:.1} s ({}); server open-connection \
             gauge {open_gauge:?}",
            a.idle,
            idle_start.elapsed().as_secs_f64(),
            if a.echo {
                "echo hello"
            } else if a.idle_anon {
                "unauthenticated"
            } else {
                "authenticated"
            },
        );
        println!(
            "server memory: RSS {} -> {} KiB = {:.2} KiB per idle connection; PSS {} -> {} KiB \
             = {:.2} KiB per idle connection",
            before.0,
            after.0,
            after.0.saturating_sub(before.0) as f64 / opened.max(1) as f64,
            before.1,
            after.1,
            after.1.saturating_sub(before.1) as f64 / opened.max(1) as f64,
        );
    }
    drop(idle_conns);
    drop(target);
}

/// The ceiling: a bare WebSocket server on the relay's stack (axum/hyper/tungstenite, same
/// buffer sizes) that forwards instead of storing. First frame of a connection: its 8-byte
/// id. Then `[8-byte recipient id][body]` is answered with a 1-byte response and `body` is
/// forwarded to the recipient's connection; other frames (the receivers' acks) are read and
/// dropped.
mod echo_server {
    use super::*;
    use axum::Router;
    use axum::extract::State;
    use axum::extract::ws::{Message as AxMessage, WebSocket, WebSocketUpgrade};
    use axum::response::Response;
    use axum::routing::get;
    use tokio::sync::mpsc;

    type Routes = Arc<Mutex<HashMap<u64, mpsc::Sender<axum::body::Bytes>>>>;

    #[tokio::main]
    pub(super) async fn run() {
        use axum::serve::ListenerExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("echo listening on {}", listener.local_addr().unwrap());
        // Like the relay: no Nagle delay on accepted sockets.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let routes: Routes = Arc::default();
        let app = Router::new().route("/ws", get(upgrade)).with_state(routes);
        axum::serve(listener, app).await.unwrap();
    }

    async fn upgrade(ws: WebSocketUpgrade, State(routes): State<Routes>) -> Response {
        ws.read_buffer_size(8 * 1024)
            .write_buffer_size(8 * 1024)
            .on_upgrade(move |s| conn(s, routes))
    }

    async fn conn(socket: WebSocket, routes: Routes) {
        let (mut sink, mut stream) = socket.split();
        let Some(Ok(AxMessage::Binary(hello))) = stream.next().await else {
            return;
        };
        let me = u64::from_be_bytes(hello[..8].try_into().unwrap());
        let (tx, mut rx) = mpsc::channel::<axum::body::Bytes>(64);
        routes.lock().unwrap().insert(me, tx);
        loop {
            tokio::select! {
                m = stream.next() => match m {
                    Some(Ok(AxMessage::Binary(b))) if b.len() > 8 => {
                        let to = u64::from_be_bytes(b[..8].try_into().unwrap());
                        let peer = routes.lock().unwrap().get(&to).cloned();
                        let ok = match peer {
                            Some(p) => p.send(b.slice(8..)).await.is_ok(),
                            None => false,
                        };
                        let r = axum::body::Bytes::from_static(if ok { &[0] } else { &[1] });
                        if sink.send(AxMessage::Binary(r)).await.is_err() {
                            break;
                        }
                    }
                    Some(Ok(_)) => {}
                    _ => break,
                },
                Some(b) = rx.recv() => {
                    if sink.send(AxMessage::Binary(b)).await.is_err() {
                        break;
                    }
                }
            }
        }
        routes.lock().unwrap().remove(&me);
    }
}
