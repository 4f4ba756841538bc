//! `eddy plugin`: scaffold a plugin crate, build it to a component, and list
//! what a component exports.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use eddy_host::plugin::wasm::Limits;
use eddy_host::plugin::{Plugin, WasmPlugin};

/// Plugins are built with WebAssembly SIMD, which wasmtime runs natively
/// (unless CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS says otherwise).
const SIMD: &str = "-C target-feature=+simd128";

/// Where the guest SDK of this build lives, for scaffolded plugins.
const SDK_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../guest-sdk");

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// List the functions (and topology) a plugin exports.
    Inspect {
        /// The component file.
        file: PathBuf,
    },
    /// Create a plugin crate that builds as-is.
    New {
        /// Crate name (also the directory, unless --dir is given).
        name: String,
        /// Where to create it.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Path to the eddy-sdk crate (default: the one this eddy was built with).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Upload a component to the server of your `eddy login` profile (a new
    /// version of the plugin named after the file, or --name).
    Upload {
        /// The component file.
        file: PathBuf,
        /// The plugin's name on the server (default: the file's stem).
        #[arg(long)]
        name: Option<String>,
    },
    /// List the plugin versions uploaded to the server of your profile.
    List,
    /// Build a plugin crate to a WebAssembly component (wasm32-wasip2).
    Build {
        /// The crate's directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Copy the component here as well.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
}

pub fn run(cmd: PluginCommand) -> Result<()> {
    match cmd {
        PluginCommand::Inspect { file } => inspect(&file),
        PluginCommand::Upload { file, name } => {
            let (name, version) =
                super::remote::upload(&super::remote::Client::from_profile()?, &file, name.as_deref())?;
            println!("uploaded {} as plugin {name}@{version}", file.display());
            Ok(())
        }
        PluginCommand::List => super::remote::list_plugins(&super::remote::Client::from_profile()?),
        PluginCommand::New { name, dir, sdk } => new(&name, dir, sdk),
        PluginCommand::Build { dir, out } => {
            let wasm = build(&dir)?;
            if let Some(out) = out {
                std::fs::copy(&wasm, &out).with_context(|| format!("copying to {}", out.display()))?;
                println!("{}", out.display());
            } else {
                println!("{}", wasm.display());
            }
            Ok(())
        }
    }
}

fn inspect(file: &Path) -> Result<()> {
    let plugin = WasmPlugin::load(file, Limits::default())?;
    let m = plugin.manifest();
    println!("plugin {} {} (built with {})", m.name, m.version, m.sdk);
    println!("functions:");
    for f in &m.functions {
        let doc = if f.description.is_empty() { String::new() } else { format!("  {}", f.description) };
        println!("  {:<24} {:<16}{doc}", f.name, f.kind);
    }
    match &m.topology {
        Some(t) => {
            let pretty: serde_json::Value = serde_json::from_str(t).context("the plugin's topology is not JSON")?;
            println!("topology (built in code):\n{}", serde_yaml::to_string(&pretty)?);
        }
        None => println!("topology: none (the application file gives one)"),
    }
    Ok(())
}

fn new(name: &str, dir: Option<PathBuf>, sdk: Option<PathBuf>) -> Result<()> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        bail!("plugin name '{name}': use ASCII letters, digits, '-' and '_'");
    }
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    if dir.exists() && dir.read_dir().map(|mut d| d.next().is_some()).unwrap_or(true) {
        bail!("{} exists and is not empty; choose another name or --dir", dir.display());
    }
    let sdk = sdk.unwrap_or_else(|| PathBuf::from(SDK_DIR));
    let sdk =
        sdk.canonicalize().with_context(|| format!("eddy-sdk not found at {} (pass --sdk PATH)", sdk.display()))?;
    std::fs::create_dir_all(dir.join("src")).with_context(|| format!("creating {}", dir.display()))?;
    let files = [
        ("Cargo.toml", CARGO_TOML.replace("{name}", name).replace("{sdk}", &sdk.display().to_string())),
        ("src/lib.rs", LIB_RS.to_owned()),
        ("app.yaml", APP_YAML.replace("{name}", name).replace("{lib}", &name.replace('-', "_"))),
        ("input.jsonl", INPUT.to_owned()),
        (".gitignore", "/target\n*.wasm\n/eddy-data\n".to_owned()),
    ];
    for (file, text) in files {
        let path = dir.join(file);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    println!("created plugin {name} in {}", dir.display());
    println!(
        "next: cd {} && eddy plugin build --out {}.wasm && eddy test app.yaml --input text=input.jsonl",
        dir.display(),
        name.replace('-', "_")
    );
    Ok(())
}

/// Builds the crate in `dir` for wasm32-wasip2 and returns the component's path.
pub fn build(dir: &Path) -> Result<PathBuf> {
    let manifest = dir.join("Cargo.toml");
    if !manifest.exists() {
        bail!("{} has no Cargo.toml: point `eddy plugin build` at a plugin crate", dir.display());
    }
    let output = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--message-format=json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(&manifest)
        .env(
            "CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS",
            std::env::var("CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS").unwrap_or_else(|_| SIMD.to_owned()),
        )
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo (is Rust installed?)")?;
    if !output.status.success() {
        bail!(
            "cargo build failed for {}; if the target is missing, run `rustup target add wasm32-wasip2`",
            manifest.display()
        );
    }
    let mut wasm = None;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] == "compiler-artifact"
            && msg["target"]["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "cdylib"))
            && let Some(files) = msg["filenames"].as_array()
        {
            wasm = files.iter().filter_map(|f| f.as_str()).find(|f| f.ends_with(".wasm")).map(PathBuf::from).or(wasm);
        }
    }
    wasm.with_context(|| {
        format!("cargo built no .wasm for {}: is the crate a cdylib (crate-type = [\"cdylib\"])?", manifest.display())
    })
}

const CARGO_TOML: &str = r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"

[lib]
crate-type = ["cdylib", "rlib"]

[dependencies]
eddy-sdk = { path = "{sdk}" }
serde = { version = "1", features = ["derive"] }
serde_json = "1"

[profile.release]
strip = true

# Not part of any enclosing workspace.
[workspace]
"#;

const LIB_RS: &str = r#"//! An Eddy plugin: keeps non-empty lines and uppercases them.

use eddy_sdk::{Plugin, Record, Registry, Result};

/// True for lines with something other than whitespace.
fn not_blank(rec: &Record) -> Result<bool> {
    Ok(!rec.value_str()?.trim().is_empty())
}

/// The line in upper case.
fn shout(rec: &Record) -> Result<String> {
    Ok(rec.value_str()?.to_uppercase())
}

struct MyPlugin;

impl Plugin for MyPlugin {
    fn register(r: &mut Registry) {
        r.predicate("not_blank", not_blank).doc("drops blank lines");
        r.map_values("shout", shout).doc("uppercases the line");
    }
}

eddy_sdk::export_plugin!(MyPlugin);

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_sdk::OwnedRecord;

    #[test]
    fn shouts_non_blank_lines() {
        let line = OwnedRecord::new(None::<String>, "hello").unwrap().encode();
        assert!(not_blank(&line.record()).unwrap());
        assert_eq!(shout(&line.record()).unwrap(), "HELLO");
    }
}
"#;

const APP_YAML: &str = r#"application-id: {name}
plugin: {lib}.wasm
error-policy: skip
topology:
  - name: lines
    source: [text]
    value-serde: string
  - name: keep
    filter: not_blank
  - name: upper
    map-values: shout
  - name: out
    to: shouted
    value-serde: string
"#;

const INPUT: &str = r#"{"value": "hello eddy"}
{"value": "   "}
{"value": "stream on"}
"#;
