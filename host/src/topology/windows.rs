//! Windows in a topology document: `window:` on a count, aggregate or
//! reduce, checked into [`Windows`].

use serde::Deserialize;

use super::{BufferBound, Until, WhenFull};
use crate::window::{MIN_RETENTION_MS, SessionWindows, SlidingWindows, TimeWindows, Windows};

/// The windows of a windowed count, aggregate or reduce in a document.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WindowDoc {
    /// `tumbling`, `hopping`, `sliding` or `session`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Tumbling and hopping windows: a window's length in ms.
    pub size_ms: Option<i64>,
    /// Hopping windows: the distance between window starts in ms.
    pub advance_ms: Option<i64>,
    /// Sliding windows: the largest time difference between two records of
    /// a window, in ms.
    pub time_difference_ms: Option<i64>,
    /// Session windows: the inactivity gap that ends a session, in ms.
    pub gap_ms: Option<i64>,
    /// How long after its end a window still takes late records (default 0).
    pub grace_ms: Option<i64>,
    /// How long the store keeps a window (default: as long as it can change,
    /// and at least a day).
    pub retention_ms: Option<i64>,
}

/// A positive length in ms, or an error naming the field.
fn length(value: Option<i64>, field: &str, kind: &str) -> Result<i64, String> {
    match value {
        Some(v) if v > 0 => Ok(v),
        Some(v) => Err(format!("window {field} is {v}: give at least 1 ms")),
        None => Err(format!("a {kind} window needs `{field}`")),
    }
}

impl WindowDoc {
    pub(super) fn windows(&self) -> Result<Windows, String> {
        let kind = self.kind.as_str();
        let only = |fields: &[(&str, bool)]| -> Result<(), String> {
            match fields.iter().find(|(_, given)| *given) {
                Some((field, _)) => Err(format!("a {kind} window has no `{field}`")),
                None => Ok(()),
            }
        };
        let grace = self.grace_ms.unwrap_or(0);
        if grace < 0 {
            return Err(format!("window grace-ms is {grace}: use 0 or more"));
        }
        // The time a window can still change, which retention must cover.
        let (windows, lifetime) = match kind {
            "tumbling" | "hopping" => {
                only(&[("time-difference-ms", self.time_difference_ms.is_some()), ("gap-ms", self.gap_ms.is_some())])?;
                let size = length(self.size_ms, "size-ms", kind)?;
                let advance = match (kind, self.advance_ms) {
                    ("tumbling", None) => size,
                    ("tumbling", Some(a)) if a == size => size,
                    ("tumbling", Some(_)) => {
                        return Err(
                            "a tumbling window advances by its size: remove `advance-ms`, or use `type: hopping`"
                                .into(),
                        );
                    }
                    (_, Some(a)) if a > 0 && a <= size => a,
                    (_, Some(a)) => return Err(format!("hopping window advance-ms is {a}: use 1 to size-ms ({size})")),
                    (_, None) => return Err("a hopping window needs `advance-ms`".into()),
                };
                (Windows::Time(TimeWindows::new(size, advance, grace, self.retention_ms)), size + grace)
            }
            "sliding" => {
                only(&[
                    ("size-ms", self.size_ms.is_some()),
                    ("advance-ms", self.advance_ms.is_some()),
                    ("gap-ms", self.gap_ms.is_some()),
                ])?;
                let difference = length(self.time_difference_ms, "time-difference-ms", kind)?;
                let lifetime = difference + grace;
                let retention = self.retention_ms.unwrap_or(lifetime.max(MIN_RETENTION_MS));
                (Windows::Sliding(SlidingWindows { difference, grace, retention }), lifetime)
            }
            "session" => {
                only(&[
                    ("size-ms", self.size_ms.is_some()),
                    ("advance-ms", self.advance_ms.is_some()),
                    ("time-difference-ms", self.time_difference_ms.is_some()),
                ])?;
                let gap = length(self.gap_ms, "gap-ms", kind)?;
                let lifetime = gap + grace;
                let retention = self.retention_ms.unwrap_or(lifetime.max(MIN_RETENTION_MS));
                (Windows::Session(SessionWindows { gap, grace, retention }), lifetime)
            }
            other => return Err(format!("unknown window type '{other}': use tumbling, hopping, sliding or session")),
        };
        if let Some(r) = self.retention_ms
            && r < lifetime
        {
            return Err(format!(
                "window retention-ms ({r}) is shorter than the time a window can still change ({lifetime} ms): a window must be kept until it closes"
            ));
        }
        Ok(windows)
    }
}

/// A suppression in a document: `until-window-closes`, or its options.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum SuppressDoc {
    /// `suppress: until-window-closes`.
    Short(String),
    /// `suppress: { until: window-closes | time-limit, ... }`.
    Full(SuppressOptions),
}

/// A suppression's options.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SuppressOptions {
    /// `window-closes` or `time-limit`.
    pub until: String,
    /// With `time-limit`: how many ms of stream time a key's updates wait.
    pub time_limit_ms: Option<i64>,
    /// At most this many keys wait.
    pub max_records: Option<u64>,
    /// At most this many bytes wait.
    pub max_bytes: Option<u64>,
    /// `shut-down` (the default) or `emit-early`.
    pub when_full: Option<String>,
}

impl SuppressDoc {
    /// Checks the suppression of a table whose updates carry `windows` (if
    /// they are windowed).
    pub(super) fn check(&self, windows: Option<Windows>) -> Result<(Until, BufferBound), String> {
        let options = match self {
            SuppressDoc::Short(s) if s == "until-window-closes" => SuppressOptions {
                until: "window-closes".into(),
                time_limit_ms: None,
                max_records: None,
                max_bytes: None,
                when_full: None,
            },
            SuppressDoc::Short(other) => {
                return Err(format!(
                    "suppress: '{other}': use `until-window-closes`, or `{{ until: time-limit, time-limit-ms: N }}`"
                ));
            }
            SuppressDoc::Full(o) => o.clone(),
        };
        let when_full = match options.when_full.as_deref() {
            None | Some("shut-down") => WhenFull::ShutDown,
            Some("emit-early") => WhenFull::EmitEarly,
            Some(other) => return Err(format!("suppress when-full: '{other}': use shut-down or emit-early")),
        };
        let bound = BufferBound { max_records: options.max_records, max_bytes: options.max_bytes, when_full };
        let until = match (options.until.as_str(), options.time_limit_ms) {
            ("window-closes", Some(_)) => return Err("`time-limit-ms` is for `until: time-limit`".into()),
            ("window-closes", None) => {
                let Some(windows) = windows else {
                    return Err("suppress until the window closes reads a windowed table: put it after a count, aggregate or reduce with a `window`".into());
                };
                if when_full == WhenFull::EmitEarly {
                    return Err("final results must never go out early: use `when-full: shut-down` (the default) with `until: window-closes`".into());
                }
                Until::WindowCloses(windows)
            }
            ("time-limit", Some(ms)) if ms >= 0 => Until::TimeLimit(ms),
            ("time-limit", Some(ms)) => return Err(format!("suppress time-limit-ms is {ms}: use 0 or more")),
            ("time-limit", None) => return Err("suppress until a time limit needs `time-limit-ms`".into()),
            (other, _) => return Err(format!("suppress until '{other}': use window-closes or time-limit")),
        };
        Ok((until, bound))
    }
}

#[cfg(test)]
mod tests {
    use crate::topology::{BufferBound, Op, Topology, TopologyError, Until, WhenFull};
    use crate::window::{MIN_RETENTION_MS, WindowedKeys, Windows};

    fn parse(yaml: &str) -> Result<Topology, TopologyError> {
        Topology::from_yaml(yaml)
    }

    #[test]
    fn windowed_aggregations_have_windowed_keys_downstream() {
        let t = parse(
            "
- { name: s, source: [a] }
- { name: c, count: n, window: { type: hopping, size-ms: 300000, advance-ms: 60000, grace-ms: 10000 } }
- { name: kept, filter: p }
- { name: out, to: o }
- { name: changes, from: kept, to-stream: true }
- { name: re, select-key: k }
",
        )
        .unwrap();
        let node = |name: &str| t.nodes.iter().find(|n| n.name == name).unwrap();
        let Op::Count { window: Some(Windows::Time(w)), .. } = &node("c").op else { panic!("a windowed count") };
        assert_eq!((w.size, w.advance, w.grace, w.retention), (300_000, 60_000, 10_000, MIN_RETENTION_MS));
        for n in ["c", "kept", "out", "changes"] {
            assert_eq!(node(n).windowed, Some(WindowedKeys::Time), "{n}");
        }
        assert_eq!(node("re").windowed, None, "a new key is a plain key");
        let t = parse("- { name: s, source: [a] }\n- { name: c, count: n, window: { type: tumbling, size-ms: 10, retention-ms: 500 } }")
            .unwrap();
        let Op::Count { window: Some(Windows::Time(w)), .. } = &t.nodes[1].op else { panic!("a windowed count") };
        assert_eq!((w.advance, w.retention), (10, 500));
    }

    #[test]
    fn sliding_and_session_windows_and_suppression_options() {
        let t = parse(
            "
- { name: s, source: [a] }
- { name: sessions, aggregate: add, merger: merge, window: { type: session, gap-ms: 300000, grace-ms: 1000 } }
- { name: finals, suppress: until-window-closes }
- { name: sliding, from: s, count: n, window: { type: sliding, time-difference-ms: 10 } }
- { name: t, table: b }
- { name: c, count: per-value, group-by: v }
- { name: limited, suppress: { until: time-limit, time-limit-ms: 50, max-records: 10, when-full: emit-early } }
",
        )
        .unwrap();
        let node = |name: &str| t.nodes.iter().find(|n| n.name == name).unwrap();
        let Op::Aggregate { window: Some(Windows::Session(w)), merger, .. } = &node("sessions").op else {
            panic!("a session aggregate")
        };
        assert_eq!((w.gap, w.grace, w.retention, merger.as_deref()), (300_000, 1000, MIN_RETENTION_MS, Some("merge")));
        assert_eq!(node("finals").windowed, Some(WindowedKeys::Session), "sessions pass their keys on");
        let Op::Suppress { until: Until::WindowCloses(Windows::Session(_)), bound, .. } = &node("finals").op else {
            panic!("final results of sessions")
        };
        assert_eq!(*bound, BufferBound::default());
        let Op::Count { window: Some(Windows::Sliding(w)), .. } = &node("sliding").op else { panic!("sliding") };
        assert_eq!((w.difference, w.grace), (10, 0));
        assert_eq!(node("sliding").windowed, Some(WindowedKeys::Time));
        let Op::Suppress { until: Until::TimeLimit(50), bound, .. } = &node("limited").op else { panic!("a limit") };
        assert_eq!((bound.max_records, bound.max_bytes, bound.when_full), (Some(10), None, WhenFull::EmitEarly));
        for (yaml, want) in [
            (
                "- { name: s, source: [a] }\n- { name: c, aggregate: f, window: { type: session, gap-ms: 5 } }",
                "needs a `merger`",
            ),
            ("- { name: s, source: [a] }\n- { name: c, aggregate: f, merger: m }", "`merger` is for session windows"),
            (
                "- { name: s, source: [a] }\n- { name: c, reduce: f, merger: m, window: { type: session, gap-ms: 5 } }",
                "`merger` belongs on an aggregate",
            ),
            ("- { name: s, source: [a] }\n- { name: f, suppress: until-window-closes }", "suppress reads a table"),
            (
                "- { name: t, table: a }\n- { name: f, suppress: until-window-closes }",
                "reads a windowed table: put it after a count",
            ),
            ("- { name: t, table: a }\n- { name: f, suppress: soon }", "suppress: 'soon'"),
            ("- { name: t, table: a }\n- { name: f, suppress: { until: time-limit } }", "needs `time-limit-ms`"),
            (
                "- { name: s, source: [a] }\n- { name: c, count: n, window: { type: tumbling, size-ms: 5 } }\n- { name: f, suppress: { until: window-closes, max-records: 5, when-full: emit-early } }",
                "final results must never go out early",
            ),
            (
                "- { name: t, table: a }\n- { name: f, suppress: { until: time-limit, time-limit-ms: 5, when-full: later } }",
                "when-full: 'later'",
            ),
        ] {
            let err = parse(yaml).unwrap_err().to_string();
            assert!(err.contains(want), "for {yaml}\n got: {err}\nwant: {want}");
        }
    }

    #[test]
    fn bad_windows_are_explained() {
        for (window, want) in [
            ("{ type: tumbling }", "a tumbling window needs `size-ms`"),
            ("{ type: tumbling, size-ms: 0 }", "at least 1 ms"),
            ("{ type: sliding, size-ms: 10 }", "a sliding window has no `size-ms`"),
            ("{ type: sliding }", "a sliding window needs `time-difference-ms`"),
            ("{ type: session, gap-ms: 10, advance-ms: 2 }", "a session window has no `advance-ms`"),
            ("{ type: session, gap-ms: 10, retention-ms: 12, grace-ms: 5 }", "can still change (15 ms)"),
            ("{ type: tumbling, size-ms: 10, advance-ms: 5 }", "use `type: hopping`"),
            ("{ type: hopping, size-ms: 10 }", "needs `advance-ms`"),
            ("{ type: hopping, size-ms: 10, advance-ms: 20 }", "use 1 to size-ms (10)"),
            ("{ type: tumbling, size-ms: 10, grace-ms: -1 }", "use 0 or more"),
            ("{ type: tumbling, size-ms: 10, grace-ms: 5, retention-ms: 12 }", "can still change (15 ms)"),
            ("{ type: session, size-ms: 10 }", "a session window has no `size-ms`"),
            ("{ type: daily, size-ms: 10 }", "unknown window type 'daily'"),
        ] {
            let yaml = format!("- {{ name: s, source: [a] }}\n- {{ name: c, count: n, window: {window} }}");
            let err = parse(&yaml).unwrap_err().to_string();
            assert!(err.contains(want) && err.contains("node c"), "for {window}\n got: {err}\nwant: {want}");
        }
        for (yaml, want) in [
            (
                "- { name: s, source: [a] }\n- { name: f, filter: p, window: { type: tumbling, size-ms: 10 } }",
                "`window` belongs on a count",
            ),
            (
                "- { name: t, table: a }\n- { name: c, count: n, group-by: k, window: { type: tumbling, size-ms: 10 } }",
                "a table's aggregation has no windows",
            ),
        ] {
            let err = parse(yaml).unwrap_err().to_string();
            assert!(err.contains(want), "for {yaml}\n got: {err}\nwant: {want}");
        }
    }
}
