//! The engine chosen by configuration, not by code: `Env::new()` offers every backend the
//! crate was built with (here Docker and Podman), and the configuration picks one.
//!
//! Run on Podman: `FIXTURE_RUNTIME=podman cargo test --features podman --example runtime_by_configuration`
//! (images: `cargo xtask images --engine podman`), or put the choice in a `fixtures.toml`
//! beside your Cargo.toml (or in any folder above it):
//!
//! ```toml
//! runtime = "podman"
//! podman_host = "unix:///run/podman/podman.sock"   # else CONTAINER_HOST, else the usual socket
//! ```
//!
//! The `fixtures` dependency needs the `podman` feature: `features = ["podman"]`.

use std::sync::Arc;

use fixtures::{Container, Env, Result, Runtime, container, image};

fn env() -> Env {
    Env::new()
        .with("services", image("fixtures-test/services:latest"))
        .with("web", container().image("{services.id}").command(["http"]).port("8080/tcp"))
}

/// `runtime` is the engine in use, given to any test that asks for it by that name.
#[fixtures::test(env = env())]
async fn the_configured_engine_runs_the_test(web: &Container, runtime: &Arc<dyn Runtime>) -> Result<()> {
    if let Some(wanted) = fixtures::config::current()?.runtime.as_deref() {
        assert_eq!(runtime.name(), wanted, "FIXTURE_RUNTIME or fixtures.toml chose it");
    }
    tokio::net::TcpStream::connect(web.addr("8080/tcp")?).await?;
    Ok(())
}

// The harness: each test above is a test of its own (`harness = false` in Cargo.toml).
fixtures::main!();
