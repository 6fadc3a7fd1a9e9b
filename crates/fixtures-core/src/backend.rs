//! Choosing the engine: backends a test crate compiled in, picked by configuration.
//!
//! `fixtures-core` names no backend crate; each backend crate offers a [`Backend`] to every
//! binary that links it (the `fixtures` crate links those its features name). An
//! environment uses every backend compiled in, unless it lists its own with `Env::backend`.
//! `FIXTURE_RUNTIME` picks one by name; without it, the first that answers is used, in name
//! order (`docker` before `podman`). With a pool of engines (`engines` in the configuration,
//! `FIXTURE_ENGINES`), each process takes one of them: see [`pool`].

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock, Mutex};

use crate::error::{Error, ErrorKind, Result};
use crate::runtime::Runtime;

/// Connects to an engine.
pub type ConnectFn = fn() -> Pin<Box<dyn Future<Output = Result<Arc<dyn Runtime>>> + Send>>;

/// Connects to the engine at a host (`unix:///...`, `tcp://...`, `ssh://...`).
pub type ConnectToFn = fn(String) -> Pin<Box<dyn Future<Output = Result<Arc<dyn Runtime>>> + Send>>;

/// Where a backend connects when given no host (its configuration, its variables, its default).
pub type HostFn = fn() -> Option<String>;

/// A backend compiled into the test crate.
#[derive(Clone, Copy)]
pub struct Backend {
    name: &'static str,
    connect: ConnectFn,
    connect_to: Option<ConnectToFn>,
    configured_host: Option<HostFn>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend").field("name", &self.name).finish()
    }
}

impl Backend {
    /// A backend called `name` that connects with `connect`.
    pub const fn new(name: &'static str, connect: ConnectFn) -> Self {
        Backend { name, connect, connect_to: None, configured_host: None }
    }

    /// The same backend, saying where it connects when given no host: reports of an engine
    /// that does not answer name it.
    pub const fn with_configured_host(self, configured_host: HostFn) -> Self {
        Backend { configured_host: Some(configured_host), ..self }
    }

    /// The same backend, able to connect to a host given by name (an engine of a pool).
    pub const fn with_connect_to(self, connect_to: ConnectToFn) -> Self {
        Backend { connect_to: Some(connect_to), ..self }
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

    /// Connects to the engine at `host` (an engine of a pool), for tools that look at every one.
    ///
    /// # Errors
    /// As [`Backend::connect`]; [`ErrorKind::Config`] when this backend takes no host.
    pub async fn connect_to(&self, host: &str) -> Result<Arc<dyn Runtime>> {
        connect_at(self, Some(host)).await
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

/// How long connecting may take in all. A backend gives the engine's first answer (a ping) a
/// short limit of its own, which tells a hung engine; the requests after it (version, info)
/// wait on a busy engine's locks: Podman's take seconds while it creates a hundred containers
/// on two cores. This bounds a connection that answers pings and nothing else.
const CONNECT_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Engines connected to, by backend (its name and its connecting function: two backends of
/// one name that connect differently are two) and host (`None`: as configured).
type Connected = HashMap<(&'static str, usize, Option<String>), Arc<dyn Runtime>>;

static CONNECTED: LazyLock<Mutex<Connected>> = LazyLock::new(Default::default);

async fn connect(backend: &Backend) -> Result<Arc<dyn Runtime>> {
    connect_at(backend, None).await
}

/// Connects `backend` to `host` (`None`: the engine its configuration names), once per process.
async fn connect_at(backend: &Backend, host: Option<&str>) -> Result<Arc<dyn Runtime>> {
    let key = (backend.name, backend.connect as usize, host.map(str::to_owned));
    if let Some(rt) = CONNECTED.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok(rt.clone());
    }
    // Connected on the library's runtime, and every later call made there: see
    // `executor::OnLibraryRuntime`.
    let name = backend.name;
    let connecting = match (host, backend.connect_to) {
        (None, _) => (backend.connect)(),
        (Some(host), Some(connect_to)) => connect_to(host.to_owned()),
        (Some(host), None) => {
            return Err(Error::new(
                ErrorKind::Config,
                format!("backend `{name}` cannot be pointed at `{host}`: it connects only as configured"),
            )
            .with_hint("list it without a host, or use a backend that takes one (docker, podman)"));
        }
    };
    // An engine that takes the connection and never answers is reported, not waited on.
    let where_ = host.map(str::to_owned).or_else(|| backend.configured_host.and_then(|f| f())).unwrap_or_default();
    let connected = crate::executor::run(async move {
        match tokio::time::timeout(CONNECT_LIMIT, connecting).await {
            Ok(connected) => connected,
            Err(_) => Err(Error::new(
                ErrorKind::Engine,
                format!(
                    "the engine answered but connecting did not finish within {} s (its version and info requests)",
                    CONNECT_LIMIT.as_secs()
                ),
            )
            .with_operation("connect")
            .with_runtime(name)
            .with_host(where_)
            .with_hint(
                "is it overloaded or stuck on a lock? Check DOCKER_HOST / CONTAINER_HOST point at the engine you mean",
            )),
        }
    })
    .await?;
    let rt: Arc<dyn Runtime> = Arc::new(crate::executor::OnLibraryRuntime(connected));
    Ok(CONNECTED.lock().unwrap_or_else(|p| p.into_inner()).entry(key).or_insert(rt).clone())
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
    if !config.engines.is_empty() {
        return pool::select(backends, config).await;
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
            // The report's `runtime: <backend> at <host>` line, from where the backend looked.
            let wrapped =
                Error::new(kind, format!("runtime `{wanted}` (FIXTURE_RUNTIME or fixtures.toml) does not answer"))
                    .with_runtime(e.runtime().unwrap_or(wanted).to_owned())
                    .with_host(
                        e.host()
                            .map(str::to_owned)
                            .or_else(|| backend.configured_host.and_then(|f| f()))
                            .unwrap_or_default(),
                    );
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

/// A pool of engines: the processes of a run are spread over them, one engine per process.
///
/// Each entry is `host` or `runtime=host` (`docker=unix:///var/run/docker.sock`,
/// `podman=ssh://ci@build-2/run/podman/podman.sock`); a bare host goes to the backend
/// `runtime` names, else the first compiled in (`docker` speaks to Podman's Docker-compatible
/// socket too). A process takes the next engine of its run in turn (the run's processes
/// share a counter: nextest's processes, or CI shards given one `FIXTURE_RUN_ID`), or one by
/// its process id when it runs alone; an engine that does not answer is passed over for the
/// next one. Every fixture of the process lives on that engine, and session objects exist
/// once per engine (see `cleanup`).
pub mod pool {
    use super::*;

    /// One entry of the pool: the backend's name and the host.
    pub(crate) fn entry<'a>(text: &'a str, default: &'a str) -> (&'a str, &'a str) {
        match text.split_once('=') {
            Some((runtime, host)) if !runtime.contains(':') && !runtime.contains('/') => (runtime.trim(), host.trim()),
            _ => (default, text.trim()),
        }
    }

    /// The pool's engines as `(runtime, host)`, for tools that look at every one (`cargo
    /// fixtures`); empty without a pool. A bare host goes to `runtime`, else to `default`.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when the configuration cannot be read.
    pub fn engines(default: &str) -> Result<Vec<(String, String)>> {
        let config = crate::config::current()?;
        Ok(entries(config, default).into_iter().map(|(r, h)| (r.to_owned(), h.to_owned())).collect())
    }

    /// `config`'s pool as `(runtime, host)`: a bare host goes to `runtime`, else to `default`.
    fn entries<'a>(config: &'a crate::config::Config, default: &'a str) -> Vec<(&'a str, &'a str)> {
        let default = config.runtime.as_deref().filter(|r| !r.is_empty()).unwrap_or(default);
        config.engines.iter().map(|e| entry(e, default)).collect()
    }

    pub(super) async fn select(backends: &[Backend], config: &crate::config::Config) -> Result<Arc<dyn Runtime>> {
        let engines = entries(config, backends[0].name);
        let first = crate::cleanup::next_slot() % engines.len();
        let mut tried = Vec::new();
        for (runtime, host) in engines.iter().cycle().skip(first).take(engines.len()) {
            let Some(backend) = backends.iter().find(|b| b.name == *runtime) else {
                let names: Vec<&str> = backends.iter().map(|b| b.name).collect();
                return Err(Error::new(
                    ErrorKind::Config,
                    format!("engine `{runtime}={host}` of the pool (FIXTURE_ENGINES or `engines`): runtime `{runtime}` is not compiled in"),
                )
                .with_hint(format!("write each engine as `runtime=host` with a runtime of: {}", names.join(", "))));
            };
            match connect_at(backend, Some(host)).await {
                Ok(rt) => {
                    tracing::debug!(runtime, host, "this process's engine, of the pool");
                    return Ok(rt);
                }
                Err(e) if e.kind() == ErrorKind::Config => return Err(e),
                Err(e) => {
                    tracing::warn!(runtime, host, error = %e, "an engine of the pool does not answer; trying the next");
                    tried.push(format!("{runtime}={host}: {e}"));
                }
            }
        }
        Err(Error::new(
            ErrorKind::Engine,
            format!("no engine of the pool (FIXTURE_ENGINES or `engines`) answers; tried {}", tried.join("; ")),
        )
        .with_hint("start them, or take those that are down out of the list"))
    }
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

    #[test]
    fn pool_entries_name_their_runtime_or_take_the_default() {
        assert_eq!(
            pool::entry("podman=ssh://ci@b/run/podman/podman.sock", "docker"),
            ("podman", "ssh://ci@b/run/podman/podman.sock")
        );
        assert_eq!(pool::entry("unix:///var/run/docker.sock", "docker"), ("docker", "unix:///var/run/docker.sock"));
        assert_eq!(pool::entry("tcp://h:2376?a=b", "podman"), ("podman", "tcp://h:2376?a=b"));
    }

    #[tokio::test]
    async fn a_pool_passes_over_engines_that_do_not_answer() {
        let dead_docker = Backend::new("docker", dead).with_connect_to(|_| dead());
        let config =
            Config { engines: vec!["docker=unix:///a.sock".into(), "unix:///b.sock".into()], ..Config::default() };
        let Err(err) = select_with(&[dead_docker], &config).await else { panic!("none answers") };
        let said = err.to_string();
        assert!(said.contains("docker=unix:///a.sock: ") && said.contains("docker=unix:///b.sock: "), "{said}");
        let config = Config { engines: vec!["containerd=unix:///c.sock".into()], ..Config::default() };
        let Err(err) = select_with(&[dead_docker], &config).await else { panic!("not compiled in") };
        assert_eq!(err.kind(), ErrorKind::Config, "{err:?}");
    }
}
