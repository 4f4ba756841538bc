//! `eddy plugin new` makes a crate that builds as-is and runs under `eddy test`.

use serde_json::{Value, json};

use crate::Env;

#[test]
fn new_plugin_builds_and_passes_its_own_app() {
    let env = Env::new();
    let dir = env.path("hello-plugin");
    let dir_s = dir.to_str().unwrap();
    env.eddy(&["plugin", "new", "hello-plugin", "--dir", dir_s]);
    assert!(env.eddy_fails(&["plugin", "new", "hello-plugin", "--dir", dir_s]).contains("is not empty"));
    let wasm = dir.join("hello_plugin.wasm");
    env.eddy(&["plugin", "build", dir_s, "--out", wasm.to_str().unwrap()]);
    let listing = env.eddy(&["plugin", "inspect", wasm.to_str().unwrap()]);
    assert!(listing.contains("not_blank") && listing.contains("predicate") && listing.contains("shout"), "{listing}");
    let app = dir.join("app.yaml");
    let input = format!("text={}", dir.join("input.jsonl").display());
    let out = env.eddy(&["test", app.to_str().unwrap(), "--input", &input]);
    let got: Vec<Value> = out.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["value"].clone()).collect();
    assert_eq!(got, [json!("HELLO EDDY"), json!("STREAM ON")]);
}
