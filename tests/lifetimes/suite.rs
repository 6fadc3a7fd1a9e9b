//! Three modules of three tests, each test needing its module's container; and a module of
//! two tests that need a session container, run between the second and the third. `tests/lifetimes.rs` runs this suite on one
//! thread, under libtest's harness (`lifetimes_suite`) and the library's
//! (`lifetimes_harness`), and reads the engine's events: a module container is gone before
//! the next module's starts, and the session container is gone once its last test ended.

use std::time::Duration;

use fixtures::{Container, Env, Result, Scope, container, image};
use test_support::SERVICES_IMAGE;

pub(crate) fn env() -> Env {
    test_support::base_env()
        .with("services", image(SERVICES_IMAGE))
        .with("per_module", container().image("{services.id}").command(["sleep"]).scope(Scope::Module))
        .with("per_session", container().image("{services.id}").command(["sleep"]).scope(Scope::Session))
}

/// Each test holds its container a little while, so that overlaps would show in the events.
pub(crate) async fn uses(c: &Container) -> Result<()> {
    assert_eq!(c.status().await?, "running");
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(())
}

macro_rules! module {
    ($module:ident, $($test:ident),*) => {
        mod $module {
            use fixtures::{Container, Result};
            $(
                #[fixtures::test(env = super::env())]
                async fn $test(per_module: &Container) -> Result<()> {
                    super::uses(per_module).await
                }
            )*
        }
    };
}

module!(alpha, one, two, three);
module!(beta, one, two, three);
module!(gamma, one, two, three);

/// The session container's only users; by name, this module runs after `beta` and before
/// `gamma`, so the container must be gone before `gamma`'s tests start.
mod between {
    use fixtures::{Container, Result};

    #[fixtures::test(env = super::env())]
    async fn first(per_session: &Container) -> Result<()> {
        super::uses(per_session).await
    }

    #[fixtures::test(env = super::env())]
    async fn second(per_session: &Container) -> Result<()> {
        super::uses(per_session).await
    }
}
