//! A test that returns `anyhow::Result`, as most Rust tests do, still shows what went wrong:
//! anyhow prints an error's one line and then its causes, and this library's first cause is
//! the report's details (kind, runtime, container, exit code, hint, the container's last log
//! lines). `Box<dyn Error>` prints this library's own report.

use fixtures::{Env, container};
use test_support::SERVICES_IMAGE;

fn env() -> Env {
    test_support::base_env().with(
        "crashing",
        container().image(SERVICES_IMAGE).command(["exit", "--stderr", "fatal: no config", "--code", "3"]),
    )
}

/// What a test returning `anyhow::Result` prints when `crashing` fails.
async fn failure() -> anyhow::Result<()> {
    let t = env().start("anyhow::crashing").await?;
    let outcome = t.container("crashing").await;
    t.finish().await?;
    outcome?;
    Ok(())
}

#[tokio::test]
async fn anyhow_shows_the_fixture_kind_and_log_tail() {
    let err = failure().await.expect_err("the container exits with 3");
    let shown = format!("{err:?}");
    for part in
        ["fixture `crashing`", "kind: container exited", "exit code: 3", "last log lines:", "| fatal: no config"]
    {
        assert!(shown.contains(part), "`{part}` in what anyhow prints:\n{shown}");
    }
    assert!(shown.contains("runtime: "), "the engine is named:\n{shown}");
}

#[test]
fn anyhow_shows_the_hint() {
    let load = || -> anyhow::Result<Env> { Ok(fixtures::compose::Compose::new("tests/no-such-file.yml").load()?) };
    let shown = format!("{:?}", load().expect_err("no such file"));
    assert!(shown.contains("cannot read compose file `tests/no-such-file.yml`"), "{shown}");
    assert!(
        shown.contains("hint: compose files are read when the environment is declared"),
        "the hint is shown:\n{shown}"
    );
}

#[tokio::test]
async fn a_boxed_error_shows_the_whole_report() {
    let err = failure().await.expect_err("the container exits with 3");
    let fixture_error = err.downcast::<fixtures::Error>().expect("the library's error");
    let boxed: Box<dyn std::error::Error + Send + Sync> = fixture_error.into();
    let shown = format!("{boxed:?}");
    for part in ["fixture `crashing`", "kind: container exited", "| fatal: no config"] {
        assert!(shown.contains(part), "`{part}` in the boxed report:\n{shown}");
    }
}
