//! When module and session fixtures end.
//!
//! Every shared fixture belongs to a *group*: its scope, its module (for module scope), its
//! fixture's name, and the alternatives it was made for. A group keeps what must end
//! together: the shared cache's keys, the objects to remove (its ledger) and the teardowns.
//!
//! A runner that knows which tests will run (the harness of [`crate::harness`], or libtest
//! when its arguments can be read) *plans* how many tests need each group. A test *holds*
//! each group it uses while it runs. When the last planned test of a group has ended and no
//! test holds it, the group ends at once: its cache entries are forgotten (a later test
//! would make the fixture anew), its teardowns run newest first, and its objects are
//! removed before the test that ended it returns, so the next module does not start
//! beside it. A group nobody planned ends at process exit, with whatever is left.
//!
//! Session groups of a run shared by several processes (cargo-nextest) are never planned:
//! their objects belong to the run, which removes them when its last process leaves.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use super::ledger::Ledger;
use super::node::{Node, Scope};
use super::teardown::Teardown;
use super::{Case, Env};
use crate::error::Error;

/// Which shared fixture: scope, module (for module scope), fixture name and the alternatives
/// it depends on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct GroupId {
    pub(crate) scope: Scope,
    /// `module_path!()` of the tests that share it; empty for session scope.
    pub(crate) module: String,
    name: String,
    choices: String,
}

#[derive(Default)]
struct Group {
    /// Whether a runner counted the tests that need it.
    planned: bool,
    /// Planned tests that have not ended.
    remaining: usize,
    /// Tests running now that use it.
    holders: usize,
    keys: Vec<String>,
    ledger: Arc<Ledger>,
    teardowns: Vec<(u64, Teardown)>,
}

static GROUPS: LazyLock<Mutex<HashMap<GroupId, Group>>> = LazyLock::new(Mutex::default);
/// Creation order of teardowns across groups: the newest runs first.
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

fn groups() -> std::sync::MutexGuard<'static, HashMap<GroupId, Group>> {
    GROUPS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether fixtures of `node` are kept in groups: shared containers, networks, volumes and
/// custom fixtures (images stay for the process; values are computed per test).
fn grouped(node: &Node) -> bool {
    matches!(node, Node::Container(_) | Node::Network(_) | Node::Volume(_) | Node::Custom(_))
        && node.scope() != Scope::Function
}

/// Visits each fixture reachable from `roots` in `case` once: `name`, what it needs, and
/// through an alternatives node the alternative `case` chose.
fn walk(env: &Env, roots: Vec<String>, case: &Case, mut visit: impl FnMut(&str, &Node)) {
    let mut seen = BTreeSet::new();
    let mut stack = roots;
    while let Some(n) = stack.pop() {
        if !seen.insert(n.clone()) {
            continue;
        }
        let Some(node) = env.node(&n) else { continue };
        visit(&n, node);
        match node {
            Node::Alternatives(_) => stack.extend(case.choices.get(&n).cloned()),
            _ => {
                if let Ok(deps) = env.dependencies(&n) {
                    stack.extend(deps.into_iter().map(|(d, _)| d));
                }
            }
        }
    }
}

/// The group of fixture `name` as test module `module` makes it in `case`; `None` when it
/// is not kept in one.
pub(crate) fn group_of(env: &Env, module: &str, name: &str, case: &Case) -> Option<GroupId> {
    let node = env.node(name)?;
    if !grouped(node) {
        return None;
    }
    let scope = node.scope();
    // The alternatives reachable from `name` tell its variants apart.
    let mut choices = BTreeSet::new();
    walk(env, vec![name.to_owned()], case, |n, node| {
        if let (Node::Alternatives(_), Some(choice)) = (node, case.choices.get(n)) {
            choices.insert(format!("{n}={choice}"));
        }
    });
    let module = if scope == Scope::Module { module.to_owned() } else { String::new() };
    let choices: Vec<String> = choices.into_iter().collect();
    Some(GroupId { scope, module, name: name.to_owned(), choices: choices.join(",") })
}

/// The groups a test of `module` asking for `requested` needs in `case`, directly or not.
pub(crate) fn needs(env: &Env, module: &str, requested: &[&str], case: &Case) -> BTreeSet<GroupId> {
    let mut out = BTreeSet::new();
    walk(env, requested.iter().map(|s| (*s).to_owned()).collect(), case, |n, _| {
        out.extend(group_of(env, module, n, case));
    });
    out
}

/// Whether a group can be planned here: session groups of a shared run belong to the run.
fn plannable(id: &GroupId) -> bool {
    !(id.scope == Scope::Session && crate::cleanup::shared_run())
}

/// Counts one planned test for each of `ids`. Returns the ids it counted, which that test
/// hands back to [`leave`] when it ends.
pub(crate) fn plan(ids: impl IntoIterator<Item = GroupId>) -> Vec<GroupId> {
    let mut all = groups();
    let mut counted = Vec::new();
    for id in ids.into_iter().filter(plannable) {
        let g = all.entry(id.clone()).or_default();
        g.planned = true;
        g.remaining += 1;
        counted.push(id);
    }
    counted
}

/// A test starts using `id`.
pub(crate) fn hold(id: &GroupId) {
    groups().entry(id.clone()).or_default().holders += 1;
}

/// Where objects of `id` are written down.
pub(crate) fn ledger(id: &GroupId) -> Arc<Ledger> {
    groups().entry(id.clone()).or_default().ledger.clone()
}

/// Remembers the shared cache's `key` as part of `id`.
pub(crate) fn add_key(id: &GroupId, key: String) {
    groups().entry(id.clone()).or_default().keys.push(key);
}

/// Keeps a teardown until `id` ends.
pub(crate) fn keep_teardown(id: &GroupId, teardown: Teardown) {
    super::ledger::exit_hook();
    let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    groups().entry(id.clone()).or_default().teardowns.push((seq, teardown));
}

/// Groups whose last test has ended, to end now.
#[must_use = "the groups end only when `run` is awaited"]
pub(crate) struct Ending(Vec<Group>);

impl Ending {
    /// Whether no group ends.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Ends the groups: teardowns newest first, then their objects, waited for. Returns the
    /// teardowns' failures.
    pub(crate) async fn run(self) -> Vec<Error> {
        if self.0.is_empty() {
            return Vec::new();
        }
        // A finished test's containers may still be on their way out, attached to a network
        // of these groups: let the background remover finish first.
        super::ledger::background_removals_done().await;
        end(self.0).await
    }
}

/// A test ended: it no longer holds `held`, and one planned test of `planned` is done.
/// Returns the groups this ends.
pub(crate) fn leave(held: Vec<GroupId>, planned: Vec<GroupId>) -> Ending {
    let mut all = groups();
    for id in &held {
        if let Some(g) = all.get_mut(id) {
            g.holders = g.holders.saturating_sub(1);
        }
    }
    for id in &planned {
        if let Some(g) = all.get_mut(id) {
            g.remaining = g.remaining.saturating_sub(1);
        }
    }
    let done: BTreeSet<GroupId> = held
        .iter()
        .chain(&planned)
        .filter(|id| all.get(*id).is_some_and(|g| g.planned && g.remaining == 0 && g.holders == 0))
        .cloned()
        .collect();
    let ended: Vec<Group> = done.iter().filter_map(|id| all.remove(id)).collect();
    // Forgotten while no test can look: a test that comes later makes them anew.
    for key in ended.iter().flat_map(|g| &g.keys) {
        tracing::debug!(key = %key, "a shared fixture's last test ended");
        super::resolve::forget_shared(key);
    }
    Ending(ended)
}

/// Runs the groups' teardowns (newest first), then removes their objects and waits.
async fn end(ended: Vec<Group>) -> Vec<Error> {
    let mut teardowns: Vec<(u64, Teardown)> = Vec::new();
    let mut ledgers = Vec::new();
    for g in ended {
        teardowns.extend(g.teardowns);
        ledgers.push(g.ledger);
    }
    teardowns.sort_by_key(|(seq, _)| *seq);
    let failures = super::teardown::run_all(teardowns.into_iter().map(|(_, t)| t).collect()).await;
    Ledger::remove_all(&ledgers).await;
    failures
}

/// At process exit: every group that is left ends. Teardown failures are printed, since no
/// test is left to fail.
pub(crate) fn end_all_at_exit(teardowns_too: bool) {
    let mut left: Vec<Group> = groups().drain().map(|(_, g)| g).collect();
    if !teardowns_too {
        for g in &mut left {
            g.teardowns.clear();
        }
    }
    if left.is_empty() {
        return;
    }
    // As after a last test: finished tests' objects go first, off the groups' networks.
    match crate::executor::block_on_anywhere(Ending(left).run()) {
        Ok(failures) => {
            for e in failures {
                eprintln!("fixtures: a shared fixture's teardown failed at exit: {e:?}");
            }
        }
        Err(e) => eprintln!("fixtures: the shared fixtures could not be ended: {e:?}"),
    }
}
