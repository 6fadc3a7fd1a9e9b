//! The library's harness speaks libtest's language: `tests/harness/suite.rs` (designed
//! outcomes) is listed, filtered, run and rerun case by case, with libtest's arguments and
//! with cargo-nextest.

use std::process::Command;

/// Runs the suite with `args`: (exit code, stdout, stderr).
fn suite(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(test_support::test_binary("harness_suite"))
        .args(args)
        .env_remove("NEXTEST_RUN_ID")
        .output()
        .expect("the suite runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Whether the run printed `test <name> ... <verdict>` (names are padded to one width).
fn printed(out: &str, name: &str, verdict: &str) -> bool {
    out.lines().any(|l| {
        l.strip_prefix("test ")
            .and_then(|rest| rest.strip_prefix(name))
            .is_some_and(|rest| rest.trim_start() == format!("... {verdict}"))
    })
}

fn lines_ending(text: &str, suffix: &str) -> Vec<String> {
    text.lines().filter_map(|l| l.strip_suffix(suffix)).map(str::to_owned).collect()
}

const ALL: [&str; 7] = [
    "cases::ignored_unless_asked[size=large]",
    "cases::ignored_unless_asked[size=small]",
    "cases::sized[size=large]",
    "cases::sized[size=small]",
    "logs_on_failure",
    "panics::does_not_panic",
    "panics::panics_as_expected",
];

#[test]
fn each_case_is_listed_by_its_own_name() {
    let (code, out, _) = suite(&["--list"]);
    assert_eq!(code, 0);
    let mut listed = lines_ending(&out, ": test");
    listed.sort();
    let mut expected: Vec<String> = ALL.iter().map(|s| (*s).to_owned()).collect();
    expected.push("panics::panics_with_another_message".to_owned());
    expected.sort();
    assert_eq!(listed, expected, "{out}");
    // What cargo-nextest asks: the terse list, and the ignored ones alone.
    let (_, terse, _) = suite(&["--list", "--format", "terse"]);
    assert_eq!(terse, out);
    let (_, ignored, _) = suite(&["--list", "--format", "terse", "--ignored"]);
    assert_eq!(
        lines_ending(&ignored, ": test"),
        ["cases::ignored_unless_asked[size=large]", "cases::ignored_unless_asked[size=small]"]
    );
}

#[test]
fn a_failing_case_is_reported_and_rerun_under_its_own_name() {
    let (code, out, err) = suite(&["--test-threads=2"]);
    let all = format!("{out}{err}");
    assert_eq!(code, 101, "{}", test_support::quoted(&all));
    assert!(printed(&out, "cases::sized[size=small]", "ok"), "{}", test_support::quoted(&all));
    assert!(printed(&out, "cases::sized[size=large]", "FAILED"), "{}", test_support::quoted(&all));
    assert!(printed(&out, "cases::ignored_unless_asked[size=small]", "ignored"), "{}", test_support::quoted(&all));
    assert!(printed(&out, "panics::panics_as_expected", "ok"), "{}", test_support::quoted(&all));
    assert!(printed(&out, "panics::does_not_panic", "FAILED"), "{}", test_support::quoted(&all));
    assert!(out.contains("the test did not panic, as `#[should_panic]` expects"), "{}", test_support::quoted(&all));
    assert!(
        out.contains("its message does not contain the expected `another message`"),
        "{}",
        test_support::quoted(&all)
    );
    assert!(out.contains("only the small case passes"), "the failure's message: {}", test_support::quoted(&all));
    assert!(
        out.contains("the test panicked at tests/harness/suite.rs:"),
        "where it panicked, in the report: {}",
        test_support::quoted(&all)
    );
    assert!(!err.contains("panicked at"), "panics are reported with their test, not printed: {err}");
    assert!(
        out.contains("3 passed; 3 failed; 2 ignored; 0 measured; 0 filtered out"),
        "{}",
        test_support::quoted(&all)
    );
    assert!(err.contains("setup ran before the tests"), "{}", test_support::quoted(&all));

    // The failing case alone, by its name.
    let (code, out, _) = suite(&["--exact", "cases::sized[size=large]"]);
    assert_eq!(code, 101);
    assert!(out.contains("0 passed; 1 failed; 0 ignored; 0 measured; 7 filtered out"), "{out}");
    // And the rest without it.
    let (code, out, _) = suite(&["cases::", "--skip", "large"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1 passed; 0 failed; 1 ignored; 0 measured; 6 filtered out"), "{out}");
    // Ignored tests run when asked for.
    let (code, out, _) = suite(&["--ignored", "--test-threads", "1", "--nocapture"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("2 passed; 0 failed; 0 ignored; 0 measured; 6 filtered out"), "{out}");
    let (code, out, _) = suite(&["--include-ignored", "cases::ignored"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("2 passed; 0 failed; 0 ignored"), "{out}");
}

#[test]
fn a_failure_reports_its_containers_state_and_logs() {
    let out = Command::new(test_support::test_binary("harness_suite"))
        .args(["--exact", "logs_on_failure"])
        .env("FIXTURES_FAIL_ON_PURPOSE", "1")
        .output()
        .expect("the suite runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{}", test_support::quoted(&text));
    let report = text.split("---- logs_on_failure ----").nth(1).unwrap_or_default();
    assert!(report.contains("failing on purpose"), "under the test's name: {}", test_support::quoted(&text));
    assert!(
        report.contains("---- logs of fixture `noisy` (container fx-noisy-") && report.contains("; running) ----"),
        "{}",
        test_support::quoted(&text)
    );
    assert!(report.contains("noisy says hello\nsecond line\n"), "{}", test_support::quoted(&text));
}

#[test]
fn a_filter_that_matches_nothing_says_so_and_passes() {
    // `cargo test NAME` hands the filter to every test binary: matching nothing is no failure.
    let (code, out, err) = suite(&["cases::sizd"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("0 passed; 0 failed"), "{out}");
    assert!(
        err.contains("note: no test of this binary matches `cases::sizd` (8 tests; the nearest is `cases::sized[size=large]`; `--list` shows them all)"),
        "{err}"
    );
    assert!(!err.contains("setup ran"), "no test, no setup: {err}");
    let (code, _, err) = suite(&["--frobnicate"]);
    assert_eq!(code, 2, "an unknown argument is refused: {err}");
    assert!(err.contains("--frobnicate"), "{err}");
}

#[test]
fn nextest_lists_and_runs_each_case() {
    if !test_support::has(&[test_support::Need::Nextest]) {
        return;
    }
    let out = test_support::cargo()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["nextest", "list"])
        .args(test_support::SUITE)
        .args(["--test", "harness_suite", "--run-ignored", "all"])
        .output()
        .expect("cargo nextest runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}{}", text, String::from_utf8_lossy(&out.stderr));
    for name in ALL {
        assert!(text.lines().any(|l| l.trim_end().ends_with(name)), "nextest lists `{name}`:\n{text}");
    }
    // One case, by its name, in a process of its own.
    let out = test_support::cargo()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["nextest", "run"])
        .args(test_support::SUITE)
        .args(["--test", "harness_suite", "-E", "test(=cases::sized[size=small])"])
        .env_remove("NEXTEST_RUN_ID")
        .output()
        .expect("cargo nextest runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{}", test_support::quoted(&text));
    assert!(text.contains("1 test run: 1 passed"), "{}", test_support::quoted(&text));
}
