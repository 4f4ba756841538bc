//! Tests of interactive queries: key routing and errors on a topology, and
//! a real run (native plugin, embedded log, RocksDB stores) queried while
//! it runs, directly and over HTTP.

use std::time::{Duration, Instant};

use serde_json::json;

use super::*;
use crate::app::ErrorPolicy;
use crate::log::{EmbeddedLog, Log, TopicPartition};
use crate::plugin::NativePlugin;
use crate::record::Record;
use crate::runtime::{RunOptions, run};
use crate::topology::Topology;

const TOPOLOGY: &str = "
- { name: words, source: [words], key-serde: string, value-serde: string }
- { name: counts, count: word-counts }
- { name: minutes, from: words, count: word-minutes, window: { type: tumbling, size-ms: 60000 } }
- { name: bursts, from: words, count: word-bursts, window: { type: session, gap-ms: 1000 } }
- { name: users, table: users, key-serde: i64, value-serde: json }
- { name: prices, table: prices, key-serde: string, value-serde: json, versioned: { history-retention-ms: 86400000 } }
";

fn app() -> App {
    let topology = Topology::from_yaml(TOPOLOGY).unwrap();
    App::from_parts("qt", Arc::new(NativePlugin::new("qt")), topology, ErrorPolicy::Fail).unwrap()
}

#[test]
fn keys_route_to_the_partition_kafkas_partitioner_picks() {
    let app = app();
    let q = Queryable::new(&app);
    let e = q.metadata("word-counts", "alpha").unwrap_err();
    assert!(matches!(e, QueryError::Starting { .. }) && e.retryable(), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path().join("log"), false).unwrap();
    for (topic, partitions) in [("words", 3), ("users", 2), ("prices", 1)] {
        log.create_topic(topic, partitions).unwrap();
    }
    q.set_tasks(&crate::task::plan(&app.topology, &log).unwrap());
    let meta = q.metadata("word-counts", "alpha").unwrap();
    assert_eq!(meta.partition, partition_for_key(b"alpha", 3));
    assert_eq!(meta.task, format!("{}_{}", q.store("word-counts").unwrap().subtopology, meta.partition));
    assert!(!meta.hosted_here);
    assert_eq!(meta.key, json!("alpha"));
    // `"alpha"` (JSON text) and `alpha` are the same string key; 42 is "42".
    assert_eq!(q.metadata("word-counts", "\"alpha\"").unwrap().partition, meta.partition);
    assert_eq!(q.metadata("word-counts", "42").unwrap().key, json!("42"));
    // An i64 key is serialized as Kafka's LongSerializer does before hashing.
    let seven = q.metadata("users", "7").unwrap();
    assert_eq!(seven.partition, partition_for_key(&7i64.to_be_bytes(), 2));
    let e = q.metadata("users", "seven").unwrap_err();
    assert_eq!(e.fault(), Fault::BadRequest);
    assert!(e.to_string().contains("not a 64-bit integer") && e.to_string().contains("i64"), "{e}");
    let e = q.get("nope", "x", &KeyParams::default()).unwrap_err();
    assert_eq!(e.fault(), Fault::NotFound);
    assert!(e.to_string().contains("no store 'nope'") && e.to_string().contains("word-counts, word-minutes"), "{e}");
    // Registered stores only: a task not running here is a retryable error.
    let e = q.get("word-counts", "alpha", &KeyParams::default()).unwrap_err();
    assert!(matches!(e, QueryError::NotRunning { .. }) && e.retryable(), "{e}");
    assert!(e.to_string().contains("restoring") && e.to_string().contains("rebalance"), "{e}");
    let fields = KeyParams { fields: Some("a".into()) };
    let e = q.get("word-counts", "alpha", &fields).unwrap_err();
    assert!(e.to_string().contains("i64 values"), "fields need JSON values: {e}");
    let described = q.describe();
    let counts = described.iter().find(|s| s.name == "word-counts").unwrap();
    assert_eq!((counts.kind, counts.partitions, counts.key_serde), ("key-value", Some(3), Serde::String));
    assert!(counts.running_here.is_empty());
    assert_eq!(described.iter().find(|s| s.name == "word-bursts").unwrap().kind, "session");
}

#[test]
fn cursors_and_prefixes() {
    assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
    assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
    assert_eq!(prefix_end(b"\xff\xff"), None);
    assert_eq!(unhex(&hex(b"k\x00\xff")), Some(b"k\x00\xff".to_vec()));
    assert_eq!(unhex("abc"), None);
    assert_eq!(unhex("zz"), None);
    assert_eq!(limit_of(None).unwrap(), DEFAULT_LIMIT);
    assert_eq!(limit_of(Some("5000")).unwrap(), MAX_LIMIT);
    assert!(limit_of(Some("0")).is_err() && limit_of(Some("ten")).is_err());
}

/// Sends `records` (key, value, timestamp) to `topic`, each to its key's partition.
fn produce(log: &EmbeddedLog, topic: &str, records: &[(&[u8], &str, i64)]) {
    let partitions = log.partitions(topic).unwrap().unwrap();
    let mut out = log.producer().unwrap();
    for (key, value, ts) in records {
        let tp = TopicPartition::new(topic, partition_for_key(key, partitions));
        out.send(&tp, Record::new(Some(key.to_vec()), Some(value.as_bytes().to_vec()), *ts)).unwrap();
    }
    out.commit(None, &[]).unwrap();
}

/// Polls `f` until it gives `Some`, for up to 30 s.
fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not after 30 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_running_app_answers_queries_of_every_store_kind() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path().join("log"), false).unwrap();
    for (topic, partitions) in [("words", 3), ("users", 2), ("prices", 1)] {
        log.create_topic(topic, partitions).unwrap();
    }
    let words: Vec<(&[u8], &str, i64)> = vec![
        (b"alpha", "", 1_000),
        (b"beta", "", 1_500),
        (b"alpha", "", 2_000),
        (b"gamma", "", 3_000),
        (b"delta", "", 4_000),
        (b"alpha", "", 70_000),
    ];
    produce(&log, "words", &words);
    let seven = 7i64.to_be_bytes();
    produce(&log, "users", &[(&seven, r#"{"name": "Ada", "address": {"city": "London", "zip": "N1"}}"#, 10)]);
    produce(&log, "prices", &[(b"p1", r#"{"price": 1}"#, 100), (b"p1", r#"{"price": 2}"#, 200)]);

    let app = app();
    let q = Queryable::new(&app);
    let options = RunOptions {
        threads: Some(2),
        state_dir: Some(dir.path().join("state")),
        queries: Some(q.clone()),
        ..Default::default()
    };
    let stop = options.stop.clone();
    let runner = {
        let log: Arc<dyn Log> = Arc::new(log.clone());
        std::thread::spawn(move || run(&app, log, options))
    };
    // Every task opened (each thread opens its own when it may).
    eventually("every task running", || {
        q.describe().iter().all(|s| s.partitions.is_some_and(|n| s.running_here.len() == n as usize)).then_some(())
    });
    let none = KeyParams::default();
    let alpha = eventually("alpha counted", || q.get("word-counts", "alpha", &none).ok().filter(|f| f.value == 3));
    assert_eq!(alpha, Found { key: json!("alpha"), window: None, value: json!(3), timestamp: 70_000 });
    // The other words' partitions may be another thread's, flushed later.
    for word in ["beta", "gamma", "delta"] {
        eventually(word, || q.get("word-counts", word, &none).ok().filter(|f| f.value == 1));
    }
    assert!(q.metadata("word-counts", "alpha").unwrap().hosted_here);
    let e = q.get("word-counts", "omega", &none).unwrap_err();
    assert!(matches!(e, QueryError::NotFound { .. }), "{e}");

    // Paged over every partition, each entry once, in key order.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let params = RangeParams { limit: Some("2".into()), after: after.clone(), ..Default::default() };
        let page = q.range("word-counts", &params).unwrap();
        assert!(page.entries.len() <= 2);
        seen.extend(page.entries.into_iter().map(|f| (f.key, f.value)));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let want: Vec<(Value, Value)> =
        [("alpha", 3), ("beta", 1), ("delta", 1), ("gamma", 1)].iter().map(|(k, n)| (json!(k), json!(n))).collect();
    assert_eq!(seen, want);
    let params = RangeParams { from: Some("b".into()), to: Some("gamma".into()), ..Default::default() };
    let keys: Vec<Value> = q.range("word-counts", &params).unwrap().entries.into_iter().map(|f| f.key).collect();
    assert_eq!(keys, [json!("beta"), json!("delta")], "from inclusive, to exclusive");
    let params = RangeParams { prefix: Some("al".into()), ..Default::default() };
    assert_eq!(q.range("word-counts", &params).unwrap().entries.len(), 1);

    // Time windows whose start is within [from, to].
    let fetch = |store: &str, from: &str, to: &str, limit: &str| {
        let params = WindowParams {
            from: Some(from.into()),
            to: Some(to.into()),
            limit: Some(limit.into()),
            ..Default::default()
        };
        let fetched = q.windows(store, "alpha", &params).unwrap();
        let windows: Vec<(i64, i64, Value)> = fetched.windows.into_iter().map(|w| (w.start, w.end, w.value)).collect();
        (windows, fetched.next)
    };
    assert_eq!(
        fetch("word-minutes", "0", "120000", "10"),
        (vec![(0, 60_000, json!(2)), (60_000, 120_000, json!(1))], None)
    );
    assert_eq!(fetch("word-minutes", "1", "120000", "10").0.len(), 1, "the first window starts before from");
    assert_eq!(fetch("word-minutes", "0", "120000", "1"), (vec![(0, 60_000, json!(2))], Some(1)), "paged");
    // Sessions that end at from or later and start at to or earlier.
    assert_eq!(fetch("word-bursts", "0", "100000", "10").0, [(1_000, 2_000, json!(2)), (70_000, 70_000, json!(1))]);
    assert_eq!(fetch("word-bursts", "2001", "100000", "10").0, [(70_000, 70_000, json!(1))]);
    assert_eq!(fetch("word-bursts", "0", "1500", "10").0, [(1_000, 2_000, json!(2))]);
    let windowed = q.range("word-minutes", &RangeParams::default()).unwrap();
    assert_eq!(windowed.entries[0].window, Some(Window { start: 0, end: 60_000 }), "range shows windows");
    let e = q.get("word-minutes", "alpha", &none).unwrap_err();
    assert!(e.to_string().contains("/windows/"), "{e}");

    // A JSON value, whole and cut down; i64 keys; a versioned table's latest.
    let ada = eventually("user 7", || q.get("users", "7", &none).ok());
    assert_eq!(ada.value["address"]["zip"], "N1");
    let city = q.get("users", "7", &KeyParams { fields: Some("address.city".into()) }).unwrap();
    assert_eq!(city.value, json!({"address": {"city": "London"}}));
    let price = eventually("price p1", || q.get("prices", "p1", &none).ok());
    assert_eq!((price.value, price.timestamp), (json!({"price": 2}), 200));
    assert!(matches!(q.range("prices", &RangeParams::default()), Err(QueryError::Unsupported { .. })));

    // The same over HTTP.
    let server = http::Server::start("127.0.0.1:0".parse().unwrap(), q.clone()).unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let get = |path: &str| {
        let mut response = agent.get(format!("http://{}{path}", server.local_addr())).call().unwrap();
        (response.status().as_u16(), response.body_mut().read_json::<Value>().unwrap())
    };
    assert_eq!(
        get("/v1/stores/word-counts/keys/alpha"),
        (200, json!({"key": "alpha", "value": 3, "timestamp": 70_000}))
    );
    assert_eq!(get("/v1/stores/users/keys/7?fields=name").1["value"], json!({"name": "Ada"}));
    let (status, body) = get("/v1/stores/nope/keys/alpha");
    assert_eq!(status, 404);
    assert!(body["error"].as_str().unwrap().contains("word-counts"), "{body}");
    let (status, body) = get("/v1/stores/users/keys/seven");
    assert_eq!((status, body["retryable"].clone()), (400, json!(false)), "{body}");
    assert_eq!(get("/v1/stores/word-counts/range?limit=oops").0, 400);
    assert_eq!(get("/v1/stores").1["stores"].as_array().unwrap().len(), 5);
    assert_eq!(get("/v1/stores/word-minutes/windows/alpha?from=0&to=59999").1["windows"][0]["value"], 2);
    assert_eq!(get("/v1/stores/word-counts/metadata/alpha").1["hosted_here"], true);
    assert_eq!(get("/v1/nothing").0, 404);

    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    runner.join().unwrap().unwrap();
    // The run is over: its tasks no longer answer, and say to retry.
    let (status, body) = get("/v1/stores/word-counts/keys/alpha");
    assert_eq!((status, body["retryable"].clone()), (503, json!(true)), "{body}");
    server.stop();
}
