//! The hosted runtime end to end: `eddy server` on a loopback port, driven
//! with the CLI and over HTTP as tenants and their admin would.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{COMMAND_DEADLINE, Env, cache_dir, eddy_bin, wait_bounded};

const ADMIN: &str = "admin-token-for-the-tests";

/// A running `eddy server`, its stderr appended to `server.log`.
pub struct Server {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    log: PathBuf,
}

impl Server {
    /// Starts a server on a free loopback port with its directory in `env`.
    pub fn start(env: &Env) -> Server {
        Server::start_with(env, &[])
    }

    /// Like [`Server::start`], with more arguments (`--bootstrap-servers`).
    pub fn start_with(env: &Env, args: &[&str]) -> Server {
        let log = env.path("server.log");
        let mut child = Command::new(eddy_bin())
            .args(args)
            .args(["server", "--listen", "127.0.0.1:0", "--dir"])
            .arg(env.path("server"))
            .env("EDDY_ADMIN_TOKEN", ADMIN)
            .env("EDDY_CACHE_DIR", cache_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting eddy server");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        let path = log.clone();
        std::thread::spawn(move || {
            let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("server.log");
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.split("listening on ").nth(1) {
                    let _ = tx.send(url.trim().to_owned());
                }
                let _ = std::io::Write::write_all(&mut file, format!("{line}\n").as_bytes());
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => Server { child: Some(child), url, log },
            Err(_) => {
                let _ = child.kill();
                panic!("eddy server did not start:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
            }
        }
    }

    /// Kills it with SIGKILL: no clean stop.
    pub fn kill(mut self) {
        let mut child = self.child.take().expect("a running server");
        child.kill().expect("killing eddy server");
        let _ = child.wait();
    }

    /// Stops it with SIGTERM (apps commit and checkpoint) and waits.
    pub fn stop(mut self) -> Output {
        let child = self.child.take().expect("a running server");
        // SAFETY: kill only sends a signal to the child we started.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        wait_bounded(child, "eddy server after SIGTERM", Duration::from_secs(60))
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// An HTTP request; returns the status and the JSON body (or text).
    pub fn http(&self, method: &str, path: &str, token: Option<&str>, body: Option<&[u8]>) -> (u16, Value) {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let url = format!("{}{path}", self.url);
        let auth = token.map(|t| format!("Bearer {t}"));
        let response = match (method, body) {
            ("GET", _) => {
                let r = agent.get(&url);
                match &auth {
                    Some(a) => r.header("Authorization", a).call(),
                    None => r.call(),
                }
            }
            ("DELETE", _) => {
                let r = agent.delete(&url);
                match &auth {
                    Some(a) => r.header("Authorization", a).call(),
                    None => r.call(),
                }
            }
            (_, body) => {
                let r = agent.post(&url);
                let r = match &auth {
                    Some(a) => r.header("Authorization", a),
                    None => r,
                };
                r.send(body.unwrap_or_default())
            }
        };
        let mut response = response.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Creates a tenant over HTTP; returns its token.
    pub fn tenant(&self, name: &str, quotas: Option<Value>) -> String {
        let mut body = json!({ "name": name });
        if let Some(q) = quotas {
            body["quotas"] = q;
        }
        let (status, made) = self.http("POST", "/v1/tenants", Some(ADMIN), Some(body.to_string().as_bytes()));
        assert_eq!(status, 201, "creating tenant {name}: {made}");
        made["token"]["secret"].as_str().expect("a token").to_owned()
    }

    /// Polls `GET path` until `ok` accepts the answer (or fails after a minute).
    pub fn wait_for(&self, path: &str, token: &str, ok: impl Fn(u16, &Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, body) = self.http("GET", path, Some(token), None);
            if ok(status, &body) {
                return body;
            }
            assert!(Instant::now() < deadline, "GET {path}: still {status} {body}\n--- server log\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `eddy ARGS` as the tenant whose profile is `profile` (EDDY_CONFIG).
fn cli(env: &Env, profile: &Path, args: &[&str]) -> Output {
    let child = Command::new(eddy_bin())
        .args(args)
        .env("EDDY_CONFIG", profile)
        .env("EDDY_ADMIN_TOKEN", ADMIN)
        .env("EDDY_CACHE_DIR", cache_dir())
        .current_dir(env.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running eddy");
    wait_bounded(child, &format!("eddy {}", args.join(" ")), COMMAND_DEADLINE)
}

/// Like [`cli`], which must succeed; returns stdout.
fn cli_ok(env: &Env, profile: &Path, args: &[&str]) -> String {
    let out = cli(env, profile, args);
    assert!(
        out.status.success(),
        "eddy {args:?} failed\n--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// Like [`cli`], which must fail; returns stderr.
fn cli_fails(env: &Env, profile: &Path, args: &[&str]) -> String {
    let out = cli(env, profile, args);
    assert!(!out.status.success(), "eddy {args:?} should have failed: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8(out.stderr).expect("UTF-8")
}

/// The vitals plugin with a custom section appended: other bytes, the same
/// functions (a new version to upgrade to).
fn vitals_variant(env: &Env) -> PathBuf {
    let mut bytes = std::fs::read(eddy_tests::VITALS).expect("vitals plugin");
    let payload = b"eddy-test-v2";
    let name = b"note";
    bytes.push(0); // custom section
    bytes.push((1 + name.len() + payload.len()) as u8);
    bytes.push(name.len() as u8);
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(payload);
    let path = env.path("vitals-v2.wasm");
    std::fs::write(&path, bytes).expect("writing the variant");
    path
}

pub(crate) const PRESSURE_APP: &str = "\
application-id: pressure
plugin: vitals.wasm
error-policy: skip
topology:
  - { name: readings, source: [vitals], key-serde: string, value-serde: json }
  - { name: valid, filter: valid_reading }
  - { name: by-patient, select-key: patient_key }
  - { name: pressure, aggregate: average_pressure, store: pressure }
  - { name: out, to: vitals-pressure, key-serde: string, value-serde: json }
";

pub(crate) fn reading(patient: &str, systolic: u32) -> String {
    json!({"key": "bed", "value": {"patient": patient, "heart_rate": 70, "systolic": systolic, "diastolic": 80}})
        .to_string()
}

/// Sets up tenant `acme` with the pressure app deployed from the CLI;
/// returns its token and profile.
fn deploy_pressure(env: &Env, server: &Server) -> (String, PathBuf) {
    let profile = env.path("acme.json");
    let out = cli_ok(env, &profile, &["admin", "create-tenant", "acme", "--server", &server.url]);
    let token = out.lines().last().expect("a token line").trim().to_owned();
    cli_ok(env, &profile, &["login", "--server", &server.url, "--token", &token]);
    std::fs::copy(eddy_tests::VITALS, env.path("vitals.wasm")).expect("copying the plugin");
    env.write("pressure.yaml", PRESSURE_APP);
    cli_ok(env, &profile, &["--remote", "topic", "create", "vitals", "--partitions", "2"]);
    cli_ok(env, &profile, &["--remote", "topic", "create", "vitals-pressure"]);
    let deployed = cli_ok(env, &profile, &["app", "deploy", "pressure.yaml"]);
    assert!(deployed.contains("running"), "{deployed}");
    (token, profile)
}

fn produce(env: &Env, profile: &Path, lines: &[String]) {
    let file = env.write("batch.jsonl", &(lines.join("\n") + "\n"));
    let file = file.to_str().expect("UTF-8 path");
    cli_ok(
        env,
        profile,
        &["--remote", "produce", "vitals", "--file", file, "--key-serde", "string", "--value-serde", "json"],
    );
}

pub(crate) fn readings_of(server: &Server, token: &str, patient: &str, expected: u64) -> Value {
    let path = format!("/v1/apps/pressure/stores/pressure/keys/{patient}");
    server.wait_for(&path, token, |status, body| status == 200 && body["value"]["readings"] == json!(expected))
}

#[test]
fn a_tenant_deploys_queries_upgrades_and_deletes_an_app() {
    let env = Env::new();
    let server = Server::start(&env);
    let (token, profile) = deploy_pressure(&env, &server);
    produce(&env, &profile, &[reading("p1", 120), reading("p1", 130), reading("p2", 110), reading("p1", 140)]);
    let p1 = readings_of(&server, &token, "p1", 3);
    assert_eq!(p1["value"]["systolic"], json!(130.0), "{p1}");
    // Only the fields asked for.
    let path = "/v1/apps/pressure/stores/pressure/keys/p1?fields=readings";
    let (status, picked) = server.http("GET", path, Some(&token), None);
    assert_eq!(status, 200);
    assert_eq!(picked["value"], json!({"readings": 3}), "{picked}");
    let queried = cli_ok(&env, &profile, &["query", "pressure", "pressure", "p2", "--fields", "systolic"]);
    assert!(queried.contains("\"systolic\":110"), "{queried}");
    // Status and logs from the CLI.
    let status = cli_ok(&env, &profile, &["app", "status", "pressure"]);
    assert!(status.contains("running") && status.contains("plugin vitals@1"), "{status}");
    let listed = cli_ok(&env, &profile, &["plugin", "list"]);
    assert!(listed.contains("vitals@1"), "{listed}");
    // Upgrade to new plugin bytes: the store and offsets carry over, so one
    // more reading makes 4, neither 1 (state lost) nor 7 (replayed).
    let v2 = vitals_variant(&env);
    let upgraded = cli_ok(&env, &profile, &["app", "upgrade", "pressure", "--plugin", v2.to_str().expect("UTF-8")]);
    assert!(upgraded.contains("vitals-v2@1"), "{upgraded}");
    produce(&env, &profile, &[reading("p1", 150)]);
    let p1 = readings_of(&server, &token, "p1", 4);
    assert_eq!(p1["value"]["systolic"], json!(135.0), "{p1}");
    // A new app file that drops the store is refused; the app runs on.
    let orphaning = PRESSURE_APP.replace("  - { name: pressure, aggregate: average_pressure, store: pressure }\n", "");
    env.write("no-store.yaml", &orphaning);
    let refused = cli_fails(&env, &profile, &["app", "upgrade", "pressure", "--file", "no-store.yaml"]);
    assert!(refused.contains("orphan") && refused.contains("'pressure'"), "{refused}");
    // A plugin without the app's functions is refused too.
    let words = env.path("words.wasm");
    std::fs::copy(eddy_tests::WORDS, &words).expect("copying words");
    let refused =
        cli_fails(&env, &profile, &["app", "upgrade", "pressure", "--plugin", words.to_str().expect("UTF-8")]);
    assert!(refused.contains("does not export"), "{refused}");
    assert!(cli_ok(&env, &profile, &["app", "status", "pressure"]).contains("running"));
    // Pause keeps the state; resume goes on from the last commit.
    assert!(cli_ok(&env, &profile, &["app", "pause", "pressure"]).contains("paused"));
    produce(&env, &profile, &[reading("p2", 130)]);
    assert!(cli_ok(&env, &profile, &["app", "resume", "pressure"]).contains("running"));
    let p2 = server.wait_for("/v1/apps/pressure/stores/pressure/keys/p2", &token, |s, b| {
        s == 200 && b["value"]["readings"] == json!(2)
    });
    assert_eq!(p2["value"]["systolic"], json!(120.0));
    // Outputs are readable; then delete.
    let out = cli_ok(
        &env,
        &profile,
        &["--remote", "consume", "vitals-pressure", "--key-serde", "string", "--value-serde", "json"],
    );
    assert!(out.lines().count() >= 2, "{out}");
    let (_, topics) = server.http("GET", "/v1/topics", Some(&token), None);
    assert!(topics.to_string().contains("pressure-pressure-changelog"), "{topics}");
    cli_ok(&env, &profile, &["app", "delete", "pressure"]);
    let (status, _) = server.http("GET", "/v1/apps/pressure", Some(&token), None);
    assert_eq!(status, 404);
    assert!(!env.path("server/tenants/acme/state/pressure").exists(), "its state is removed");
    // Its changelog and offsets went with it; deployed again under the same
    // name, it runs from the start of its input and counts each reading once.
    let (_, topics) = server.http("GET", "/v1/topics", Some(&token), None);
    assert!(!topics.to_string().contains("changelog"), "{topics}");
    assert!(topics.to_string().contains("vitals-pressure"), "its input and output topics stay: {topics}");
    cli_ok(&env, &profile, &["app", "deploy", "pressure.yaml"]);
    let p1 = readings_of(&server, &token, "p1", 4);
    assert_eq!(p1["value"]["systolic"], json!(135.0), "{p1}");
}

#[test]
fn tokens_guard_every_endpoint_and_tenants_see_only_their_own() {
    let env = Env::new();
    let server = Server::start(&env);
    let (acme, _) = deploy_pressure(&env, &server);
    let globex = server.tenant("globex", None);
    let tenant_gets = [
        "/v1/whoami",
        "/v1/plugins",
        "/v1/plugins/vitals",
        "/v1/apps",
        "/v1/apps/pressure",
        "/v1/apps/pressure/logs",
        "/v1/apps/pressure/topology",
        "/v1/apps/pressure/stores",
        "/v1/apps/pressure/stores/pressure/keys/p1",
        "/v1/topics",
        "/v1/topics/vitals/records",
        "/v1/metrics",
    ];
    let tenant_posts = [
        "/v1/plugins/vitals",
        "/v1/apps",
        "/v1/apps/pressure/pause",
        "/v1/apps/pressure/resume",
        "/v1/apps/pressure/upgrade",
        "/v1/topics",
        "/v1/topics/vitals/records",
    ];
    for path in tenant_gets {
        assert_eq!(server.http("GET", path, None, None).0, 401, "GET {path} without a token");
        assert_eq!(server.http("GET", path, Some("eddy_forged"), None).0, 401, "GET {path} with a forged token");
        assert_eq!(server.http("GET", path, Some(ADMIN), None).0, 403, "GET {path} with the admin token");
    }
    for path in tenant_posts {
        assert_eq!(server.http("POST", path, None, Some(b"{}")).0, 401, "POST {path} without a token");
        assert_eq!(server.http("POST", path, Some("eddy_forged"), Some(b"{}")).0, 401, "POST {path} forged");
    }
    assert_eq!(server.http("DELETE", "/v1/apps/pressure", None, None).0, 401);
    // Admin endpoints refuse tenants.
    for (method, path) in
        [("GET", "/v1/tenants"), ("POST", "/v1/tenants"), ("POST", "/v1/tenants/acme/tokens"), ("GET", "/metrics")]
    {
        assert_eq!(server.http(method, path, Some(&acme), Some(b"{}")).0, 403, "{method} {path} as a tenant");
        assert_eq!(server.http(method, path, None, Some(b"{}")).0, 401, "{method} {path} without a token");
    }
    // Another tenant's objects are as absent as ones that never existed.
    for path in [
        "/v1/apps/pressure",
        "/v1/apps/pressure/stores/pressure/keys/p1",
        "/v1/plugins/vitals",
        "/v1/topics/vitals/records",
    ] {
        let (status, body) = server.http("GET", path, Some(&globex), None);
        assert_eq!(status, 404, "GET {path} as globex: {body}");
        assert!(!body.to_string().contains("acme"), "{body}");
    }
    assert_eq!(server.http("GET", "/v1/apps", Some(&globex), None).1, json!([]));
    assert_eq!(server.http("GET", "/v1/topics", Some(&globex), None).1, json!([]));
    assert_eq!(server.http("POST", "/v1/apps/pressure/pause", Some(&globex), Some(b"{}")).0, 404);
    assert_eq!(server.http("DELETE", "/v1/apps/pressure", Some(&globex), None).0, 404);
    let (_, metrics) = server.http("GET", "/v1/metrics", Some(&globex), None);
    assert!(!metrics.to_string().contains("acme"), "{metrics}");
    let (status, metrics) = server.http("GET", "/metrics", Some(ADMIN), None);
    assert_eq!(status, 200);
    assert!(
        metrics.to_string().contains("eddy_records_in_total{app=\\\"pressure\\\",tenant=\\\"acme\\\"}"),
        "{metrics}"
    );
    // A revoked token stops working.
    let (_, issued) = server.http("POST", "/v1/tenants/globex/tokens", Some(ADMIN), Some(b"{}"));
    let (id, secret) = (issued["id"].as_str().expect("id"), issued["secret"].as_str().expect("secret"));
    assert_eq!(server.http("GET", "/v1/whoami", Some(secret), None).0, 200);
    assert_eq!(server.http("DELETE", &format!("/v1/tenants/globex/tokens/{id}"), Some(ADMIN), None).0, 204);
    assert_eq!(server.http("GET", "/v1/whoami", Some(secret), None).0, 401);
    assert_eq!(server.http("GET", "/v1/whoami", Some(&globex), None).0, 200, "other tokens still work");
    // The API describes itself.
    let (status, doc) = server.http("GET", "/v1/openapi.json", None, None);
    assert_eq!(status, 200);
    assert!(doc["paths"]["/v1/apps/{app}/upgrade"].is_object());
    // The metrics cover every app, even one that has seen no record yet.
    let (_, metrics) = server.http("GET", "/metrics", Some(ADMIN), None);
    let text = metrics.as_str().unwrap_or_default();
    for series in [
        r#"eddy_plugin_call_seconds_bucket{app="pressure",tenant="acme",le="0.0001"}"#,
        r#"eddy_record_e2e_latency_seconds_count{app="pressure",tenant="acme"}"#,
        r#"eddy_node_records_in_total{app="pressure",node="valid",tenant="acme"}"#,
        r#"eddy_plugin_traps_total{app="pressure",tenant="acme"}"#,
    ] {
        assert_eq!(metric(text, series), Some(0.0), "{series} in\n{text}");
    }
    // A plugin that traps on every record: each failing call is counted,
    // in the app's status and its metrics, and only in its tenant's.
    let g = Some(globex.as_str());
    let faulty = std::fs::read(eddy_tests::FAULTY).expect("faulty");
    assert_eq!(server.http("POST", "/v1/plugins/faulty", g, Some(&faulty)).0, 201);
    for topic in [r#"{"name": "boom-in"}"#, r#"{"name": "boom-out"}"#] {
        assert_eq!(server.http("POST", "/v1/topics", g, Some(topic.as_bytes())).0, 201);
    }
    let doc = "application-id: boom\nplugin: faulty\nerror-policy: skip\ntopology:\n  - { name: in, source: [boom-in] }\n  - { name: bad, map-values: panicky_upper }\n  - { name: out, to: boom-out }\n";
    let body = json!({ "document": doc }).to_string();
    assert_eq!(server.http("POST", "/v1/apps", g, Some(body.as_bytes())).0, 201);
    let lines: String =
        ["boom", "a boom", "boom!"].iter().map(|v| format!("{}\n", json!({"key": "k", "value": v}))).collect();
    let path = "/v1/topics/boom-in/records?key-serde=string&value-serde=string";
    assert_eq!(server.http("POST", path, g, Some(lines.as_bytes())).0, 200);
    let status = server.wait_for("/v1/apps/boom", &globex, |_, s| s["skipped"] == json!(3));
    // Each record's own call trapped (and the batch's first, if they came together).
    let traps = status["traps"].as_u64().unwrap_or(0);
    assert!((3..=6).contains(&traps), "{status}");
    assert!(status["plugin_calls"].as_u64().unwrap_or(0) >= traps, "{status}");
    let nodes: Vec<(&str, u64)> = status["nodes"]
        .as_array()
        .map(|ns| {
            ns.iter().map(|n| (n["name"].as_str().unwrap_or(""), n["records_in"].as_u64().unwrap_or(0))).collect()
        })
        .unwrap_or_default();
    assert_eq!(nodes, [("in", 3), ("bad", 3), ("out", 0)], "{status}");
    let (_, metrics) = server.http("GET", "/metrics", Some(ADMIN), None);
    let text = metrics.as_str().unwrap_or_default();
    assert_eq!(metric(text, r#"eddy_plugin_traps_total{app="boom",tenant="globex"}"#), Some(traps as f64), "{text}");
    let (_, mine) = server.http("GET", "/v1/metrics", Some(&acme), None);
    assert!(!mine.as_str().unwrap_or_default().contains("globex"), "{mine}");
}

#[test]
fn corrupt_plugins_and_invalid_apps_are_refused_with_clear_errors() {
    let env = Env::new();
    let server = Server::start(&env);
    let token = server.tenant("acme", Some(json!({"max-plugin-bytes": 4_000_000, "max-apps": 1})));
    let t = Some(token.as_str());
    let (status, body) = server.http("POST", "/v1/plugins/junk", t, Some(b"definitely not wasm"));
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().expect("error").contains("not a valid Eddy plugin"), "{body}");
    let mut cut = std::fs::read(eddy_tests::VITALS).expect("vitals");
    cut.truncate(cut.len() / 2);
    let (status, body) = server.http("POST", "/v1/plugins/cut", t, Some(&cut));
    assert_eq!(status, 400, "{body}");
    let big = vec![0u8; 4_000_001];
    let (status, body) = server.http("POST", "/v1/plugins/big", t, Some(&big));
    assert_eq!(status, 403, "{body}");
    assert!(body["error"].as_str().expect("error").contains("limit"), "{body}");
    let (status, body) = server.http("POST", "/v1/plugins/bad%20name", t, Some(b"x"));
    assert_eq!(status, 400, "{body}");
    let vitals = std::fs::read(eddy_tests::VITALS).expect("vitals");
    assert_eq!(server.http("POST", "/v1/plugins/vitals", t, Some(&vitals)).0, 201);
    let deploy = |doc: &str| {
        let body = json!({ "document": doc }).to_string();
        server.http("POST", "/v1/apps", t, Some(body.as_bytes()))
    };
    let (status, body) = deploy("application-id: x\nplugin: vitals\ntopology: [ {name: a, source: [nope]} ]\n");
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().expect("error").contains("nope"), "{body}");
    let (status, body) = deploy("application-id: x\nplugin: missing\n");
    assert_eq!(status, 404, "{body}");
    assert!(body["error"].as_str().expect("error").contains("no plugin 'missing'"), "{body}");
    let (status, body) = deploy("application-id: x\nplugin: vitals\ntopology: [ {name: a, sauce: [t]} ]\n");
    assert_eq!(status, 400, "{body}");
    let (status, body) = deploy("not: [valid");
    assert_eq!(status, 400, "{body}");
    let (status, body) = server.http("POST", "/v1/apps", t, Some(b"{\"nothing\": 1}"));
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().expect("error").contains("document"), "{body}");
    // Quota: one app.
    assert_eq!(server.http("POST", "/v1/topics", t, Some(br#"{"name": "vitals"}"#)).0, 201);
    let app = PRESSURE_APP.replace("vitals.wasm", "vitals");
    let app = app.replace("  - { name: out, to: vitals-pressure, key-serde: string, value-serde: json }\n", "");
    let (status, body) = deploy(&app);
    assert_eq!(status, 201, "{body}");
    let (status, body) = deploy(&app.replace("application-id: pressure", "application-id: second"));
    assert_eq!(status, 403, "{body}");
    assert!(body["error"].as_str().expect("error").contains("limit is 1"), "{body}");
    let (status, body) = deploy(&app);
    assert_eq!(status, 409, "{body}");
    // Bad records get a clear error and nothing is written.
    let (status, body) = server.http("POST", "/v1/topics/vitals/records", t, Some(b"{\"value\": 1}\nnot json\n"));
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().expect("error").contains("line 2"), "{body}");
    let (_, topics) = server.http("GET", "/v1/topics", t, None);
    assert_eq!(topics[0]["records"], json!(0), "{topics}");
    // And the server still serves.
    assert_eq!(server.http("GET", "/v1/apps/pressure", t, None).1["state"], json!("running"));
}

#[test]
fn a_killed_server_resumes_its_apps_without_loss() {
    let env = Env::new();
    let server = Server::start(&env);
    let (token, profile) = deploy_pressure(&env, &server);
    produce(&env, &profile, &(0..50).map(|i| reading("p1", 100 + i)).collect::<Vec<_>>());
    readings_of(&server, &token, "p1", 50);
    server.kill();
    let server = Server::start(&env);
    cli_ok(&env, &profile, &["login", "--server", &server.url, "--token", &token]);
    // It runs again on its own, from its committed offsets and stores.
    produce(&env, &profile, &(0..10).map(|i| reading("p1", 100 + i)).collect::<Vec<_>>());
    readings_of(&server, &token, "p1", 60);
    let status = server.http("GET", "/v1/apps/pressure", Some(&token), None).1;
    assert_eq!(status["state"], json!("running"), "{status}");
    // A paused app stays paused across a restart.
    assert!(cli_ok(&env, &profile, &["app", "pause", "pressure"]).contains("paused"));
    let stopped = server.stop();
    assert!(stopped.status.success());
    let server = Server::start(&env);
    cli_ok(&env, &profile, &["login", "--server", &server.url, "--token", &token]);
    let status = server.http("GET", "/v1/apps/pressure", Some(&token), None).1;
    assert_eq!(status["state"], json!("paused"), "{status}");
    assert!(cli_ok(&env, &profile, &["app", "resume", "pressure"]).contains("running"));
    readings_of(&server, &token, "p1", 60);
}

#[test]
fn runaway_plugins_are_contained_while_another_tenant_runs_on() {
    let env = Env::new();
    let server = Server::start(&env);
    // The victim: a stateless app over 2000 readings.
    let victim = server.tenant("victim", None);
    let v = Some(victim.as_str());
    let vitals = std::fs::read(eddy_tests::VITALS).expect("vitals");
    assert_eq!(server.http("POST", "/v1/plugins/vitals", v, Some(&vitals)).0, 201);
    for topic in [r#"{"name": "vitals", "partitions": 2}"#, r#"{"name": "clean"}"#] {
        assert_eq!(server.http("POST", "/v1/topics", v, Some(topic.as_bytes())).0, 201);
    }
    let clean = "application-id: clean\nplugin: vitals\nerror-policy: skip\ntopology:\n  - { name: readings, source: [vitals], key-serde: string, value-serde: json }\n  - { name: valid, filter: valid_reading }\n  - { name: out, to: clean, key-serde: string, value-serde: json }\n";
    let body = json!({ "document": clean }).to_string();
    assert_eq!(server.http("POST", "/v1/apps", v, Some(body.as_bytes())).0, 201);
    // The attacker: an endless loop, a memory bomb, a trap on every record
    // and a flood of output, each on the records that ask for it.
    let evil = server.tenant("evil", None);
    let e = Some(evil.as_str());
    let faulty = std::fs::read(eddy_tests::FAULTY).expect("faulty");
    assert_eq!(server.http("POST", "/v1/plugins/faulty", e, Some(&faulty)).0, 201);
    let apps = [
        ("spin", "filter: spin", ["spin", "ok", "spin", "ok"]),
        ("hog", "map-values: hog", ["hog", "ok", "hog", "ok"]),
        ("boom", "map-values: panicky_upper", ["boom", "boom!", "a boom", "boom"]),
        ("flood", "flat-map: flood", ["flood", "ok", "ok", "flood"]),
    ];
    for (name, op, _) in &apps {
        for topic in [format!("{name}-in"), format!("{name}-out")] {
            let body = json!({ "name": topic }).to_string();
            assert_eq!(server.http("POST", "/v1/topics", e, Some(body.as_bytes())).0, 201);
        }
        let doc = format!(
            "application-id: {name}\nplugin: faulty\nerror-policy: skip\ntopology:\n  - {{ name: in, source: [{name}-in] }}\n  - {{ name: bad, {op} }}\n  - {{ name: out, to: {name}-out }}\n"
        );
        let body = json!({ "document": doc }).to_string();
        let (status, made) = server.http("POST", "/v1/apps", e, Some(body.as_bytes()));
        assert_eq!(status, 201, "{made}");
    }
    for (name, _, values) in &apps {
        let lines: String = values.iter().map(|v| format!("{}\n", json!({"key": "k", "value": v}))).collect();
        let path = format!("/v1/topics/{name}-in/records?key-serde=string&value-serde=string");
        assert_eq!(server.http("POST", &path, e, Some(lines.as_bytes())).0, 200);
    }
    let readings: Vec<String> = (0..2000).map(|i| reading(&format!("p{i}"), 120)).collect();
    let path = "/v1/topics/vitals/records?key-serde=string&value-serde=json";
    assert_eq!(server.http("POST", path, v, Some((readings.join("\n") + "\n").as_bytes())).0, 200);
    // Every bad record is skipped with the reason in the app's log, the
    // others go through, and no app stops.
    for (name, expected_out, reason) in [
        ("spin", 2, "past its timeout"),
        ("hog", 2, "went past its memory limit"),
        ("boom", 0, "boom"),
        ("flood", 2, "skipping record"),
    ] {
        let skipped = 4 - expected_out;
        let status = server.wait_for(&format!("/v1/apps/{name}"), &evil, |_, s| s["skipped"] == json!(skipped));
        assert_eq!(status["state"], json!("running"), "{status}");
        // The passed records show once their batch commits.
        let path = format!("/v1/topics/{name}-out/records");
        let out = server.wait_for(&path, &evil, |_, out| out.as_array().map(Vec::len) >= Some(expected_out));
        assert_eq!(out.as_array().map(Vec::len), Some(expected_out), "{name}: {out}");
        let (_, logs) = server.http("GET", &format!("/v1/apps/{name}/logs"), e, None);
        assert!(logs.to_string().contains(reason), "{name}'s log should say '{reason}': {logs}");
    }
    // An app stuck in a runaway batch (200 records of 100 ms each) pauses
    // at once, dropping the batch, and runs it again when resumed.
    let spins: String = (0..200).map(|i| format!("{}\n", json!({"key": format!("s{i}"), "value": "spin"}))).collect();
    let path = "/v1/topics/spin-in/records?key-serde=string&value-serde=string";
    assert_eq!(server.http("POST", path, e, Some(spins.as_bytes())).0, 200);
    // (Its lines come when a batch ends: give it a second to be in the middle.)
    std::thread::sleep(Duration::from_secs(1));
    let started = Instant::now();
    let (status, paused) = server.http("POST", "/v1/apps/spin/pause", e, Some(b"{}"));
    assert_eq!((status, &paused["state"]), (200, &json!("paused")), "{paused}");
    assert!(started.elapsed() < Duration::from_secs(10), "pausing took {:?}", started.elapsed());
    let (_, logs) = server.http("GET", "/v1/apps/spin/logs?limit=2000", e, None);
    assert!(logs.to_string().contains("stopped in the middle of a batch"), "{logs}");
    let status = server.wait_for("/v1/apps/clean", &victim, |_, s| s["records_out"] == json!(2000));
    assert_eq!(status["skipped"], json!(0), "{status}");
    // The victim's log holds none of the attacker's lines.
    let (_, logs) = server.http("GET", "/v1/apps/clean/logs", v, None);
    assert!(!logs.to_string().contains("skipping"), "{logs}");
}

/// The page `url` as headless Chromium has it once its scripts ran.
fn chromium_dom(env: &Env, url: &str) -> String {
    let profile = env.path("chromium-profile");
    let child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=15000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting chromium (scripts/setup.sh installs it)");
    let out = wait_bounded(child, "chromium --dump-dom", Duration::from_secs(120));
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_console_shows_a_tenants_apps_in_headless_chromium() {
    let env = Env::new();
    let server = Server::start(&env);
    let (token, profile) = deploy_pressure(&env, &server);
    // Two implausible readings (heart rate 400) that the filter drops.
    let implausible = || {
        json!({"key": "bed", "value": {"patient": "p1", "heart_rate": 400, "systolic": 120, "diastolic": 80}})
            .to_string()
    };
    produce(
        &env,
        &profile,
        &[reading("p1", 120), implausible(), reading("p1", 130), reading("p1", 140), implausible(), reading("p2", 100)],
    );
    readings_of(&server, &token, "p1", 3);
    let link = format!("{}/#token={token}&app=pressure&store=pressure&key=p1&fields=readings", server.url);
    let dom = chromium_dom(&env, &link);
    // Signed in, the app listed with its state and figures.
    assert!(dom.contains("tenant acme"), "{dom}");
    assert!(dom.contains(r#"data-app="pressure""#) && dom.contains("state-running"), "{dom}");
    // Its topology drawn: one box per node, figures on the source.
    for node in ["readings", "valid", "by-patient", "pressure", "out"] {
        assert!(dom.contains(&format!(r#"data-node="{node}""#)), "node {node} missing: {dom}");
    }
    assert!(dom.contains("Sub-topology 0") && dom.contains("Sub-topology 1"), "{dom}");
    // Each node shows what it received: the filter all 6 readings, the
    // select-key after it (fused with it in one plugin call) the 4 valid ones.
    let counts: Vec<Option<u64>> =
        ["readings", "valid", "by-patient", "pressure", "out"].iter().map(|n| node_records_in(&dom, n)).collect();
    assert_eq!(counts[..3], [Some(6), Some(6), Some(4)], "{dom}");
    assert_eq!(counts[3], Some(4), "the aggregation gets the 4 valid readings: {dom}");
    assert!(counts[4].is_some_and(|n| (2..=4).contains(&n)), "the sink gets 2 to 4 updates (cached): {dom}");
    assert!(dom.contains("in 6, ") && dom.contains("app lag 0"), "the source shows records in and lag: {dom}");
    // The lookup form answered.
    let result = dom.split(r#"id="lookup-result">"#).nth(1).and_then(|r| r.split("</pre>").next()).unwrap_or("");
    assert!(result.contains("\"readings\": 3") && !result.contains("systolic"), "lookup: {result}");
    // A wrong token is refused on the page.
    let dom = chromium_dom(&env, &format!("{}/#token=eddy_wrong", server.url));
    assert!(dom.contains("Sign-in failed: the token is not valid"), "{dom}");
    // The same figures in Prometheus' format, with latencies.
    let (_, metrics) = server.http("GET", "/metrics", Some(ADMIN), None);
    let text = metrics.as_str().unwrap_or_default();
    let labels = r#"app="pressure",tenant="acme""#;
    for (node, expected) in [("readings", 6.0), ("valid", 6.0), ("by-patient", 4.0)] {
        let series = format!(r#"eddy_node_records_in_total{{app="pressure",node="{node}",tenant="acme"}}"#);
        assert_eq!(metric(text, &series), Some(expected), "{series} in\n{text}");
    }
    let calls = metric(text, &format!(r#"eddy_plugin_call_seconds_bucket{{{labels},le="+Inf"}}"#));
    assert!(calls.is_some_and(|n| n >= 2.0), "a call per operator per batch at least:\n{text}");
    let sent = metric(text, &format!("eddy_record_e2e_latency_seconds_count{{{labels}}}"));
    assert!(sent.is_some_and(|n| n >= 2.0), "the sink's records are timed:\n{text}");
    let within = metric(text, &format!(r#"eddy_record_e2e_latency_seconds_bucket{{{labels},le="60"}}"#));
    assert_eq!(within, sent, "just produced, the records are less than a minute old:\n{text}");
    assert_eq!(metric(text, &format!("eddy_plugin_traps_total{{{labels}}}")), Some(0.0), "{text}");
}

/// The value of the series `series` (name and labels, as written) in
/// Prometheus text.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The records a node's box in the console says it received.
fn node_records_in(dom: &str, node: &str) -> Option<u64> {
    let rest = dom.split(&format!(r#"data-node="{node}""#)).nth(1)?;
    rest.split("data-records-in=\"").nth(1)?.split('"').next()?.parse().ok()
}
