//! User activity: the seed's session case, a summary of each user's session
//! of clicks.
//!
//! A click is JSON, `{"user": "u1", "page": "/home", "at": 1700000000000}`
//! (`at`: when it happened, ms since the epoch), keyed by user. With session
//! windows (`examples/activity/sessions.yaml`), a user's clicks at most the
//! inactivity gap apart form one session, and each session has a
//! [`Session`] summary: how many clicks, the distinct pages in the order the
//! session first saw them, and its first and last click's times.
//!
//! - `clicked_at` (a timestamp extractor) gives a click's event time, its
//!   `at`, so a click that reaches the log late still falls into the session
//!   of when it happened.
//! - `add_click` (an aggregator) folds a click into a session's summary.
//! - `merge_sessions` (a merger) combines two sessions' summaries when a
//!   click bridges the gap between them.

use eddy_sdk::{Error, Json, Plugin, Record, Registry, Result};
use serde::{Deserialize, Serialize};

/// One click of a user.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct Click {
    /// The user who clicked.
    pub user: String,
    /// The page clicked on.
    pub page: String,
    /// When the click happened, ms since the epoch.
    pub at: i64,
}

/// A user's session, as far as it has been seen.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct Session {
    /// Clicks in the session.
    pub clicks: u64,
    /// The distinct pages clicked, in the order the session first saw them
    /// (a merged session lists the earlier session's pages first).
    pub pages: Vec<String>,
    /// The time of the session's first click (ms since the epoch).
    pub first: i64,
    /// The time of the session's last click.
    pub last: i64,
}

impl Session {
    /// The session with one more click on `page` at `at`.
    pub fn with_click(mut self, page: &str, at: i64) -> Session {
        if self.clicks == 0 {
            (self.first, self.last) = (at, at);
        } else {
            (self.first, self.last) = (self.first.min(at), self.last.max(at));
        }
        self.clicks += 1;
        if !self.pages.iter().any(|p| p == page) {
            self.pages.push(page.to_owned());
        }
        self
    }

    /// One session spanning `self` and `other`: the clicks of both, the
    /// earlier session's pages first, then the other's new ones.
    pub fn merged(self, other: Session) -> Session {
        if self.clicks == 0 {
            return other;
        }
        if other.clicks == 0 {
            return self;
        }
        let (mut earlier, later) = if other.first < self.first { (other, self) } else { (self, other) };
        for page in later.pages {
            if !earlier.pages.contains(&page) {
                earlier.pages.push(page);
            }
        }
        Session {
            clicks: earlier.clicks + later.clicks,
            pages: earlier.pages,
            first: earlier.first.min(later.first),
            last: earlier.last.max(later.last),
        }
    }
}

/// A stored summary, or an empty one before a session's first click.
fn stored(summary: Option<&[u8]>) -> Result<Session> {
    match summary {
        Some(bytes) => serde_json::from_slice(bytes).map_err(|e| Error::failed(format!("stored session: {e}"))),
        None => Ok(Session::default()),
    }
}

/// Reads a click, rejecting one with an empty page.
fn click(rec: &Record) -> Result<Click> {
    let click: Click = rec.json()?;
    if click.page.is_empty() {
        return Err(Error::invalid("a click needs a page"));
    }
    Ok(click)
}

/// Folds a click into its session; its time is the record's event time (the
/// time the session window placed it by).
fn add_click(current: Option<&[u8]>, rec: &Record) -> Result<Json<Session>> {
    let click = click(rec)?;
    Ok(Json(stored(current)?.with_click(&click.page, rec.timestamp())))
}

/// Merges one more session into the sessions merged so far (`None`: it is
/// the first).
fn merge_sessions(merged: Option<&[u8]>, session: &[u8]) -> Result<Json<Session>> {
    Ok(Json(stored(merged)?.merged(stored(Some(session))?)))
}

/// A click's event time: its `at` field.
fn clicked_at(rec: &Record) -> Result<i64> {
    Ok(click(rec)?.at)
}

struct Activity;

impl Plugin for Activity {
    fn register(r: &mut Registry) {
        r.timestamp_extractor("clicked_at", clicked_at).doc("a click's event time: its `at` field");
        r.aggregate("add_click", add_click)
            .doc("folds a click into its session's summary (clicks, pages, first, last)");
        r.merger("merge_sessions", merge_sessions).doc("one summary for two sessions a click bridges");
    }
}

eddy_sdk::export_plugin!(Activity);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use eddy_sdk::OwnedRecord;

    fn fold(current: Option<&Session>, json: &str, at: i64) -> Result<Session> {
        let rec = OwnedRecord::new("u1", json).unwrap().with_timestamp(at).encode();
        let bytes = current.map(|s| serde_json::to_vec(s).unwrap());
        add_click(bytes.as_deref(), &rec.record()).map(|Json(s)| s)
    }

    fn clicks(pages: &[(&str, i64)]) -> Session {
        pages.iter().fold(Session::default(), |s, (p, at)| s.with_click(p, *at))
    }

    #[test]
    fn a_session_counts_clicks_and_distinct_pages_in_order() {
        let json = |page: &str, at: i64| format!(r#"{{"user": "u1", "page": "{page}", "at": {at}}}"#);
        let s = fold(None, &json("/home", 10), 10).unwrap();
        let s = fold(Some(&s), &json("/cart", 20), 20).unwrap();
        let s = fold(Some(&s), &json("/home", 5), 5).unwrap();
        assert_eq!(s, Session { clicks: 3, pages: vec!["/home".into(), "/cart".into()], first: 5, last: 20 });
    }

    #[test]
    fn bad_clicks_are_invalid_records() {
        for bad in ["not json", r#"{"user": "u1", "at": 3}"#, r#"{"user": "u1", "page": "", "at": 3}"#] {
            assert!(matches!(fold(None, bad, 3), Err(Error::InvalidRecord(_))), "{bad}");
        }
        let good = OwnedRecord::new("u1", r#"{"user": "u1", "page": "/home", "at": 3}"#).unwrap().encode();
        assert!(matches!(add_click(Some(b"{"), &good.record()), Err(Error::Failed(_))), "a broken stored summary");
    }

    #[test]
    fn merging_puts_the_earlier_session_first() {
        let early = clicks(&[("/home", 0), ("/cart", 60)]);
        let late = clicks(&[("/search", 400), ("/home", 450)]);
        let want =
            Session { clicks: 4, pages: vec!["/home".into(), "/cart".into(), "/search".into()], first: 0, last: 450 };
        assert_eq!(early.clone().merged(late.clone()), want);
        assert_eq!(late.clone().merged(early.clone()), want, "whichever comes first");
        let bytes = |s: &Session| serde_json::to_vec(s).unwrap();
        let Json(first) = merge_sessions(None, &bytes(&early)).unwrap();
        assert_eq!(first, early, "the first session merged into the initial value is itself");
        let Json(both) = merge_sessions(Some(&bytes(&first)), &bytes(&late)).unwrap();
        assert_eq!(both, want);
        assert!(matches!(merge_sessions(None, b"[1]"), Err(Error::Failed(_))));
    }
}
