//! A suite under the library's harness whose outcomes are designed: one case of a
//! parametrised test fails, one test is ignored, `#[should_panic]` is met once and missed
//! twice, and a test with a container fails when asked to. `tests/harness.rs` runs it with libtest's arguments and cargo-nextest and
//! checks what each prints.

use fixtures::{Container, Env, Result, alternatives, container, image, value};
use test_support::SERVICES_IMAGE;

fixtures::main!(setup = announce);

/// Runs once before the first test.
fn announce() {
    eprintln!("setup ran before the tests");
}

fn env() -> Env {
    test_support::base_env()
        .with("small", value("small"))
        .with("large", value("large"))
        .with("size", alternatives(["small", "large"]))
        .with("services", image(SERVICES_IMAGE))
        .with(
            "noisy",
            container().image("{services.id}").command(["sleep"]).env("STDOUT_LINES", "noisy says hello|second line"),
        )
}

/// Fails only when asked to (`FIXTURES_FAIL_ON_PURPOSE`): its report has the container's logs.
#[fixtures::test(env = env())]
async fn logs_on_failure(noisy: &Container) -> Result<()> {
    assert_eq!(noisy.status().await?, "running");
    assert!(std::env::var_os("FIXTURES_FAIL_ON_PURPOSE").is_none(), "failing on purpose");
    Ok(())
}

mod cases {
    use super::*;

    /// Two cases; the `large` one fails.
    #[fixtures::test(env = env())]
    async fn sized(size: String) -> Result<()> {
        assert_eq!(size, "small", "only the small case passes");
        Ok(())
    }

    #[fixtures::test(env = env())]
    #[ignore = "runs only when asked for"]
    fn ignored_unless_asked(size: String) {
        assert!(!size.is_empty());
    }
}

mod panics {
    use super::*;

    #[fixtures::test(env = env())]
    #[should_panic(expected = "boom")]
    fn panics_as_expected() {
        panic!("boom");
    }

    #[fixtures::test(env = env())]
    #[should_panic]
    fn does_not_panic() {}

    #[fixtures::test(env = env())]
    #[should_panic(expected = "another message")]
    fn panics_with_another_message() {
        panic!("boom");
    }
}
