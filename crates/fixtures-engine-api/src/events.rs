//! An engine's event stream that lasts as long as it is read.
//!
//! An engine may end a stream of events that was asked to go on: Podman 4.3 ends one asked
//! with `since` when its event log rotates (at 1 MB by default), which a long test run
//! reaches. [`resumed`] asks again from a moment before the last event it delivered and
//! skips what it delivered already.

use std::collections::{HashSet, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use serde_json::Value;

use fixtures_core::Result;

/// How far before the last delivered event a resumed stream starts: events are not always
/// written in the order of their times.
const OVERLAP_NANOS: i128 = 1_000_000_000;
/// How many delivered events are remembered to skip them when they come again.
const REMEMBERED: usize = 4096;

/// The time of an event of the engine's, in nanoseconds since the epoch (`timeNano`, else `time`).
pub fn event_time(raw: &Value) -> Option<i128> {
    raw.get("timeNano")
        .and_then(Value::as_i64)
        .map(i128::from)
        .or_else(|| raw.get("time").and_then(Value::as_i64).map(|s| i128::from(s) * 1_000_000_000))
}

/// A time in nanoseconds as the engines' `since` takes it: `seconds.nanoseconds`.
pub fn since(nanos: i128) -> String {
    format!("{}.{:09}", nanos.div_euclid(1_000_000_000), nanos.rem_euclid(1_000_000_000))
}

/// Events already delivered, the last [`REMEMBERED`] of them.
#[derive(Debug, Default)]
struct Delivered {
    order: VecDeque<u64>,
    set: HashSet<u64>,
}

impl Delivered {
    /// Whether `raw` is new; remembers it.
    fn first_time(&mut self, raw: &Value) -> bool {
        let mut hasher = DefaultHasher::new();
        raw.to_string().hash(&mut hasher);
        let key = hasher.finish();
        if !self.set.insert(key) {
            return false;
        }
        self.order.push_back(key);
        if self.order.len() > REMEMBERED {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }
}

struct State<F> {
    open: F,
    current: Option<BoxStream<'static, Result<Value>>>,
    opened: Instant,
    /// The latest time of a delivered event, or when the stream was asked for.
    latest: i128,
    delivered: Delivered,
    /// Streams in a row that the engine ended within a second.
    quick_ends: u32,
    failed: bool,
    /// Since when the engine has been away (its connection closed or refused), if it is.
    away_since: Option<Instant>,
}

/// How long a stream waits for an engine that went away (restarted) before it gives up: the
/// same patience as every other call (see fixtures-core's `executor`).
const AWAY_PATIENCE: Duration = Duration::from_secs(15);

/// Whether `e` says the engine went away rather than answered: it may come back.
fn engine_away(e: &fixtures_core::Error) -> bool {
    e.kind() == fixtures_core::ErrorKind::Unreachable || e.message() == crate::transport::CLOSED
}

/// The engine's raw events (JSON) from the start of this second on, for as long as they are
/// read.
///
/// `open(since)` asks the engine for its events from `since` (as [`since`] writes it) on,
/// streamed; it is first called when the stream is first polled, and `since` replays what
/// happened in between, so no event after this call is lost. When the engine ends that stream
/// it is asked again, from a moment before the latest event delivered; events that come again
/// are skipped. When the engine goes away (its connection closed or refused: a restart) it is
/// asked again the same way for up to 15 s. Any other error is delivered and ends the stream.
pub fn resumed<F>(open: F) -> BoxStream<'static, Result<Value>>
where
    F: FnMut(String) -> BoxStream<'static, Result<Value>> + Send + 'static,
{
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    resumed_from(i128::from(now) * 1_000_000_000, open)
}

/// [`resumed`] from `since_nanos` on.
fn resumed_from<F>(since_nanos: i128, open: F) -> BoxStream<'static, Result<Value>>
where
    F: FnMut(String) -> BoxStream<'static, Result<Value>> + Send + 'static,
{
    let state = State {
        open,
        current: None,
        opened: Instant::now(),
        latest: since_nanos,
        delivered: Delivered::default(),
        quick_ends: 0,
        failed: false,
        away_since: None,
    };
    futures_util::stream::unfold(state, |mut st| async move {
        if st.failed {
            return None;
        }
        loop {
            let stream = match &mut st.current {
                Some(stream) => stream,
                None => {
                    let from = if st.delivered.order.is_empty() { st.latest } else { st.latest - OVERLAP_NANOS };
                    st.opened = Instant::now();
                    st.current.insert((st.open)(since(from)))
                }
            };
            match stream.next().await {
                Some(Ok(raw)) => {
                    st.away_since = None;
                    if !st.delivered.first_time(&raw) {
                        continue;
                    }
                    st.latest = st.latest.max(event_time(&raw).unwrap_or(st.latest));
                    return Some((Ok(raw), st));
                }
                // The engine went away (a restart): asked again until it is back, from before
                // the last event delivered, within the patience every call has.
                Some(Err(e))
                    if engine_away(&e) && st.away_since.get_or_insert_with(Instant::now).elapsed() < AWAY_PATIENCE =>
                {
                    st.current = None;
                    tracing::debug!(error = %e, "the engine went away from its event stream; asking again");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Some(Err(e)) => {
                    st.failed = true;
                    return Some((Err(e), st));
                }
                None => {
                    st.current = None;
                    // An engine that ends every stream at once is not asked in a tight loop.
                    if st.opened.elapsed() < Duration::from_secs(1) {
                        st.quick_ends += 1;
                        tokio::time::sleep(Duration::from_millis(100) * st.quick_ends.min(10)).await;
                    } else {
                        st.quick_ends = 0;
                    }
                    tracing::debug!(since = %since(st.latest), "the engine ended its event stream; asking again");
                }
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use serde_json::json;

    use super::*;

    fn event(n: i64, what: &str) -> Value {
        json!({"Action": what, "timeNano": 1_700_000_000_000_000_000_i64 + n})
    }

    #[test]
    fn times_read_and_written_as_the_engines_do() {
        assert_eq!(event_time(&json!({"time": 17, "timeNano": 17_000_000_123_i64})), Some(17_000_000_123));
        assert_eq!(event_time(&json!({"time": 17})), Some(17_000_000_000));
        assert_eq!(event_time(&json!({})), None);
        assert_eq!(since(17_000_000_123), "17.000000123");
        assert_eq!(since(17_000_000_000), "17.000000000");
    }

    #[tokio::test]
    async fn a_stream_the_engine_ends_is_asked_again_without_repeats() {
        // The engine's answers to each ask: the second replays the last event of the first
        // (the asked `since` is a second before it) and goes on; the third is what came after.
        let answers = Arc::new(Mutex::new(VecDeque::from([
            vec![event(1, "create"), event(2, "start")],
            vec![event(2, "start"), event(3, "die"), event(3, "destroy")],
            vec![event(3, "destroy"), event(4, "create")],
        ])));
        let asked = Arc::new(Mutex::new(Vec::new()));
        let (answers_, asked_) = (answers.clone(), asked.clone());
        let stream = resumed_from(1_700_000_000_000_000_000, move |since| {
            asked_.lock().expect("asked").push(since);
            match answers_.lock().expect("answers").pop_front() {
                Some(events) => futures_util::stream::iter(events.into_iter().map(Ok)).boxed(),
                None => futures_util::stream::pending().boxed(),
            }
        });
        let got: Vec<String> = stream
            .take(5)
            .map(|e| e.expect("an event")["Action"].as_str().unwrap_or_default().to_owned())
            .collect()
            .await;
        assert_eq!(got, ["create", "start", "die", "destroy", "create"]);
        assert_eq!(
            *asked.lock().expect("asked"),
            ["1700000000.000000000", "1699999999.000000002", "1699999999.000000003"]
        );
    }

    #[tokio::test]
    async fn an_error_is_delivered_and_ends_the_stream() {
        let stream = resumed_from(0, |_| {
            futures_util::stream::iter([
                Ok(event(1, "create")),
                Err(fixtures_core::Error::new(fixtures_core::ErrorKind::Engine, "gone")),
            ])
            .boxed()
        });
        let got: Vec<Result<Value>> = stream.collect().await;
        assert_eq!(got.len(), 2);
        assert!(got[0].is_ok() && got[1].as_ref().is_err_and(|e| e.message() == "gone"));
    }

    #[tokio::test]
    async fn a_stream_goes_on_when_the_engine_comes_back() {
        // Cut off mid-stream, refused twice while it restarts, then back.
        let closed = || fixtures_core::Error::new(fixtures_core::ErrorKind::Engine, crate::transport::CLOSED);
        let refused = || fixtures_core::Error::new(fixtures_core::ErrorKind::Unreachable, "no");
        let answers = Arc::new(Mutex::new(VecDeque::from([
            vec![Ok(event(1, "create")), Err(closed())],
            vec![Err(refused())],
            vec![Err(refused())],
            vec![Ok(event(1, "create")), Ok(event(2, "start"))],
        ])));
        let stream =
            resumed_from(1_700_000_000_000_000_000, move |_| match answers.lock().expect("answers").pop_front() {
                Some(items) => futures_util::stream::iter(items).boxed(),
                None => futures_util::stream::pending().boxed(),
            });
        let got: Vec<String> = stream
            .take(2)
            .map(|e| e.expect("an event")["Action"].as_str().unwrap_or_default().to_owned())
            .collect()
            .await;
        assert_eq!(got, ["create", "start"]);
    }
}
