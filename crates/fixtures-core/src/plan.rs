//! Which fixture tests will run, counted before any starts, so that each shared fixture
//! ends with the last test that needs it (see `env::lifetime`).
//!
//! The harness (`fixtures::main!()`) knows: it filters the trials itself, and every
//! test of its binary is a fixture test. Under the standard harness the attribute's
//! registry lists every fixture test of the binary, and libtest's arguments tell which of
//! them run. Plain tests (`#[tokio::test]` with `Env::start`, say) may use the same shared
//! fixtures without the registry knowing: the binary's own `--list` names them, and no
//! group they might use is planned: a module's groups when a plain test of that module
//! runs, session groups when any plain test runs. When the arguments or the list cannot be
//! read with certainty, nothing is planned and shared fixtures end at process exit, as they
//! always could.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, OnceLock};

use crate::env::Scope;
use crate::env::lifetime::{self, GroupId};
use crate::env::{Case, Env};
use crate::private::{Registered, ShouldPanic, registered};

/// The groups each planned case was counted in, by the case's name.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    by_case: Mutex<HashMap<String, Vec<GroupId>>>,
}

impl Plan {
    /// Counts the case `name` of `test` as one that will run, in the groups `keep` allows.
    fn count(&self, test: &Registered, env: &Env, case: &Case, name: String, keep: impl Fn(&GroupId) -> bool) {
        let groups = count(test, env, case, keep);
        self.by_case.lock().unwrap_or_else(|p| p.into_inner()).insert(name, groups);
    }

    /// The groups the case `name` was counted in (once: a second call gets none).
    pub(crate) fn take(&self, name: &str) -> Vec<GroupId> {
        self.by_case.lock().unwrap_or_else(|p| p.into_inner()).remove(name).unwrap_or_default()
    }
}

/// Counts `case` of `test` as one that will run in each group it needs that `keep` allows;
/// returns the groups it was counted in, for it to hand back when it ends.
pub(crate) fn count(test: &Registered, env: &Env, case: &Case, keep: impl Fn(&GroupId) -> bool) -> Vec<GroupId> {
    lifetime::plan(lifetime::needs(env, test.module, test.requested, case).into_iter().filter(keep))
}

/// The plan under the standard harness, made from the process's arguments on first use.
pub(crate) fn standard() -> &'static Plan {
    static PLAN: OnceLock<Plan> = OnceLock::new();
    PLAN.get_or_init(|| {
        let plan = Plan::default();
        let Some(selection) = Selection::parse(std::env::args().skip(1)) else {
            tracing::debug!("libtest's arguments are not known here; shared fixtures end at exit");
            return plan;
        };
        let tests = registered();
        let Some(plain) = plain_tests(&selection, &tests) else {
            tracing::debug!("the binary's list of tests is not known; shared fixtures end at exit");
            return plan;
        };
        // The modules (`module_path!()`) where a plain test runs; any at all rules out sessions.
        let crate_name = tests.first().map(|t| t.module.split("::").next().unwrap_or_default()).unwrap_or_default();
        let plain_modules: BTreeSet<String> = plain
            .iter()
            .map(|name| match name.rsplit_once("::") {
                Some((module, _)) => format!("{crate_name}::{module}"),
                None => crate_name.to_owned(),
            })
            .collect();
        let keep = |g: &GroupId| match g.scope {
            Scope::Session => plain.is_empty(),
            _ => !plain_modules.contains(&g.module),
        };
        for test in &tests {
            if !selection.runs(&test.path(), test.ignore, test.should_panic != ShouldPanic::No) {
                continue;
            }
            // An environment that cannot be made fails its own tests, and plans nothing.
            let Ok(env) = test.make_env() else { continue };
            let Ok(cases) = env.cases(test.requested) else { continue };
            for case in cases {
                plan.count(test, &env, &case, test.case_name(&case), keep);
            }
        }
        plan
    })
}

/// The plain (not fixture) tests of this binary that `selection` may run, by libtest name;
/// `None` when the binary's list cannot be read.
fn plain_tests(selection: &Selection, tests: &[&'static Registered]) -> Option<Vec<String>> {
    let fixture_tests: BTreeSet<String> = tests.iter().map(|t| t.path()).collect();
    // cargo-nextest's way, `--exact <one fixture test>`: nothing else can run.
    if selection.exact && !selection.filters.is_empty() && selection.filters.iter().all(|f| fixture_tests.contains(f)) {
        return Some(Vec::new());
    }
    let out = std::process::Command::new(std::env::current_exe().ok()?)
        .args(["--list", "--format", "terse"])
        .env_remove(crate::cleanup::WATCHER_VAR)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let list = String::from_utf8(out.stdout).ok()?;
    let listed: Vec<&str> = list.lines().filter_map(|l| l.strip_suffix(": test")).collect();
    if !fixture_tests.iter().all(|t| listed.contains(&t.as_str())) {
        // Not libtest's list of this binary's tests after all.
        return None;
    }
    // Ignored or not, should it panic or not: the list does not say, so count it as running.
    Some(
        listed
            .into_iter()
            .filter(|name| !fixture_tests.contains(*name) && selection.runs(name, selection.ignored, false))
            .map(str::to_owned)
            .collect(),
    )
}

/// What libtest's arguments select.
#[derive(Debug, Default, PartialEq, Eq)]
struct Selection {
    filters: Vec<String>,
    skip: Vec<String>,
    exact: bool,
    ignored: bool,
    include_ignored: bool,
    exclude_should_panic: bool,
}

impl Selection {
    /// Reads libtest's arguments; `None` when one is not known (or nothing will run).
    fn parse(args: impl IntoIterator<Item = String>) -> Option<Selection> {
        const FLAGS: &[&str] =
            &["--nocapture", "--show-output", "-q", "--quiet", "--report-time", "--ensure-time", "--shuffle"];
        const WITH_VALUE: &[&str] = &["--test-threads", "--format", "--color", "--logfile", "-Z", "--shuffle-seed"];
        let mut s = Selection::default();
        let mut args = args.into_iter();
        let mut positional_only = false;
        while let Some(arg) = args.next() {
            if positional_only || !arg.starts_with('-') {
                s.filters.push(arg);
                continue;
            }
            let (key, inline) = match arg.split_once('=') {
                Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                None => (arg.clone(), None),
            };
            match key.as_str() {
                "--" => positional_only = true,
                "--exact" => s.exact = true,
                "--ignored" => s.ignored = true,
                "--include-ignored" => s.include_ignored = true,
                "--exclude-should-panic" => s.exclude_should_panic = true,
                "--skip" => s.skip.push(inline.or_else(|| args.next())?),
                k if FLAGS.contains(&k) => {}
                k if WITH_VALUE.contains(&k) => {
                    if inline.is_none() {
                        args.next()?;
                    }
                }
                // `--list`, `--bench`, `--help` run nothing; anything else is not known here.
                _ => return None,
            }
        }
        Some(s)
    }

    /// Whether libtest runs the test `name`.
    fn runs(&self, name: &str, ignore: bool, should_panic: bool) -> bool {
        let matches = |f: &String| if self.exact { name == f } else { name.contains(f.as_str()) };
        if !self.filters.is_empty() && !self.filters.iter().any(matches) {
            return false;
        }
        if self.skip.iter().any(matches) {
            return false;
        }
        if self.exclude_should_panic && should_panic {
            return false;
        }
        if self.ignored {
            return ignore;
        }
        !ignore || self.include_ignored
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Option<Selection> {
        Selection::parse(args.iter().map(|a| (*a).to_owned()))
    }

    #[test]
    fn libtest_arguments_select_as_libtest_does() {
        let s = parse(&["api", "--test-threads", "4", "--skip=slow", "--nocapture"]).expect("known");
        assert_eq!((s.filters.clone(), s.skip.clone()), (vec!["api".to_owned()], vec!["slow".to_owned()]));
        assert!(s.runs("mod_a::api_server", false, false));
        assert!(!s.runs("mod_a::api_server_slow", false, false), "skipped");
        assert!(!s.runs("mod_a::client", false, false), "not matched");
        assert!(!s.runs("mod_a::api_server", true, false), "ignored");

        let exact = parse(&["--exact", "mod_a::api"]).expect("known");
        assert!(exact.runs("mod_a::api", false, false));
        assert!(!exact.runs("mod_a::api_server", false, false));

        let ignored = parse(&["--ignored"]).expect("known");
        assert!(ignored.runs("t", true, false) && !ignored.runs("t", false, false));
        let all = parse(&["--include-ignored"]).expect("known");
        assert!(all.runs("t", true, false) && all.runs("t", false, false));
        let no_panics = parse(&["--exclude-should-panic"]).expect("known");
        assert!(!no_panics.runs("t", false, true));
        assert!(parse(&["--", "--exact"]).expect("known").runs("x--exact", false, false), "after --, a filter");
        assert!(parse(&[]).expect("known").runs("anything", false, false));
    }

    #[test]
    fn unknown_arguments_plan_nothing() {
        assert_eq!(parse(&["--list"]), None);
        assert_eq!(parse(&["--frobnicate"]), None);
        assert_eq!(parse(&["--skip"]), None, "a value is missing");
    }
}
