//! Each deployed app's recent log lines, for `eddy app logs`: a tracing
//! layer keeps the events emitted inside an app's `deployment` span (the
//! runtime's threads enter their run's span, and plugins log through
//! tracing) in that app's ring buffer.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, OnceLock};

use serde::Serialize;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// Lines kept per app.
const KEPT: usize = 2000;

/// One captured log line.
#[derive(Debug, Clone, Serialize)]
pub struct LogLine {
    /// Sequence number within the app's buffer: ask for lines after one.
    pub seq: u64,
    /// When it was logged, ms since the epoch.
    pub time_ms: i64,
    /// `ERROR`, `WARN`, `INFO`, `DEBUG` or `TRACE`.
    pub level: String,
    /// The message and its fields (`plugin=...` for a plugin's own lines).
    pub message: String,
}

/// An app's recent log lines.
#[derive(Debug, Default)]
pub struct LogBuffer {
    lines: Mutex<(u64, VecDeque<LogLine>)>,
}

impl LogBuffer {
    /// Adds a line, dropping the oldest past the bound.
    pub fn push(&self, level: &str, message: String) {
        let mut guard = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        let (next, lines) = &mut *guard;
        *next += 1;
        if lines.len() == KEPT {
            lines.pop_front();
        }
        lines.push_back(LogLine { seq: *next, time_ms: crate::jsonl::now_ms(), level: level.to_owned(), message });
    }

    /// The lines after sequence number `after`, at most `limit` of the latest.
    pub fn since(&self, after: u64, limit: usize) -> Vec<LogLine> {
        let guard = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        let lines: Vec<LogLine> = guard.1.iter().filter(|l| l.seq > after).cloned().collect();
        let skip = lines.len().saturating_sub(limit);
        lines.into_iter().skip(skip).collect()
    }

    /// How many lines at `level` are kept (for the console's error count).
    pub fn count(&self, level: &str) -> usize {
        self.lines.lock().unwrap_or_else(|p| p.into_inner()).1.iter().filter(|l| l.level == level).count()
    }
}

fn buffers() -> &'static Mutex<HashMap<String, Arc<LogBuffer>>> {
    static BUFFERS: OnceLock<Mutex<HashMap<String, Arc<LogBuffer>>>> = OnceLock::new();
    BUFFERS.get_or_init(Default::default)
}

/// The buffer of the deployment `key` (`tenant/app`), made on first use.
pub fn buffer(key: &str) -> Arc<LogBuffer> {
    buffers().lock().unwrap_or_else(|p| p.into_inner()).entry(key.to_owned()).or_default().clone()
}

/// Forgets the buffer of a deleted deployment.
pub fn forget(key: &str) {
    buffers().lock().unwrap_or_else(|p| p.into_inner()).remove(key);
}

/// The span a deployment's threads run in; events inside it land in the
/// buffer of `key`.
pub fn span(key: &str) -> tracing::Span {
    tracing::info_span!("deployment", key = key)
}

/// The layer that fills the buffers; add it to the subscriber of a server.
pub struct CaptureLayer;

/// The deployment key, kept in a `deployment` span's extensions.
struct DeploymentKey(Arc<LogBuffer>);

#[derive(Default)]
struct Text {
    key: Option<String>,
    message: String,
    fields: String,
}

impl Visit for Text {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "key" => self.key = Some(value.to_owned()),
            "message" => self.message.push_str(value),
            name => {
                let _ = write!(self.fields, " {name}={value}");
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            "key" => self.key = Some(format!("{value:?}")),
            name => {
                let _ = write!(self.fields, " {name}={value:?}");
            }
        }
    }
}

impl<S> tracing_subscriber::Layer<S> for CaptureLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != "deployment" {
            return;
        }
        let mut text = Text::default();
        attrs.record(&mut text);
        if let (Some(key), Some(span)) = (text.key, ctx.span(id)) {
            span.extensions_mut().insert(DeploymentKey(buffer(&key)));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(scope) = ctx.event_scope(event) else { return };
        for span in scope {
            if let Some(DeploymentKey(buffer)) = span.extensions().get::<DeploymentKey>() {
                let mut text = Text::default();
                event.record(&mut text);
                buffer.push(event.metadata().level().as_str(), format!("{}{}", text.message, text.fields));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[test]
    fn events_in_a_deployment_span_reach_its_buffer_only() {
        let subscriber = tracing_subscriber::registry().with(CaptureLayer);
        tracing::subscriber::with_default(subscriber, || {
            let a = span("t1/app");
            let b = span("t2/app");
            a.in_scope(|| tracing::warn!(plugin = "p", "careful {}", 1));
            b.in_scope(|| tracing::info!("hello"));
            tracing::error!("outside any deployment");
            // A thread that enters the span (as the runtime's threads do).
            let (a2, dispatch) = (a.clone(), tracing::dispatcher::get_default(|d| d.clone()));
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    let _entered = a2.entered();
                    tracing::error!("from a worker");
                })
            })
            .join()
            .expect("thread");
        });
        let lines = buffer("t1/app").since(0, 10);
        let texts: Vec<&str> = lines.iter().map(|l| l.message.as_str()).collect();
        assert_eq!(texts, ["careful 1 plugin=p", "from a worker"]);
        assert_eq!(lines[0].level, "WARN");
        assert_eq!(buffer("t1/app").count("ERROR"), 1);
        assert_eq!(buffer("t2/app").since(0, 10).len(), 1);
        assert_eq!(buffer("t1/app").since(lines[0].seq, 10).len(), 1, "only lines after a sequence number");
        forget("t1/app");
        assert!(buffer("t1/app").since(0, 10).is_empty());
    }
}
