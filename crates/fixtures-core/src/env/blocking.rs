//! The blocking front, for plain `#[test]` functions: it drives the library's runtime
//! (see [`crate::executor`]) from the test's thread.

use std::any::Any;
use std::future::Future;

use super::{Case, Env, TestEnv, TestId};
use crate::error::Result;
use crate::handle::{Container, Image, Network, Volume};

/// A [`TestEnv`] driven from synchronous code.
#[derive(Debug)]
pub struct BlockingTestEnv {
    env: Option<TestEnv>,
}

impl Env {
    /// [`Env::start`] for a plain `#[test]`: blocks, driving the library's runtime.
    ///
    /// # Errors
    /// [`crate::ErrorKind::Config`] when called inside an async runtime (use [`Env::start`] there),
    /// and the errors of [`Env::start`].
    pub fn start_blocking(&self, test: impl Into<TestId>) -> Result<BlockingTestEnv> {
        self.start_case_blocking(test, Case::default())
    }

    /// [`Env::start_case`] for a plain `#[test]`.
    ///
    /// # Errors
    /// As [`Env::start_blocking`].
    pub fn start_case_blocking(&self, test: impl Into<TestId>, case: Case) -> Result<BlockingTestEnv> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(crate::Error::new(
                crate::ErrorKind::Config,
                "the blocking API was called inside an async runtime",
            )
            .with_hint("in `#[tokio::test]` or other async code, use `env.start(..).await` instead"));
        }
        let env = crate::executor::block_on(self.start_case(test, case))??;
        Ok(BlockingTestEnv { env: Some(env) })
    }
}

impl BlockingTestEnv {
    fn env(&self) -> &TestEnv {
        self.env.as_ref().expect("present until finish")
    }

    /// Runs a future to completion on the library's runtime, e.g. a handle's method:
    /// `t.block_on(c.logs())`.
    ///
    /// # Panics
    /// When the library's runtime cannot start (the system refused its threads).
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        match crate::executor::block_on(future) {
            Ok(out) => out,
            Err(e) => panic!("{e:?}"),
        }
    }

    /// The async environment behind this one.
    pub fn test_env(&self) -> &TestEnv {
        self.env()
    }

    /// See [`TestEnv::get`].
    ///
    /// # Errors
    /// As [`TestEnv::get`].
    pub fn get<T: Any + Clone + Send>(&self, name: &str) -> Result<T> {
        crate::executor::block_on(self.env().get(name))?
    }

    /// See [`TestEnv::shared`].
    ///
    /// # Errors
    /// As [`TestEnv::shared`].
    pub fn shared<T: Any + Send + Sync>(&self, name: &str) -> Result<std::sync::Arc<T>> {
        crate::executor::block_on(self.env().shared(name))?
    }

    /// See [`TestEnv::container`].
    ///
    /// # Errors
    /// As [`TestEnv::container`].
    pub fn container(&self, name: &str) -> Result<Container> {
        self.get(name)
    }

    /// See [`TestEnv::image`].
    ///
    /// # Errors
    /// As [`TestEnv::image`].
    pub fn image(&self, name: &str) -> Result<Image> {
        self.get(name)
    }

    /// See [`TestEnv::network`].
    ///
    /// # Errors
    /// As [`TestEnv::network`].
    pub fn network(&self, name: &str) -> Result<Network> {
        self.get(name)
    }

    /// See [`TestEnv::volume`].
    ///
    /// # Errors
    /// As [`TestEnv::volume`].
    pub fn volume(&self, name: &str) -> Result<Volume> {
        self.get(name)
    }

    /// Runs the teardowns, removes the function-scoped fixtures and waits until they are gone.
    ///
    /// # Errors
    /// As [`TestEnv::finish`].
    pub fn finish(mut self) -> Result<()> {
        match self.env.take() {
            Some(env) => crate::executor::block_on(env.finish())?,
            None => Ok(()),
        }
    }
}
