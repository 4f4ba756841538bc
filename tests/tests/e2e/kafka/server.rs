//! `eddy server` with its apps on a Kafka cluster: tenants share the
//! cluster under names of their own, and a killed server resumes its apps.

use serde_json::json;

use crate::Env;
use crate::server::{PRESSURE_APP, Server, reading, readings_of};

/// Creates tenant `name` with the vitals plugin, its topics and the
/// pressure app; returns its token.
fn tenant_with_pressure(server: &Server, name: &str) -> String {
    let token = server.tenant(name, None);
    let t = Some(token.as_str());
    let vitals = std::fs::read(eddy_tests::VITALS).expect("vitals");
    assert_eq!(server.http("POST", "/v1/plugins/vitals", t, Some(&vitals)).0, 201);
    for topic in [r#"{"name": "vitals", "partitions": 2}"#, r#"{"name": "vitals-pressure"}"#] {
        let (status, body) = server.http("POST", "/v1/topics", t, Some(topic.as_bytes()));
        assert_eq!(status, 201, "{body}");
    }
    // Counts that are exact after a kill need exactly-once: at-least-once
    // may count again what the killed server processed but had not committed.
    let document = format!("processing-guarantee: exactly-once\n{PRESSURE_APP}");
    let body = json!({ "document": document }).to_string();
    let (status, made) = server.http("POST", "/v1/apps", t, Some(body.as_bytes()));
    assert_eq!(status, 201, "{made}");
    token
}

fn produce(server: &Server, token: &str, lines: &[String]) {
    let path = "/v1/topics/vitals/records?key-serde=string&value-serde=json";
    let (status, body) = server.http("POST", path, Some(token), Some((lines.join("\n") + "\n").as_bytes()));
    assert_eq!(status, 200, "{body}");
}

#[test]
fn a_server_on_kafka_keeps_tenants_apart_and_resumes_after_a_kill() {
    let env = Env::kafka();
    let bootstrap = env.bootstrap.clone().expect("a Kafka env");
    let server = Server::start_with(&env, &["--bootstrap-servers", &bootstrap]);
    let (acme, globex) = (env.topic("acme"), env.topic("globex"));
    let a = tenant_with_pressure(&server, &acme);
    let g = tenant_with_pressure(&server, &globex);
    produce(&server, &a, &[reading("p1", 120), reading("p1", 130), reading("p1", 140)]);
    produce(&server, &g, &[reading("p1", 100)]);
    // Both tenants have a topic `vitals` and an app `pressure`: each sees its own.
    readings_of(&server, &a, "p1", 3);
    readings_of(&server, &g, "p1", 1);
    let (_, topics) = server.http("GET", "/v1/topics", Some(&a), None);
    let names: Vec<&str> = topics.as_array().expect("topics").iter().filter_map(|t| t["name"].as_str()).collect();
    assert!(names.contains(&"vitals") && !names.iter().any(|n| n.contains(&globex)), "{names:?}");
    // On the cluster they are `<tenant>.<name>`, internal topics included.
    let listed = env.eddy(&["topic", "list", &env.topic("")]);
    for topic in [format!("{acme}.vitals"), format!("{globex}.vitals"), format!("{acme}.pressure-pressure-changelog")] {
        assert!(listed.contains(&topic), "{topic} missing from:\n{listed}");
    }
    // Killed and started again, the server runs the apps from their commits.
    server.kill();
    let server = Server::start_with(&env, &["--bootstrap-servers", &bootstrap]);
    produce(&server, &a, &[reading("p1", 150)]);
    let p1 = readings_of(&server, &a, "p1", 4);
    assert_eq!(p1["value"]["systolic"], json!(135.0), "{p1}");
    readings_of(&server, &g, "p1", 1);
    // Deleting one tenant's app deletes its internal topics on the cluster
    // and leaves the other tenant's alone.
    assert_eq!(server.http("DELETE", "/v1/apps/pressure", Some(&a), None).0, 204);
    let listed = env.eddy(&["topic", "list", &env.topic("")]);
    assert!(!listed.contains(&format!("{acme}.pressure-pressure-changelog")), "{listed}");
    for topic in [format!("{acme}.vitals"), format!("{globex}.pressure-pressure-changelog")] {
        assert!(listed.contains(&topic), "{topic} missing from:\n{listed}");
    }
    produce(&server, &g, &[reading("p1", 110)]);
    readings_of(&server, &g, "p1", 2);
}
