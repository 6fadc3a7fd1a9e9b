//! What `#[fixtures::test]` expands to calls into here. Not a public API.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;

use futures_util::FutureExt;

pub use inventory;

use crate::env::{Case, Env, TestEnv, TestId};
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

/// The state and logs of every container the test used, each under a header naming it.
async fn container_report(t: &TestEnv) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for c in t.containers() {
        let (logs, state) = tokio::join!(
            logs_tail(c.runtime().as_ref(), c.id(), log_tail_lines()),
            c.runtime().inspect_container(c.id())
        );
        let state = match state {
            Ok(info) => crate::readiness::describe_state(&info),
            Err(e) => format!("unknown ({e})"),
        };
        let _ = writeln!(
            out,
            "---- logs of fixture `{}` (container {}, {}; {state}) ----",
            c.fixture(),
            c.name(),
            &c.id()[..c.id().len().min(12)]
        );
        if logs.trim().is_empty() {
            out.push_str("(no output)\n");
        } else {
            out.push_str(&logs);
            if !logs.ends_with('\n') {
                out.push('\n');
            }
        }
    }
    out
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    crate::env::node::panic_text(payload)
}

thread_local! {
    /// Whether this thread runs a trial of the library's harness, whose panics are reported
    /// with the trial rather than printed by the panic hook.
    static IN_TRIAL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Where the trial's body panicked (and the backtrace, when `RUST_BACKTRACE` asks).
    static PANICKED_AT: std::cell::RefCell<Option<(String, String)>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` as a trial: a panic on this thread is kept for its report instead of printed.
#[cfg_attr(not(feature = "harness"), allow(dead_code))]
pub(crate) fn as_trial<R>(f: impl FnOnce() -> R) -> R {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_TRIAL.with(std::cell::Cell::get) {
                return default(info);
            }
            let at = info.location().map(|l| l.to_string()).unwrap_or_else(|| "an unknown place".to_owned());
            let trace = std::backtrace::Backtrace::capture();
            let trace = match trace.status() {
                std::backtrace::BacktraceStatus::Captured => format!("\nstack backtrace:\n{trace}"),
                _ => String::new(),
            };
            PANICKED_AT.with(|p| *p.borrow_mut() = Some((at, trace)));
        }));
    });
    IN_TRIAL.with(|t| t.set(true));
    let out = f();
    IN_TRIAL.with(|t| t.set(false));
    out
}

/// What `#[should_panic]` asks of a fixture test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShouldPanic {
    /// Not marked.
    No,
    /// `#[should_panic]`.
    Yes,
    /// `#[should_panic(expected = "...")]`.
    WithMessage(&'static str),
}

/// A `#[fixtures::test]`, as the attribute registers it (with [`inventory`]), so that
/// a runner can find every fixture test of the binary.
#[derive(Debug)]
pub struct Registered {
    /// `module_path!()` where the test is.
    pub module: &'static str,
    /// The function's name.
    pub name: &'static str,
    /// The fixtures its arguments name.
    pub requested: &'static [&'static str],
    /// Its environment.
    pub env: fn() -> Env,
    /// Its body: fetches the fixtures and runs.
    pub body: fn(TestEnv) -> Body,
    /// `#[ignore]`.
    pub ignore: bool,
    /// `#[should_panic]`.
    pub should_panic: ShouldPanic,
}

inventory::collect!(Registered);

impl Registered {
    /// The test's name as libtest gives it: the module path below the crate, then the function.
    pub(crate) fn path(&self) -> String {
        match self.module.split_once("::") {
            Some((_, module)) => format!("{module}::{}", self.name),
            None => self.name.to_owned(),
        }
    }

    /// The name of one case: `path[fixture=alternative,...]`, or the path when it has none.
    pub(crate) fn case_name(&self, case: &Case) -> String {
        if case.choices.is_empty() { self.path() } else { format!("{}[{case}]", self.path()) }
    }
}

impl Registered {
    /// Its environment, or the panic of the code that declares it, as a report.
    pub(crate) fn make_env(&self) -> std::result::Result<Env, String> {
        std::panic::catch_unwind(self.env).map_err(|panic| {
            format!("the environment of `{}` panicked: {}", self.path(), panic_message(panic.as_ref()))
        })
    }
}

/// Every fixture test of this binary, by module and name.
pub(crate) fn registered() -> Vec<&'static Registered> {
    let mut all: Vec<&'static Registered> = inventory::iter::<Registered>.into_iter().collect();
    all.sort_by_key(|t| (t.module, t.name));
    all
}

/// How one case ended.
pub(crate) enum CaseOutcome {
    Passed,
    /// The body panicked (the message, for `#[should_panic]`), and the full report.
    Panicked(#[cfg_attr(not(feature = "harness"), allow(dead_code))] String, String),
    Failed(String),
}

/// Runs the test `name` of `module` once per case of the fixtures it asks for: what the
/// standard harness's `#[test]` calls.
///
/// The test's thread drives the body on the library's runtime (see [`crate::executor`]):
/// no runtime is built per test, and what the body and its fixtures spawn lives there.
///
/// # Panics
/// When the environment is invalid, a fixture cannot be made, a teardown fails, or the body
/// fails in any case: that is how a test fails.
pub fn run_test(test: &'static Registered) {
    let env = test.make_env().unwrap_or_else(|report| panic!("{report}"));
    let cases = match env.cases(test.requested) {
        Ok(c) => c,
        Err(e) => panic!("{e:?}"),
    };
    let many = cases.len() > 1;
    let mut failures = Vec::new();
    for case in cases {
        let label = test.case_name(&case);
        let planned = crate::plan::standard().take(&label);
        let outcome = crate::executor::block_on(run_case(&env, test, case, planned))
            .unwrap_or_else(|e| CaseOutcome::Failed(format!("{e:?}")));
        match outcome {
            CaseOutcome::Passed if many => eprintln!("case {label} ... ok"),
            CaseOutcome::Passed => {}
            CaseOutcome::Panicked(_, report) | CaseOutcome::Failed(report) => {
                if many {
                    eprintln!("case {label} ... FAILED");
                }
                failures.push(if many { format!("{label}: {report}") } else { report });
            }
        }
    }
    if !failures.is_empty() {
        panic!("{}", failures.join("\n"));
    }
}

/// One case: its fixtures, the body, and on failure the containers' state and logs; then
/// the teardowns, the removals in the background, and the shared fixtures whose last
/// planned test this was.
pub(crate) async fn run_case(
    env: &Env,
    test: &Registered,
    case: Case,
    planned: Vec<crate::env::lifetime::GroupId>,
) -> CaseOutcome {
    let t = match env.start_case(TestId::new(test.module, test.name), case).await {
        Ok(t) => t,
        Err(e) => {
            // Nothing was made; the groups it was counted in are done with it all the same.
            let ending = crate::env::lifetime::leave(Vec::new(), planned);
            let failures = ending.run().await;
            let mut report = format!("{e:?}");
            for f in failures {
                report.push_str(&format!("\nand then: {f:?}"));
            }
            return CaseOutcome::Failed(report);
        }
    };
    t.set_planned(planned);
    let mut panicked = None;
    let result = match t.prepare(test.requested).await {
        Err(e) => Err(format!("{e:?}")),
        Ok(()) => match AssertUnwindSafe((test.body)(t.clone())).catch_unwind().await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(e)) => Err(format!("{e:?}")),
            Err(panic) => {
                let message = panic_message(panic.as_ref());
                panicked = Some(message.clone());
                match PANICKED_AT.with(|p| p.borrow_mut().take()) {
                    Some((at, trace)) => Err(format!("the test panicked at {at}:\n{message}{trace}")),
                    None => Err(message),
                }
            }
        },
    };
    let result = match result {
        Ok(()) => Ok(()),
        Err(report) => {
            // Every report says which engine the test ran on: an error of the test's own (a
            // connection refused when the engine died under it) names none by itself.
            let report = if report.contains("\n  runtime: ") {
                report
            } else {
                let rt = t.runtime();
                format!("{report}\nthe test ran on\n  runtime: {} at {}", rt.name(), rt.host())
            };
            let containers = container_report(&t).await;
            Err(if containers.is_empty() { report } else { format!("{report}\n{containers}") })
        }
    };
    let torn_down = t.finish_in_background().await.map_err(|e| format!("{e:?}"));
    match (result, torn_down) {
        (Ok(()), Ok(())) => CaseOutcome::Passed,
        (Ok(()), Err(teardown)) => CaseOutcome::Failed(teardown),
        (Err(report), Ok(())) => match panicked {
            Some(message) => CaseOutcome::Panicked(message, report),
            None => CaseOutcome::Failed(report),
        },
        (Err(report), Err(teardown)) => CaseOutcome::Failed(format!("{report}\nand then: {teardown}")),
    }
}

/// Edit distance (Levenshtein), for "did you mean": the library's and the compose crate's.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(row[j + 1] + 1);
            prev = cur;
        }
    }
    row[b.len()]
}
