//! A suite under the library's harness whose outcomes are designed: one case of a
//! parametrised test fails, one test is ignored, and `#[should_panic]` is met once and
//! missed twice. `tests/harness.rs` runs it with libtest's arguments and cargo-nextest and
//! checks what each prints.

use fixtures_core::{Env, Result, alternatives, value};

fixtures_core::main!(setup = announce);

/// Runs once before the first test.
fn announce() {
    eprintln!("setup ran before the tests");
}

fn env() -> Env {
    integration_tests::base_env()
        .with("small", value("small"))
        .with("large", value("large"))
        .with("size", alternatives(["small", "large"]))
}

mod cases {
    use super::*;

    /// Two cases; the `large` one fails.
    #[fixtures_core::test(env = env())]
    async fn sized(size: String) -> Result<()> {
        assert_eq!(size, "small", "only the small case passes");
        Ok(())
    }

    #[fixtures_core::test(env = env())]
    #[ignore = "runs only when asked for"]
    fn ignored_unless_asked(size: String) {
        assert!(!size.is_empty());
    }
}

mod panics {
    use super::*;

    #[fixtures_core::test(env = env())]
    #[should_panic(expected = "boom")]
    fn panics_as_expected() {
        panic!("boom");
    }

    #[fixtures_core::test(env = env())]
    #[should_panic]
    fn does_not_panic() {}

    #[fixtures_core::test(env = env())]
    #[should_panic(expected = "another message")]
    fn panics_with_another_message() {
        panic!("boom");
    }
}
