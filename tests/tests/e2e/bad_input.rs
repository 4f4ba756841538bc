//! Bad input gets a clear error or the error policy's outcome, and nothing
//! already committed is lost.

use serde_json::{Value, json};

use crate::{Env, app_file};

const SHOUT: &str = "topology:\n  - { name: in, source: [in], value-serde: string }\n  - { name: up, map-values: FUNCTION }\n  - { name: out, to: out, value-serde: string }\n";

fn shout_app(env: &Env, policy: &str, function: &str, extra: &str) -> String {
    let body = format!("application-id: shout\nerror-policy: {policy}\n{extra}{}", SHOUT.replace("FUNCTION", function));
    app_file(env, "shout.yaml", eddy_tests::FAULTY, &body).display().to_string()
}

fn setup(env: &Env, values: &[&str]) {
    env.eddy(&["topic", "create", "in", "--partitions", "2"]);
    env.eddy(&["topic", "create", "out", "--partitions", "2"]);
    produce(env, values);
}

fn produce(env: &Env, values: &[&str]) {
    let lines: String = values.iter().map(|v| format!("{v}\n")).collect();
    let file = env.write("values.txt", &lines);
    env.eddy(&["produce", "in", "--value-only", "--file", file.to_str().unwrap()]);
}

fn out_values(env: &Env, topic: &str) -> Vec<String> {
    let mut v: Vec<String> = env
        .consume_all(topic, &["--value-serde", "string"])
        .iter()
        .map(|r| r["value"].as_str().map_or_else(|| r["value"].to_string(), str::to_owned))
        .collect();
    v.sort();
    v
}

#[test]
fn corrupt_and_foreign_wasm_files_are_explained() {
    let env = Env::new();
    env.eddy(&["topic", "create", "in"]);
    env.eddy(&["topic", "create", "out"]);
    let cases: [(&str, &[u8], &str); 4] = [
        ("garbage.wasm", b"this is not wasm at all", "is not WebAssembly"),
        ("core.wasm", b"\0asm\x01\0\0\0", "core WebAssembly module, not a component"),
        ("empty-component.wasm", b"\0asm\x0d\0\x01\0", "does not implement the Eddy plugin world"),
        ("truncated.wasm", b"\0asm\x0d\0\x01\0\x07\x10\x01", "not a valid component"),
    ];
    for (file, bytes, want) in cases {
        std::fs::write(env.path(file), bytes).unwrap();
        let app =
            env.write("app.yaml", &format!("application-id: a\nplugin: {file}\n{}", SHOUT.replace("FUNCTION", "f")));
        let err = env.eddy_fails(&["run", app.to_str().unwrap(), "--until-idle"]);
        assert!(err.contains(want) && err.contains(file), "{file}: {err}");
        let err = env.eddy_fails(&["plugin", "inspect", env.path(file).to_str().unwrap()]);
        assert!(err.contains(want), "inspect {file}: {err}");
    }
    let missing =
        env.write("app.yaml", &format!("application-id: a\nplugin: nope.wasm\n{}", SHOUT.replace("FUNCTION", "f")));
    assert!(env.eddy_fails(&["run", missing.to_str().unwrap()]).contains("cannot read plugin"));
}

#[test]
fn invalid_applications_name_the_problem() {
    let env = Env::new();
    env.eddy(&["topic", "create", "in"]);
    let faulty = eddy_tests::FAULTY;
    let cases = [
        ("application-id: a\nplugin: 'oops\n", "unexpected end of stream"),
        ("application-id: a\nplugin: x.wasm\nthreads: two\n", "threads: invalid type"),
        (&format!("application-id: a\nplugin: {faulty}\nerror-polcy: skip\n"), "unknown field `error-polcy`"),
        (&format!("application-id: a\nplugin: {faulty}\n"), "no topology"),
        (
            &format!("application-id: a\nplugin: {faulty}\n{}", SHOUT.replace("FUNCTION", "nope")),
            "node 'up' (map-values) calls 'nope', which the plugin does not export; it exports: checked_upper (map-values)",
        ),
        (
            &format!("application-id: a\nplugin: {faulty}\n{}", SHOUT.replace("FUNCTION", "spin")),
            "node 'up' (map-values) needs a map-values function, but 'spin' is a predicate function",
        ),
        (
            &format!("application-id: a\nplugin: {faulty}\n{}", SHOUT.replace("FUNCTION", "checked_upper")),
            "node 'out' writes topic 'out', which does not exist; create it with `eddy topic create out",
        ),
        (
            &format!("application-id: bad/id\nplugin: {faulty}\n{}", SHOUT.replace("FUNCTION", "checked_upper")),
            "application-id 'bad/id'",
        ),
    ];
    for (yaml, want) in cases {
        let app = env.write("app.yaml", yaml);
        let err = env.eddy_fails(&["run", app.to_str().unwrap(), "--until-idle"]);
        assert!(err.contains(want), "for:\n{yaml}\ngot: {err}");
        assert!(err.contains("app.yaml") || want.starts_with("cannot"), "error names the file: {err}");
    }
}

#[test]
fn function_errors_follow_each_policy() {
    // skip: the bad record is counted and left out.
    let env = Env::new();
    setup(&env, &["a", "bad one", "b"]);
    env.eddy(&["run", &shout_app(&env, "skip", "checked_upper", ""), "--until-idle"]);
    assert_eq!(out_values(&env, "out"), ["A", "B"]);

    // dead-letter: the input record goes to the DLQ with the error.
    let env = Env::new();
    setup(&env, &["a", "bad one", "b"]);
    env.eddy(&[
        "run",
        &shout_app(&env, "dead-letter", "checked_upper", "dead-letter-topic: rejects\n"),
        "--until-idle",
    ]);
    assert_eq!(out_values(&env, "out"), ["A", "B"]);
    let dlq = env.consume_all("rejects", &["--value-serde", "string"]);
    assert_eq!(dlq.len(), 1);
    assert_eq!(dlq[0]["value"], json!("bad one"));
    assert_eq!(dlq[0]["headers"]["eddy.error"], json!("invalid record: value \"bad one\" is bad"));
    assert_eq!(dlq[0]["headers"]["eddy.error.kind"], json!("function"));

    // fail: the run stops with an error naming the node, partition and offset.
    let env = Env::new();
    setup(&env, &["a", "bad one", "b"]);
    let err = env.eddy_fails(&["run", &shout_app(&env, "fail", "checked_upper", ""), "--until-idle"]);
    assert!(err.contains("node 'up' failed on in-") && err.contains("is bad"), "{err}");
    assert!(err.contains("error-policy: fail"), "{err}");
}

#[test]
fn traps_are_isolated_to_the_record_and_follow_the_policy() {
    let env = Env::new();
    setup(&env, &["x", "boom", "y", "z"]);
    env.eddy(&["run", &shout_app(&env, "dead-letter", "panicky_upper", ""), "--until-idle"]);
    assert_eq!(out_values(&env, "out"), ["X", "Y", "Z"]);
    let dlq = env.consume_all("shout-dlq", &["--value-serde", "string"]);
    assert_eq!(dlq.len(), 1);
    let error = dlq[0]["headers"]["eddy.error"].as_str().unwrap();
    assert!(error.contains("plugin trapped") && error.contains("boom in \"boom\""), "{error}");

    let env = Env::new();
    setup(&env, &["x", "boom"]);
    let err = env.eddy_fails(&["run", &shout_app(&env, "fail", "panicky_upper", ""), "--until-idle"]);
    assert!(err.contains("plugin trapped") && err.contains("boom"), "{err}");
}

#[test]
fn a_runaway_call_times_out_and_the_host_goes_on() {
    let env = Env::new();
    setup(&env, &["ok", "spin", "fine"]);
    let body = "application-id: spin\nerror-policy: skip\ncall-timeout-ms: 200\ntopology:\n  - { name: in, source: [in] }\n  - { name: s, filter: spin }\n  - { to: out }\n";
    let app = app_file(&env, "spin.yaml", eddy_tests::FAULTY, body);
    env.eddy(&["run", app.to_str().unwrap(), "--until-idle"]);
    assert_eq!(out_values(&env, "out"), ["fine", "ok"]);
}

#[test]
fn records_that_fail_to_deserialize_follow_each_policy() {
    let topology = "topology:\n  - { name: readings, source: [in], value-serde: json }\n  - { name: out, to: out, value-serde: json }\n";
    for policy in ["skip", "dead-letter", "fail"] {
        let env = Env::new();
        setup(&env, &[r#"{"a":1}"#, "{not json", r#"{"b":2}"#]);
        let app = app_file(
            &env,
            "json.yaml",
            eddy_tests::FAULTY,
            &format!("application-id: j\nerror-policy: {policy}\n{topology}"),
        );
        let args = ["run", app.to_str().unwrap(), "--until-idle"];
        if policy == "fail" {
            let err = env.eddy_fails(&args);
            assert!(err.contains("node 'readings' failed") && err.contains("value is not json"), "{err}");
            continue;
        }
        env.eddy(&args);
        let outs: Vec<Value> =
            env.consume_all("out", &["--value-serde", "json"]).iter().map(|r| r["value"].clone()).collect();
        assert_eq!(outs.len(), 2, "{policy}: {outs:?}");
        if policy == "dead-letter" {
            let dlq = env.consume_all("j-dlq", &["--value-serde", "string"]);
            assert_eq!(dlq[0]["value"], json!("{not json"));
            assert_eq!(dlq[0]["headers"]["eddy.error.kind"], json!("deserialization"));
        }
    }
}

#[test]
fn a_failed_run_loses_nothing_committed_and_resumes_exactly_once() {
    let env = Env::new();
    setup(&env, &["a", "b", "c"]);
    let fail = shout_app(&env, "fail", "checked_upper", "");
    env.eddy(&["run", &fail, "--until-idle"]);
    assert_eq!(out_values(&env, "out"), ["A", "B", "C"]);
    produce(&env, &["d", "bad", "e"]);
    env.eddy_fails(&["run", &fail, "--until-idle"]);
    // What the first run committed is still there, and nothing of the failed batch.
    let after_failure = out_values(&env, "out");
    assert!(after_failure.starts_with(&["A".to_owned(), "B".to_owned(), "C".to_owned()]), "{after_failure:?}");
    let mut unique = after_failure.clone();
    unique.dedup();
    assert_eq!(unique, after_failure, "no record twice");
    // Switching to skip resumes from the last commit: every good record once.
    env.eddy(&["run", &shout_app(&env, "skip", "checked_upper", ""), "--until-idle"]);
    assert_eq!(out_values(&env, "out"), ["A", "B", "C", "D", "E"]);
}

#[test]
fn fused_chains_name_the_node_that_failed() {
    // p -> l -> c runs as one fused call; errors and traps still name their node.
    let env = Env::new();
    setup(&env, &["ok", "bad", "boom", "fine"]);
    let body = "application-id: chain\nerror-policy: dead-letter\ntopology:\n  - { name: in, source: [in], value-serde: string }\n  - { name: p, map-values: panicky_upper }\n  - { name: l, map-values: lower }\n  - { name: c, map-values: checked_upper }\n  - { to: out, value-serde: string }\n";
    let app = app_file(&env, "chain.yaml", eddy_tests::FAULTY, body);
    env.eddy(&["run", app.to_str().unwrap(), "--until-idle"]);
    assert_eq!(out_values(&env, "out"), ["FINE", "OK"]);
    let mut dead: Vec<(String, String)> = env
        .consume_all("chain-dlq", &["--value-serde", "string"])
        .iter()
        .map(|r| {
            (r["value"].as_str().unwrap().to_owned(), r["headers"]["eddy.error.node"].as_str().unwrap().to_owned())
        })
        .collect();
    dead.sort();
    assert_eq!(dead, [("bad".to_owned(), "c".to_owned()), ("boom".to_owned(), "p".to_owned())]);
}
