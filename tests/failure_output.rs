//! When a test fails, the logs of the containers it used are printed with the failure,
//! each under a header naming its fixture and giving its state (running, exited with code N
//! and when); a passing test prints nothing extra.
//!
//! The example test below fails only when asked to; the checks run it as a subprocess.

use std::process::Command;

use fixtures::{Container, Env, Result, container, image};
use test_support::SERVICES_IMAGE;

fn env() -> Env {
    test_support::base_env()
        .with("services", image(SERVICES_IMAGE))
        .with(
            "noisy",
            container().image("{services.id}").command(["sleep"]).env("STDOUT_LINES", "noisy says hello|second line"),
        )
        .with("quiet", container().image("{services.id}").command(["sleep"]))
        .with("victim", container().image("{services.id}").command(["sleep"]))
}

const FAIL: &str = "FIXTURES_FAIL_ON_PURPOSE";

#[fixtures::test(env = env())]
async fn example_that_fails_on_demand(noisy: &Container, quiet: &Container, victim: &Container) -> Result<()> {
    assert_eq!(noisy.status().await?, "running");
    assert_eq!(quiet.status().await?, "running");
    if std::env::var_os(FAIL).is_some() {
        victim.kill("SIGKILL").await?;
        victim.wait().await?;
    }
    assert!(std::env::var_os(FAIL).is_none(), "failing on purpose");
    Ok(())
}

fn run_example(fail: bool) -> (bool, String) {
    let mut cmd = Command::new(std::env::current_exe().expect("the test binary"));
    cmd.args(["example_that_fails_on_demand", "--exact", "--test-threads=1"]);
    if fail {
        cmd.env(FAIL, "1");
    } else {
        cmd.env_remove(FAIL).arg("--nocapture");
    }
    let out = cmd.output().expect("run the example");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn a_failing_test_prints_the_logs_of_its_containers() {
    let (ok, out) = run_example(true);
    assert!(!ok, "the example failed: {}", test_support::quoted(&out));
    assert!(out.contains("failing on purpose"), "{}", test_support::quoted(&out));
    assert!(out.contains("---- logs of fixture `noisy` (container fx-noisy-"), "{}", test_support::quoted(&out));
    assert!(out.contains("noisy says hello\nsecond line\n"), "{}", test_support::quoted(&out));
    assert!(out.contains("---- logs of fixture `quiet` (container fx-quiet-"), "{}", test_support::quoted(&out));
    assert!(out.contains("(no output)"), "{}", test_support::quoted(&out));
    assert!(out.contains("; running) ----"), "the state of the running ones: {}", test_support::quoted(&out));
    let victim = out.lines().find(|l| l.starts_with("---- logs of fixture `victim`")).unwrap_or_default();
    assert!(
        victim.contains("; exited with code 137 at 20"),
        "the killed one's exit and when: {}",
        test_support::quoted(&out)
    );
}

#[test]
fn a_passing_test_prints_nothing_extra() {
    let (ok, out) = run_example(false);
    assert!(ok, "{}", test_support::quoted(&out));
    assert!(!out.contains("logs of fixture"), "{}", test_support::quoted(&out));
    assert!(out.contains("1 passed"), "{}", test_support::quoted(&out));
}
