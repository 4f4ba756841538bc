//! Builds the example plugins for wasm32-wasip2 and tells the tests where the
//! components are (`EDDY_PLUGIN_<NAME>`), so every test runs real compiled
//! plugins and a plugin nobody tests is noticed.

use std::path::PathBuf;
use std::process::Command;

const PLUGINS: [&str; 7] = ["vitals", "words", "faulty", "bench", "customers", "kstreams", "activity"];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir.parent().expect("tests/ is in the workspace root").to_owned();
    for dir in ["plugins", "guest-sdk", "codec", "wit"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    // A target directory of its own: the outer cargo holds the lock on ours.
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    let target_dir = std::env::var_os("EDDY_PLUGIN_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| {
        // OUT_DIR is <target>/<profile>/build/<pkg>/out: keep plugins in <target>/plugins.
        out.ancestors().nth(4).map(|t| t.join("plugins")).unwrap_or_else(|| out.join("plugins"))
    });
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(&root)
        .args(["build", "--profile", "plugin", "--target", "wasm32-wasip2"])
        .arg("--target-dir")
        .arg(&target_dir);
    for p in PLUGINS {
        cmd.args(["-p", p]);
    }
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_MAKEFLAGS",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("running cargo to build the plugins");
    assert!(
        status.success(),
        "building the plugins for wasm32-wasip2 failed (is the target installed? scripts/setup.sh installs it)"
    );
    for p in PLUGINS {
        let wasm = target_dir.join("wasm32-wasip2").join("plugin").join(format!("{p}.wasm"));
        assert!(wasm.exists(), "{} was not built", wasm.display());
        println!("cargo:rustc-env=EDDY_PLUGIN_{}={}", p.to_uppercase(), wasm.display());
    }
}
