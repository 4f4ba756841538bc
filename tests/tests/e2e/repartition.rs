//! Repartitioning: an aggregation after a key-changing operator (here a
//! flat-map that keys each word by itself) reads its records back from a
//! repartition topic, so every key is counted in one task, exactly as Kafka
//! Streams does; operators that keep the key add no repartition.

use std::collections::BTreeMap;

use eddy_host::testing::TestDriver;
use serde_json::Value;

use crate::{Env, app_file};

/// `n` lines of 1 to 6 words drawn from 800 (so every partition holds most
/// words), and the count of each word.
fn lines(n: usize) -> (Vec<String>, BTreeMap<String, i64>) {
    let mut counts = BTreeMap::new();
    let mut out = Vec::with_capacity(n);
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for i in 0..n {
        let words: Vec<String> = (0..1 + i % 6)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                format!("w{}", x % 800)
            })
            .collect();
        for w in &words {
            *counts.entry(w.clone()).or_insert(0) += 1;
        }
        out.push(words.join(" "));
    }
    (out, counts)
}

/// Word count straight after the flat-map (`auto`), or with an explicit
/// `repartition` node between them.
fn wordcount(env: &Env, explicit: bool) -> std::path::PathBuf {
    let repartition = if explicit { "  - { name: by-word, repartition: true }\n" } else { "" };
    let body = format!(
        "application-id: wc\nthreads: 2\ntopology:
  - {{ name: lines, source: [lines], value-serde: string }}
  - {{ name: split, flat-map: split_words }}
{repartition}  - {{ name: counts, count: word-counts }}
  - {{ name: out, to: counts-out, key-serde: string, value-serde: i64 }}
"
    );
    app_file(env, "wc.yaml", eddy_tests::WORDS, &body)
}

fn scan_counts(env: &Env, app: &str, store: &str) -> BTreeMap<String, i64> {
    env.eddy(&["store", "scan", app, store, "--key-serde", "string", "--value-serde", "i64"])
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["key"].as_str().unwrap().to_owned(), v["value"].as_i64().unwrap())
        })
        .collect()
}

/// The last value per key of a topic of counts.
fn last_counts(records: &[Value]) -> BTreeMap<String, i64> {
    records.iter().map(|r| (r["key"].as_str().unwrap().to_owned(), r["value"].as_i64().unwrap())).collect()
}

#[test]
fn counts_after_a_key_change_are_exact_with_and_without_an_explicit_repartition() {
    let (mut input, mut expected) = lines(4000);
    // Blank lines are empty values: the flat-map sees them and gives no words.
    input.extend(["".to_owned(), "Alpha".to_owned(), String::new()]);
    *expected.entry("alpha".to_owned()).or_default() += 1;
    let mut results = Vec::new();
    for explicit in [false, true] {
        let env = Env::new();
        env.eddy(&["topic", "create", "lines", "--partitions", "4"]);
        env.eddy(&["topic", "create", "counts-out", "--partitions", "4"]);
        let text: String = input.iter().map(|l| format!("{l}\n")).collect();
        let file = env.write("lines.txt", &text);
        let produced = env.eddy_output(&["produce", "lines", "--value-only", "--file", file.to_str().unwrap()]);
        assert!(String::from_utf8_lossy(&produced.stderr).contains(&format!("produced {} record(s)", input.len())));
        let app = wordcount(&env, explicit);
        env.eddy(&["run", app.to_str().unwrap(), "--until-idle"]);
        let counts = scan_counts(&env, "wc", "word-counts");
        assert_eq!(counts, expected, "explicit repartition: {explicit}");
        let out = env.consume_all("counts-out", &["--key-serde", "string", "--value-serde", "i64"]);
        assert_eq!(last_counts(&out), expected, "the last count sent per word (explicit: {explicit})");
        let topic = if explicit { "wc-by-word-repartition" } else { "wc-counts-repartition" };
        let topics = env.eddy(&["topic", "list"]);
        assert!(topics.contains(&format!("{topic}\tpartitions=4")), "{topics}");
        results.push(counts);

        // The test driver gives the same counts over several partitions.
        let mut driver = TestDriver::from_file(&app).unwrap();
        driver.create_topic("lines", 4).unwrap();
        let json: String = input.iter().map(|l| format!("{}\n", serde_json::json!({"value": l}))).collect();
        driver.pipe_json_lines("lines", &json).unwrap();
        let stored: BTreeMap<String, i64> = driver
            .store("word-counts")
            .unwrap()
            .into_iter()
            .map(|(k, v)| (String::from_utf8(k).unwrap(), i64::from_be_bytes(v.try_into().unwrap())))
            .collect();
        assert_eq!(stored, expected, "test driver, explicit repartition: {explicit}");
    }
    assert_eq!(results[0], results[1]);
}

#[test]
fn describe_shows_where_and_why_a_repartition_was_added() {
    let env = Env::new();
    let out = env.eddy(&["describe", wordcount(&env, false).to_str().unwrap()]);
    for want in [
        "   Sub-topology: 0\n    Source: lines (topics: [lines])\n      --> split\n",
        "    Processor: split (flat-map: split_words)\n      --> counts-repartition-sink\n      <-- lines\n",
        "    Sink: counts-repartition-sink (topic: wc-counts-repartition)\n      <-- split\n",
        "   Sub-topology: 1\n    Source: counts-repartition-source (topics: [wc-counts-repartition])\n      --> counts\n",
        "    Processor: counts (count, stores: [word-counts])\n      --> out\n      <-- counts-repartition-source\n",
        "Repartition topics:\n   wc-counts-repartition (read by 'counts'): 'split' (flat-map) changes the key\n",
    ] {
        assert!(out.contains(want), "describe lacks\n{want}\n--- it printed\n{out}");
    }
    let dot = env.eddy(&["describe", wordcount(&env, false).to_str().unwrap(), "--format", "dot"]);
    for want in [
        "digraph topology {",
        "subgraph cluster_0 {",
        "subgraph cluster_1 {",
        "\"split\" [label=\"split\\nflat-map: split_words\"];",
        "\"lines\" -> \"split\";",
        "\"topic:lines\" -> \"lines\";",
        "\"counts-repartition-sink\" -> \"topic:wc-counts-repartition\";",
        "\"topic:wc-counts-repartition\" -> \"counts-repartition-source\";",
        "\"topic:wc-counts-repartition\" [shape=box, label=\"wc-counts-repartition\"];",
        "\"counts\" -> \"store:word-counts\" [dir=both, style=dotted];",
    ] {
        assert!(dot.contains(want), "the dot graph lacks {want}\n--- it printed\n{dot}");
    }
}

#[test]
fn a_count_after_map_values_adds_no_repartition() {
    let env = Env::new();
    env.eddy(&["topic", "create", "in", "--partitions", "3"]);
    env.eddy(&["topic", "create", "out", "--partitions", "3"]);
    let body = "application-id: mv\nthreads: 2\ntopology:
  - { name: in, source: [in], key-serde: string, value-serde: string }
  - { name: lowered, map-values: lower }
  - { name: kept, filter: spin }
  - { name: counts, count: mv-counts }
  - { to: out, key-serde: string, value-serde: i64 }
";
    let app = app_file(&env, "mv.yaml", eddy_tests::FAULTY, body);
    let described = env.eddy(&["describe", app.to_str().unwrap()]);
    assert!(!described.contains("Repartition") && !described.contains("Sub-topology: 1"), "{described}");
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    let mut text = String::new();
    for i in 0..500 {
        let key = format!("k{}", i % 37);
        *expected.entry(key.clone()).or_default() += 1;
        text.push_str(&format!("{{\"key\": \"{key}\", \"value\": \"V{i}\"}}\n"));
    }
    let file = env.write("in.jsonl", &text);
    env.eddy(&["produce", "in", "--file", file.to_str().unwrap(), "--key-serde", "string", "--value-serde", "string"]);
    env.eddy(&["run", app.to_str().unwrap(), "--until-idle"]);
    assert_eq!(scan_counts(&env, "mv", "mv-counts"), expected);
    let topics = env.eddy(&["topic", "list"]);
    assert!(!topics.contains("repartition"), "{topics}");
}

#[test]
fn each_sub_topology_has_its_own_tasks() {
    let env = Env::new();
    env.eddy(&["topic", "create", "lines", "--partitions", "2"]);
    env.eddy(&["topic", "create", "counts-out", "--partitions", "2"]);
    let (input, expected) = lines(1000);
    let file = env.write("lines.txt", &input.iter().map(|l| format!("{l}\n")).collect::<String>());
    env.eddy(&["produce", "lines", "--value-only", "--file", file.to_str().unwrap()]);
    let body = "application-id: wc\ntopology:
  - { name: lines, source: [lines], value-serde: string }
  - { name: split, flat-map: split_words }
  - { name: by-word, repartition: true, partitions: 6 }
  - { name: counts, count: word-counts }
  - { name: out, to: counts-out, key-serde: string, value-serde: i64 }
";
    let app = app_file(&env, "wc.yaml", eddy_tests::WORDS, body);
    let run = env.eddy_output(&["run", app.to_str().unwrap(), "--until-idle", "--threads", "3"]);
    let report = String::from_utf8_lossy(&run.stderr);
    // Sub-topology 0 reads 2 partitions, sub-topology 1 the 6 of its
    // repartition topic.
    assert!(report.contains("8 task(s) on 3 thread(s)"), "{report}");
    assert_eq!(scan_counts(&env, "wc", "word-counts"), expected);
    let topics = env.eddy(&["topic", "list"]);
    for want in ["wc-by-word-repartition\tpartitions=6", "wc-word-counts-changelog\tpartitions=6"] {
        assert!(topics.contains(want), "{want} in\n{topics}");
    }
    let mut dirs: Vec<String> = std::fs::read_dir(env.data_dir().join("state").join("wc"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    assert_eq!(dirs, ["1_0", "1_1", "1_2", "1_3", "1_4", "1_5"], "only the counting tasks have stores");
}
