//! What `#[fixtures_core::test]` expands to calls into here. Not a public API.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;

use futures_util::FutureExt;

use crate::env::{Env, TestEnv, TestId};
use crate::error::Result;
use crate::readiness::logs_tail;

/// What a test body returned, as a failure message or success.
pub trait Outcome {
    /// `Err(report)` when the test failed.
    fn into_outcome(self) -> std::result::Result<(), String>;
}

impl Outcome for () {
    fn into_outcome(self) -> std::result::Result<(), String> {
        Ok(())
    }
}

impl<E: std::fmt::Debug> Outcome for std::result::Result<(), E> {
    fn into_outcome(self) -> std::result::Result<(), String> {
        self.map_err(|e| format!("{e:?}"))
    }
}

/// Runs a synchronous test body where it may block, and may call `Handle::current().block_on`.
pub fn run_sync<R>(body: impl FnOnce() -> R) -> R {
    tokio::task::block_in_place(body)
}

/// A test body: gets its fixtures from the `TestEnv` and runs.
pub type Body = Pin<Box<dyn Future<Output = Result<std::result::Result<(), String>>> + Send>>;

fn log_tail_lines() -> usize {
    crate::config::current().map_or(crate::readiness::DEFAULT_LOG_TAIL, |c| c.log_tail)
}

/// Prints the logs of every container the test used, each under a header naming it.
async fn print_logs(t: &TestEnv) {
    for c in t.containers() {
        let logs = logs_tail(c.runtime().as_ref(), c.id(), log_tail_lines()).await;
        eprintln!(
            "---- logs of fixture `{}` (container {}, {}) ----",
            c.fixture(),
            c.name(),
            &c.id()[..c.id().len().min(12)]
        );
        if logs.trim().is_empty() {
            eprintln!("(no output)");
        } else {
            eprint!("{logs}");
            if !logs.ends_with('\n') {
                eprintln!();
            }
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "the test panicked".to_owned())
}

/// Runs the test `name` of `module` once per case of the fixtures it asks for.
///
/// # Panics
/// When the environment is invalid, a fixture cannot be made, or the body fails in any case:
/// that is how a test fails.
pub fn run_test<F>(module: &str, name: &str, requested: &[&str], env: impl FnOnce() -> Env, body: F)
where
    F: Fn(TestEnv) -> Body,
{
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => panic!("cannot start an async runtime for the test: {e}"),
    };
    let env = env();
    let cases = match env.cases(requested) {
        Ok(c) => c,
        Err(e) => panic!("{e:?}"),
    };
    let many = cases.len() > 1;
    let mut failures = Vec::new();
    for case in cases {
        let label = if case.choices.is_empty() { name.to_owned() } else { format!("{name}[{case}]") };
        let outcome: std::result::Result<(), String> = rt.block_on(async {
            let t = env.start_case(TestId::new(module, name), case).await.map_err(|e| format!("{e:?}"))?;
            let result = match t.prepare(requested).await {
                Err(e) => Err(format!("{e:?}")),
                Ok(()) => match AssertUnwindSafe(body(t.clone())).catch_unwind().await {
                    Ok(Ok(outcome)) => outcome,
                    Ok(Err(e)) => Err(format!("{e:?}")),
                    Err(panic) => Err(panic_message(panic.as_ref())),
                },
            };
            if result.is_err() {
                print_logs(&t).await;
            }
            t.finish_in_background();
            result
        });
        match outcome {
            Ok(()) if many => eprintln!("case {label} ... ok"),
            Ok(()) => {}
            Err(report) => {
                if many {
                    eprintln!("case {label} ... FAILED");
                }
                failures.push(format!("{label}: {report}"));
            }
        }
    }
    if !failures.is_empty() {
        panic!("{}", failures.join("\n"));
    }
}
