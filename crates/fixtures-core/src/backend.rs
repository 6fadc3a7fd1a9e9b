//! Choosing the engine: backends a test crate compiled in, picked by configuration.
//!
//! `fixtures-core` names no backend crate; each backend crate offers a [`Backend`] to every
//! binary that links it (the `fixtures` crate links those its features name). An
//! environment uses every backend compiled in, unless it lists its own with `Env::backend`.
//! `FIXTURE_RUNTIME` picks one by name; without it, the first that answers is used, in name
//! order (`docker` before `podman`).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock, Mutex};

use crate::error::{Error, ErrorKind, Result};
use crate::runtime::Runtime;

/// Connects to an engine.
pub type ConnectFn = fn() -> Pin<Box<dyn Future<Output = Result<Arc<dyn Runtime>>> + Send>>;

/// A backend compiled into the test crate.
#[derive(Clone, Copy)]
pub struct Backend {
    name: &'static str,
    connect: ConnectFn,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend").field("name", &self.name).finish()
    }
}

impl Backend {
    /// A backend called `name` that connects with `connect`.
    pub const fn new(name: &'static str, connect: ConnectFn) -> Self {
        Backend { name, connect }
    }

    /// Its name, as `FIXTURE_RUNTIME` gives it.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Connects to this backend's engine (as configured), whatever `FIXTURE_RUNTIME` chooses:
    /// for tools that look at every engine, such as `cargo fixtures`.
    ///
    /// # Errors
    /// [`ErrorKind::Engine`] (or the backend's own) when the engine does not answer.
    pub async fn connect(&self) -> Result<Arc<dyn Runtime>> {
        connect(self).await
    }
}

inventory::collect!(Backend);

/// Every backend linked into this binary, in name order.
pub fn compiled_in() -> Vec<Backend> {
    let mut backends: Vec<Backend> = inventory::iter::<Backend>.into_iter().copied().collect();
    backends.sort_by_key(|b| b.name);
    backends.dedup_by_key(|b| b.name);
    backends
}

/// How long connecting may take: a few requests (ping, version) that a working engine answers
/// in milliseconds, even behind a slow proxy.
const CONNECT_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

static CONNECTED: LazyLock<Mutex<HashMap<&'static str, Arc<dyn Runtime>>>> = LazyLock::new(Default::default);

async fn connect(backend: &Backend) -> Result<Arc<dyn Runtime>> {
    if let Some(rt) = CONNECTED.lock().unwrap_or_else(|p| p.into_inner()).get(backend.name) {
        return Ok(rt.clone());
    }
    // Connected on the library's runtime, and every later call made there: see
    // `executor::OnLibraryRuntime`.
    let connect = backend.connect;
    let name = backend.name;
    // An engine that takes the connection and never answers is reported, not waited on.
    let connected = crate::executor::run(async move {
        match tokio::time::timeout(CONNECT_LIMIT, connect()).await {
            Ok(connected) => connected,
            Err(_) => Err(Error::new(
                ErrorKind::Engine,
                format!("the engine took the connection but did not answer within {}s", CONNECT_LIMIT.as_secs()),
            )
            .with_operation("connect")
            .with_runtime(name)
            .with_hint("is it hung or overloaded? Check DOCKER_HOST / CONTAINER_HOST point at the engine you mean")),
        }
    })
    .await?;
    let rt: Arc<dyn Runtime> = Arc::new(crate::executor::OnLibraryRuntime(connected));
    Ok(CONNECTED.lock().unwrap_or_else(|p| p.into_inner()).entry(backend.name).or_insert(rt).clone())
}

/// The runtime chosen by `FIXTURE_RUNTIME` among `backends`, or the first that answers.
///
/// # Errors
/// [`ErrorKind::Config`] when no backend is listed or `FIXTURE_RUNTIME` names one that is
/// not compiled in; [`ErrorKind::Engine`] when the one named, or every one, does not answer
/// (within 10 s when it takes the connection but stays silent). Each says what was tried
/// and how to fix it.
pub async fn select(backends: &[Backend]) -> Result<Arc<dyn Runtime>> {
    select_with(backends, crate::config::current()?).await
}

async fn select_with(backends: &[Backend], config: &crate::config::Config) -> Result<Arc<dyn Runtime>> {
    let names: Vec<&str> = backends.iter().map(|b| b.name).collect();
    if backends.is_empty() {
        return Err(Error::new(ErrorKind::Config, "no container runtime backend is compiled in")
            .with_hint("depend on `fixtures` with its `docker` or `podman` feature (`docker` is on by default)"));
    }
    if let Some(wanted) = config.runtime.as_deref().filter(|v| !v.is_empty()) {
        let backend = backends.iter().find(|b| b.name == wanted).ok_or_else(|| {
            let known = ["docker", "podman"];
            let what = if known.contains(&wanted) { "is not compiled in" } else { "is not a runtime" };
            Error::new(
                ErrorKind::Config,
                format!(
                    "runtime `{wanted}` (FIXTURE_RUNTIME or fixtures.toml) {what}; compiled in: {}",
                    names.join(", ")
                ),
            )
            .with_hint(format!(
                "set FIXTURE_RUNTIME to one of: {}{}",
                names.join(", "),
                if known.contains(&wanted) {
                    format!(", or turn on the `{wanted}` feature of `fixtures`")
                } else {
                    String::new()
                }
            ))
        })?;
        return connect(backend).await.map_err(|e| {
            let kind = if e.kind() == ErrorKind::Unreachable { ErrorKind::Unreachable } else { ErrorKind::Engine };
            let wrapped =
                Error::new(kind, format!("runtime `{wanted}` (FIXTURE_RUNTIME or fixtures.toml) does not answer"));
            match e.hint() {
                Some(hint) => wrapped.with_hint(hint.to_owned()),
                None => wrapped,
            }
            .with_source(e)
        });
    }
    let mut tried = Vec::new();
    for backend in backends {
        match connect(backend).await {
            Ok(rt) => return Ok(rt),
            Err(e) => tried.push(format!("{}: {e}", backend.name)),
        }
    }
    Err(Error::new(ErrorKind::Engine, format!("no container runtime answers; tried {}", tried.join("; ")))
        .with_hint("start Docker or the Podman service, or point DOCKER_HOST / CONTAINER_HOST at one"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    type Connecting = Pin<Box<dyn Future<Output = Result<Arc<dyn Runtime>>> + Send>>;

    fn dead() -> Connecting {
        Box::pin(async {
            Err(Error::new(ErrorKind::Engine, "no Docker socket at `/nowhere.sock`: is the engine running?")
                .with_runtime("deadbeef"))
        })
    }

    fn config(runtime: Option<&str>) -> Config {
        Config { runtime: runtime.map(str::to_owned), ..Config::default() }
    }

    async fn report(backends: &[Backend], runtime: Option<&str>) -> String {
        match select_with(backends, &config(runtime)).await {
            Ok(rt) => format!("ok: {}", rt.name()),
            Err(e) => format!("{e:?}"),
        }
    }

    #[tokio::test]
    async fn selection_errors_say_what_was_tried_and_how_to_fix_it() {
        let dead_docker = Backend::new("docker", dead);
        let dead_podman = Backend::new("podman", dead);
        insta::assert_snapshot!("no_backend", report(&[], None).await);
        insta::assert_snapshot!("unknown_runtime", report(&[dead_docker], Some("containerd")).await);
        insta::assert_snapshot!("not_compiled_in", report(&[dead_docker], Some("podman")).await);
        insta::assert_snapshot!("dead_socket", report(&[dead_docker], Some("docker")).await);
        insta::assert_snapshot!("none_answers", report(&[dead_docker, dead_podman], None).await);
    }
}
