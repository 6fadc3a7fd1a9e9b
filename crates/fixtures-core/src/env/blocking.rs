//! The blocking front, for plain `#[test]` functions: it owns its async runtime.

use std::any::Any;
use std::future::Future;

use super::{Case, Env, TestEnv, TestId};
use crate::error::{Error, ErrorKind, Result};
use crate::handle::{Container, Image, Network, Volume};

/// A [`TestEnv`] driven from synchronous code.
#[derive(Debug)]
pub struct BlockingTestEnv {
    // Declared first: dropped (and torn down) while the runtime still exists.
    env: Option<TestEnv>,
    rt: tokio::runtime::Runtime,
}

impl Env {
    /// [`Env::start`] for a plain `#[test]`: owns an async runtime and blocks.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when called inside an async runtime (use [`Env::start`] there),
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
            return Err(Error::new(ErrorKind::Config, "the blocking API was called inside an async runtime")
                .with_hint("in `#[tokio::test]` or other async code, use `env.start(..).await` instead"));
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Error::new(ErrorKind::Io, "cannot start an async runtime").with_source(e))?;
        let env = rt.block_on(self.start_case(test, case))?;
        Ok(BlockingTestEnv { env: Some(env), rt })
    }
}

impl BlockingTestEnv {
    fn env(&self) -> &TestEnv {
        self.env.as_ref().expect("present until finish")
    }

    /// Runs a future to completion, e.g. a handle's method: `t.block_on(c.logs())`.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.rt.block_on(future)
    }

    /// The async environment behind this one.
    pub fn test_env(&self) -> &TestEnv {
        self.env()
    }

    /// See [`TestEnv::get`].
    ///
    /// # Errors
    /// As [`TestEnv::get`].
    pub fn get<T: Any + Clone>(&self, name: &str) -> Result<T> {
        self.rt.block_on(self.env().get(name))
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

    /// Removes the function-scoped fixtures and waits until they are gone.
    pub fn finish(mut self) {
        if let Some(env) = self.env.take() {
            self.rt.block_on(env.finish());
        }
    }
}
