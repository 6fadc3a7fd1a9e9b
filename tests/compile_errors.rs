//! Mistakes in setting up the harness are compile errors that say what to do: each file of
//! `compile-fail/` is built (an example behind the `compile-fail` feature) and must fail
//! with its message.

use std::process::Command;

/// Builds the example `name` (as a test when `as_test`): its compiler output.
fn build(name: &str, as_test: bool) -> String {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    if as_test {
        cmd.args(["test", "--no-run"]);
    } else {
        cmd.arg("build");
    }
    let out = cmd
        // The suite's selection and features (nothing of the suite's build is built again), and
        // the feature that makes these examples.
        .args(["--workspace", "--exclude", "fixtures-bench", "--features"])
        .arg(format!("{},fixtures/compile-fail", test_support::TEST_FEATURES))
        .args(["--example", name, "--color", "never"])
        .output()
        .expect("cargo runs");
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "`{name}` must not compile:\n{}", test_support::quoted(&text));
    text
}

/// The compiler's errors, without cargo's own lines.
fn errors(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.starts_with("error") && !l.starts_with("error: could not compile")).collect()
}

#[test]
fn an_unknown_main_argument_is_named() {
    let out = build("unknown_main_argument", false);
    assert_eq!(
        errors(&out),
        [
            "error: unknown argument `threads` to `fixtures::main!`; it takes none, or `setup = <path to a fn()>` to run once before the tests (and `crate = <path>` for a library reached by another path)"
        ],
        "{out}"
    );
    assert!(out.contains("fixtures::main!(threads = 4);"), "the span shows the argument: {out}");
}

#[test]
fn a_fixture_test_that_no_harness_runs_does_not_compile() {
    // `harness = false` (an example is built the same way) and a `main` of its own.
    let out = build("fixture_test_without_main", false);
    assert_eq!(
        errors(&out),
        ["error[E0425]: cannot find value `this_file_needs_fixtures_main` in this scope"],
        "{out}"
    );
    assert!(out.contains("#[fixtures::test(env = Env::new())]"), "the span is the test: {out}");
}

#[test]
fn main_in_a_file_under_libtest_asks_for_harness_false() {
    let out = build("main_under_libtest", true);
    assert_eq!(
        errors(&out),
        [
            "error: `fixtures::main!()` is the harness of a test target with `harness = false`; set it in Cargo.toml: [[test]] name = \"<this file's name>\" harness = false"
        ],
        "{out}"
    );
}
