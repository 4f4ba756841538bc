//! Commands that talk to an Eddy server: `eddy server` itself, `eddy
//! login` (a saved profile: server URL and token), `eddy admin`, `eddy
//! plugin upload|list`, `eddy app ...`, `eddy query`, and `topic`,
//! `produce` and `consume` with `--remote`.

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use eddy_host::server::{ServerConfig, meta::Quotas};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A saved login.
#[derive(Debug, Serialize, Deserialize)]
struct Profile {
    server: String,
    token: String,
}

/// Where `eddy login` keeps its profile: `$EDDY_CONFIG`, else
/// `~/.config/eddy/profile.json`.
fn profile_path() -> PathBuf {
    if let Some(p) = std::env::var_os("EDDY_CONFIG") {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    home.join(".config").join("eddy").join("profile.json")
}

/// `eddy server`.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// Where the server keeps its metadata, plugins and tenants' data.
    #[arg(long, env = "EDDY_SERVER_DIR", default_value = "./eddy-server")]
    dir: PathBuf,
    /// The admin token (at least 16 characters): creates tenants.
    #[arg(long, env = "EDDY_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: String,
}

/// `eddy admin`: tenants and tokens (admin token).
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a tenant; prints its first token.
    CreateTenant {
        /// Tenant name.
        name: String,
        /// Quotas as JSON (e.g. `{"max-apps": 3}`); the rest default.
        #[arg(long)]
        quotas: Option<String>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Issue another token for a tenant.
    IssueToken {
        /// Tenant name.
        tenant: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Revoke a tenant's token by its id.
    RevokeToken {
        /// Tenant name.
        tenant: String,
        /// The token's id.
        id: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

/// How an admin command reaches the server.
#[derive(Debug, Args)]
pub struct AdminArgs {
    /// The server's URL.
    #[arg(long, env = "EDDY_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// The admin token.
    #[arg(long, env = "EDDY_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: String,
}

/// `eddy app`: apps on the server.
#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Deploy an app file; a plugin file it names next to it is uploaded first.
    Deploy {
        /// The application file.
        file: PathBuf,
    },
    /// List apps.
    List,
    /// An app's state, tasks, throughput, lag and errors.
    Status {
        /// App name.
        name: String,
    },
    /// An app's recent log lines (its plugin's and its errors).
    Logs {
        /// App name.
        name: String,
        /// Keep printing new lines.
        #[arg(long, short)]
        follow: bool,
    },
    /// Pause an app (it commits; state and offsets are kept).
    Pause {
        /// App name.
        name: String,
    },
    /// Resume a paused or failed app from its last commit.
    Resume {
        /// App name.
        name: String,
    },
    /// Delete an app and its state.
    Delete {
        /// App name.
        name: String,
    },
    /// Swap an app's plugin (and/or its app file), keeping its stores and
    /// committed offsets.
    Upgrade {
        /// App name.
        name: String,
        /// A plugin file (uploaded first), or an uploaded NAME[@VERSION].
        #[arg(long, required_unless_present = "file")]
        plugin: Option<String>,
        /// A new app file for the same application id.
        #[arg(long)]
        file: Option<PathBuf>,
    },
}

/// A client of the server's API.
pub struct Client {
    base: String,
    token: String,
    agent: ureq::Agent,
}

/// URL-encodes one path segment.
pub fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

impl Client {
    fn new(base: &str, token: &str) -> Client {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        Client { base: base.trim_end_matches('/').to_owned(), token: token.to_owned(), agent }
    }

    /// The client of the saved profile.
    pub fn from_profile() -> Result<Client> {
        let path = profile_path();
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!("no login profile at {}: run `eddy login --server URL --token T`", path.display())
        })?;
        let p: Profile = serde_json::from_str(&text).with_context(|| format!("{} is damaged", path.display()))?;
        Ok(Client::new(&p.server, &p.token))
    }

    fn answer(&self, what: &str, response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<Value> {
        let mut response = response.with_context(|| format!("{what}: cannot reach the server at {}", self.base))?;
        let status = response.status();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if !status.is_success() {
            let message =
                body.get("error").and_then(Value::as_str).map(str::to_owned).unwrap_or_else(|| body.to_string());
            bail!("{what}: {message} (HTTP {})", status.as_u16());
        }
        Ok(body)
    }

    fn auth(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        self.answer(&format!("GET {path}"), self.agent.get(&url).header("Authorization", &self.auth()).call())
    }

    /// `POST path` with a body.
    pub fn post(&self, path: &str, content_type: &str, body: &[u8]) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let request = self.agent.post(&url).header("Authorization", &self.auth()).content_type(content_type);
        self.answer(&format!("POST {path}"), request.send(body))
    }

    /// `POST path` with a JSON body.
    pub fn post_json(&self, path: &str, body: &Value) -> Result<Value> {
        self.post(path, "application/json", body.to_string().as_bytes())
    }

    /// `DELETE path`.
    pub fn delete(&self, path: &str) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        self.answer(&format!("DELETE {path}"), self.agent.delete(&url).header("Authorization", &self.auth()).call())
    }
}

/// `eddy server`: runs until Ctrl-C or SIGTERM, then stops every app cleanly.
pub fn serve(args: ServerArgs, bootstrap_servers: Option<String>) -> Result<()> {
    let config = ServerConfig {
        dir: args.dir,
        admin_token: args.admin_token,
        default_quotas: Quotas::default(),
        bootstrap_servers,
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let tx = std::sync::Mutex::new(Some(tx));
    ctrlc::set_handler(move || {
        if let Some(tx) = tx.lock().ok().and_then(|mut t| t.take()) {
            let _ = tx.send(());
        }
    })
    .context("installing the Ctrl-C handler")?;
    let stop = async move {
        let _ = rx.await;
    };
    eddy_host::server::serve(config, args.listen, stop, |addr| eprintln!("eddy server listening on http://{addr}"))?;
    Ok(())
}

/// `eddy login`: checks the token and saves the profile (readable only by you).
pub fn login(server: &str, token: &str) -> Result<()> {
    let client = Client::new(server, token);
    let me = client.get("/v1/whoami")?;
    let path = profile_path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(&Profile { server: client.base.clone(), token: token.to_owned() })?;
    let mut options = std::fs::OpenOptions::new();
    options.create(true).write(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).with_context(|| format!("writing {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    println!("logged in to {} as tenant {}", client.base, me["tenant"].as_str().unwrap_or("?"));
    Ok(())
}

/// `eddy admin ...`.
pub fn admin(cmd: AdminCommand) -> Result<()> {
    match cmd {
        AdminCommand::CreateTenant { name, quotas, admin } => {
            let client = Client::new(&admin.server, &admin.admin_token);
            let mut body = json!({ "name": name });
            if let Some(q) = quotas {
                let q: Value = serde_json::from_str(&q).context("--quotas is not JSON")?;
                body["quotas"] = q;
            }
            let made = client.post_json("/v1/tenants", &body)?;
            println!(
                "created tenant {name}; its token (shown once):\n{}",
                made["token"]["secret"].as_str().unwrap_or("")
            );
        }
        AdminCommand::IssueToken { tenant, admin } => {
            let client = Client::new(&admin.server, &admin.admin_token);
            let made = client.post_json(&format!("/v1/tenants/{}/tokens", segment(&tenant)), &json!({}))?;
            println!(
                "token {} (shown once):\n{}",
                made["id"].as_str().unwrap_or(""),
                made["secret"].as_str().unwrap_or("")
            );
        }
        AdminCommand::RevokeToken { tenant, id, admin } => {
            let client = Client::new(&admin.server, &admin.admin_token);
            client.delete(&format!("/v1/tenants/{}/tokens/{}", segment(&tenant), segment(&id)))?;
            println!("revoked token {id} of tenant {tenant}");
        }
    }
    Ok(())
}

/// Uploads a plugin file under its file stem (or `name`); returns its version.
pub fn upload(client: &Client, file: &Path, name: Option<&str>) -> Result<(String, u64)> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let name = match name {
        Some(n) => n.to_owned(),
        None => file.file_stem().and_then(|s| s.to_str()).context("the plugin file has no name")?.to_owned(),
    };
    let made = client.post(&format!("/v1/plugins/{}", segment(&name)), "application/wasm", &bytes)?;
    let version = made["version"].as_u64().unwrap_or(0);
    Ok((name, version))
}

/// `eddy plugin list`.
pub fn list_plugins(client: &Client) -> Result<()> {
    for p in client.get("/v1/plugins")?.as_array().into_iter().flatten() {
        println!(
            "{}@{}\t{} bytes\tsha256 {}\t{} function(s)",
            p["name"].as_str().unwrap_or("?"),
            p["version"],
            p["size"],
            p["sha256"].as_str().unwrap_or("?"),
            p["functions"].as_array().map_or(0, Vec::len)
        );
    }
    Ok(())
}

fn print_status(s: &Value) {
    let error = s.get("error").and_then(Value::as_str).map(|e| format!(": {e}")).unwrap_or_default();
    println!(
        "{}\t{}{error}\tplugin {}@{}\ttasks {}\tin {}\tout {}\t{:.1} records/s\tlag {}\tskipped {}\tdead-lettered {}\tdropped late {}\terrors {}",
        s["name"].as_str().unwrap_or("?"),
        s["state"].as_str().unwrap_or("?"),
        s["plugin"].as_str().unwrap_or("?"),
        s["plugin_version"],
        s["tasks"],
        s["records_in"],
        s["records_out"],
        s["records_per_second"].as_f64().unwrap_or(0.0),
        s["lag"],
        s["skipped"],
        s["dead_lettered"],
        s["dropped_late"],
        s["recent_errors"],
    );
}

/// `eddy app ...`.
pub fn app(cmd: AppCommand) -> Result<()> {
    let client = Client::from_profile()?;
    let path = |name: &str, rest: &str| format!("/v1/apps/{}{rest}", segment(name));
    match cmd {
        AppCommand::Deploy { file } => {
            let document = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let (_, reference) = eddy_host::app::App::plugin_reference(&document, &file)?;
            let local = file.parent().unwrap_or(Path::new(".")).join(&reference);
            let mut body = json!({ "document": document });
            if local.is_file() {
                let (name, version) = upload(&client, &local, None)?;
                eprintln!("uploaded {} as plugin {name}@{version}", local.display());
                body["plugin_version"] = json!(version);
            }
            let status = client.post_json("/v1/apps", &body)?;
            print_status(&status);
        }
        AppCommand::List => {
            for s in client.get("/v1/apps")?.as_array().into_iter().flatten() {
                print_status(s);
            }
        }
        AppCommand::Status { name } => print_status(&client.get(&path(&name, ""))?),
        AppCommand::Logs { name, follow } => {
            let mut after = 0;
            loop {
                let lines = client.get(&format!("{}?after={after}&limit=2000", path(&name, "/logs")))?;
                for l in lines.as_array().into_iter().flatten() {
                    after = l["seq"].as_u64().unwrap_or(after);
                    println!(
                        "{} {} {}",
                        l["time_ms"],
                        l["level"].as_str().unwrap_or(""),
                        l["message"].as_str().unwrap_or("")
                    );
                }
                if !follow {
                    break;
                }
                std::io::stdout().flush()?;
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        AppCommand::Pause { name } => print_status(&client.post_json(&path(&name, "/pause"), &json!({}))?),
        AppCommand::Resume { name } => print_status(&client.post_json(&path(&name, "/resume"), &json!({}))?),
        AppCommand::Delete { name } => {
            client.delete(&path(&name, ""))?;
            println!("deleted app {name}");
        }
        AppCommand::Upgrade { name, plugin, file } => {
            let mut body = json!({});
            if let Some(plugin) = plugin {
                let wasm = Path::new(&plugin);
                body["plugin"] = json!(if wasm.is_file() {
                    let (plugin_name, version) = upload(&client, wasm, None)?;
                    eprintln!("uploaded {} as plugin {plugin_name}@{version}", wasm.display());
                    format!("{plugin_name}@{version}")
                } else {
                    plugin
                });
            }
            if let Some(file) = file {
                body["document"] =
                    json!(std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?);
            }
            print_status(&client.post_json(&path(&name, "/upgrade"), &body)?);
        }
    }
    Ok(())
}

/// `eddy query`: a key of a store, from the server (`APP` names the app) or
/// from `eddy run --listen` at `url`.
pub fn query(url: Option<&str>, app: &str, store: &str, key: &str, fields: Option<&str>) -> Result<()> {
    let (client, prefix) = match url {
        Some(url) => (Client::new(url, ""), String::from("/v1")),
        None => (Client::from_profile()?, format!("/v1/apps/{}", segment(app))),
    };
    let fields = fields.map(|f| format!("?fields={}", segment(f))).unwrap_or_default();
    let answer = client.get(&format!("{prefix}/stores/{}/keys/{}{fields}", segment(store), segment(key)))?;
    println!("{answer}");
    Ok(())
}

/// `eddy topic list --remote`.
pub fn list_topics(prefix: &str) -> Result<()> {
    let client = Client::from_profile()?;
    for t in client.get("/v1/topics")?.as_array().into_iter().flatten() {
        let name = t["name"].as_str().unwrap_or("?");
        if name.starts_with(prefix) {
            println!("{name}\tpartitions={}\trecords={}", t["partitions"], t["records"]);
        }
    }
    Ok(())
}

/// `eddy topic create --remote`.
pub fn create_topic(name: &str, partitions: u32, if_not_exists: bool) -> Result<()> {
    let client = Client::from_profile()?;
    match client.post_json("/v1/topics", &json!({ "name": name, "partitions": partitions })) {
        Ok(_) => println!("created topic {name} with {partitions} partition(s)"),
        Err(e) if if_not_exists && e.to_string().contains("HTTP 409") => {}
        Err(e) => return Err(e),
    }
    Ok(())
}

/// `eddy produce --remote`: JSON lines, sent in batches.
pub fn produce(topic: &str, input: Box<dyn BufRead>, serdes: &str) -> Result<()> {
    let client = Client::from_profile()?;
    let path = format!("/v1/topics/{}/records?{serdes}", segment(topic));
    let (mut batch, mut count) = (String::new(), 0u64);
    let mut lines = 0;
    for line in input.lines() {
        let line = line.context("reading input")?;
        if line.trim().is_empty() {
            continue;
        }
        batch.push_str(&line);
        batch.push('\n');
        lines += 1;
        if lines == 1000 {
            count += client.post(&path, "application/x-ndjson", batch.as_bytes())?["produced"].as_u64().unwrap_or(0);
            (batch, lines) = (String::new(), 0);
        }
    }
    if lines > 0 {
        count += client.post(&path, "application/x-ndjson", batch.as_bytes())?["produced"].as_u64().unwrap_or(0);
    }
    eprintln!("produced {count} record(s) to {topic}");
    Ok(())
}

/// `eddy consume --remote --from-beginning`: the topic's records from
/// offset 0 of each partition, up to `max`.
pub fn consume(topic: &str, max: Option<u64>, serdes: &str) -> Result<()> {
    let client = Client::from_profile()?;
    let limit = max.unwrap_or(1000).min(10_000);
    let records = client.get(&format!("/v1/topics/{}/records?offset=0&limit={limit}&{serdes}", segment(topic)))?;
    let mut out = std::io::stdout().lock();
    for r in records.as_array().into_iter().flatten() {
        writeln!(out, "{r}")?;
    }
    Ok(())
}

/// Reads a whole input (a file or stdin).
pub fn read_input(file: Option<&Path>) -> Result<Box<dyn BufRead>> {
    Ok(match file {
        Some(path) => Box::new(std::io::BufReader::new(
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?,
        )),
        None => {
            let mut all = Vec::new();
            std::io::stdin().read_to_end(&mut all)?;
            Box::new(std::io::Cursor::new(all))
        }
    })
}
