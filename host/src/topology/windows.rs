//! Windows in a topology document: `window:` on a count, aggregate or
//! reduce, checked into [`TimeWindows`].

use serde::Deserialize;

use crate::window::TimeWindows;

/// The windows of a windowed count, aggregate or reduce in a document.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WindowDoc {
    /// `tumbling` or `hopping`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A window's length in ms.
    pub size_ms: Option<i64>,
    /// Hopping windows: the distance between window starts in ms.
    pub advance_ms: Option<i64>,
    /// How long after its end a window still takes late records (default 0).
    pub grace_ms: Option<i64>,
    /// How long the store keeps a window (default size + grace, at least a
    /// day).
    pub retention_ms: Option<i64>,
}

impl WindowDoc {
    pub(super) fn windows(&self) -> Result<TimeWindows, String> {
        let size = match self.size_ms {
            Some(s) if s > 0 => s,
            Some(s) => return Err(format!("window size-ms is {s}: give a size of at least 1 ms")),
            None => return Err("the window needs a `size-ms`".into()),
        };
        let advance = match (self.kind.as_str(), self.advance_ms) {
            ("tumbling", None) => size,
            ("tumbling", Some(a)) if a == size => size,
            ("tumbling", Some(_)) => {
                return Err(
                    "a tumbling window advances by its size: remove `advance-ms`, or use `type: hopping`".into()
                );
            }
            ("hopping", Some(a)) if a > 0 && a <= size => a,
            ("hopping", Some(a)) => {
                return Err(format!("hopping window advance-ms is {a}: use 1 to size-ms ({size})"));
            }
            ("hopping", None) => return Err("a hopping window needs `advance-ms`".into()),
            ("sliding" | "session", _) => {
                return Err(format!("{} windows are not supported yet: use tumbling or hopping", self.kind));
            }
            (other, _) => return Err(format!("unknown window type '{other}': use tumbling or hopping")),
        };
        let grace = self.grace_ms.unwrap_or(0);
        if grace < 0 {
            return Err(format!("window grace-ms is {grace}: use 0 or more"));
        }
        if let Some(r) = self.retention_ms
            && r < size + grace
        {
            return Err(format!(
                "window retention-ms ({r}) is shorter than size + grace ({}): a window must be kept until it closes",
                size + grace
            ));
        }
        Ok(TimeWindows::new(size, advance, grace, self.retention_ms))
    }
}

#[cfg(test)]
mod tests {
    use crate::topology::{Op, Topology, TopologyError};
    use crate::window::MIN_RETENTION_MS;

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
        let Op::Count { window: Some(w), .. } = &node("c").op else { panic!("a windowed count") };
        assert_eq!((w.size, w.advance, w.grace, w.retention), (300_000, 60_000, 10_000, MIN_RETENTION_MS));
        assert!(node("c").windowed && node("kept").windowed && node("out").windowed && node("changes").windowed);
        assert!(!node("re").windowed, "a new key is a plain key");
        let t = parse("- { name: s, source: [a] }\n- { name: c, count: n, window: { type: tumbling, size-ms: 10, retention-ms: 500 } }")
            .unwrap();
        let Op::Count { window: Some(w), .. } = &t.nodes[1].op else { panic!("a windowed count") };
        assert_eq!((w.advance, w.retention), (10, 500));
    }

    #[test]
    fn bad_windows_are_explained() {
        for (window, want) in [
            ("{ type: tumbling }", "needs a `size-ms`"),
            ("{ type: tumbling, size-ms: 0 }", "at least 1 ms"),
            ("{ type: tumbling, size-ms: 10, advance-ms: 5 }", "use `type: hopping`"),
            ("{ type: hopping, size-ms: 10 }", "needs `advance-ms`"),
            ("{ type: hopping, size-ms: 10, advance-ms: 20 }", "use 1 to size-ms (10)"),
            ("{ type: tumbling, size-ms: 10, grace-ms: -1 }", "use 0 or more"),
            ("{ type: tumbling, size-ms: 10, grace-ms: 5, retention-ms: 12 }", "shorter than size + grace (15)"),
            ("{ type: session, size-ms: 10 }", "session windows are not supported yet"),
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
