//! Interactive queries: `eddy run --listen` serves a running application's
//! stores over HTTP while `eddy produce` feeds it: point lookups, field
//! selection, range pages over every partition, window fetches, key
//! metadata, and the errors (unknown store, bad key, a port in use).

use std::collections::BTreeMap;
use std::process::Child;
use std::time::{Duration, Instant};

use eddy_host::partition::partition_for_key;
use serde_json::{Value, json};

use crate::windows::pressure_example;
use crate::{Env, app_file};

/// A background `eddy run`, killed if the test fails before it stops it.
pub(crate) struct Running(Option<Child>);

impl Running {
    /// The process, to stop it.
    fn take(mut self) -> Child {
        self.0.take().expect("still running")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `eddy run APP --listen 127.0.0.1:0` in the background, and the address
/// it says it listens on.
pub(crate) fn spawn_listening(env: &Env, app: &std::path::Path) -> (Running, String) {
    let running = Running(Some(env.spawn(&["-v", "run", app.to_str().unwrap(), "--listen", "127.0.0.1:0"])));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let log = std::fs::read_to_string(env.path("eddy-run.log")).unwrap_or_default();
        if let Some(addr) = log.lines().find_map(|l| l.strip_prefix("listening on http://")) {
            return (running, addr.trim().to_owned());
        }
        assert!(Instant::now() < deadline, "eddy run never said where it listens:\n{log}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// GETs over HTTP, whatever the status.
pub(crate) struct Client {
    base: String,
    agent: ureq::Agent,
}

impl Client {
    pub(crate) fn new(addr: &str) -> Client {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        Client { base: format!("http://{addr}"), agent }
    }

    /// The status and JSON body of `GET path`.
    pub(crate) fn get(&self, path: &str) -> (u16, Value) {
        let mut response = self.agent.get(format!("{}{path}", self.base)).call().unwrap();
        let status = response.status().as_u16();
        let body = response.body_mut().read_json::<Value>().unwrap_or_else(|e| panic!("GET {path}: {e}"));
        (status, body)
    }

    /// Polls `GET path` until `done` holds for its answer (for up to a
    /// minute); returns the answer.
    pub(crate) fn until(&self, path: &str, done: impl Fn(u16, &Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, body) = self.get(path);
            if done(status, &body) {
                return body;
            }
            // Only "not yet" answers while waiting: retryable, or not found.
            assert!(status == 200 || status == 404 || body["retryable"] == true, "GET {path}: {status} {body}");
            assert!(Instant::now() < deadline, "GET {path}: still {status} {body} after a minute");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

const WORDS: [&str; 6] = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"];

#[test]
fn word_counts_and_profiles_answer_while_the_app_runs() {
    let env = Env::new();
    for (topic, partitions) in [("lines", "3"), ("words", "3"), ("word-counts-out", "3"), ("profiles", "2")] {
        env.eddy(&["topic", "create", topic, "--partitions", partitions]);
    }
    let body = "application-id: wordquery\nthreads: 2\ntopology:
  - { name: lines, source: [lines], value-serde: string }
  - { name: split, flat-map: split_words }
  - { name: to-words, to: words, key-serde: string, value-serde: string }
  - { name: words, source: [words], key-serde: string, value-serde: string }
  - { name: counts, count: word-counts }
  - { name: out, to: word-counts-out, key-serde: string, value-serde: i64 }
  - { name: profiles, table: profiles, key-serde: i64, value-serde: json }
";
    let app = app_file(&env, "wordquery.yaml", eddy_tests::WORDS, body);
    let (child, addr) = spawn_listening(&env, &app);
    let http = Client::new(&addr);

    // A second instance cannot listen on the same address.
    let other = Env::new();
    let taken = other.eddy_fails(&["run", app.to_str().unwrap(), "--listen", &addr]);
    assert!(taken.contains("already in use"), "{taken}");

    let mut expected: BTreeMap<&str, i64> = BTreeMap::new();
    let mut lines = String::new();
    for i in 0..300 {
        let words: Vec<&str> = (0..1 + i % 3).map(|j| WORDS[(i * 5 + j * 7) % WORDS.len()]).collect();
        for w in &words {
            *expected.entry(w).or_default() += 1;
        }
        lines.push_str(&words.join(" "));
        lines.push('\n');
    }
    let file = env.write("lines.txt", &lines);
    env.eddy(&["produce", "lines", "--value-only", "--file", file.to_str().unwrap()]);
    let profiles = r#"{"key": 1, "value": {"name": "Ada", "address": {"city": "London", "zip": "N1"}, "langs": ["en"]}}
{"key": 2, "value": {"name": "Grace", "address": {"city": "New York"}}}
"#;
    env.produce("profiles", profiles, &["--key-serde", "i64", "--value-serde", "json"]);

    // Every task of the run opens (a range needs them all).
    http.until("/v1/stores", |_, body| {
        body["stores"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["partitions"].as_u64().is_some_and(|n| s["running_here"].as_array().unwrap().len() as u64 == n))
    });

    // Point lookups, polled until every count is in.
    for (word, count) in &expected {
        let answer = http.until(&format!("/v1/stores/word-counts/keys/{word}"), |status, body| {
            status == 200 && body["value"] == *count
        });
        assert_eq!(answer["key"], *word);
        assert!(answer["timestamp"].as_i64().unwrap() > 0, "{answer}");
    }

    // Pages of two over all three partitions: every word once, in order.
    let mut walked = Vec::new();
    let mut path = "/v1/stores/word-counts/range?limit=2".to_owned();
    loop {
        let (status, page) = http.get(&path);
        assert_eq!(status, 200, "{page}");
        let entries = page["entries"].as_array().unwrap();
        assert!(entries.len() <= 2, "{page}");
        walked.extend(entries.iter().map(|e| (e["key"].as_str().unwrap().to_owned(), e["value"].as_i64().unwrap())));
        match page["next"].as_str() {
            Some(next) => path = format!("/v1/stores/word-counts/range?limit=2&after={next}"),
            None => break,
        }
    }
    let want: Vec<(String, i64)> = expected.iter().map(|(w, c)| ((*w).to_owned(), *c)).collect();
    assert_eq!(walked, want);
    let (_, page) = http.get("/v1/stores/word-counts/range?from=b&to=e");
    let keys: Vec<&str> = page["entries"].as_array().unwrap().iter().map(|e| e["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["beta", "delta"]);
    let (_, page) = http.get("/v1/stores/word-counts/range?prefix=ze");
    assert_eq!(page["entries"][0]["key"], "zeta");
    assert_eq!(page["entries"].as_array().unwrap().len(), 1);

    // A JSON-valued table, whole and cut down to some fields.
    let ada = http.until("/v1/stores/profiles/keys/1", |status, _| status == 200);
    assert_eq!(ada["value"]["langs"], json!(["en"]));
    let (status, picked) = http.get("/v1/stores/profiles/keys/1?fields=name,address.city");
    assert_eq!(status, 200);
    assert_eq!(picked["value"], json!({"name": "Ada", "address": {"city": "London"}}));
    let (_, grace) = http.get("/v1/stores/profiles/keys/2?fields=address.zip,name");
    assert_eq!(grace["value"], json!({"name": "Grace", "address": {}}), "missing fields are left out");

    // Where a key lives.
    let (status, meta) = http.get("/v1/stores/word-counts/metadata/alpha");
    assert_eq!(status, 200);
    assert_eq!(meta["partition"], partition_for_key(b"alpha", 3));
    assert_eq!(meta["hosted_here"], true);
    assert!(meta["task"].as_str().unwrap().ends_with(&format!("_{}", meta["partition"])), "{meta}");

    // The stores, and the errors.
    let (_, stores) = http.get("/v1/stores");
    let names: Vec<&str> = stores["stores"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["word-counts", "profiles"]);
    assert_eq!(stores["stores"][0]["partitions"], 3);
    assert_eq!(stores["stores"][1]["key_serde"], "i64");
    let (status, body) = http.get("/v1/stores/no-such-store/keys/alpha");
    assert_eq!(status, 404, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("no-such-store") && error.contains("word-counts, profiles"), "{error}");
    let (status, body) = http.get("/v1/stores/profiles/keys/one");
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("not a 64-bit integer"), "{body}");
    let (status, body) = http.get("/v1/stores/word-counts/keys/omega");
    assert_eq!(status, 404, "{body}");
    assert!(body["error"].as_str().unwrap().contains("not in store"), "{body}");
    assert_eq!(http.get("/v1/stores/word-counts/range?limit=none").0, 400);

    let out = env.terminate(child.take());
    assert!(out.status.success(), "eddy run exits 0 on SIGTERM: {}", String::from_utf8_lossy(&out.stderr));
}

const MIN: i64 = 60_000;

#[test]
fn window_fetches_of_the_blood_pressure_example() {
    let env = Env::new();
    let app = pressure_example(&env);
    let (child, addr) = spawn_listening(&env, &app);
    let http = Client::new(&addr);

    let reading = |patient: &str, t: i64, sys: i64, dia: i64| {
        json!({"key": format!("bed-{patient}"), "timestamp": t,
            "value": {"patient": patient, "heart_rate": 70, "systolic": sys, "diastolic": dia}})
        .to_string()
    };
    let lines = [
        reading("p1", 10_000, 120, 80),
        reading("p2", 10_000, 140, 90),
        reading("p1", 200_000, 130, 85),
        reading("p1", 5 * MIN + 30_000, 110, 70),
        reading("p1", 11 * MIN, 120, 80),
    ];
    env.produce("vitals", &(lines.join("\n") + "\n"), &["--key-serde", "string", "--value-serde", "json"]);

    // Windows of p1 starting within [0, 15 min].
    let path = format!("/v1/stores/pressure/windows/p1?from=0&to={}", 15 * MIN);
    let fetched = http.until(&path, |status, body| status == 200 && body["windows"].as_array().unwrap().len() == 3);
    let windows: Vec<(i64, i64, Value)> = fetched["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["start"].as_i64().unwrap(), w["end"].as_i64().unwrap(), w["value"].clone()))
        .collect();
    let avg = |readings: u32, sys: f64, dia: f64| json!({"readings": readings, "systolic": sys, "diastolic": dia});
    assert_eq!(
        windows,
        [
            (0, 5 * MIN, avg(2, 125.0, 82.5)),
            (5 * MIN, 10 * MIN, avg(1, 110.0, 70.0)),
            (10 * MIN, 15 * MIN, avg(1, 120.0, 80.0)),
        ]
    );
    assert_eq!(fetched["key"], "p1");
    assert_eq!(fetched["windows"][0]["timestamp"], 200_000, "the latest reading folded in");
    // A narrower time range, fields, and pages of one window.
    let (_, fetched) = http.get(&format!("/v1/stores/pressure/windows/p1?from=1&to={}&fields=systolic", 10 * MIN - 1));
    assert_eq!(
        fetched["windows"],
        json!([{"start": 5 * MIN, "end": 10 * MIN, "value": {"systolic": 110.0}, "timestamp": 5 * MIN + 30_000}])
    );
    let (_, first) = http.get("/v1/stores/pressure/windows/p1?limit=1");
    assert_eq!((first["windows"][0]["start"].clone(), first["next"].clone()), (json!(0), json!(1)));
    let (_, p2) = http.get("/v1/stores/pressure/windows/p2");
    assert_eq!(p2["windows"][0]["value"], avg(1, 140.0, 90.0));
    // The whole store, windows shown with their keys.
    let (_, all) = http.get("/v1/stores/pressure/range");
    let entries = all["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 4, "{all}");
    assert_eq!(
        (entries[3]["key"].clone(), entries[3]["window"].clone()),
        (json!("p2"), json!({"start": 0, "end": 5 * MIN}))
    );
    let (_, stores) = http.get("/v1/stores");
    assert_eq!(stores["stores"][0]["kind"], "window");
    assert_eq!(stores["stores"][0]["windows"]["size_ms"], 5 * MIN);
    // A window store is looked up by window.
    let (status, body) = http.get("/v1/stores/pressure/keys/p1");
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("/windows/"), "{body}");

    let out = env.terminate(child.take());
    assert!(out.status.success(), "eddy run exits 0 on SIGTERM: {}", String::from_utf8_lossy(&out.stderr));
}
