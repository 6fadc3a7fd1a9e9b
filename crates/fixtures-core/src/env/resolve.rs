//! Resolving fixtures for one test: create what is asked for and what it needs,
//! concurrently where nothing orders them, sharing module and session fixtures.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use futures_util::future::{BoxFuture, try_join_all};
use serde_json::Value;
use tokio::sync::OnceCell;

use super::ledger::{Ledger, Owned};
use super::lifetime::{self, GroupId};
use super::node::{self, ImageSource, Node, Scope};
use super::teardown::Teardown;
use super::template::{Part, Reference, Segment, Template};
use super::{Case, Env};
use crate::archive;
use crate::error::{Error, ErrorKind, Result};
use crate::handle::{Container, Image, Network, Volume};
use crate::labels;
use crate::readiness::Readiness;
use crate::runtime::Runtime;
use crate::spec::{BuildContext, BuildSpec, ContainerSpec, Labels, Mount};

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

/// A fixture, made.
#[derive(Clone)]
#[non_exhaustive]
pub enum Fixture {
    /// An image.
    Image(Image),
    /// A container, and its wrapper if it has one.
    Container(Container, Option<Arc<dyn Any + Send + Sync>>),
    /// A network.
    Network(Network),
    /// A volume.
    Volume(Volume),
    /// A value.
    Value(Value),
    /// A custom fixture.
    Custom(Arc<dyn Any + Send + Sync>),
}

impl std::fmt::Debug for Fixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fixture::Image(i) => f.debug_tuple("Image").field(&i.id()).finish(),
            Fixture::Container(c, _) => f.debug_tuple("Container").field(&c.name()).finish(),
            Fixture::Network(n) => f.debug_tuple("Network").field(&n.name()).finish(),
            Fixture::Volume(v) => f.debug_tuple("Volume").field(&v.name()).finish(),
            Fixture::Value(v) => f.debug_tuple("Value").field(v).finish(),
            Fixture::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

impl Fixture {
    fn kind(&self) -> &'static str {
        match self {
            Fixture::Image(_) => "an image",
            Fixture::Container(..) => "a container",
            Fixture::Network(_) => "a network",
            Fixture::Volume(_) => "a volume",
            Fixture::Value(_) => "a value",
            Fixture::Custom(_) => "a custom fixture",
        }
    }

    /// The fixture as `T`: a handle type (`Container`, `Image`, `Network`, `Volume`), a
    /// container's wrapper type, a custom fixture's type, or for values `serde_json::Value`,
    /// `String` or any type that deserialises from it.
    fn downcast<T: Any + Clone>(&self) -> Option<T> {
        let any: &dyn Any = match self {
            Fixture::Image(i) => i,
            Fixture::Container(c, wrapper) => {
                if let Some(w) = wrapper.as_ref().and_then(|w| w.downcast_ref::<T>()) {
                    return Some(w.clone());
                }
                c
            }
            Fixture::Network(n) => n,
            Fixture::Volume(v) => v,
            Fixture::Value(v) => {
                if let Some(t) = (v as &dyn Any).downcast_ref::<T>() {
                    return Some(t.clone());
                }
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                return (&text as &dyn Any).downcast_ref::<T>().cloned();
            }
            Fixture::Custom(c) => return c.downcast_ref::<T>().cloned(),
        };
        any.downcast_ref::<T>().cloned()
    }
}

impl Fixture {
    /// The fixture as a shared `T`, for types that need not be `Clone` (taken as `&T`).
    fn shared<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        let any: Arc<dyn Any + Send + Sync> = match self {
            Fixture::Custom(c) => c.clone(),
            Fixture::Container(c, wrapper) => match wrapper.clone().map(Arc::downcast::<T>) {
                Some(Ok(w)) => return Some(w),
                _ => Arc::new(c.clone()),
            },
            Fixture::Image(i) => Arc::new(i.clone()),
            Fixture::Network(n) => Arc::new(n.clone()),
            Fixture::Volume(v) => Arc::new(v.clone()),
            Fixture::Value(v) => {
                if let Ok(v) = (Arc::new(v.clone()) as Arc<dyn Any + Send + Sync>).downcast::<T>() {
                    return Some(v);
                }
                Arc::new(match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
            }
        };
        any.downcast::<T>().ok()
    }
}

/// The fixtures a closure asked for, made.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    fixtures: BTreeMap<String, Fixture>,
}

impl Resolved {
    /// The fixture `name`, if it was made for this closure or template.
    pub(crate) fn fixture(&self, name: &str) -> Option<&Fixture> {
        self.fixtures.get(name)
    }

    fn get(&self, name: &str) -> Result<&Fixture> {
        self.fixtures.get(name).ok_or_else(|| {
            Error::graph(name, format!("`{name}` was not declared as needed; add it to the closure's list of needs"))
        })
    }

    fn typed<T: Any + Clone>(&self, name: &str) -> Result<T> {
        let f = self.get(name)?;
        f.downcast::<T>().ok_or_else(|| {
            Error::graph(name, format!("`{name}` is {}, not a `{}`", f.kind(), std::any::type_name::<T>()))
        })
    }

    /// The container `name`.
    ///
    /// # Errors
    /// When it was not declared as needed or is not a container.
    pub fn container(&self, name: &str) -> Result<Container> {
        self.typed(name)
    }

    /// The image `name`.
    ///
    /// # Errors
    /// When it was not declared as needed or is not an image.
    pub fn image(&self, name: &str) -> Result<Image> {
        self.typed(name)
    }

    /// The network `name`.
    ///
    /// # Errors
    /// When it was not declared as needed or is not a network.
    pub fn network(&self, name: &str) -> Result<Network> {
        self.typed(name)
    }

    /// The volume `name`.
    ///
    /// # Errors
    /// When it was not declared as needed or is not a volume.
    pub fn volume(&self, name: &str) -> Result<Volume> {
        self.typed(name)
    }

    /// The value `name`.
    ///
    /// # Errors
    /// When it was not declared as needed or is not a value.
    pub fn value(&self, name: &str) -> Result<Value> {
        self.typed(name)
    }

    /// The fixture `name` as `T` (a handle, a wrapper, a custom fixture's type).
    ///
    /// # Errors
    /// When it was not declared as needed or is not a `T`.
    pub fn get_as<T: Any + Clone>(&self, name: &str) -> Result<T> {
        self.typed(name)
    }

    /// The fixture `name` as a shared `T`, for a custom fixture whose type is not `Clone`.
    ///
    /// # Errors
    /// When it was not declared as needed or is not a `T`.
    pub fn shared<T: Any + Send + Sync>(&self, name: &str) -> Result<Arc<T>> {
        let f = self.get(name)?;
        f.shared::<T>().ok_or_else(|| {
            Error::graph(name, format!("`{name}` is {}, not a `{}`", f.kind(), std::any::type_name::<T>()))
        })
    }
}

/// Fixtures shared across tests of this process, by scope key.
static SHARED: LazyLock<Mutex<HashMap<String, Arc<OnceCell<Fixture>>>>> = LazyLock::new(Default::default);

/// Lets go of a shared fixture (its teardown is about to run).
pub(crate) fn forget_shared(key: &str) {
    SHARED.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
}

/// Identifies this process's objects: names made here are unique across processes.
static PROCESS_ID: LazyLock<String> = LazyLock::new(|| {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    format!("{:x}{:04x}", std::process::id(), (nanos & 0xffff) as u16)
});
static COUNTER: AtomicU64 = AtomicU64::new(0);

fn unique_name(node: &str) -> String {
    let node: String =
        node.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')).take(40).collect();
    format!("fx-{node}-{}-{}", *PROCESS_ID, COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Whether reuse mode is on.
fn reuse_mode() -> bool {
    crate::config::current().is_ok_and(|c| c.reuse)
}

/// The name of a session object: the same in every process of the run, so that they share it.
fn shared_name(node: &str, sig: &str) -> String {
    let node: String =
        node.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')).take(40).collect();
    format!("fx-{node}-{}-{}", *crate::cleanup::RUN, &sig[..sig.len().min(10)])
}

/// A private IPv6 /64 derived from a (unique) network name, so that networks do not overlap.
fn ula_subnet(name: &str) -> String {
    let h = signature("subnet", &name);
    format!("fd{}:{}:{}::/64", &h[0..2], &h[2..6], &h[6..10])
}

/// FNV-1a of a spec's debug form: equal specs, equal signatures.
fn signature(kind: &str, spec: &impl std::fmt::Debug) -> String {
    let text = format!("{kind}:{spec:?}");
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

fn our_labels(node: &str, scope: Scope, sig: &str) -> Labels {
    let mut l = Labels::new();
    l.insert(labels::MANAGED.to_owned(), "true".to_owned());
    l.insert(labels::RUN.to_owned(), crate::cleanup::RUN.clone());
    l.insert(labels::NODE.to_owned(), node.to_owned());
    l.insert(labels::SCOPE.to_owned(), scope.as_str().to_owned());
    l.insert(labels::SIGNATURE.to_owned(), sig.to_owned());
    let owner = if scope == Scope::Session { crate::cleanup::run_owner() } else { crate::cleanup::OWNER.clone() };
    l.insert(labels::OWNER.to_owned(), owner);
    l
}

/// The text a reference stands for.
fn lookup(fixture: &Fixture, reference: &Reference, all: &Resolved) -> std::result::Result<String, String> {
    let path = reference.path.as_slice();
    let table = match fixture {
        Fixture::Image(_) => super::attributes::IMAGE,
        Fixture::Network(_) => super::attributes::NETWORK,
        Fixture::Volume(_) => super::attributes::VOLUME,
        Fixture::Container(..) => super::attributes::CONTAINER,
        Fixture::Value(v) => {
            let mut at = v;
            for seg in path {
                let key = match seg {
                    Segment::Attr(a) | Segment::Key(a) => a,
                };
                at = match at {
                    Value::Object(m) => m.get(key).ok_or_else(|| format!("the value has no field `{key}`"))?,
                    Value::Array(a) => key
                        .parse::<usize>()
                        .ok()
                        .and_then(|i| a.get(i))
                        .ok_or_else(|| format!("the value has no item `{key}`"))?,
                    _ => return Err(format!("the value has no field `{key}`")),
                };
            }
            return Ok(match at {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
        }
        Fixture::Custom(_) => return Err("a custom fixture cannot be used in a template".to_owned()),
    };
    super::attributes::get(table, fixture, reference, all)
}

/// Renders `text` with `resolved` fixtures.
fn render(text: &str, resolved: &Resolved) -> Result<String> {
    let template = Template::parse(text).map_err(|e| Error::new(ErrorKind::Graph, format!("template {e}")))?;
    let mut out = String::new();
    for part in &template.parts {
        match part {
            Part::Literal(l) => out.push_str(l),
            Part::Ref(r) => {
                let fixture = resolved.get(&r.node)?;
                let text = lookup(fixture, r, resolved)
                    .map_err(|m| Error::new(ErrorKind::Graph, format!("`{{{r}}}`: {m}")))?;
                out.push_str(&text);
            }
        }
    }
    Ok(out)
}

struct TestInner {
    env: Arc<Env>,
    runtime: Arc<dyn Runtime>,
    test: TestId,
    case: Case,
    memo: Mutex<HashMap<String, Arc<OnceCell<Fixture>>>>,
    ledger: Arc<Ledger>,
    teardowns: Mutex<Vec<Teardown>>,
    containers: Mutex<Vec<Container>>,
    /// Shared fixtures' groups this test uses (see `lifetime`).
    held: Mutex<BTreeSet<GroupId>>,
    /// The groups a runner counted this test in.
    planned: Mutex<Vec<GroupId>>,
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
            match crate::executor::block_on_anywhere(super::teardown::run_all(teardowns)) {
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
    fn take_teardowns(&self) -> Vec<Teardown> {
        let teardowns = std::mem::take(&mut *self.teardowns.lock().unwrap_or_else(|p| p.into_inner()));
        if !teardowns.is_empty() {
            self.memo.lock().unwrap_or_else(|p| p.into_inner()).clear();
        }
        teardowns
    }

    /// Uses the shared fixtures of `group` until the test ends.
    fn hold(&self, group: &GroupId) {
        if self.held.lock().unwrap_or_else(|p| p.into_inner()).insert(group.clone()) {
            lifetime::hold(group);
        }
    }

    /// Lets go of the shared fixtures' groups; returns those whose last test this was.
    fn leave_groups(&self) -> lifetime::Ending {
        let held: Vec<GroupId> =
            std::mem::take(&mut *self.held.lock().unwrap_or_else(|p| p.into_inner())).into_iter().collect();
        let planned = std::mem::take(&mut *self.planned.lock().unwrap_or_else(|p| p.into_inner()));
        lifetime::leave(held, planned)
    }

    /// Ends the test: its teardowns (newest first), then its objects (awaited, or handed to
    /// the background remover), then the shared fixtures whose last test it was. Reports
    /// the teardowns' failures.
    async fn end(&self, in_background: bool) -> Result<()> {
        let mut failures = super::teardown::run_all(self.take_teardowns()).await;
        let ending = self.leave_groups();
        if in_background && ending.is_empty() {
            self.ledger.teardown_in_background();
        } else {
            // Shared objects go next: this test's own (on their networks, say) must go first.
            self.ledger.teardown().await;
            failures.extend(ending.run().await);
        }
        super::teardown::report(failures)
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
    pub async fn fixture(&self, name: &str) -> Result<Fixture> {
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

fn resolve(t: Arc<TestInner>, name: String) -> BoxFuture<'static, Result<Fixture>> {
    Box::pin(async move {
        if name == RUNTIME_FIXTURE && t.env.node(&name).is_none() {
            return Ok(Fixture::Custom(Arc::new(t.runtime.clone())));
        }
        let cell = t.memo.lock().unwrap_or_else(|p| p.into_inner()).entry(name.clone()).or_default().clone();
        cell.get_or_try_init(|| make(t.clone(), name.clone())).await.cloned()
    })
}

async fn make(t: Arc<TestInner>, name: String) -> Result<Fixture> {
    let node = t.env.node(&name).cloned().ok_or_else(|| {
        let known: Vec<&str> = t.env.names().collect();
        Error::graph(&name, format!("unknown fixture `{name}` (known: {})", known.join(", ")))
    })?;
    if let Node::Alternatives(names) = &node {
        let choice = t.case.choices.get(&name).cloned().ok_or_else(|| {
            Error::graph(&name, format!(
                "`{name}` stands for one of [{}]; run the test once per case (Env::cases, or the #[fixtures::test] attribute)",
                names.join(", ")
            ))
        })?;
        return resolve(t.clone(), choice).await;
    }
    let deps = node::dedup(t.env.dependencies(&name)?.into_iter().map(|(d, _)| d));
    let made = try_join_all(deps.iter().map(|d| resolve(t.clone(), d.clone()))).await?;
    let resolved = Resolved { fixtures: deps.into_iter().zip(made).collect() };
    let span = tracing::info_span!("fixture", fixture = %name, test = %t.test.name);
    let result = tracing::Instrument::instrument(make_node(&t, &name, &node, resolved), span).await;
    let fixture = result.map_err(|e| e.with_fixture(name.clone()).with_runtime(t.runtime.name()))?;
    if let Fixture::Container(c, _) = &fixture {
        t.containers.lock().unwrap_or_else(|p| p.into_inner()).push(c.clone());
    }
    Ok(fixture)
}

/// The key a module or session fixture is shared under; none for function scope.
fn scope_key(t: &TestInner, name: &str, scope: Scope, sig: &str) -> Option<String> {
    match scope {
        Scope::Function => None,
        Scope::Module => Some(format!("module|{}|{}|{name}|{sig}", t.runtime.name(), t.test.module)),
        Scope::Session => Some(format!("session|{}|{name}|{sig}", t.runtime.name())),
    }
}

/// Makes a shared fixture once per scope key, or a function one for this test.
async fn scoped<F>(
    t: &TestInner,
    name: &str,
    scope: Scope,
    group: Option<&GroupId>,
    sig: &str,
    make: F,
) -> Result<Fixture>
where
    F: std::future::Future<Output = Result<Fixture>>,
{
    let Some(key) = scope_key(t, name, scope, sig) else { return make.await };
    if let Some(group) = group {
        t.hold(group);
    }
    let cell = SHARED.lock().unwrap_or_else(|p| p.into_inner()).entry(key.clone()).or_default().clone();
    cell.get_or_try_init(|| async {
        if let Some(group) = group {
            lifetime::add_key(group, key);
        }
        make.await
    })
    .await
    .cloned()
}

/// Who removes an object of fixture `name`: the test (function scope), or its group (see
/// `lifetime`), except a session object of a run shared by several processes: the run's
/// last process removes those, finding them by label, and their ledger is a throwaway.
fn ledger_for(t: &TestInner, scope: Scope, group: Option<&GroupId>) -> Arc<Ledger> {
    super::ledger::exit_hook();
    if scope == Scope::Function {
        return t.ledger.clone();
    }
    match group {
        Some(_) if scope == Scope::Session && crate::cleanup::shared_run() => Arc::new(Ledger::default()),
        Some(group) => lifetime::ledger(group),
        None => Arc::new(Ledger::default()),
    }
}

async fn make_node(t: &TestInner, name: &str, node: &Node, resolved: Resolved) -> Result<Fixture> {
    if crate::cleanup::stopping() {
        return Err(Error::new(ErrorKind::Config, "the test process is being interrupted; nothing new is created"));
    }
    let scope = node.scope();
    // Which group a shared fixture belongs to (see `lifetime`), worked out once.
    let group = lifetime::group_of(&t.env, &t.test.module, name, &t.case);
    match node {
        Node::Value(v) => match (&v.value, &v.compute) {
            (Some(value), _) => Ok(Fixture::Value(value.clone())),
            (None, Some((_, f))) => f(&resolved).map(Fixture::Value),
            (None, None) => Ok(Fixture::Value(Value::Null)),
        },
        Node::Custom(c) => {
            let sig = format!("custom-{}", c.type_name);
            let make = (c.make)(resolved);
            let key = scope_key(t, name, scope, &sig);
            let teardown = |value: &Arc<dyn Any + Send + Sync>, shared_key: Option<String>| {
                c.teardown.clone().map(|run| Teardown {
                    fixture: name.to_owned(),
                    scope,
                    value: value.clone(),
                    run,
                    timeout: c.teardown_timeout,
                    shared_key,
                })
            };
            let made = scoped(t, name, scope, group.as_ref(), &sig, async {
                let value = make.await?;
                // A shared fixture's teardown is kept once, by the process, when it is made.
                if let Some(kept) = key.as_ref().and_then(|k| teardown(&value, Some(k.clone()))) {
                    match &group {
                        Some(group) => lifetime::keep_teardown(group, kept),
                        None => t.teardowns.lock().unwrap_or_else(|p| p.into_inner()).push(kept),
                    }
                }
                Ok(Fixture::Custom(value))
            })
            .await?;
            if let (None, Fixture::Custom(value)) = (&key, &made) {
                if let Some(teardown) = teardown(value, None) {
                    t.teardowns.lock().unwrap_or_else(|p| p.into_inner()).push(teardown);
                }
            }
            Ok(made)
        }
        Node::Image(i) => {
            let source = render_image(&i.source, &resolved)?;
            let sig = signature("image", &source);
            scoped(
                t,
                name,
                scope,
                group.as_ref(),
                &sig,
                make_image(t.runtime.clone(), name.to_owned(), source, sig.clone()),
            )
            .await
        }
        Node::Network(n) => {
            let mut spec = n.spec.clone();
            let sig = signature("network", &spec);
            let fixed_name = !spec.name.is_empty();
            if spec.name.is_empty() {
                spec.name = if scope == Scope::Session { shared_name(name, &sig) } else { unique_name(name) };
            }
            if spec.enable_ipv6 && !spec.subnets.iter().any(|s| s.contains(':')) {
                spec.subnets.push(ula_subnet(&spec.name));
            }
            spec.labels.extend(our_labels(name, scope, &sig));
            let reusing = reuse_mode();
            if reusing {
                spec.name = super::reuse::required_name(name, "network", fixed_name.then_some(spec.name.as_str()))?;
                super::reuse::mark(&mut spec.labels);
            }
            let ledger = if reusing { Arc::new(Ledger::default()) } else { ledger_for(t, scope, group.as_ref()) };
            let runtime = t.runtime.clone();
            let share = scope == Scope::Session && !fixed_name;
            let key = sig.clone();
            scoped(t, name, scope, group.as_ref(), &key, async move {
                if reusing {
                    if let super::reuse::Found::Current(id) = super::reuse::network(&runtime, &spec, &sig).await? {
                        return Ok(Fixture::Network(Network::new(spec.name, id)));
                    }
                }
                let id = match runtime.create_network(&spec).await {
                    Ok(id) => id,
                    // Another process of the run made it first.
                    Err(e) if share && e.kind() == ErrorKind::Conflict => runtime.inspect_network(&spec.name).await?.id,
                    Err(e) => return Err(e),
                };
                ledger.push(&runtime, Owned::Network(id.clone()));
                tracing::info!(network = %spec.name, "created network");
                Ok(Fixture::Network(Network::new(spec.name, id)))
            })
            .await
        }
        Node::Volume(v) => {
            let mut spec = v.spec.clone();
            let sig = signature("volume", &(&spec, &v.initial_content));
            let reusing = reuse_mode();
            if reusing {
                spec.name = super::reuse::required_name(name, "volume", Some(spec.name.as_str()))?;
            }
            let share = scope == Scope::Session && spec.name.is_empty();
            if spec.name.is_empty() {
                spec.name = if share { shared_name(name, &sig) } else { unique_name(name) };
            }
            spec.labels.extend(our_labels(name, scope, &sig));
            if reusing {
                super::reuse::mark(&mut spec.labels);
            }
            // Refuse bad paths before anything exists.
            let seed = if v.initial_content.is_empty() { None } else { Some(archive::build_tar(&v.initial_content)?) };
            let ledger = if reusing { Arc::new(Ledger::default()) } else { ledger_for(t, scope, group.as_ref()) };
            let runtime = t.runtime.clone();
            let key = sig.clone();
            scoped(t, name, scope, group.as_ref(), &key, async move {
                if reusing {
                    if let super::reuse::Found::Current(name) = super::reuse::volume(&runtime, &spec, &sig).await? {
                        return Ok(Fixture::Volume(Volume::new(name)));
                    }
                }
                // Another process of the run may have made (and seeded) it already.
                let existed = share && runtime.inspect_volume(&spec.name).await.is_ok();
                if !existed {
                    runtime.create_volume(&spec).await?;
                }
                ledger.push(&runtime, Owned::Volume(spec.name.clone()));
                if let (Some(tar), false) = (seed, existed) {
                    seed_volume(&runtime, &ledger, &spec.name, tar).await?;
                }
                tracing::info!(volume = %spec.name, "created volume");
                Ok(Fixture::Volume(Volume::new(spec.name)))
            })
            .await
        }
        Node::Container(c) => {
            let mut spec = c.spec.clone();
            node::container_strings(&mut spec, &mut |s| {
                *s = render(s, &resolved)?;
                Ok(())
            })?;
            for (_, configure) in &c.configure {
                configure(&mut spec, &resolved)?;
            }
            let sig = signature("container", &(&spec, c.wrapper.as_ref().map(|w| w.0)));
            let reusing = reuse_mode();
            if reusing {
                spec.name = Some(super::reuse::required_name(name, "container", spec.name.as_deref())?);
            }
            let share = scope == Scope::Session && spec.name.is_none();
            if spec.name.is_none() {
                spec.name = Some(if share { shared_name(name, &sig) } else { unique_name(name) });
            }
            spec.labels.extend(our_labels(name, scope, &sig));
            if reusing {
                super::reuse::mark(&mut spec.labels);
            }
            let readiness = Readiness {
                timeout: c.timeout.unwrap_or_else(crate::readiness::default_timeout),
                ports: c.ports_ready,
                expose: spec.expose.clone(),
                wait_for: c.wait_for.clone(),
                min_uptime: c.min_uptime,
            };
            let ledger = if reusing { Arc::new(Ledger::default()) } else { ledger_for(t, scope, group.as_ref()) };
            let runtime = t.runtime.clone();
            let wrapper = c.wrapper.clone();
            let node_name = name.to_owned();
            let key = sig.clone();
            scoped(t, name, scope, group.as_ref(), &key, async move {
                let reused = match reusing {
                    true => super::reuse::container(&runtime, spec.name.as_deref().unwrap_or_default(), &sig).await?,
                    false => super::reuse::Found::Nothing,
                };
                let container = match reused {
                    super::reuse::Found::Current(id) => {
                        let primary = spec.networks.first().map(|n| n.network.clone());
                        let c = Container::attach(runtime.clone(), &node_name, &id, primary, readiness).await?;
                        c.wait_ready().await?;
                        c
                    }
                    super::reuse::Found::Nothing => {
                        start_container(&runtime, &ledger, &node_name, &spec, readiness, share).await?
                    }
                };
                let wrapped = wrapper.map(|(_, wrap)| wrap(container.clone()));
                Ok(Fixture::Container(container, wrapped))
            })
            .await
        }
        Node::Alternatives(_) => Err(Error::graph(name, "alternatives are resolved through their choice")),
    }
}

fn render_image(source: &ImageSource, resolved: &Resolved) -> Result<ImageSource> {
    let render_build = |spec: &BuildSpec| -> Result<BuildSpec> {
        let mut spec = spec.clone();
        node::build_strings(&mut spec, &mut |s| {
            *s = render(s, resolved)?;
            Ok(())
        })?;
        if let BuildContext::Dir(path) = &mut spec.context {
            if path.is_relative() {
                let base = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from).unwrap_or_default();
                *path = base.join(&*path);
            }
        }
        Ok(spec)
    };
    Ok(match source {
        ImageSource::Build { spec, stages } => ImageSource::Build { spec: render_build(spec)?, stages: stages.clone() },
        ImageSource::FromEnvOrBuild { key, spec, stages } => {
            ImageSource::FromEnvOrBuild { key: key.clone(), spec: render_build(spec)?, stages: stages.clone() }
        }
        ImageSource::Fetch(p) => {
            let mut p = p.clone();
            p.repository = render(&p.repository, resolved)?;
            ImageSource::Fetch(p)
        }
        ImageSource::Existing(r) => ImageSource::Existing(render(r, resolved)?),
    })
}

async fn build(
    runtime: &Arc<dyn Runtime>,
    name: &str,
    spec: &BuildSpec,
    stages: &[String],
    sig: &str,
) -> Result<String> {
    if let BuildContext::Dir(dir) = &spec.context {
        if !dir.is_dir() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("build context `{}` is not a folder", dir.display()),
            )
            .with_hint("paths are relative to the crate's folder (CARGO_MANIFEST_DIR)"));
        }
    }
    let progress =
        |p: crate::runtime::Progress| tracing::debug!(target: "fixtures::build", fixture = %name, "{}", p.message);
    for stage in stages {
        let mut stage_spec = spec.clone();
        stage_spec.target = Some(stage.clone());
        stage_spec.tags = vec![format!("fixtures-stage/{}:{stage}-{sig}", name.to_ascii_lowercase())];
        runtime.build_image(&stage_spec, &progress).await?;
    }
    let mut spec = spec.clone();
    spec.labels.insert(labels::NODE.to_owned(), name.to_owned());
    spec.labels.insert(labels::SIGNATURE.to_owned(), sig.to_owned());
    tracing::info!(fixture = %name, "building image");
    runtime.build_image(&spec, &progress).await
}

async fn make_image(runtime: Arc<dyn Runtime>, name: String, source: ImageSource, sig: String) -> Result<Fixture> {
    let id = match &source {
        ImageSource::Build { spec, stages } => build(&runtime, &name, spec, stages, &sig).await?,
        ImageSource::FromEnvOrBuild { key, spec, stages } => match std::env::var(key).ok().filter(|v| !v.is_empty()) {
            Some(reference) => {
                tracing::info!(fixture = %name, image = %reference, "using the image named by {key}");
                runtime
                    .inspect_image(&reference)
                    .await
                    .map_err(|e| e.with_hint(format!("{key}={reference} names an image the engine does not have")))?
                    .id
            }
            None => build(&runtime, &name, spec, stages, &sig).await?,
        },
        ImageSource::Fetch(pull) => {
            tracing::info!(fixture = %name, image = %pull.reference(), "pulling image");
            let progress = |p: crate::runtime::Progress| tracing::info!(target: "fixtures::pull", fixture = %name, "{}", p.message);
            runtime.pull_image(pull, &progress).await?
        }
        ImageSource::Existing(reference) => {
            runtime
                .inspect_image(reference)
                .await
                .map_err(|e| {
                    e.with_hint(
                    "`image(...)` uses an image already on the engine; build or fetch it instead, or create it first",
                )
                })?
                .id
        }
    };
    Ok(Fixture::Image(Image::new(runtime.inspect_image(&id).await?)))
}

async fn start_container(
    runtime: &Arc<dyn Runtime>,
    ledger: &Arc<Ledger>,
    node: &str,
    spec: &ContainerSpec,
    readiness: Readiness,
    share: bool,
) -> Result<Container> {
    let mut port_clashes = 0;
    let id = loop {
        match runtime.create_container(spec).await {
            Ok(id) => {
                ledger.push(runtime, Owned::Container(id.clone()));
                tracing::info!(container_id = %crate::short_id(&id), image = %crate::short_id(&spec.image), "created container");
                match runtime.start_container(&id).await {
                    Ok(()) => break id,
                    // Podman picks a free host port when it creates the container and binds it
                    // only at the start; anything on the machine may take it in between (an
                    // outgoing connection's local port comes from the same range). With ports
                    // the engine chose, a new container gets new ones.
                    Err(e) if port_clashes < 3 && ephemeral_port_taken(spec, &e) => {
                        port_clashes += 1;
                        tracing::info!(container_id = %crate::short_id(&id), "its host port was taken before it started; creating it again");
                        ledger.remove_now(runtime, &Owned::Container(id)).await?;
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            // Another process of the run made it first: use theirs once it is ready.
            Err(e) if share && e.kind() == ErrorKind::Conflict => {
                let name = spec.name.clone().unwrap_or_default();
                let theirs = match runtime.inspect_container(&name).await {
                    Ok(theirs) => theirs,
                    // Removed meanwhile (its run ended as ours began): make it again.
                    Err(e) if e.kind() == ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                };
                if theirs.labels.get(labels::SIGNATURE) != spec.labels.get(labels::SIGNATURE) {
                    return Err(Error::new(
                        ErrorKind::Conflict,
                        format!("a container named `{name}` exists with another spec"),
                    )
                    .with_container(theirs.id));
                }
                tracing::info!(container_id = %crate::short_id(&theirs.id), "sharing the run's session container");
                break theirs.id;
            }
            Err(e) => return Err(e.with_image(spec.image.clone())),
        }
    };
    let primary = spec.networks.first().map(|n| n.network.clone());
    let container = Container::attach(runtime.clone(), node, &id, primary, readiness).await?;
    container.wait_ready().await.map_err(|e| e.with_image(spec.image.clone()))?;
    tracing::info!(container_id = %crate::short_id(&id), "container ready");
    Ok(container)
}

/// Whether `e`, from starting a container of `spec`, says a host port the engine chose was
/// taken meanwhile.
fn ephemeral_port_taken(spec: &ContainerSpec, e: &Error) -> bool {
    spec.ports.iter().any(|p| p.host_port.is_none()) && e.message().contains("address already in use")
}

/// The image that seeds volumes: no layers, never started, so it needs nothing pulled.
const SEED_IMAGE: &str = "fixtures-helper/seed:1";

async fn seed_volume(runtime: &Arc<dyn Runtime>, ledger: &Arc<Ledger>, volume: &str, tar: bytes::Bytes) -> Result<()> {
    if runtime.inspect_image(SEED_IMAGE).await.is_err() {
        let mut spec =
            BuildSpec::new(BuildContext::Dockerfile("FROM scratch\nLABEL fixtures.helper=seed\n".to_owned()));
        spec.tags = vec![SEED_IMAGE.to_owned()];
        runtime.build_image(&spec, &|_| {}).await?;
    }
    let mut helper = ContainerSpec {
        name: Some(unique_name("seed")),
        image: SEED_IMAGE.to_owned(),
        command: Some(vec!["/seed".to_owned()]),
        mounts: vec![Mount::Volume { name: volume.to_owned(), target: "/seed".to_owned(), read_only: false }],
        network_mode: Some("none".to_owned()),
        ..ContainerSpec::default()
    };
    helper.labels = our_labels("seed", Scope::Function, "seed");
    let id = runtime.create_container(&helper).await?;
    ledger.push(runtime, Owned::Container(id.clone()));
    let copied = runtime.put_archive(&id, "/seed", tar).await;
    let removed = runtime.remove_container(&id, true).await;
    copied?;
    removed
}
