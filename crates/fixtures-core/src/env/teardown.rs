//! Custom fixtures' teardowns: run when their scope ends, newest first, each bounded.
//!
//! A function-scoped fixture's teardown is kept by its test and runs when the test ends,
//! before the test's containers are removed. A module or session fixture's is kept by its
//! group (`lifetime`) and runs when the group ends, before the group's containers are
//! removed: after its last test, or at process exit. Each teardown gets the fixture's value
//! back, so whatever still held it (the test's memo, the shared cache) lets go of it first.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use super::node::{Scope, TeardownFn};
use crate::error::{Error, ErrorKind, Result};

/// A teardown waiting for its scope to end.
pub(crate) struct Teardown {
    pub(crate) fixture: String,
    pub(crate) scope: Scope,
    pub(crate) value: Arc<dyn Any + Send + Sync>,
    pub(crate) run: TeardownFn,
    pub(crate) timeout: Duration,
    /// The shared cache's key, for module and session fixtures: dropped before the teardown.
    pub(crate) shared_key: Option<String>,
}

/// Runs one teardown within its timeout.
async fn run_one(teardown: Teardown) -> Result<()> {
    let Teardown { fixture, scope, value, run, timeout, shared_key } = teardown;
    if let Some(key) = shared_key {
        super::resolve::forget_shared(&key);
    }
    let span = tracing::info_span!("teardown", fixture = %fixture, scope = scope.as_str());
    let outcome = tokio::time::timeout(timeout, tracing::Instrument::instrument(run(value), span)).await;
    let outcome = match outcome {
        Ok(done) => done,
        Err(_) => Err(Error::new(
            ErrorKind::Timeout,
            format!("its teardown did not finish within {:.1}s", timeout.as_secs_f64()),
        )
        .with_hint("give the fixture a longer `.teardown_timeout(...)`, or find what the teardown waits for")),
    };
    match &outcome {
        Ok(()) => tracing::info!(fixture = %fixture, "tore down fixture"),
        Err(e) => tracing::warn!(fixture = %fixture, error = %e, "teardown failed"),
    }
    outcome.map_err(|e| e.with_fixture(fixture).with_operation("teardown"))
}

/// Runs `teardowns` newest first, on the library's runtime; every one runs whatever the
/// others do. Returns the failures.
pub(crate) async fn run_all(mut teardowns: Vec<Teardown>) -> Vec<Error> {
    let mut failures = Vec::new();
    while let Some(teardown) = teardowns.pop() {
        if let Err(e) = crate::executor::run(run_one(teardown)).await {
            failures.push(e);
        }
    }
    failures
}

/// One error for a test's teardown failures.
pub(crate) fn report(failures: Vec<Error>) -> Result<()> {
    match failures.len() {
        0 => Ok(()),
        1 => Err(failures.into_iter().next().expect("one")),
        n => {
            let each: Vec<String> =
                failures.iter().map(|e| format!("{e:?}").trim_end().replace('\n', "\n    ")).collect();
            Err(Error::new(ErrorKind::Fixture, format!("{n} teardowns failed:\n  - {}", each.join("\n  - "))))
        }
    }
}
