//! Declarative container test fixtures.
//!
//! Declare a test environment (images, containers, networks, volumes) once, the
//! way a `docker-compose.yml` does; get it created before each test and torn
//! down after, on Docker or Podman, with nothing leaked and failures that
//! explain themselves.
//!
//! This crate knows no engine: it talks to one through the [`Runtime`] trait,
//! implemented by `fixtures-docker` (and `fixtures-podman`).
//!
//! # Which runtime runs what
//!
//! The library owns one tokio runtime per process ([`executor`]), alive until the process's
//! clean-up at exit is done. Every fixture is made on it, whatever runtime asks: containers
//! and their readiness, and the closures of [`fixture`], [`value_fn`] and
//! [`ContainerNode::ready_when`](env::ContainerNode::ready_when), with their teardowns. Every
//! engine call runs there too. Under `#[fixtures::test]` the test body also runs there,
//! driven from the test's own thread; under `#[tokio::test]` it runs on tokio's runtime for
//! that test, and under the blocking API on the test's thread.
//!
//! So `tokio::spawn` inside a fixture closure puts the task on the library's runtime, in every
//! scope: the task lives until it ends by itself. A client's connection task ends when the
//! client is dropped, which for a function-scoped fixture is when its test has ended (and its
//! teardown run), for a module or session fixture when the process exits (after its teardown).
//! A shared client or pool therefore answers in every test that uses it. A task spawned by a
//! `#[tokio::test]` body is that test's, and ends with its runtime.

#![warn(missing_docs)]

pub mod archive;
pub mod backend;
#[doc(hidden)]
pub mod cleanup;
pub mod config;
pub mod env;
mod error;
pub mod executor;
pub mod handle;
#[cfg(feature = "harness")]
#[doc(hidden)]
pub mod harness;
pub mod labels;
#[doc(hidden)]
pub mod __private {
    pub use crate::private::*;
}
mod plan;
mod private;
pub mod readiness;
pub mod runtime;
pub mod spec;

pub use backend::Backend;
pub use env::{
    BlockingTestEnv, Case, Env, FixtureNode, Resolved, Scope, TestEnv, TestId, Wrapper, alternatives, build, container,
    fetch, fixture, image, image_or_build, network, value, value_fn, volume,
};
pub use error::{BoxError, Error, ErrorKind, Result};
pub use fixtures_macros::{main, test};
pub use handle::{Container, Image, Ips, Network, Ports, Volume};
pub use readiness::{LogSource, Readiness, WaitFor};
pub use runtime::{ContainerInfo, ContainerStatus, ExecOutput, Runtime};

/// The first 12 characters of an id (after any `sha256:`), as engines show them.
pub(crate) fn short_id(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    &id[..id.len().min(12)]
}

/// What `fixtures::main!()` renders: the harness's `main`; the name every fixture test
/// of a `harness = false` file looks for (see the attribute); and a `#[test]` that exists
/// only when libtest's harness compiles the file (rustc drops `#[test]` items otherwise),
/// there to say that this file needs `harness = false`.
#[doc(hidden)]
#[macro_export]
#[cfg(feature = "harness")]
macro_rules! __harness_main {
    ($setup:expr) => {
        #[test]
        fn fixtures_main_needs_harness_false() {
            ::core::compile_error!(
                "`fixtures::main!()` is the harness of a test target with `harness = false`; \
                 set it in Cargo.toml: [[test]] name = \"<this file's name>\" harness = false"
            );
        }
        #[allow(dead_code)]
        fn main() {
            $crate::harness::main($setup)
        }
        #[doc(hidden)]
        #[allow(dead_code)]
        fn this_file_needs_fixtures_main() {}
    };
}

/// Without the `harness` feature there is no harness to render.
#[doc(hidden)]
#[macro_export]
#[cfg(not(feature = "harness"))]
macro_rules! __harness_main {
    ($setup:expr) => {
        ::core::compile_error!("`fixtures::main!()` needs the `harness` feature of `fixtures` (on by default)");
    };
}
