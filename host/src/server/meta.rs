//! The server's metadata: tenants, API tokens, plugin versions and apps
//! with their desired state, in a RocksDB database under the server's
//! directory (`<dir>/meta`).
//!
//! Every write is synced (RocksDB's write-ahead log, fsync'd) before the
//! request that made it is answered, so a server killed with kill -9 comes
//! back with everything it acknowledged. Keys are `<kind>\0<tenant>\0<name>`
//! (tokens: `token\0<hash>`), values JSON.

use std::path::{Path, PathBuf};

use rocksdb::{DB, Direction, IteratorMode, Options, WriteBatch, WriteOptions};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Why the metadata database failed.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// RocksDB failed.
    #[error("server metadata database {path}: {detail}")]
    Db {
        /// The database directory.
        path: PathBuf,
        /// RocksDB's message.
        detail: String,
    },
    /// A stored value does not decode (a damaged or foreign database).
    #[error("server metadata database {path}: entry {key} is damaged: {detail}")]
    Damaged {
        /// The database directory.
        path: PathBuf,
        /// The entry's key, printable.
        key: String,
        /// The decoder's message.
        detail: String,
    },
}

/// A tenant and its quotas.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Tenant {
    /// The tenant's name: letters, digits, '-' and '_'.
    pub name: String,
    /// When it was created, ms since the epoch.
    pub created_ms: i64,
    /// What its apps may use.
    pub quotas: Quotas,
}

/// What one tenant may use.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "kebab-case")]
pub struct Quotas {
    /// Largest plugin upload, bytes.
    pub max_plugin_bytes: u64,
    /// Most apps deployed at once.
    pub max_apps: u32,
    /// Most tasks over all its apps.
    pub max_tasks: u32,
    /// Most linear memory of one plugin instance, MiB.
    pub memory_mb: u32,
    /// Longest one plugin call may run, ms.
    pub call_timeout_ms: u64,
    /// Records per second it may produce or consume through the API.
    pub records_per_second: u32,
}

impl Default for Quotas {
    /// 16 MiB plugins, 10 apps, 64 tasks, 64 MiB per instance, 100 ms per
    /// call, 50 000 records/s through the API.
    fn default() -> Self {
        Quotas {
            max_plugin_bytes: 16 << 20,
            max_apps: 10,
            max_tasks: 64,
            memory_mb: 64,
            call_timeout_ms: 100,
            records_per_second: 50_000,
        }
    }
}

/// An API token, stored by the SHA-256 of its secret.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Token {
    /// Public id, for listing and revoking.
    pub id: String,
    /// The tenant it acts for.
    pub tenant: String,
    /// When it was issued, ms since the epoch.
    pub created_ms: i64,
    /// Revoked tokens stay listed but authenticate nothing.
    pub revoked: bool,
}

/// One uploaded version of a plugin.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PluginVersion {
    /// The plugin's name within its tenant.
    pub name: String,
    /// 1, 2, ...: each upload of new bytes under the name adds one.
    pub version: u32,
    /// SHA-256 of the component, hex: where its bytes are stored.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// When it was uploaded, ms since the epoch.
    pub uploaded_ms: i64,
    /// The functions it exports (name and kind).
    pub functions: Vec<(String, String)>,
}

/// Whether an app should run.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Desired {
    /// Run it (again after a restart of the server).
    Running,
    /// Keep it stopped, with its state and offsets.
    Paused,
}

/// A deployed app.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AppRecord {
    /// Its application id within the tenant.
    pub name: String,
    /// The application document as deployed.
    pub document: String,
    /// The plugin it runs: name and version.
    pub plugin: String,
    /// The plugin version.
    pub plugin_version: u32,
    /// Run or keep paused.
    pub desired: Desired,
    /// When it was first deployed, ms since the epoch.
    pub deployed_ms: i64,
}

/// The metadata database.
pub struct Meta {
    path: PathBuf,
    db: DB,
}

const TENANT: &str = "tenant";
const TOKEN: &str = "token";
const PLUGIN: &str = "plugin";
const APP: &str = "app";

fn key(parts: &[&str]) -> Vec<u8> {
    parts.join("\0").into_bytes()
}

impl Meta {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Meta, MetaError> {
        let mut options = Options::default();
        options.create_if_missing(true);
        let db =
            DB::open(&options, path).map_err(|e| MetaError::Db { path: path.to_owned(), detail: e.to_string() })?;
        Ok(Meta { path: path.to_owned(), db })
    }

    fn error(&self, e: rocksdb::Error) -> MetaError {
        MetaError::Db { path: self.path.clone(), detail: e.to_string() }
    }

    fn read<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, MetaError> {
        match self.db.get(key).map_err(|e| self.error(e))? {
            Some(bytes) => self.decode(key, &bytes).map(Some),
            None => Ok(None),
        }
    }

    fn decode<T: DeserializeOwned>(&self, key: &[u8], bytes: &[u8]) -> Result<T, MetaError> {
        serde_json::from_slice(bytes).map_err(|e| MetaError::Damaged {
            path: self.path.clone(),
            key: String::from_utf8_lossy(key).replace('\0', "/"),
            detail: e.to_string(),
        })
    }

    fn write(&self, puts: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<(), MetaError> {
        let mut batch = WriteBatch::default();
        for (k, v) in puts {
            match v {
                Some(v) => batch.put(k, v),
                None => batch.delete(k),
            }
        }
        let mut options = WriteOptions::default();
        options.set_sync(true);
        self.db.write_opt(batch, &options).map_err(|e| self.error(e))
    }

    fn put<T: Serialize>(&self, key: Vec<u8>, value: &T) -> Result<(), MetaError> {
        let bytes = serde_json::to_vec(value).expect("metadata serializes");
        self.write(&[(key, Some(bytes))])
    }

    /// Every value under `prefix`, in key order.
    fn scan<T: DeserializeOwned>(&self, prefix: &[u8]) -> Result<Vec<T>, MetaError> {
        let mut out = Vec::new();
        for item in self.db.iterator(IteratorMode::From(prefix, Direction::Forward)) {
            let (k, v) = item.map_err(|e| self.error(e))?;
            if !k.starts_with(prefix) {
                break;
            }
            out.push(self.decode(&k, &v)?);
        }
        Ok(out)
    }

    /// The tenant `name`.
    pub fn tenant(&self, name: &str) -> Result<Option<Tenant>, MetaError> {
        self.read(&key(&[TENANT, name]))
    }

    /// Every tenant, by name.
    pub fn tenants(&self) -> Result<Vec<Tenant>, MetaError> {
        self.scan(&key(&[TENANT, ""]))
    }

    /// Creates or updates a tenant.
    pub fn put_tenant(&self, tenant: &Tenant) -> Result<(), MetaError> {
        self.put(key(&[TENANT, &tenant.name]), tenant)
    }

    /// The token whose secret hashes to `hash`.
    pub fn token(&self, hash: &str) -> Result<Option<Token>, MetaError> {
        self.read(&key(&[TOKEN, hash]))
    }

    /// Stores a token under the hash of its secret.
    pub fn put_token(&self, hash: &str, token: &Token) -> Result<(), MetaError> {
        self.put(key(&[TOKEN, hash]), token)
    }

    /// Every token with its hash.
    pub fn tokens(&self) -> Result<Vec<(String, Token)>, MetaError> {
        let prefix = key(&[TOKEN, ""]);
        let mut out = Vec::new();
        for item in self.db.iterator(IteratorMode::From(&prefix, Direction::Forward)) {
            let (k, v) = item.map_err(|e| self.error(e))?;
            if !k.starts_with(&prefix) {
                break;
            }
            let hash = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            out.push((hash, self.decode(&k, &v)?));
        }
        Ok(out)
    }

    /// Every version of the tenant's plugin `name`, oldest first.
    pub fn plugin_versions(&self, tenant: &str, name: &str) -> Result<Vec<PluginVersion>, MetaError> {
        self.scan(&key(&[PLUGIN, tenant, name, ""]))
    }

    /// Every version of every plugin of the tenant.
    pub fn plugins(&self, tenant: &str) -> Result<Vec<PluginVersion>, MetaError> {
        self.scan(&key(&[PLUGIN, tenant, ""]))
    }

    /// Stores a plugin version.
    pub fn put_plugin(&self, tenant: &str, plugin: &PluginVersion) -> Result<(), MetaError> {
        // Zero-padded, so versions sort in number order.
        let version = format!("{:010}", plugin.version);
        self.put(key(&[PLUGIN, tenant, &plugin.name, &version]), plugin)
    }

    /// The tenant's app `name`.
    pub fn app(&self, tenant: &str, name: &str) -> Result<Option<AppRecord>, MetaError> {
        self.read(&key(&[APP, tenant, name]))
    }

    /// The tenant's apps, by name.
    pub fn apps(&self, tenant: &str) -> Result<Vec<AppRecord>, MetaError> {
        self.scan(&key(&[APP, tenant, ""]))
    }

    /// Creates or updates an app.
    pub fn put_app(&self, tenant: &str, app: &AppRecord) -> Result<(), MetaError> {
        self.put(key(&[APP, tenant, &app.name]), app)
    }

    /// Forgets an app.
    pub fn delete_app(&self, tenant: &str, name: &str) -> Result<(), MetaError> {
        self.write(&[(key(&[APP, tenant, name]), None)])
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn what_is_written_is_read_back_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let meta = Meta::open(dir.path()).unwrap();
            meta.put_tenant(&Tenant { name: "acme".into(), created_ms: 1, quotas: Quotas::default() }).unwrap();
            meta.put_tenant(&Tenant { name: "ac".into(), created_ms: 2, quotas: Quotas::default() }).unwrap();
            for version in [1, 2, 10] {
                let p = PluginVersion {
                    name: "vitals".into(),
                    version,
                    sha256: format!("{version:064}"),
                    size: 3,
                    uploaded_ms: 0,
                    functions: vec![],
                };
                meta.put_plugin("acme", &p).unwrap();
            }
            let app = AppRecord {
                name: "v".into(),
                document: "x".into(),
                plugin: "vitals".into(),
                plugin_version: 2,
                desired: Desired::Running,
                deployed_ms: 5,
            };
            meta.put_app("acme", &app).unwrap();
            meta.put_app("ac", &AppRecord { name: "w".into(), ..app }).unwrap();
        }
        let meta = Meta::open(dir.path()).unwrap();
        assert_eq!(meta.tenants().unwrap().iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["ac", "acme"]);
        let versions: Vec<u32> = meta.plugin_versions("acme", "vitals").unwrap().iter().map(|p| p.version).collect();
        assert_eq!(versions, [1, 2, 10], "versions in number order");
        // A tenant whose name is a prefix of another's sees only its own.
        assert_eq!(meta.apps("ac").unwrap().len(), 1);
        assert_eq!(meta.apps("acme").unwrap()[0].name, "v");
        meta.delete_app("acme", "v").unwrap();
        assert!(meta.app("acme", "v").unwrap().is_none());
        assert!(meta.plugins("ac").unwrap().is_empty());
    }
}
