//! `eddy server`: the multi-tenant hosted runtime.
//!
//! One process serves a versioned REST API (`/v1/...`, [`api`]) over which
//! tenants upload plugins, deploy apps, produce and consume records and
//! query their apps' stores. What the server knows (tenants, hashed tokens,
//! plugin versions, apps and whether they should run) is in [`meta`]; on
//! start it runs again every app that should run, from its committed
//! offsets and stores. Each tenant has its own embedded log and state
//! directory under `<dir>/tenants/<tenant>/`, so one tenant's topics, stores
//! and apps are not even named in another's ([`tenant`]). Plugins are kept
//! by content (`<dir>/plugins/<sha256>.wasm`). Quotas bound what a tenant
//! may upload, deploy and use ([`meta::Quotas`]).

pub mod api;
pub mod auth;
pub mod console;
pub mod deploy;
pub mod logs;
pub mod meta;
pub mod metrics;
pub mod tenant;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use auth::Caller;
use meta::{Meta, MetaError, Quotas, Tenant, Token};
use tenant::TenantRuntime;

/// How a server runs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where it keeps metadata, plugins, and tenants' logs and stores.
    pub dir: PathBuf,
    /// The admin token's secret: creates tenants and issues their tokens.
    pub admin_token: String,
    /// Quotas of tenants created without their own.
    pub default_quotas: Quotas,
    /// Run apps on this Kafka cluster (`host:port,...`) instead of each
    /// tenant's embedded log; tenants' topics and apps are then named
    /// `<tenant>.<name>` on it.
    pub bootstrap_servers: Option<String>,
}

/// Why a server operation failed; [`api`] maps each to an HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The request names something the caller has not got (or that does not
    /// exist: the two are not told apart).
    #[error("{0}")]
    NotFound(String),
    /// The request is malformed or invalid.
    #[error("{0}")]
    BadRequest(String),
    /// It would clash with something that exists.
    #[error("{0}")]
    Conflict(String),
    /// A quota forbids it.
    #[error("quota: {0}")]
    Quota(String),
    /// A rate quota: try again later.
    #[error("quota: {0}")]
    TooFast(String),
    /// Authentication failed.
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    /// The metadata database failed.
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// Something else failed on the server's side.
    #[error("{0}")]
    Internal(String),
}

/// A running server's shared state.
pub struct Server {
    config: ServerConfig,
    meta: Meta,
    admin_hash: String,
    tenants: Mutex<BTreeMap<String, Arc<TenantRuntime>>>,
    kafka: Option<tenant::KafkaBackend>,
}

/// True for a name a tenant, plugin or app may have.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && name.as_bytes()[0].is_ascii_alphanumeric()
}

impl Server {
    /// Opens the server's directory and runs every app that should run.
    pub fn open(config: ServerConfig) -> Result<Arc<Server>, ServerError> {
        if config.admin_token.trim().len() < 16 {
            return Err(ServerError::BadRequest(
                "the admin token must have at least 16 characters (EDDY_ADMIN_TOKEN)".into(),
            ));
        }
        std::fs::create_dir_all(config.dir.join("plugins"))
            .map_err(|e| ServerError::Internal(format!("creating {}: {e}", config.dir.display())))?;
        let meta = Meta::open(&config.dir.join("meta"))?;
        let admin_hash = auth::hash(config.admin_token.trim());
        let kafka = match &config.bootstrap_servers {
            Some(servers) => {
                // Bad client settings stop the server here, not each tenant later.
                crate::log::kafka::KafkaOptions::new(servers).map_err(|e| ServerError::BadRequest(e.to_string()))?;
                Some(tenant::KafkaBackend { bootstrap_servers: servers.clone(), instance: instance_id(&config.dir)? })
            }
            None => None,
        };
        let server = Arc::new(Server { config, meta, admin_hash, tenants: Mutex::default(), kafka });
        for tenant in server.meta.tenants()? {
            // A tenant whose log cannot open now does not keep the others down.
            let runtime = match server.tenant_runtime(&tenant.name) {
                Ok(runtime) => runtime,
                Err(e) => {
                    tracing::error!("tenant {}: {e}", tenant.name);
                    continue;
                }
            };
            for record in server.meta.apps(&tenant.name)? {
                // One app that no longer loads does not keep the others down.
                if let Err(e) = runtime.resume_deployment(&server, record) {
                    tracing::error!("tenant {}: {e}", tenant.name);
                }
            }
        }
        Ok(server)
    }

    /// The metadata database.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// Where plugin `sha256` is stored.
    pub fn plugin_path(&self, sha256: &str) -> PathBuf {
        self.config.dir.join("plugins").join(format!("{sha256}.wasm"))
    }

    /// The server's directory.
    pub fn dir(&self) -> &Path {
        &self.config.dir
    }

    /// Who holds `token`.
    pub fn authenticate(&self, token: &str) -> Result<Caller, ServerError> {
        let hash = auth::hash(token);
        if auth::same_hash(&hash, &self.admin_hash) {
            return Ok(Caller::Admin);
        }
        match self.meta.token(&hash)? {
            Some(t) if !t.revoked && self.meta.tenant(&t.tenant)?.is_some() => Ok(Caller::Tenant(t.tenant)),
            _ => Err(auth::AuthError::Invalid.into()),
        }
    }

    /// Creates a tenant and its first token; returns the token's id and secret.
    pub fn create_tenant(&self, name: &str, quotas: Option<Quotas>) -> Result<(Tenant, String, String), ServerError> {
        if !valid_name(name) {
            return Err(ServerError::BadRequest(format!(
                "tenant name '{name}': use 1 to 64 ASCII letters, digits, '-' and '_', starting with a letter or digit"
            )));
        }
        if self.meta.tenant(name)?.is_some() {
            return Err(ServerError::Conflict(format!("tenant '{name}' exists")));
        }
        let tenant = Tenant {
            name: name.to_owned(),
            created_ms: crate::jsonl::now_ms(),
            quotas: quotas.unwrap_or(self.config.default_quotas),
        };
        self.meta.put_tenant(&tenant)?;
        let (id, secret) = self.issue_token(name)?;
        Ok((tenant, id, secret))
    }

    /// Issues a new token for `tenant`; returns its id and secret (shown once).
    pub fn issue_token(&self, tenant: &str) -> Result<(String, String), ServerError> {
        if self.meta.tenant(tenant)?.is_none() {
            return Err(ServerError::NotFound(format!("no tenant '{tenant}'")));
        }
        let secret = auth::new_secret().map_err(|e| ServerError::Internal(format!("no random numbers: {e}")))?;
        let hash = auth::hash(&secret);
        let token = Token {
            id: auth::token_id(&hash),
            tenant: tenant.to_owned(),
            created_ms: crate::jsonl::now_ms(),
            revoked: false,
        };
        self.meta.put_token(&hash, &token)?;
        Ok((token.id, secret))
    }

    /// Revokes `tenant`'s token `id`.
    pub fn revoke_token(&self, tenant: &str, id: &str) -> Result<(), ServerError> {
        let found = self.meta.tokens()?.into_iter().find(|(_, t)| t.tenant == tenant && t.id == id);
        let Some((hash, mut token)) = found else {
            return Err(ServerError::NotFound(format!("tenant '{tenant}' has no token '{id}'")));
        };
        token.revoked = true;
        Ok(self.meta.put_token(&hash, &token)?)
    }

    /// The runtime of `tenant` (its log, apps and rates), opened on first use.
    pub fn tenant_runtime(&self, tenant: &str) -> Result<Arc<TenantRuntime>, ServerError> {
        let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = tenants.get(tenant) {
            return Ok(t.clone());
        }
        let record = self.meta.tenant(tenant)?.ok_or_else(|| ServerError::NotFound(format!("no tenant '{tenant}'")))?;
        let dir = self.config.dir.join("tenants").join(tenant);
        let runtime = Arc::new(TenantRuntime::open(&dir, record, self.kafka.as_ref())?);
        tenants.insert(tenant.to_owned(), runtime.clone());
        Ok(runtime)
    }

    /// Every tenant runtime opened so far.
    pub fn tenant_runtimes(&self) -> Vec<Arc<TenantRuntime>> {
        self.tenants.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }

    /// Stops every app cleanly (each commits and checkpoints its stores);
    /// their desired state stays, so the next start runs them again.
    pub fn shutdown(&self) {
        for t in self.tenant_runtimes() {
            t.stop_all();
        }
    }
}

/// The server's instance id: random at its first start, then kept in
/// `<dir>/instance-id`, so its apps' transactional ids stay the same across
/// restarts (and fence the producers of a server that died).
fn instance_id(dir: &Path) -> Result<String, ServerError> {
    let path = dir.join("instance-id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        let id = id.trim();
        if !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Ok(id.to_owned());
        }
    }
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| ServerError::Internal(format!("no random numbers: {e}")))?;
    let id = crate::serdes::hex(&bytes);
    std::fs::write(&path, &id).map_err(|e| ServerError::Internal(format!("writing {}: {e}", path.display())))?;
    Ok(id)
}

/// Runs the server on `listen` until `stop` resolves; every app stops
/// cleanly before it returns.
pub fn serve(
    config: ServerConfig,
    listen: SocketAddr,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), ServerError> {
    let server = Server::open(config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("eddy-http")
        .enable_all()
        .build()
        .map_err(|e| ServerError::Internal(format!("cannot start the HTTP runtime: {e}")))?;
    let result = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| ServerError::BadRequest(format!("cannot listen on {listen}: {e}")))?;
        let bound = listener.local_addr().map_err(|e| ServerError::Internal(e.to_string()))?;
        ready(bound);
        axum::serve(listener, api::router(server.clone()))
            .with_graceful_shutdown(stop)
            .await
            .map_err(|e| ServerError::Internal(format!("serving HTTP: {e}")))
    });
    let stopping = server.clone();
    // Apps stop on a plain thread: their threads block.
    let _ = std::thread::spawn(move || stopping.shutdown()).join();
    result
}
