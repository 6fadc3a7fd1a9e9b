//! The test harness for targets with `harness = false` (`fixtures::main!()`).
//!
//! At start-up it finds every `#[fixtures::test]` of the binary (the attribute
//! registers each), expands each into one trial per case of its alternatives, named
//! `path::to::test[fixture=alternative]`, and hands them to a libtest-compatible runner
//! (libtest-mimic): `cargo test` and cargo-nextest list, filter and run each case as a test
//! of its own.
//!
//! Before the first trial runs it counts, for each module and session fixture, the trials
//! that need it (see `env::lifetime`), so a fixture ends when its last trial has ended.
//! Trials run in module order, so that a module's tests run together and no more module
//! fixtures are alive at once than there are threads.

use std::sync::Arc;

use libtest_mimic::{Arguments, Failed, Trial};

use crate::env::lifetime::GroupId;
use crate::env::{Case, Env};
use crate::private::{CaseOutcome, Registered, ShouldPanic, registered, run_case};

/// Runs the binary's fixture tests as libtest would, then exits with libtest's code.
/// `setup` runs once, before the first test (not for `--list`).
pub fn main(setup: Option<fn()>) -> ! {
    let mut args = Arguments::from_args();
    if args.test_threads.is_none() {
        args.test_threads = std::env::var("RUST_TEST_THREADS").ok().and_then(|n| n.parse().ok()).filter(|n| *n > 0);
    }
    let mut trials = Vec::new();
    let mut running = 0;
    for test in registered() {
        let made = test.make_env().and_then(|env| match env.cases(test.requested) {
            Ok(cases) => Ok((Arc::new(env), cases)),
            Err(e) => Err(format!("{e:?}")),
        });
        let (env, cases) = match made {
            Ok(made) => made,
            Err(report) => {
                running += usize::from(will_run(&args, &test.path(), test.ignore));
                let trial = Trial::test(test.path(), move || Err(Failed::from(report.as_str())));
                trials.push(trial.with_ignored_flag(test.ignore));
                continue;
            }
        };
        for case in cases {
            let name = test.case_name(&case);
            // Counted in the plan only if it will run (and the whole plan is known before
            // the first trial starts).
            let runs = will_run(&args, &name, test.ignore);
            running += usize::from(runs);
            let planned = if runs && !args.list { crate::plan::count(test, &env, &case, |_| true) } else { Vec::new() };
            let env = env.clone();
            let trial = Trial::test(name, move || run_trial(test, &env, case, planned));
            trials.push(trial.with_ignored_flag(test.ignore));
        }
    }
    if !args.list {
        explain_empty_selection(&args, &trials, running);
        if running > 0 {
            if let Some(setup) = setup {
                setup();
            }
        }
    }
    libtest_mimic::run(&args, trials).exit()
}

/// Whether libtest-mimic will run a trial of this name (it filters by name and flag alone).
fn will_run(args: &Arguments, name: &str, ignored: bool) -> bool {
    let probe = Trial::test(name, || Ok(())).with_ignored_flag(ignored);
    !args.is_filtered_out(&probe) && !args.is_ignored(&probe)
}

/// One trial: its case, with `#[should_panic]` judged on the body's own panic.
fn run_trial(test: &'static Registered, env: &Env, case: Case, planned: Vec<GroupId>) -> Result<(), Failed> {
    let outcome = crate::private::as_trial(|| crate::executor::block_on(run_case(env, test, case, planned)))
        .unwrap_or_else(|e| CaseOutcome::Failed(format!("{e:?}")));
    match (outcome, test.should_panic) {
        (CaseOutcome::Passed, ShouldPanic::No) => Ok(()),
        (CaseOutcome::Passed, _) => Err("the test did not panic, as `#[should_panic]` expects".into()),
        (CaseOutcome::Panicked(_, report), ShouldPanic::No) | (CaseOutcome::Failed(report), _) => {
            Err(report.as_str().into())
        }
        (CaseOutcome::Panicked(_, _), ShouldPanic::Yes) => Ok(()),
        (CaseOutcome::Panicked(message, report), ShouldPanic::WithMessage(expected)) => {
            if message.contains(expected) {
                Ok(())
            } else {
                Err(format!("the test panicked, but its message does not contain the expected `{expected}`:\n{report}")
                    .as_str()
                    .into())
            }
        }
    }
}

/// A filter that selects nothing is no error (`cargo test NAME` gives it to every binary),
/// but says so, with the nearest name.
fn explain_empty_selection(args: &Arguments, trials: &[Trial], running: usize) {
    if running > 0 {
        return;
    }
    if trials.is_empty() {
        eprintln!(
            "note: this test binary has no `#[fixtures::test]` functions; under `harness = false` \
             a plain `#[test]` does not run: mark it `#[fixtures::test]`"
        );
        return;
    }
    let Some(filter) = &args.filter else { return };
    let nearest = trials
        .iter()
        .map(|t| t.name())
        .min_by_key(|name| edits_to_match(filter, name))
        .map(|name| format!("; the nearest is `{name}`"))
        .unwrap_or_default();
    eprintln!(
        "note: no test of this binary matches `{filter}`{} ({} tests{nearest}; `--list` shows them all)",
        if args.exact { " exactly" } else { "" },
        trials.len()
    );
}

/// The fewest edits that make `filter` a substring of `name` (what a libtest filter must be).
fn edits_to_match(filter: &str, name: &str) -> usize {
    let name: Vec<char> = name.chars().collect();
    // A row per character of the filter; a match may start anywhere in the name at no cost.
    let mut row = vec![0; name.len() + 1];
    for (i, f) in filter.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, n) in name.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(f != *n)).min(row[j] + 1).min(above + 1);
            diagonal = above;
        }
    }
    row.into_iter().min().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::edits_to_match;

    #[test]
    fn a_filter_is_near_the_names_it_almost_matches() {
        assert_eq!(edits_to_match("sized", "cases::sized[size=large]"), 0);
        assert_eq!(edits_to_match("cases::sizd", "cases::sized[size=large]"), 1);
        assert!(edits_to_match("cases::sizd", "logs_on_failure") > 1);
        assert_eq!(edits_to_match("", "anything"), 0);
    }
}
