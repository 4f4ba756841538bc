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
    // Once the group has spread the tasks, each instance hosts some words'
    // task and says where the others' are.
    let hosts = |client: &Client| -> Vec<(String, Value)> {
        counts
            .keys()
            .map(|w| {
                let (_, m) = client.get(&format!("/v1/stores/word-counts/metadata/{w}"));
                (w.clone(), m)
            })
            .collect()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let from_a = hosts(&a);
        let here = from_a.iter().filter(|(_, m)| m["hosted_here"] == json!(true)).count();
        let at_b = from_a.iter().filter(|(_, m)| m["active_host"] == json!(b_addr)).count();
        if here > 0 && at_b > 0 && here + at_b == counts.len() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the tasks never spread over both instances: {from_a:?}");
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
    // B's metadata agrees with A's about who holds what.
    for (word, m) in hosts(&b) {
        let owner = if m["hosted_here"] == json!(true) { json!(b_addr) } else { m["active_host"].clone() };
        assert!(owner == json!(a_addr) || owner == json!(b_addr), "{word}: {m}");
    }
}
