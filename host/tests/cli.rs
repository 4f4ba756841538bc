//! The `eddy` binary answers `--help` for every command (and cargo builds the
//! binary for the end-to-end tests in `tests/` because this test exists).

#![allow(clippy::unwrap_used)]

use std::process::Command;

#[test]
fn every_command_has_help() {
    let commands: [&[&str]; 16] = [
        &[],
        &["topic"],
        &["topic", "create"],
        &["topic", "list"],
        &["produce"],
        &["consume"],
        &["run"],
        &["describe"],
        &["test"],
        &["plugin"],
        &["plugin", "inspect"],
        &["plugin", "new"],
        &["plugin", "build"],
        &["store"],
        &["store", "get"],
        &["store", "scan"],
    ];
    for args in commands {
        let out = Command::new(env!("CARGO_BIN_EXE_eddy")).args(args).arg("--help").output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "eddy {args:?} --help failed");
        assert!(text.contains("Usage: eddy"), "eddy {args:?} --help printed:\n{text}");
    }
}

#[test]
fn bad_arguments_fail_with_a_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(["topic", "create", "x", "--partitions", "many"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value 'many'"));
}
