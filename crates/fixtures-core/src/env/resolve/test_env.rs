//! The test environment: a test's identity, its `TestEnv`, and what it holds (its fixtures,
//! containers, ledger, teardowns, the shared groups it holds) until it ends.

use super::*;

/// Which test a [`TestEnv`] is for: its module (for module scope) and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TestId {
    /// Module path (`my_tests::api`).
    pub module: String,
    /// Test name.
    pub name: String,
}

impl TestId {
    /// The test `name` in `module`.
    pub fn new(module: impl Into<String>, name: impl Into<String>) -> Self {
        TestId { module: module.into(), name: name.into() }
    }
}

impl From<&str> for TestId {
    /// `"module::path::name"`, or a bare name in the root module.
    fn from(path: &str) -> Self {
        match path.rsplit_once("::") {
            Some((module, name)) => TestId::new(module, name),
            None => TestId::new("", path),
        }
    }
}

impl From<String> for TestId {
    fn from(path: String) -> Self {
        TestId::from(path.as_str())
    }
}

pub(super) struct TestInner {
    pub(super) env: Arc<Env>,
    pub(super) runtime: Arc<dyn Runtime>,
    pub(super) test: TestId,
    pub(super) case: Case,
    pub(super) memo: Mutex<HashMap<String, Arc<OnceCell<Fixture>>>>,
    pub(super) ledger: Arc<Ledger>,
    pub(super) teardowns: Mutex<Vec<Teardown>>,
    pub(super) containers: Mutex<Vec<Container>>,
    /// Shared fixtures' groups this test uses (see `lifetime`).
    pub(super) held: Mutex<BTreeSet<GroupId>>,
    /// The groups a runner counted this test in.
    pub(super) planned: Mutex<Vec<GroupId>>,
}

/// The fixtures of one test: made on demand, removed when it ends.
///
/// End it with [`TestEnv::finish`]; dropping it also removes its function-scoped
/// fixtures, blocking until they are gone.
#[derive(Clone)]
pub struct TestEnv {
    inner: Arc<TestInner>,
}

impl std::fmt::Debug for TestEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestEnv")
            .field("test", &self.inner.test)
            .field("case", &self.inner.case)
            .finish_non_exhaustive()
    }
}

impl Drop for TestInner {
    /// A test that was not finished (a `TestEnv` dropped, a test future cancelled): its
    /// teardowns and removals run here, blocking (C-DTOR-BLOCK: [`TestEnv::finish`] is the
    /// async way). Failures are logged and printed, never raised.
    fn drop(&mut self) {
        let teardowns = self.take_teardowns();
        let ending = self.leave_groups();
        if !teardowns.is_empty() {
            match crate::executor::block_on_anywhere(crate::env::teardown::run_all(teardowns)) {
                Ok(failures) => {
                    for e in failures {
                        eprintln!("fixtures: a fixture's teardown failed: {e:?}");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "teardowns could not run"),
            }
        }
        self.ledger.teardown_blocking();
        if !ending.is_empty() {
            match crate::executor::block_on_anywhere(ending.run()) {
                Ok(failures) => {
                    for e in failures {
                        eprintln!("fixtures: a shared fixture's teardown failed: {e:?}");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "shared fixtures could not be ended"),
            }
        }
    }
}

impl TestInner {
    /// The test's teardowns, with everything else the test held of their values dropped.
    pub(super) fn take_teardowns(&self) -> Vec<Teardown> {
        let teardowns = std::mem::take(&mut *self.teardowns.lock().unwrap_or_else(|p| p.into_inner()));
        if !teardowns.is_empty() {
            self.memo.lock().unwrap_or_else(|p| p.into_inner()).clear();
        }
        teardowns
    }

    /// Uses the shared fixtures of `group` until the test ends.
    pub(super) fn hold(&self, group: &GroupId) {
        if self.held.lock().unwrap_or_else(|p| p.into_inner()).insert(group.clone()) {
            lifetime::hold(group);
        }
    }

    /// Lets go of the shared fixtures' groups; returns those whose last test this was.
    pub(super) fn leave_groups(&self) -> lifetime::Ending {
        // The test lets go of every fixture it was given first: a group whose last test this
        // is ends now, and its teardowns get their values back only once nobody holds them.
        self.memo.lock().unwrap_or_else(|p| p.into_inner()).clear();
        let held: Vec<GroupId> =
            std::mem::take(&mut *self.held.lock().unwrap_or_else(|p| p.into_inner())).into_iter().collect();
        let planned = std::mem::take(&mut *self.planned.lock().unwrap_or_else(|p| p.into_inner()));
        lifetime::leave(held, planned)
    }

    /// Ends the test: its teardowns (newest first), then its objects (awaited, or handed to
    /// the background remover), then the shared fixtures whose last test it was. Reports
    /// the teardowns' failures.
    pub(super) async fn end(&self, in_background: bool) -> Result<()> {
        let mut failures = crate::env::teardown::run_all(self.take_teardowns()).await;
        let ending = self.leave_groups();
        if in_background && ending.is_empty() {
            self.ledger.teardown_in_background();
        } else {
            // Shared objects go next: this test's own (on their networks, say) must go first.
            self.ledger.teardown().await;
            failures.extend(ending.run().await);
        }
        crate::env::teardown::report(failures)
    }
}

impl TestEnv {
    pub(crate) fn new(env: Arc<Env>, runtime: Arc<dyn Runtime>, test: TestId, case: Case) -> Self {
        TestEnv {
            inner: Arc::new(TestInner {
                env,
                runtime,
                test,
                case,
                memo: Mutex::default(),
                ledger: Arc::default(),
                teardowns: Mutex::default(),
                containers: Mutex::default(),
                held: Mutex::default(),
                planned: Mutex::default(),
            }),
        }
    }

    /// The runtime fixtures are made on.
    pub fn runtime(&self) -> &Arc<dyn Runtime> {
        &self.inner.runtime
    }

    /// The test this is for.
    pub fn test(&self) -> &TestId {
        &self.inner.test
    }

    /// The case of alternatives this test runs.
    pub fn case(&self) -> &Case {
        &self.inner.case
    }

    /// The containers made for this test so far (to show their logs when it fails).
    pub fn containers(&self) -> Vec<Container> {
        self.inner.containers.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The fixture `name`, made (with what it needs) if it is not yet.
    ///
    /// # Errors
    /// When it, or something it needs, cannot be made; the error names the fixture.
    ///
    /// It is made on the library's runtime (see [`crate::executor`]) whatever runtime calls.
    pub(crate) async fn fixture(&self, name: &str) -> Result<Fixture> {
        crate::executor::run(resolve(self.inner.clone(), name.to_owned())).await
    }

    /// The fixture `name` as `T`: `Container`, `Image`, `Network`, `Volume`, a wrapper type,
    /// a custom fixture's type, or for a value `serde_json::Value` or `String`.
    ///
    /// # Errors
    /// When it cannot be made, or is not a `T`.
    pub async fn get<T: Any + Clone>(&self, name: &str) -> Result<T> {
        let f = self.fixture(name).await?;
        f.downcast::<T>().ok_or_else(|| {
            Error::graph(
                name,
                format!("the test asks for `{name}` as `{}`, but it is {}", std::any::type_name::<T>(), f.kind()),
            )
        })
    }

    /// The fixture `name` as a shared `T`: what a test taking `name: &T` gets, for custom
    /// fixtures whose type is not `Clone` (and any other fixture).
    ///
    /// # Errors
    /// When it cannot be made, or is not a `T`.
    pub async fn shared<T: Any + Send + Sync>(&self, name: &str) -> Result<Arc<T>> {
        let f = self.fixture(name).await?;
        f.shared::<T>().ok_or_else(|| {
            Error::graph(
                name,
                format!("the test asks for `{name}` as `{}`, but it is {}", std::any::type_name::<T>(), f.kind()),
            )
        })
    }

    /// The container `name`.
    ///
    /// # Errors
    /// When it cannot be made or is not a container.
    pub async fn container(&self, name: &str) -> Result<Container> {
        self.get(name).await
    }

    /// The image `name`.
    ///
    /// # Errors
    /// When it cannot be made or is not an image.
    pub async fn image(&self, name: &str) -> Result<Image> {
        self.get(name).await
    }

    /// The network `name`.
    ///
    /// # Errors
    /// When it cannot be made or is not a network.
    pub async fn network(&self, name: &str) -> Result<Network> {
        self.get(name).await
    }

    /// The volume `name`.
    ///
    /// # Errors
    /// When it cannot be made or is not a volume.
    pub async fn volume(&self, name: &str) -> Result<Volume> {
        self.get(name).await
    }

    /// Makes all of `names` at once (independent ones concurrently).
    ///
    /// # Errors
    /// The first failure.
    pub async fn prepare(&self, names: &[&str]) -> Result<()> {
        let all: Vec<_> = names.iter().map(|n| resolve(self.inner.clone(), (*n).to_owned())).collect();
        crate::executor::run(async move { try_join_all(all).await.map(drop) }).await
    }

    /// Ends the test: runs its custom fixtures' teardowns (newest first), then removes its
    /// function-scoped objects and waits until they are gone.
    ///
    /// # Errors
    /// [`ErrorKind::Fixture`] or [`ErrorKind::Timeout`] when a teardown failed or did not
    /// finish in time; the objects are removed all the same.
    pub async fn finish(self) -> Result<()> {
        self.inner.end(false).await
    }

    /// Ends the test like [`TestEnv::finish`], but hands the removal of its objects to a
    /// background remover, so it is not part of the test's time. The process waits for the
    /// remover before it exits.
    ///
    /// # Errors
    /// As [`TestEnv::finish`].
    pub async fn finish_in_background(self) -> Result<()> {
        self.inner.end(true).await
    }

    /// Counts this test among the planned users of the shared fixtures it needs (a runner
    /// that planned the whole run calls this; see `lifetime`).
    pub(crate) fn set_planned(&self, groups: Vec<GroupId>) {
        *self.inner.planned.lock().unwrap_or_else(|p| p.into_inner()) = groups;
    }
}

/// The name under which a test gets the runtime itself (`runtime: &Arc<dyn Runtime>`),
/// unless the environment declares a fixture of that name.
pub const RUNTIME_FIXTURE: &str = "runtime";
