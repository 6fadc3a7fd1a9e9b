//! Declarative container test fixtures.
//!
//! Declare a test environment (images, containers, networks, volumes) once, the way a
//! `docker-compose.yml` does; each test gets what it asks for created and ready before it
//! starts and removed after it ends, on Docker or Podman, in parallel, with nothing leaked and
//! failures that explain themselves.
//!
//! ```no_run
//! use fixtures::{Container, Env, Result, build, container};
//!
//! fn env() -> Env {
//!     Env::new()
//!         .with("api_image", build().path("examples/resolver-service/api"))
//!         .with("api", container().image("{api_image.id}").port("8080/tcp"))
//! }
//!
//! #[fixtures::test(env = env())]
//! async fn api_answers(api: &Container) -> Result<()> {
//!     tokio::net::TcpStream::connect(api.addr("8080/tcp")?).await?;
//!     Ok(())
//! }
//! # fn main() {}
//! ```
//!
//! `Env::new()` uses every engine backend this crate was built with, by its features:
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `docker` | yes | the Docker backend (the Docker Engine API; also reaches Podman's Docker-compatible API) |
//! | `buildkit` | yes | image builds through BuildKit on Docker, several times faster cold; off, the classic builder and a leaner build |
//! | `podman` | no | the Podman backend (libpod's own API) |
//! | `harness` | yes | `fixtures::main!()`, the harness for `harness = false` test targets: one test per case |
//!
//! `FIXTURE_RUNTIME=docker|podman` (or `runtime` in `fixtures.toml`) picks one; without it, the
//! first that answers. [`Env::backend`] lists backends by hand, for a custom [`Runtime`].
//!
//! Everything else is [`fixtures_core`]'s, re-exported here: see the README for the whole
//! guide.

pub use fixtures_core::*;

/// The Docker backend (`fixtures-docker`).
#[cfg(feature = "docker")]
pub use fixtures_docker as docker;
/// The Podman backend (`fixtures-podman`).
#[cfg(feature = "podman")]
pub use fixtures_podman as podman;
