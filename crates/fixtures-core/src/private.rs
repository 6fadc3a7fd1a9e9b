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

/// Prints the state and logs of every container the test used, each under a header naming it.
async fn print_logs(t: &TestEnv) {
    for c in t.containers() {
        let (logs, state) = tokio::join!(
            logs_tail(c.runtime().as_ref(), c.id(), log_tail_lines()),
            c.runtime().inspect_container(c.id())
        );
        let state = match state {
            Ok(info) => crate::readiness::describe_state(&info),
            Err(e) => format!("unknown ({e})"),
        };
        eprintln!(
            "---- logs of fixture `{}` (container {}, {}; {state}) ----",
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
    crate::env::node::panic_text(payload)
}

/// Runs the test `name` of `module` once per case of the fixtures it asks for.
///
/// The test's thread drives the body on the library's runtime (see [`crate::executor`]):
/// no runtime is built per test, and what the body and its fixtures spawn lives there.
///
/// # Panics
/// When the environment is invalid, a fixture cannot be made, a teardown fails, or the body
/// fails in any case: that is how a test fails.
pub fn run_test<F>(module: &str, name: &str, requested: &[&str], env: impl FnOnce() -> Env, body: F)
where
    F: Fn(TestEnv) -> Body,
{
    let env = env();
    let cases = match env.cases(requested) {
        Ok(c) => c,
        Err(e) => panic!("{e:?}"),
    };
    let many = cases.len() > 1;
    let mut failures = Vec::new();
    for case in cases {
        let label = if case.choices.is_empty() { name.to_owned() } else { format!("{name}[{case}]") };
        let outcome = crate::executor::block_on(run_case(&env, module, name, requested, case, &body))
            .unwrap_or_else(|e| Err(format!("{e:?}")));
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

/// One case: its fixtures, the body, and on failure the containers' state and logs; then
/// the teardowns, and the removals in the background.
async fn run_case<F>(
    env: &Env,
    module: &str,
    name: &str,
    requested: &[&str],
    case: crate::env::Case,
    body: &F,
) -> std::result::Result<(), String>
where
    F: Fn(TestEnv) -> Body,
{
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
    let torn_down = t.finish_in_background().await.map_err(|e| format!("{e:?}"));
    match (result, torn_down) {
        (Ok(()), torn_down) => torn_down,
        (Err(report), Ok(())) => Err(report),
        (Err(report), Err(teardown)) => Err(format!("{report}\nand then: {teardown}")),
    }
}
