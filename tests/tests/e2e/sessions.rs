//! Session windows through `eddy run`: the seed's user-activity case
//! (`examples/activity/sessions.yaml` on `examples/activity/clicks.jsonl`).
//! Each user's final sessions come out once, after they close; a click that
//! bridges two sessions merges them into one; a click too late for its
//! closed session is dropped and counted. (Kafka Streams' own session cases
//! run in `conformance`.)

use serde_json::{Value, json};

use crate::Env;

/// The sample's first click, ms since the epoch; the others are seconds
/// after it.
const T: i64 = 1_700_000_000_000;
const S: i64 = 1_000;

/// An example file's text.
fn example(path: &str) -> String {
    std::fs::read_to_string(format!("{}/../examples/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// The sessions example in `env` with the test's plugin, the clicks
/// produced to a one-partition `clicks` topic (as scripts/demo.sh does: one
/// task, so one stream time closes every user's sessions).
fn sessions_app(env: &Env) -> std::path::PathBuf {
    for topic in ["clicks", "user-sessions", "user-session-updates"] {
        env.eddy(&["topic", "create", topic, "--partitions", "1"]);
    }
    let yaml = example("activity/sessions.yaml");
    assert!(yaml.contains("plugin: activity.wasm "), "the example names its plugin:\n{yaml}");
    let yaml = yaml.replace("plugin: activity.wasm ", &format!("plugin: {} ", eddy_tests::ACTIVITY));
    env.write("sessions.yaml", &yaml)
}

/// A session as `eddy consume --windowed session` shows it: user, start,
/// end, summary (null for a tombstone).
fn sessions(records: &[Value]) -> Vec<(String, i64, i64, Value)> {
    records
        .iter()
        .map(|r| {
            let (start, end) = (r["window-start"].as_i64().unwrap(), r["window-end"].as_i64().unwrap());
            assert_eq!(r["timestamp"].as_i64(), Some(end), "a session's record carries its end: {r}");
            (r["key"].as_str().unwrap().to_owned(), start, end, r["value"].clone())
        })
        .collect()
}

fn summary(clicks: u64, pages: &[&str], first: i64, last: i64) -> Value {
    json!({"clicks": clicks, "pages": pages, "first": T + first * S, "last": T + last * S})
}

#[test]
fn user_sessions_come_out_once_merged_across_a_bridging_click_without_late_clicks() {
    let env = Env::new();
    let app = sessions_app(&env);
    env.produce("clicks", &example("activity/clicks.jsonl"), &["--key-serde", "string", "--value-serde", "json"]);
    let run = env.eddy_output(&["run", app.to_str().unwrap(), "--until-idle"]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    // Bob's click at 100 s comes when stream time is 600 s: his session
    // [30 s, 90 s] closed at 90 + 300 (gap) + 60 (grace) s.
    assert!(stderr.contains(", 0 skipped, 0 dead-lettered, 1 dropped late;"), "{stderr}");

    let serdes = ["--key-serde", "string", "--value-serde", "json", "--windowed", "session"];
    let finals = sessions(&env.consume_all("user-sessions", &serdes));
    let session = |user: &str, start: i64, end: i64, value: Value| (user.to_owned(), T + start * S, T + end * S, value);
    // Each closed session once, the earliest to close first. Alice's clicks
    // at 0-120 s and at 450 s were two sessions (330 s apart) until her
    // click at 285 s, logged after the one at 450 s, bridged them. Dave's
    // click an hour on closes everything before it; its own session stays
    // open.
    let want = [
        session("bob", 30, 90, summary(2, &["/home", "/pricing"], 30, 90)),
        session("carol", 200, 380, summary(4, &["/home", "/docs"], 200, 380)),
        session("alice", 0, 450, summary(5, &["/home", "/products", "/cart", "/checkout"], 0, 450)),
        session("dave", 600, 600, summary(1, &["/home"], 600, 600)),
    ];
    assert_eq!(finals, want, "final sessions");

    // The raw updates show the merge: the bridging click deletes both of
    // Alice's sessions (tombstones) and writes the one spanning them.
    let updates = sessions(&env.consume_all("user-session-updates", &serdes));
    let alice: Vec<_> = updates.iter().filter(|(user, ..)| user == "alice").cloned().collect();
    assert_eq!(
        alice[alice.len() - 4..],
        [
            session("alice", 450, 450, summary(1, &["/home"], 450, 450)),
            session("alice", 0, 120, Value::Null),
            session("alice", 450, 450, Value::Null),
            want[2].clone(),
        ],
        "Alice's last updates: {alice:#?}"
    );
    // Bob's late click changed nothing; Dave's last session is still open.
    assert!(updates.iter().all(|(user, _, end, _)| user != "bob" || *end <= T + 90 * S), "{updates:#?}");
    assert_eq!(updates.last(), Some(&session("dave", 3600, 3600, summary(1, &["/pricing"], 3600, 3600))));

    // The session store, scanned with its windows: each user's live
    // sessions, Alice's merged one among them, none of the merged-away ones.
    let scan = env.eddy(&[
        "store",
        "scan",
        "activity",
        "sessions",
        "--key-serde",
        "string",
        "--value-serde",
        "json",
        "--windowed",
        "session",
    ]);
    let stored: Vec<(String, i64, i64)> = scan
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|r| {
            (
                r["key"].as_str().unwrap().to_owned(),
                r["window-start"].as_i64().unwrap(),
                r["window-end"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(stored.contains(&("alice".to_owned(), T, T + 450 * S)), "{scan}");
    assert!(!stored.contains(&("alice".to_owned(), T, T + 120 * S)), "merged away: {scan}");
    assert!(stored.contains(&("dave".to_owned(), T + 3600 * S, T + 3600 * S)), "{scan}");
}

#[test]
fn describing_the_sessions_app_shows_the_aggregate_and_its_final_results() {
    let env = Env::new();
    let app = sessions_app(&env);
    let text = env.eddy(&["describe", app.to_str().unwrap()]);
    for line in [
        "Source: clicks (topics: [clicks])",
        "Processor: sessions (aggregate: add_click, merger: merge_sessions, window: session, gap 300000 ms, grace 60000 ms, stores: [sessions])",
        "--> updates-out, finals",
        "Processor: finals (suppress: until-window-closes, stores: [finals])",
        "Sink: sessions-out (topic: user-sessions)",
        "Sink: updates-out (topic: user-session-updates)",
    ] {
        assert!(text.contains(line), "no '{line}' in:\n{text}");
    }
    assert!(!text.contains("Sub-topology: 1"), "no repartition: clicks are keyed by user\n{text}");
}
