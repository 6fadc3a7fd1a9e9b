//! Resolving fixtures for one test: create what is asked for and what it needs,
//! concurrently where nothing orders them, sharing module and session fixtures.
//!
//! Here: the walk (`resolve`, `make`), sharing by scope key (`scoped`), who removes what
//! (`ledger_for`) and the one placement step of every engine object (`place`: name, labels,
//! reuse, ledger). Around it: `test_env` (the test's environment), `fixture` (made fixtures,
//! templates rendered with them), `naming` (names, labels, signatures), and one module per
//! kind of node: `image`, `network`, `volume`, `container`, `custom` (custom fixtures, values).

mod container;
mod custom;
mod image;
mod naming;
mod network;
mod test_env;
mod volume;

pub(crate) use super::fixture::Fixture;
pub use super::fixture::Resolved;
use super::fixture::render;
use naming::{our_labels, reuse_mode, shared_name, signature, unique_name};
use test_env::TestInner;
pub use test_env::{RUNTIME_FIXTURE, TestEnv, TestId};

use std::any::Any;
use std::collections::{BTreeSet, HashMap};
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
use super::{Case, Env};
use crate::archive;
use crate::error::{Error, ErrorKind, Result};
use crate::handle::{Container, Image, Network, Volume};
use crate::labels;
use crate::readiness::Readiness;
use crate::runtime::Runtime;
use crate::spec::{BuildContext, BuildSpec, ContainerSpec, Labels, Mount};

/// Fixtures shared across tests of this process, by scope key.
static SHARED: LazyLock<Mutex<HashMap<String, Arc<OnceCell<Fixture>>>>> = LazyLock::new(Default::default);

/// Lets go of a shared fixture (its teardown is about to run).
pub(crate) fn forget_shared(key: &str) {
    SHARED.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
}

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
    let fixture =
        result.map_err(|e| e.with_fixture(name.clone()).with_runtime(t.runtime.name()).with_host(t.runtime.host()))?;
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

/// Where a network, volume or container goes, worked out the same way for each: its name
/// (the one given; else, for a session object, one every process of the run agrees on, so
/// they share it; else one unique to this process), this library's labels, and the ledger
/// that removes it. In reuse mode the name must be given, the object is marked for reuse, and
/// no ledger removes it.
struct Placement {
    name: String,
    /// A session object that other processes of the run may make at the same moment.
    share: bool,
    reusing: bool,
    ledger: Arc<Ledger>,
}

#[allow(clippy::too_many_arguments)]
fn place(
    t: &TestInner,
    node: &str,
    kind: &str,
    given: Option<&str>,
    sig: &str,
    scope: Scope,
    group: Option<&GroupId>,
    labels: &mut Labels,
) -> Result<Placement> {
    let given = given.filter(|n| !n.is_empty());
    let reusing = reuse_mode();
    let (name, share) = match given {
        _ if reusing => (super::reuse::required_name(node, kind, given)?, false),
        Some(name) => (name.to_owned(), false),
        None if scope == Scope::Session => (shared_name(node, sig), true),
        None => (unique_name(node), false),
    };
    labels.extend(our_labels(node, scope, sig));
    if reusing {
        super::reuse::mark(labels);
    }
    let ledger = if reusing { Arc::new(Ledger::default()) } else { ledger_for(t, scope, group) };
    Ok(Placement { name, share, reusing, ledger })
}

/// What the fixture `name` of this test is made from: the node, what it needs (resolved),
/// its scope and shared group.
struct Making<'a> {
    t: &'a TestInner,
    name: &'a str,
    scope: Scope,
    group: Option<GroupId>,
    resolved: Resolved,
}

impl Making<'_> {
    fn place(&self, kind: &str, given: Option<&str>, sig: &str, labels: &mut Labels) -> Result<Placement> {
        place(self.t, self.name, kind, given, sig, self.scope, self.group.as_ref(), labels)
    }

    /// Makes it once per scope key (see [`scoped`]).
    async fn scoped<F>(&self, sig: &str, make: F) -> Result<Fixture>
    where
        F: std::future::Future<Output = Result<Fixture>>,
    {
        scoped(self.t, self.name, self.scope, self.group.as_ref(), sig, make).await
    }
}

async fn make_node(t: &TestInner, name: &str, node: &Node, resolved: Resolved) -> Result<Fixture> {
    if crate::cleanup::stopping() {
        return Err(Error::new(ErrorKind::Config, "the test process is being interrupted; nothing new is created"));
    }
    // Which group a shared fixture belongs to (see `lifetime`), worked out once.
    let group = lifetime::group_of(&t.env, &t.test.module, name, &t.case);
    let making = Making { t, name, scope: node.scope(), group, resolved };
    match node {
        Node::Value(v) => custom::value(v, &making.resolved),
        Node::Custom(c) => custom::make(c, making).await,
        Node::Image(i) => image::make(i, making).await,
        Node::Network(n) => network::make(n, making).await,
        Node::Volume(v) => volume::make(v, making).await,
        Node::Container(c) => container::make(c, making).await,
        Node::Alternatives(_) => Err(Error::graph(name, "alternatives are resolved through their choice")),
    }
}
