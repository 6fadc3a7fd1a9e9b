#![doc = include_str!("guide.md")]
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `docker` | yes | the Docker backend (the Docker Engine API; also reaches Podman's Docker-compatible API) |
//! | `buildkit` | yes | image builds through BuildKit on Docker, several times faster cold; off, the classic builder and a leaner build |
//! | `podman` | no | the Podman backend (libpod's own API) |
//! | `harness` | yes | [`main!`], the harness for `harness = false` test targets: one test per case |
//! | `compose` | no | `compose`: docker-compose files as environments (`fixtures-compose`; needs Rust 1.89) |
#![warn(missing_docs)]

pub use fixtures_core::*;

/// docker-compose files as environments (`fixtures-compose`).
#[cfg(feature = "compose")]
pub use fixtures_compose as compose;
/// The Docker backend (`fixtures-docker`).
#[cfg(feature = "docker")]
pub use fixtures_docker as docker;
/// The Podman backend (`fixtures-podman`).
#[cfg(feature = "podman")]
pub use fixtures_podman as podman;
