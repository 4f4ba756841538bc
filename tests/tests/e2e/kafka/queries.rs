//! Interactive queries across instances on Kafka: two `eddy run --listen`
//! processes of one application share its tasks, and either answers for
//! every key, forwarding a query to the instance that runs its task.

use serde_json::{Value, json};

use super::{lines, wordcount_app};
use crate::Env;
use crate::query::{Client, spawn_listening};

#[test]
fn either_instance_answers_for_every_key_forwarding_to_its_owner() {
    let env = Env::kafka();
    let other = env.sibling();
    for t in ["lines", "word-counts-out"] {
        env.eddy(&["topic", "create", &env.topic(t), "--partitions", "4"]);
    }
    let app = wordcount_app(&env, "");
    let (_a, a_addr) = spawn_listening(&env, &app);
    let (_b, b_addr) = spawn_listening(&other, &app);
    let (a, b) = (Client::new(&a_addr), Client::new(&b_addr));
    let (text, counts) = lines(300);
    let file = env.write("lines.txt", &text);
    env.eddy(&["produce", &env.topic("lines"), "--value-only", "--file", file.to_str().expect("UTF-8")]);
    // Once both instances took tasks and agree on where each word's task
    // runs, each answers for its own words and forwards the others'. (The
    // group may give all tasks of the counting sub-topology to one
    // instance: then only the other one forwards.)
    let owners = |client: &Client, me: &str| -> Vec<(String, Value)> {
        counts
            .keys()
            .map(|w| {
                let (_, m) = client.get(&format!("/v1/stores/word-counts/metadata/{w}"));
                let owner = if m["hosted_here"] == json!(true) { json!(me) } else { m["active_host"].clone() };
                (w.clone(), owner)
            })
            .collect()
    };
    let took_tasks =
        |env: &Env| std::fs::read_to_string(env.path("eddy-run.log")).unwrap_or_default().contains("took tasks");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let (from_a, from_b) = (owners(&a, &a_addr), owners(&b, &b_addr));
        let known = from_a.iter().all(|(_, o)| *o == json!(a_addr) || *o == json!(b_addr));
        if took_tasks(&env) && took_tasks(&other) && known && from_a == from_b {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the instances never agreed on where the words are: A says {from_a:?}, B says {from_b:?}\n--- A:\n{}\n--- B:\n{}",
            env.log_tail(20),
            other.log_tail(20)
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // Every count, from either instance.
    for client in [&a, &b] {
        for (word, count) in &counts {
            let answer = client.until(&format!("/v1/stores/word-counts/keys/{word}"), |status, body| {
                status == 200 && body["value"] == json!(count)
            });
            assert_eq!(answer["key"], json!(word));
        }
    }
}
