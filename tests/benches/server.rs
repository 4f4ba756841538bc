//! The hosted runtime's benchmark (`scripts/bench.sh server`): an `eddy
//! server` on a loopback port, driven over HTTP. Prints deploy to first
//! output, deploys per second and memory per app with 100 tenants each
//! running an app, point-query latency under a running app, and one
//! tenant's throughput with and without another tenant's runaway plugin.

#![allow(clippy::unwrap_used, missing_docs)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const ADMIN: &str = "admin-token-for-the-benchmark";

struct Server {
    child: Child,
    url: String,
    agent: ureq::Agent,
}

impl Server {
    fn start(dir: &std::path::Path) -> Server {
        let exe = std::env::current_exe().unwrap();
        let bin: PathBuf = exe.parent().and_then(|d| d.parent()).unwrap().join("eddy");
        assert!(bin.exists(), "{} is missing: build it with `cargo build --release -p eddy-host`", bin.display());
        let mut child = Command::new(bin)
            .args(["server", "--listen", "127.0.0.1:0", "--dir"])
            .arg(dir)
            .env("EDDY_ADMIN_TOKEN", ADMIN)
            .env("EDDY_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let url = loop {
            let line = lines.next().expect("the server exited").unwrap();
            if let Some(url) = line.split("listening on ").nth(1) {
                break url.trim().to_owned();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        let agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        Server { child, url, agent }
    }

    fn call(&self, method: &str, path: &str, token: &str, body: &[u8]) -> Value {
        let url = format!("{}{path}", self.url);
        let auth = format!("Bearer {token}");
        let mut r = match method {
            "GET" => self.agent.get(&url).header("Authorization", &auth).call(),
            _ => self.agent.post(&url).header("Authorization", &auth).send(body),
        }
        .unwrap();
        let status = r.status();
        let text = r.body_mut().read_to_string().unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    fn tenant(&self, name: &str, records_per_second: u32) -> String {
        let body = json!({"name": name, "quotas": {"records-per-second": records_per_second, "max-tasks": 64}});
        let made = self.call("POST", "/v1/tenants", ADMIN, body.to_string().as_bytes());
        made["token"]["secret"].as_str().unwrap().to_owned()
    }

    /// CPU seconds the server process has used (user and system), from
    /// /proc at 100 ticks a second.
    fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        (ticks(11) + ticks(12)) / 100.0
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const STATELESS: &str = "application-id: clean\nplugin: vitals\nerror-policy: skip\ntopology:\n  - { name: readings, source: [vitals], key-serde: string, value-serde: json }\n  - { name: valid, filter: valid_reading }\n  - { name: out, to: clean, key-serde: string, value-serde: json }\n";

const PRESSURE: &str = "application-id: pressure\nplugin: vitals\nerror-policy: skip\ntopology:\n  - { name: readings, source: [vitals], key-serde: string, value-serde: json }\n  - { name: valid, filter: valid_reading }\n  - { name: by-patient, select-key: patient_key }\n  - { name: pressure, aggregate: average_pressure, store: pressure }\n";

fn readings(n: usize, from: usize) -> String {
    (from..from + n)
        .map(|i| {
            json!({"key": format!("bed-{}", i % 50), "value": {"patient": format!("p{}", i % 1000), "heart_rate": 70, "systolic": 120, "diastolic": 80}})
                .to_string()
                + "\n"
        })
        .collect()
}

/// Sets up a tenant with the vitals plugin, `vitals` and `clean` topics.
fn setup(server: &Server, name: &str, partitions: u32, records_per_second: u32) -> String {
    let token = server.tenant(name, records_per_second);
    let plugin = std::fs::read(eddy_tests::VITALS).unwrap();
    server.call("POST", "/v1/plugins/vitals", &token, &plugin);
    let topic = json!({"name": "vitals", "partitions": partitions}).to_string();
    server.call("POST", "/v1/topics", &token, topic.as_bytes());
    server.call("POST", "/v1/topics", &token, br#"{"name": "clean"}"#);
    token
}

fn deploy(server: &Server, token: &str, document: &str) {
    server.call("POST", "/v1/apps", token, json!({ "document": document }).to_string().as_bytes());
}

fn produce(server: &Server, token: &str, lines: &str) {
    server.call("POST", "/v1/topics/vitals/records?key-serde=string&value-serde=json", token, lines.as_bytes());
}

fn outputs(server: &Server, token: &str) -> usize {
    server.call("GET", "/v1/topics/clean/records?limit=10000", token, b"").as_array().map_or(0, Vec::len)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    println!("Eddy server benchmark (one server process, loopback HTTP)\n");
    // EDDY_BENCH_ONLY runs one part: deploys, queries or isolation.
    let only = std::env::var("EDDY_BENCH_ONLY").unwrap_or_default();
    let wanted = |part: &str| only.is_empty() || only == part;
    if wanted("deploys") {
        deploys();
    }
    if wanted("queries") {
        queries();
    }
    if wanted("isolation") {
        isolation();
    }
}

/// Deploy to first output, and 100 tenants each running an app.
fn deploys() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());

    // Deploy to first output: upload + deploy + produce one record + read it back.
    let mut firsts = Vec::new();
    for i in 0..5 {
        let token = server.tenant(&format!("first-{i}"), 1_000_000);
        let started = Instant::now();
        server.call("POST", "/v1/plugins/vitals", &token, &std::fs::read(eddy_tests::VITALS).unwrap());
        server.call("POST", "/v1/topics", &token, br#"{"name": "vitals"}"#);
        server.call("POST", "/v1/topics", &token, br#"{"name": "clean"}"#);
        deploy(&server, &token, STATELESS);
        produce(&server, &token, &readings(1, 0));
        while outputs(&server, &token) == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
        firsts.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    firsts.sort_by(f64::total_cmp);
    println!(
        "deploy to first output (upload + deploy + 1 record out), 5 runs: median {:.0} ms, max {:.0} ms",
        percentile(&firsts, 0.5),
        firsts[4]
    );

    // 100 tenants, each with a small app.
    let tenants = std::env::var("EDDY_BENCH_TENANTS").ok().and_then(|v| v.parse().ok()).unwrap_or(100usize);
    let before = server.rss_kib();
    let started = Instant::now();
    let mut tokens = Vec::new();
    for i in 0..tenants {
        let token = setup(&server, &format!("tenant-{i}"), 1, 1_000_000);
        deploy(&server, &token, STATELESS);
        tokens.push(token);
    }
    let secs = started.elapsed().as_secs_f64();
    for token in &tokens {
        produce(&server, token, &readings(10, 0));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut processing = 0;
    for token in &tokens {
        while outputs(&server, token) < 10 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        processing += usize::from(outputs(&server, token) == 10);
    }
    let after = server.rss_kib();
    println!(
        "{tenants} tenants, one app each: {:.1} tenants+apps set up per second ({:.0} ms each: tenant, upload, 2 topics, deploy); \
         {processing}/{tenants} apps processed their records; server RSS {} MiB -> {} MiB, {:.1} MiB per app",
        tenants as f64 / secs,
        secs * 1000.0 / tenants as f64,
        before / 1024,
        after / 1024,
        (after.saturating_sub(before)) as f64 / 1024.0 / tenants as f64
    );
}

/// Point-query latency under a running aggregation.
fn queries() {
    // Query latency under a running app.
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let token = setup(&server, "query", 2, 10_000_000);
    deploy(&server, &token, PRESSURE);
    produce(&server, &token, &readings(20_000, 0));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let loader = {
        let (url, token, stop) = (server.url.clone(), token.clone(), stop.clone());
        std::thread::spawn(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
            let mut from = 20_000;
            let mut sent = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let lines = readings(2000, from);
                from += 2000;
                let url = format!("{url}/v1/topics/vitals/records?key-serde=string&value-serde=json");
                let _ = agent.post(&url).header("Authorization", &format!("Bearer {token}")).send(lines.as_bytes());
                sent += 2000;
            }
            sent
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let mut latencies = Vec::new();
    for i in 0..2000 {
        let started = Instant::now();
        let path = format!("/v1/apps/pressure/stores/pressure/keys/p{}", i % 1000);
        let url = format!("{}{path}", server.url);
        let r = server.agent.get(&url).header("Authorization", &format!("Bearer {token}")).call().unwrap();
        assert!(r.status().is_success() || r.status().as_u16() == 404);
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let loaded = loader.join().unwrap();
    latencies.sort_by(f64::total_cmp);
    println!(
        "point queries under a running aggregation ({loaded} records produced meanwhile): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1]
    );
}

/// One tenant's throughput with and without another tenant's runaway.
fn isolation() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let victim = setup(&server, "victim", 2, 100_000_000);
    deploy(&server, &victim, STATELESS);
    let evil = server.tenant("evil", 1_000_000);
    server.call("POST", "/v1/plugins/faulty", &evil, &std::fs::read(eddy_tests::FAULTY).unwrap());
    server.call("POST", "/v1/topics", &evil, br#"{"name": "in"}"#);
    server.call("POST", "/v1/topics", &evil, br#"{"name": "out"}"#);
    let spin = "application-id: spin\nplugin: faulty\nerror-policy: skip\ntopology:\n  - { name: in, source: [in] }\n  - { name: spin, filter: spin }\n  - { name: out, to: out }\n";
    deploy(&server, &evil, spin);
    server.call("POST", "/v1/apps/spin/pause", &evil, b"{}");
    // Each of these records spins until the 100 ms deadline and is skipped.
    let spins: String = (0..5000).map(|i| format!("{{\"key\": \"k{i}\", \"value\": \"spin\"}}\n")).collect();
    server.call("POST", "/v1/topics/in/records?key-serde=string&value-serde=string", &evil, spins.as_bytes());
    let phases = std::env::var("EDDY_BENCH_PHASES").ok().and_then(|v| v.parse().ok()).unwrap_or(6usize);
    let (settle, window) = (Duration::from_millis(500), Duration::from_secs(2));
    // A backlog for every phase, sized by a first catch-up alone (which
    // includes starting up, so the steady rate is higher: hence 3x).
    let mut produced = 0;
    let mut feed = |n: usize| {
        server.call("POST", "/v1/apps/clean/pause", &victim, b"{}");
        for _ in 0..n.div_ceil(5000) {
            produce(&server, &victim, &readings(5000, produced));
            produced += 5000;
        }
        server.call("POST", "/v1/apps/clean/resume", &victim, b"{}");
    };
    feed(200_000);
    let started = Instant::now();
    while server.call("GET", "/v1/apps/clean", &victim, b"")["lag"] != json!(0) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let first = 200_000.0 / started.elapsed().as_secs_f64();
    let per_phase = first * (settle + window).as_secs_f64();
    feed((per_phase * 2.0 * phases as f64 * 3.0) as usize);
    let records_in = || server.call("GET", "/v1/apps/clean", &victim, b"")["records_in"].as_u64().unwrap();
    let (mut alone, mut beside) = (Vec::new(), Vec::new());
    // The server's CPU use per phase: the runaway's share is the difference.
    let (mut cpu_alone, mut cpu_beside) = (Vec::new(), Vec::new());
    for phase in 0..2 * phases {
        let running = phase % 2 == 1;
        let verb = if running { "resume" } else { "pause" };
        server.call("POST", &format!("/v1/apps/spin/{verb}"), &evil, b"{}");
        std::thread::sleep(settle);
        let (before, cpu, at) = (records_in(), server.cpu_seconds(), Instant::now());
        std::thread::sleep(window);
        let secs = at.elapsed().as_secs_f64();
        let (rate, cores) = ((records_in() - before) as f64 / secs, (server.cpu_seconds() - cpu) / secs);
        let label = if running { "beside the endless loop" } else { "alone" };
        println!("  victim, {label}: {rate:.0} records/s (server: {cores:.2} cores)");
        if running {
            beside.push(rate);
            cpu_beside.push(cores);
        } else {
            alone.push(rate);
            cpu_alone.push(cores);
        }
    }
    let lag = server.call("GET", "/v1/apps/clean", &victim, b"")["lag"].as_u64().unwrap_or(0);
    assert!(lag > 0, "the victim's backlog ran out before the last phase: the figures understate it");
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (alone, beside) = (median(&mut alone), median(&mut beside));
    let runaway_cores = median(&mut cpu_beside) - median(&mut cpu_alone);
    println!(
        "runaway isolation: victim throughput beside another tenant's endless loop = {:.3}x alone \
         (medians of {phases} alternating {}-s phases: {beside:.0} vs {alone:.0} records/s); the runaway took {runaway_cores:.2} cores",
        beside / alone,
        window.as_secs(),
    );
}
