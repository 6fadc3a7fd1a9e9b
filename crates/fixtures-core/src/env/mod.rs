//! The environment graph: named fixtures that reference each other.
//!
//! An [`Env`] is declared once (like a `docker-compose.yml`), overloaded per
//! test module by replacing nodes with [`Env::with`], validated as a whole
//! before anything is created, and resolved lazily per test by a [`TestEnv`]:
//! only what a test asks for, and what that needs, is created, and
//! independent fixtures are created concurrently.

mod attributes;
mod blocking;
mod fixture;
mod ledger;
pub(crate) mod lifetime;
pub(crate) mod node;
mod resolve;
mod reuse;
mod teardown;
pub(crate) mod template;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub use blocking::BlockingTestEnv;
pub use node::{
    BoxFuture, BuildNode, ContainerNode, CustomNode, DEFAULT_TEARDOWN_TIMEOUT, ExistingImageNode, FetchNode,
    FixtureNode, ImageNode, NetworkNode, Node, Scope, ValueNode, VolumeNode, Wrapper, alternatives, build, container,
    fetch, fixture, image, image_or_build, network, value, value_fn, volume,
};
pub use resolve::{RUNTIME_FIXTURE, Resolved, TestEnv, TestId};

use crate::backend::Backend;
use crate::error::{Error, ErrorKind, Result};
use node::ImageSource;
use template::{Reference, Template};

/// A declared test environment.
#[derive(Clone, Default)]
///
/// Nodes are added by name with [`Env::with`]; `Env::new()` uses every engine backend the
/// binary links (see the `fixtures` crate's features).
///
/// ```no_run
/// # use fixtures_core as fixtures;
/// use fixtures::{Env, container, image};
///
/// # async fn demo() -> fixtures::Result<()> {
/// let env = Env::new()
///     .with("busybox", image("busybox:latest"))
///     .with("web", container().image("{busybox.id}").command(["httpd", "-f", "-p", "8080"]).port("8080/tcp"));
/// let t = env.start("my_test").await?;          // what `#[fixtures::test]` does for you
/// let web = t.container("web").await?;          // made, started and ready
/// println!("{}", web.addr("8080/tcp")?);
/// t.finish().await?;                            // removed
/// # Ok(()) }
/// ```
pub struct Env {
    nodes: BTreeMap<String, Node>,
    backends: Vec<Backend>,
    /// What was found wrong while the environment was declared (a compose file that does not
    /// load, an edit of an unknown fixture): reported by validation, before anything is made.
    problems: Vec<String>,
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field("nodes", &self.nodes)
            .field("backends", &self.backends)
            .field("problems", &self.problems)
            .finish()
    }
}

/// One way to run a test: a choice of alternative per parametrised fixture.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Case {
    /// Parametrised fixture → the alternative chosen.
    pub choices: BTreeMap<String, String>,
}

impl std::fmt::Display for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.choices.iter().map(|(k, v)| format!("{k}={v}")).collect();
        f.write_str(&parts.join(","))
    }
}

impl Env {
    /// An empty environment.
    pub fn new() -> Self {
        Env::default()
    }

    /// Adds the fixture `name`, or replaces it: every fixture that references `name`
    /// uses the replacement (overloading).
    pub fn with(mut self, name: impl Into<String>, node: impl Into<Node>) -> Self {
        self.nodes.insert(name.into(), node.into());
        self
    }

    /// Changes the container fixture `name` in place, keeping what it was declared with:
    /// `env.edit_container("db", |db| db.scope(Scope::Module).env("LOG_LEVEL", "debug"))`.
    /// For a fixture declared elsewhere (a shared `env()`, a compose file) that a test module
    /// wants a little different; [`Env::with`] replaces a fixture whole.
    ///
    /// When `name` is not a container fixture, validation reports it (with the nearest name)
    /// before anything is created.
    pub fn edit_container(mut self, name: &str, edit: impl FnOnce(ContainerNode) -> ContainerNode) -> Self {
        match self.nodes.remove(name) {
            Some(Node::Container(c)) => {
                self.nodes.insert(name.to_owned(), Node::Container(Box::new(edit(*c))));
            }
            Some(other) => {
                self.problems
                    .push(format!("`edit_container(\"{name}\", ..)`: `{name}` is a {}, not a container", other.kind()));
                self.nodes.insert(name.to_owned(), other);
            }
            None => {
                let suggestion = self.nearest(name).map(|n| format!("; did you mean `{n}`?")).unwrap_or_default();
                self.problems.push(format!("`edit_container(\"{name}\", ..)`: no fixture `{name}`{suggestion}"));
            }
        }
        self
    }

    /// Marks the environment as wrongly declared: validation reports `problem` (with any
    /// others) before anything is created. For code that builds an `Env` from a description
    /// that can be wrong, such as a compose file, and must still return an `Env`.
    pub fn invalid(mut self, problem: impl Into<String>) -> Self {
        self.problems.push(problem.into());
        self
    }

    /// The declared name nearest to `name`, if one is near enough to suggest.
    fn nearest(&self, name: &str) -> Option<&str> {
        self.nodes
            .keys()
            .min_by_key(|k| crate::private::edit_distance(k, name))
            .filter(|k| crate::private::edit_distance(k, name) <= 3.max(name.len() / 3))
            .map(String::as_str)
    }

    /// Lets this environment use `backend` only (with any others listed so), instead of every
    /// backend compiled in: for a custom [`Runtime`](crate::Runtime), or to keep a suite off
    /// an engine. `FIXTURE_RUNTIME` picks among those listed.
    pub fn backend(mut self, backend: Backend) -> Self {
        if !self.backends.iter().any(|b| b.name() == backend.name()) {
            self.backends.push(backend);
        }
        self
    }

    /// The backends this environment may use: those listed with [`Env::backend`], else every
    /// backend compiled in.
    pub fn backends(&self) -> Vec<Backend> {
        if self.backends.is_empty() { crate::backend::compiled_in() } else { self.backends.clone() }
    }

    /// The fixture `name`, if declared.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.get(name)
    }

    /// Every fixture name.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.nodes.keys().map(String::as_str)
    }

    /// The fixtures `name` depends on directly, with the references that make each dependency.
    pub(crate) fn dependencies(&self, name: &str) -> Result<Vec<(String, Option<Reference>)>> {
        let (deps, errors) = self.dependencies_and_problems(name);
        if errors.is_empty() { Ok(deps) } else { Err(Error::graph(name, errors.join("; "))) }
    }

    /// The dependencies of `name`, and what is wrong with its declaration.
    fn dependencies_and_problems(&self, name: &str) -> (Vec<(String, Option<Reference>)>, Vec<String>) {
        let Some(node) = self.nodes.get(name) else { return (Vec::new(), Vec::new()) };
        let mut deps: Vec<(String, Option<Reference>)> = Vec::new();
        let mut errors: Vec<String> = Vec::new();
        let mut from_template = |text: &str, deps: &mut Vec<(String, Option<Reference>)>| match Template::parse(text) {
            Ok(t) => deps.extend(t.references().map(|r| (r.node.clone(), Some(r.clone())))),
            Err(e) => errors.push(format!("template {e}")),
        };
        match node {
            Node::Container(c) => {
                let mut spec = c.spec.clone();
                let _ = node::container_strings(&mut spec, &mut |s| {
                    from_template(s, &mut deps);
                    Ok(())
                });
                for (needs, _) in &c.configure {
                    deps.extend(needs.iter().map(|n| (n.clone(), None)));
                }
                errors.extend(c.errors.iter().cloned());
                if c.spec.image.is_empty() {
                    errors.push("has no image: set one with `.image(\"{my_image.id}\")`".to_owned());
                }
            }
            Node::Image(i) => match &i.source {
                ImageSource::Build { spec, .. } | ImageSource::FromEnvOrBuild { spec, .. } => {
                    let mut spec = spec.clone();
                    let _ = node::build_strings(&mut spec, &mut |s| {
                        from_template(s, &mut deps);
                        Ok(())
                    });
                    if matches!(&spec.context, crate::spec::BuildContext::Dir(p) if p.as_os_str().is_empty()) {
                        errors.push(
                            "has no build context: give `.path(\"folder\")` or `.dockerfile_text(\"FROM ...\")`"
                                .to_owned(),
                        );
                    }
                }
                ImageSource::Fetch { spec: p, .. } => {
                    from_template(&p.repository, &mut deps);
                    if p.repository.trim().is_empty() {
                        errors.push("has no repository to pull: `fetch(\"registry/name:tag\")`".to_owned());
                    }
                }
                ImageSource::Existing(r) => {
                    from_template(r, &mut deps);
                    if r.trim().is_empty() {
                        errors.push("names no image: `image(\"name:tag\")` or `image(\"{other.id}\")`".to_owned());
                    }
                }
            },
            Node::Network(_) | Node::Volume(_) => {}
            Node::Value(v) => {
                if let Some((needs, _)) = &v.compute {
                    deps.extend(needs.iter().map(|n| (n.clone(), None)));
                }
            }
            Node::Custom(c) => deps.extend(c.needs.iter().map(|n| (n.clone(), None))),
            Node::Alternatives(names) => deps.extend(names.iter().map(|n| (n.clone(), None))),
        }
        (deps, errors)
    }

    /// Checks the whole environment before anything is created: templates parse, every
    /// reference names a fixture (the nearest name is suggested), every attribute exists on
    /// that kind of fixture, there is no cycle, and no fixture outlives one it needs.
    ///
    /// # Errors
    /// [`ErrorKind::Graph`] listing every problem found.
    pub fn validate(&self) -> Result<()> {
        let mut problems: Vec<String> = self.problems.clone();
        for name in self.nodes.keys() {
            let (deps, errors) = self.dependencies_and_problems(name);
            problems.extend(errors.into_iter().map(|e| format!("fixture `{name}`: {e}")));
            let node = &self.nodes[name];
            for (dep, reference) in &deps {
                let Some(target) = self.nodes.get(dep) else {
                    let near = self.nearest(dep);
                    let suggestion = near.map(|n| format!("; did you mean `{n}`?")).unwrap_or_default();
                    let known: Vec<&str> = self.nodes.keys().map(String::as_str).collect();
                    problems.push(format!(
                        "fixture `{name}`: references unknown fixture `{dep}`{suggestion} (known: {})",
                        known.join(", ")
                    ));
                    continue;
                };
                if let Some(r) = reference {
                    if let Err(msg) = self.check_attributes(dep, target, r) {
                        problems.push(format!("fixture `{name}`: `{{{r}}}`: {msg}"));
                    }
                }
                let dep_scope = self.effective_scope(dep);
                if dep_scope < node.scope() && !matches!(node, Node::Alternatives(_)) {
                    problems.push(format!(
                        "fixture `{name}` ({} scope) needs `{dep}` ({} scope), which does not live as long; \
                         give `{dep}` a scope of at least {}",
                        node.scope().as_str(),
                        dep_scope.as_str(),
                        node.scope().as_str()
                    ));
                }
            }
        }
        if let Some(cycle) = self.find_cycle() {
            problems.push(format!("fixtures depend on each other in a cycle: {}", cycle.join(" -> ")));
        }
        match problems.len() {
            0 => Ok(()),
            1 => Err(Error::new(ErrorKind::Graph, problems.remove(0))),
            n => Err(Error::new(
                ErrorKind::Graph,
                format!("the environment has {n} problems:\n  - {}", problems.join("\n  - ")),
            )),
        }
    }

    /// The scope a fixture really has: an alternatives node lives as long as its shortest-lived choice.
    fn effective_scope(&self, name: &str) -> Scope {
        match self.nodes.get(name) {
            Some(Node::Alternatives(names)) => {
                names.iter().map(|n| self.effective_scope(n)).min().unwrap_or(Scope::Function)
            }
            Some(n) => n.scope(),
            None => Scope::Session,
        }
    }

    fn check_attributes(&self, name: &str, node: &Node, r: &Reference) -> std::result::Result<(), String> {
        let table = match node {
            Node::Value(_) => return Ok(()),
            Node::Custom(_) => {
                return Err(format!(
                    "`{name}` is a custom fixture; templates can reference images, containers, networks, volumes and values"
                ));
            }
            Node::Alternatives(names) => {
                for n in names {
                    if let Some(alt) = self.nodes.get(n) {
                        self.check_attributes(n, alt, r)?;
                    }
                }
                return Ok(());
            }
            Node::Image(_) => attributes::IMAGE,
            Node::Network(_) => attributes::NETWORK,
            Node::Volume(_) => attributes::VOLUME,
            Node::Container(_) => attributes::CONTAINER,
        };
        attributes::check(table, node.kind(), r)
    }

    fn find_cycle(&self) -> Option<Vec<String>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            Visiting,
            Done,
        }
        fn visit(
            env: &Env,
            name: &str,
            marks: &mut BTreeMap<String, Mark>,
            stack: &mut Vec<String>,
        ) -> Option<Vec<String>> {
            match marks.get(name) {
                Some(Mark::Done) => return None,
                Some(Mark::Visiting) => {
                    let start = stack.iter().position(|n| n == name).unwrap_or(0);
                    let mut cycle = stack[start..].to_vec();
                    cycle.push(name.to_owned());
                    return Some(cycle);
                }
                None => {}
            }
            marks.insert(name.to_owned(), Mark::Visiting);
            stack.push(name.to_owned());
            let (deps, _) = env.dependencies_and_problems(name);
            for dep in node::dedup(deps.into_iter().map(|(d, _)| d)) {
                if env.nodes.contains_key(&dep) {
                    if let Some(c) = visit(env, &dep, marks, stack) {
                        return Some(c);
                    }
                }
            }
            stack.pop();
            marks.insert(name.to_owned(), Mark::Done);
            None
        }
        let mut marks = BTreeMap::new();
        for name in self.nodes.keys() {
            if let Some(c) = visit(self, name, &mut marks, &mut Vec::new()) {
                return Some(c);
            }
        }
        None
    }

    /// The ways to run a test that asks for `requested`: one [`Case`] per combination of
    /// alternatives among the fixtures it needs, directly or not (one empty case if none).
    ///
    /// # Errors
    /// [`ErrorKind::Graph`] when the environment is invalid or a requested fixture is unknown.
    pub fn cases(&self, requested: &[&str]) -> Result<Vec<Case>> {
        self.validate()?;
        for r in requested {
            if !self.nodes.contains_key(*r) && *r != resolve::RUNTIME_FIXTURE {
                let known: Vec<&str> = self.nodes.keys().map(String::as_str).collect();
                return Err(Error::graph(
                    *r,
                    format!("the test asks for unknown fixture `{r}` (known: {})", known.join(", ")),
                ));
            }
        }
        let mut done: BTreeSet<Case> = BTreeSet::new();
        let mut work = vec![Case::default()];
        while let Some(case) = work.pop() {
            // Walk what this case needs; branch at the first undecided alternatives node.
            let mut seen = BTreeSet::new();
            let mut stack: Vec<String> = requested.iter().map(|s| (*s).to_owned()).collect();
            let mut branched = false;
            while let Some(name) = stack.pop() {
                if !seen.insert(name.clone()) {
                    continue;
                }
                match self.nodes.get(&name) {
                    Some(Node::Alternatives(names)) => match case.choices.get(&name) {
                        Some(choice) => stack.push(choice.clone()),
                        None => {
                            for alt in names.iter().rev() {
                                let mut next = case.clone();
                                next.choices.insert(name.clone(), alt.clone());
                                work.push(next);
                            }
                            branched = true;
                            break;
                        }
                    },
                    Some(_) => stack.extend(self.dependencies(&name)?.into_iter().map(|(d, _)| d)),
                    None => {}
                }
            }
            if !branched {
                done.insert(case);
            }
        }
        Ok(done.into_iter().collect())
    }

    /// Starts a test's environment. Nothing is created until a fixture is asked for.
    ///
    /// # Errors
    /// [`ErrorKind::Graph`] when the environment is invalid; [`ErrorKind::Config`] when no
    /// runtime answers.
    pub async fn start(&self, test: impl Into<TestId>) -> Result<TestEnv> {
        self.start_case(test, Case::default()).await
    }

    /// Starts a test's environment for one case of its alternatives.
    ///
    /// # Errors
    /// As [`Env::start`].
    pub async fn start_case(&self, test: impl Into<TestId>, case: Case) -> Result<TestEnv> {
        crate::cleanup::join_run();
        crate::config::current()?;
        self.validate()?;
        let runtime = crate::backend::select(&self.backends()).await?;
        crate::cleanup::prepare(&runtime).await;
        Ok(TestEnv::new(Arc::new(self.clone()), runtime, test.into(), case))
    }
}

#[cfg(test)]
mod tests;
