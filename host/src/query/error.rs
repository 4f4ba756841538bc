//! Why a query failed, and whose fault that is (what the HTTP layer
//! answers with).

use crate::store::StoreError;
use crate::task::TaskId;

use super::fields::FieldsError;

/// Whose fault a failed query is, and whether asking again can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The store or key does not exist.
    NotFound,
    /// The query is malformed, or asks what the store cannot answer.
    BadRequest,
    /// The data is not here now (a task restoring or moving): retry.
    Unavailable,
    /// A store failed to read.
    Internal,
    /// Another instance holds the data (forward the query there).
    Elsewhere,
}

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The application has no store by that name.
    #[error("application '{app}' has no store '{store}'; its queryable stores: {stores}")]
    UnknownStore {
        /// The application id.
        app: String,
        /// The name asked for.
        store: String,
        /// The queryable stores, comma-separated.
        stores: String,
    },
    /// The store holds an operator's own bookkeeping.
    #[error("store '{store}' is {what}, which is not queryable; the queryable stores: {stores}")]
    NotQueryable {
        /// The store.
        store: String,
        /// What it is.
        what: String,
        /// The queryable stores, comma-separated.
        stores: String,
    },
    /// The key does not fit the store's key serde.
    #[error("key {key:?} of store '{store}': {why}")]
    BadKey {
        /// The store.
        store: String,
        /// The key as given.
        key: String,
        /// Why it does not fit.
        why: String,
    },
    /// A query parameter is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// The store's kind cannot answer this query.
    #[error("store '{store}' is a {kind} store: {hint}")]
    Unsupported {
        /// The store.
        store: String,
        /// Its kind ([`super::StoreType::name`]).
        kind: &'static str,
        /// What to ask instead.
        hint: String,
    },
    /// The key has no value in the store.
    #[error("key {key:?} is not in store '{store}'")]
    NotFound {
        /// The store.
        store: String,
        /// The key as given.
        key: String,
    },
    /// The run has not planned its tasks yet.
    #[error("application '{app}' is starting: its tasks are not planned yet; retry shortly")]
    Starting {
        /// The application id.
        app: String,
    },
    /// The task holding the data does not run here now.
    #[error(
        "task {task} (partition {partition} of store '{store}') is not running in this instance: it is restoring its state, or moving between threads or instances in a rebalance; retry shortly",
        partition = task.partition
    )]
    NotRunning {
        /// The store.
        store: String,
        /// The task that holds the data.
        task: TaskId,
    },
    /// The task holding the data runs in another instance (the group says
    /// which): the HTTP layer forwards the query there.
    #[error(
        "task {task} (partition {partition} of store '{store}') runs in the instance at {address}",
        partition = task.partition
    )]
    Elsewhere {
        /// The store.
        store: String,
        /// The task that holds the data.
        task: TaskId,
        /// Where that instance answers queries.
        address: String,
    },
    /// Reading the store failed.
    #[error("store '{store}': {source}")]
    Store {
        /// The store.
        store: String,
        /// The cause.
        source: Box<StoreError>,
    },
}

impl QueryError {
    /// Whose fault it is.
    pub fn fault(&self) -> Fault {
        match self {
            QueryError::UnknownStore { .. } | QueryError::NotQueryable { .. } | QueryError::NotFound { .. } => {
                Fault::NotFound
            }
            QueryError::BadKey { .. } | QueryError::BadRequest(_) | QueryError::Unsupported { .. } => Fault::BadRequest,
            QueryError::Starting { .. } | QueryError::NotRunning { .. } => Fault::Unavailable,
            QueryError::Elsewhere { .. } => Fault::Elsewhere,
            QueryError::Store { source, .. } if matches!(**source, StoreError::Closed(_)) => Fault::Unavailable,
            QueryError::Store { .. } => Fault::Internal,
        }
    }

    /// True if the same query may succeed shortly.
    pub fn retryable(&self) -> bool {
        self.fault() == Fault::Unavailable
    }
}

impl From<FieldsError> for QueryError {
    fn from(e: FieldsError) -> Self {
        QueryError::BadRequest(e.to_string())
    }
}
