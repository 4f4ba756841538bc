//! Several instances of one application on Kafka: they share its tasks
//! through the consumer group, and when one dies its tasks move to the
//! others, whose stores restore from the changelogs; exactly-once, a
//! `read_committed` reader sees each result once whatever happened.

use std::collections::BTreeMap;
use std::process::Child;
use std::time::{Duration, Instant};

use crate::{Env, app_file, wait_bounded};

const KEYS: usize = 500;

/// Counts per key, with no record cache: each input record gives one
/// output, the key's new count, so the output of key `k` must read exactly
/// `1, 2, ..., n_k`. `extra` adds lines to the application file.
fn counting_app(env: &Env, extra: &str) -> std::path::PathBuf {
    let (id, input, out) = (env.topic("counting"), env.topic("events"), env.topic("counts"));
    let body = format!(
        "application-id: {id}\nthreads: 2\ncommit-interval-ms: 100\ncache-max-bytes: 0\nprocessing-guarantee: exactly-once\n{extra}topology:
  - {{ name: events, source: [{input}], key-serde: string, value-serde: string }}
  - {{ name: count, count: counts }}
  - {{ name: out, to: {out}, key-serde: string, value-serde: i64 }}
"
    );
    app_file(env, "counting.yaml", eddy_tests::WORDS, &body)
}

/// Records consumed from the output so far (its end offsets, transaction
/// markers included: enough to tell progress).
fn output_progress(env: &Env) -> u64 {
    let topic = env.topic("counts");
    env.eddy(&["topic", "list", &topic])
        .lines()
        .find(|l| l.split('\t').next() == Some(topic.as_str()))
        .and_then(|l| l.rsplit("records=").next()?.trim().parse().ok())
        .unwrap_or(0)
}

/// Waits for `env`'s instance to end; fails the test, with the end of its
/// log, if it fails.
fn wait_for(env: &Env, child: Child, what: &str) {
    let out = wait_bounded(child, what, Duration::from_secs(240));
    if !out.status.success() {
        panic!("{what} failed ({}):\n{}", out.status, env.log_tail(30));
    }
}

/// An application's input on the cluster and the counts it must give.
struct Counting {
    app: std::path::PathBuf,
    records: u64,
    expected: BTreeMap<String, i64>,
}

/// Creates the topics and writes `records` keyed records; `extra` adds
/// lines to the application file.
fn setup(env: &Env, records: usize, extra: &str) -> Counting {
    env.eddy(&["topic", "create", &env.topic("events"), "--partitions", "6"]);
    env.eddy(&["topic", "create", &env.topic("counts"), "--partitions", "6"]);
    let mut run = Counting { app: counting_app(env, extra), records: 0, expected: BTreeMap::new() };
    run.produce(env, records);
    run
}

impl Counting {
    /// Writes `records` more keyed records.
    fn produce(&mut self, env: &Env, records: usize) {
        let mut input = String::with_capacity(records * 32);
        for i in self.records as usize..self.records as usize + records {
            let key = format!("k{}", (i * 7919) % KEYS);
            *self.expected.entry(key.clone()).or_insert(0) += 1;
            input.push_str(&format!("{{\"key\": \"{key}\", \"value\": \"e{i}\"}}\n"));
        }
        env.produce(&env.topic("events"), &input, &["--key-serde", "string", "--value-serde", "string"]);
        self.records += records as u64;
    }

    fn app(&self) -> &str {
        self.app.to_str().unwrap()
    }

    /// Waits until the output has `share` of its records; fails the test,
    /// with the log of `env`'s instance, once the output has not grown for
    /// two minutes.
    fn wait_for_progress(&self, env: &Env, share: f64) {
        let target = self.records as f64 * share;
        let (mut last, mut moved) = (output_progress(env), Instant::now());
        while (last as f64) < target {
            std::thread::sleep(Duration::from_millis(20));
            let now = output_progress(env);
            if now != last {
                (last, moved) = (now, Instant::now());
            }
            assert!(
                moved.elapsed() < Duration::from_secs(120),
                "the output stopped growing at {last} records, short of {target} ({share} of {}):\n{}",
                self.records,
                env.log_tail(60)
            );
        }
    }

    /// A read_committed reader sees every count of every key exactly once,
    /// and the store holds the counts of a run without failures.
    ///
    /// A killed instance's open transaction hides what follows it in the
    /// output from such readers until the brokers abort it (the
    /// transaction timeout, 10 s, plus up to 10 s until the coordinator
    /// looks): outputs that stop short are read again for up to a minute.
    /// A count out of order or twice fails at once.
    fn check_exactly_once(&self, env: &Env) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut seen: BTreeMap<String, Vec<i64>> = BTreeMap::new();
            for r in env.consume_all(&env.topic("counts"), &["--key-serde", "string", "--value-serde", "i64"]) {
                let key = r["key"].as_str().unwrap().to_owned();
                seen.entry(key).or_default().push(r["value"].as_i64().unwrap());
            }
            let mut short = None;
            for (key, n) in &self.expected {
                let counts = seen.get(key).map_or(&[][..], Vec::as_slice);
                let want: Vec<i64> = (1..=*n).collect();
                let at = counts.iter().zip(&want).position(|(a, b)| a != b).unwrap_or(counts.len().min(want.len()));
                let report = format!(
                    "key {key}: {} outputs, expected 1..={n}; from output {at} on: {:?}",
                    counts.len(),
                    &counts[at..(at + 5).min(counts.len())]
                );
                assert!(want.starts_with(counts), "{report}");
                if counts.len() < want.len() {
                    short.get_or_insert(report);
                }
            }
            match short {
                None => break,
                Some(report) => assert!(Instant::now() < deadline, "{report} (after a minute)"),
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        assert_eq!(super::store_counts(env, "counting", "counts"), self.expected);
    }
}

/// Fails the test unless `env`'s instance logged taking tasks.
fn assert_took_tasks(env: &Env, who: &str) {
    let log = std::fs::read_to_string(env.path("eddy-run.log")).unwrap_or_default();
    assert!(log.contains("took tasks"), "{who} took no task:\n{log}");
}

/// Sends `signal` to a child process.
fn signal(child: &Child, signal: libc::c_int) {
    // SAFETY: kill only sends a signal to a child this test started.
    unsafe { libc::kill(child.id() as libc::pid_t, signal) };
}

#[test]
fn exactly_once_when_an_instance_is_killed_and_comes_back() {
    let a = Env::kafka();
    let b = a.sibling();
    let run = setup(&a, 1_000_000, "");
    let first = a.spawn(&["-v", "run", run.app(), "--until-idle"]);
    let other = b.spawn(&["-v", "run", run.app(), "--until-idle"]);
    // Kill one instance once the output is a third written: its uncommitted
    // transaction is aborted, its tasks move to the other instance.
    run.wait_for_progress(&a, 1.0 / 3.0);
    let mut first = first;
    first.kill().unwrap();
    wait_bounded(first, "the killed instance", Duration::from_secs(30));
    assert!(output_progress(&a) < run.records, "the run ended before the kill: use more records");
    // It comes back (with its state directory and transactional ids).
    let again = a.spawn(&["-v", "run", run.app(), "--until-idle"]);
    wait_for(&b, other, "the other instance");
    wait_for(&a, again, "the restarted instance");
    run.check_exactly_once(&a);
    assert_took_tasks(&a, "the killed instance");
    assert_took_tasks(&b, "the other instance");
}

#[test]
fn a_paused_instance_whose_tasks_moved_cannot_commit() {
    let a = Env::kafka();
    let b = a.sibling();
    let run = setup(&a, 1_000_000, "");
    let zombie = a.spawn(&["-v", "run", run.app(), "--until-idle"]);
    run.wait_for_progress(&a, 0.2);
    // Paused past its session timeout, it is dropped from the group and
    // another instance takes its tasks from the last commit.
    signal(&zombie, libc::SIGSTOP);
    let paused_at = output_progress(&a);
    assert!(paused_at < run.records, "the run ended before the pause: use more records");
    let other = b.spawn(&["-v", "run", run.app(), "--until-idle"]);
    wait_for(&b, other, "the instance that took over");
    // Woken up, the zombie's commit is refused: it goes back, finds the work
    // done, and stops. Nothing it wrote after its last commit is visible.
    signal(&zombie, libc::SIGCONT);
    wait_for(&a, zombie, "the woken instance");
    run.check_exactly_once(&a);
    assert_took_tasks(&b, "the instance that took over");
}

#[test]
fn instances_join_and_leave_during_a_run() {
    let a = Env::kafka();
    let (b, c) = (a.sibling(), a.sibling());
    let run = setup(&a, 1_000_000, "");
    let first = a.spawn(&["-v", "run", run.app(), "--until-idle"]);
    // Scale out from one instance to three...
    run.wait_for_progress(&a, 0.15);
    let joined: Vec<Child> = [&b, &c].iter().map(|env| env.spawn(&["-v", "run", run.app()])).collect();
    run.wait_for_progress(&a, 0.6);
    assert!(output_progress(&a) < run.records, "the run ended before scaling in: use more records");
    // ...and back to one: the two leave cleanly (SIGTERM), their tasks move back.
    for (env, child) in [&b, &c].into_iter().zip(joined) {
        let out = env.terminate(child);
        assert!(out.status.success(), "a leaving instance failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    wait_for(&a, first, "the first instance");
    run.check_exactly_once(&a);
    assert_took_tasks(&b, "the second instance");
    assert_took_tasks(&c, "the third instance");
    let log = std::fs::read_to_string(a.path("eddy-run.log")).unwrap_or_default();
    assert!(log.contains("gave up tasks"), "the first instance gave no task to the others:\n{log}");
}

#[test]
fn a_rolling_restart_of_the_brokers_loses_nothing() {
    // Three brokers, internal topics with three replicas: each broker in
    // turn is stopped and started again while the application works through
    // a batch of input, so every group and transaction coordinator and
    // every partition leader moves at least once.
    let env = Env::kafka_cluster();
    let mut run = setup(&env, 0, "profile: production\n");
    let app = env.spawn(&["-v", "run", run.app(), "--threads", "1"]);
    for node in 1..=3 {
        run.produce(&env, 300_000);
        super::cluster_node("stop-broker", node);
        super::cluster_node("start-broker", node);
        // It goes on, and gets through the batch.
        run.wait_for_progress(&env, 1.0);
    }
    // All of it is through once the output stops growing (its end offsets
    // count transaction markers too, so reaching the input's size is not enough).
    let mut last = output_progress(&env);
    loop {
        std::thread::sleep(Duration::from_secs(2));
        let now = output_progress(&env);
        if now == last {
            break;
        }
        last = now;
    }
    let out = env.terminate(app);
    assert!(out.status.success(), "the application failed:\n{}", env.log_tail(30));
    run.check_exactly_once(&env);
}

#[test]
fn a_standby_replica_takes_over_without_restoring_the_whole_changelog() {
    let a = Env::kafka();
    let b = a.sibling();
    let run = setup(&a, 600_000, "num-standby-replicas: 1\n");
    let mut first = a.spawn(&["-v", "run", run.app(), "--until-idle"]);
    let other = b.spawn(&["-v", "run", run.app(), "--until-idle"]);
    // Each instance keeps warm copies of the other's tasks.
    let keeps =
        |env: &Env| std::fs::read_to_string(env.path("eddy-run.log")).unwrap_or_default().contains("keeping a standby");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(keeps(&a) && keeps(&b)) {
        assert!(Instant::now() < deadline, "no standbys:\n{}\n---\n{}", a.log_tail(20), b.log_tail(20));
        std::thread::sleep(Duration::from_millis(50));
    }
    // Early enough that the first instance has work left in each of its tasks,
    // late enough that it has committed state for them: a loaded machine may
    // let the other instance make the progress alone, and a task whose
    // changelog is still empty restores from offset 0 whatever its standby.
    run.wait_for_progress(&a, 0.1);
    let commits = |env: &Env| {
        let log = std::fs::read_to_string(env.path("eddy-run.log")).unwrap_or_default();
        log.lines()
            .skip_while(|l| !l.contains("keeping a standby"))
            .filter(|l| l.contains("committed a transaction"))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while commits(&a) < 5 {
        assert!(Instant::now() < deadline, "the first instance does not commit:\n{}", a.log_tail(30));
        std::thread::sleep(Duration::from_millis(20));
    }
    // The first dies; the other takes its tasks over from its standbys:
    // their stores start where the copies stood, not at offset 0.
    first.kill().unwrap();
    wait_bounded(first, "the killed instance", Duration::from_secs(30));
    assert!(output_progress(&a) < run.records, "the run ended before the kill: use more records");
    wait_for(&b, other, "the other instance");
    let log = std::fs::read_to_string(b.path("eddy-run.log")).unwrap_or_default();
    let warm = log.lines().filter(|l| l.contains("restored task") && !l.contains("from offset 0 ")).count();
    assert!(
        warm > 0,
        "no task was taken over from a standby:\n{}\n--- the killed instance:\n{}",
        b.log_tail(40),
        a.log_tail(60)
    );
    // Shown if the check fails.
    eprintln!("--- the killed instance:\n{}\n--- the other:\n{}", a.log_tail(60), b.log_tail(80));
    run.check_exactly_once(&a);
}
