//! The Podman backend of `fixtures-core`, over libpod's API with [podman-api].
//!
//! ```no_run
//! # async fn demo() -> fixtures_core::Result<()> {
//! use std::sync::Arc;
//! use fixtures_core::Runtime;
//!
//! let podman = fixtures_podman::PodmanRuntime::connect().await?;
//! println!("{:?}", podman.version().await?);
//! let runtime: Arc<dyn Runtime> = Arc::new(podman);
//! # Ok(()) }
//! ```
//!
//! It speaks libpod's API at version 4.3.1 (podman-api 0.11's), which Podman 4.3 and
//! later serve. It behaves as `fixtures_docker::DockerRuntime` does: image ids carry
//! `sha256:`, names given without a registry read back without Podman's `localhost/`,
//! the default network is called `bridge`, and libpod's errors map to the same kinds
//! (404 and libpod's "no such …" / "not known" → [`ErrorKind::NotFound`], 409 and
//! "already in use" / "state improper" / "being used" → [`ErrorKind::Conflict`]).
//!
//! A spec's `raw` fields are merged into libpod's create body (its `SpecGenerator`),
//! so they are written in libpod's field names (`{"sysctl": {...}}`), not Docker's.
//!
//! The raw client is reachable with [`PodmanRuntime::client`]; it follows
//! podman-api's versioning, not this crate's.
//!
//! [podman-api]: https://docs.rs/podman-api

#![warn(missing_docs)]

mod libpod;
mod request;

use std::any::Any;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use fixtures_core::runtime::{
    ContainerInfo, ContainerSummary, Event, ExecOutput, ImageInfo, LogChunk, NetworkInfo, Progress, ProgressSink,
    Stream, VersionInfo, VolumeInfo,
};
use fixtures_core::spec::{
    BuildContext, BuildSpec, ContainerSpec, ExecSpec, LabelFilter, LogsSpec, NetworkSpec, PullSpec, VolumeSpec,
};
use fixtures_core::{Error, ErrorKind, Result, Runtime};
use fixtures_engine_api as compat;
use fixtures_engine_api::podman::libpod as answer;
use futures_util::stream::BoxStream;
use futures_util::{FutureExt, StreamExt, TryStreamExt};
use hyper::Method;
use podman_api::Podman;
use podman_api::conn::TtyChunk;
use podman_api::opts;
use serde_json::Value;

use crate::libpod::{Libpod, RequestError};
use crate::request::network_name;

const RUNTIME: &str = "podman";

/// The socket of the rootful service.
pub const ROOT_SOCKET: &str = "unix:///run/podman/podman.sock";

/// A [`Runtime`] over Podman's libpod API.
#[derive(Debug, Clone)]
pub struct PodmanRuntime {
    client: Podman,
    libpod: Libpod,
    host: String,
    /// When to run each container's health check: Podman runs them with systemd timers,
    /// which do not run where there is no systemd (see [`PodmanRuntime::inspect_container`]).
    health: Arc<compat::podman::HealthSchedule>,
    /// Whether the service runs rootless (its socket's owner, or its `/info` when remote).
    rootless: bool,
    /// Rootless on cgroups v1: the engine cannot limit resources, and drops limits silently.
    limits_ignored: bool,
    /// The engine's host when it is another machine (see `fixtures_engine_api::remote`).
    remote: Option<std::net::IpAddr>,
}

// --- errors ---

/// podman-api writes a fault as `message: cause`, and libpod's message usually ends
/// with the cause already; say it once.
fn tidy(message: &str) -> String {
    let message = message.trim();
    match message.rsplit_once(": ") {
        Some((head, cause)) if !cause.is_empty() && head.ends_with(cause) => head.to_owned(),
        Some((head, "")) => head.to_owned(),
        _ => message.trim_end_matches(':').trim().to_owned(),
    }
}

fn fault(op: &str, status: u16, message: &str) -> Error {
    let message = tidy(message);
    Error::new(compat::status::kind(status, &message), format!("the engine answered {status}: {message}"))
        .with_operation(op.to_owned())
        .with_runtime(RUNTIME)
}

/// Maps a podman-api error to this library's kinds.
fn map_error(op: &str, e: podman_api::Error) -> Error {
    match e {
        podman_api::Error::Fault { code, message } => fault(op, code.as_u16(), &message),
        podman_api::Error::Error(podman_api::conn::Error::Fault { code, message }) => {
            fault(op, code.as_u16(), &message)
        }
        podman_api::Error::ServerError(e) => {
            let message = e.to_string();
            Error::new(compat::status::kind(500, &message), message).with_operation(op.to_owned()).with_runtime(RUNTIME)
        }
        other => {
            Error::new(fixtures_engine_api::transport::kind(&other), fixtures_engine_api::transport::failure(&other))
                .with_operation(op.to_owned())
                .with_runtime(RUNTIME)
                .with_source(other)
        }
    }
}

fn err(op: &str) -> impl Fn(podman_api::Error) -> Error + '_ {
    move |e| map_error(op, e)
}

/// Maps an error of a direct libpod request.
fn map_request_error(op: &str, e: RequestError) -> Error {
    match e {
        RequestError::Fault(f) => {
            let text = if f.cause.is_empty() { f.message.clone() } else { format!("{}: {}", f.message, f.cause) };
            Error::new(
                compat::status::kind(f.status, &text),
                format!("the engine answered {}: {}", f.status, tidy(&f.message)),
            )
            .with_operation(op.to_owned())
            .with_runtime(RUNTIME)
        }
        other => {
            Error::new(fixtures_engine_api::transport::kind(&other), fixtures_engine_api::transport::failure(&other))
                .with_operation(op.to_owned())
                .with_runtime(RUNTIME)
                .with_source(other)
        }
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

fn from_slice(op: &str, bytes: &[u8]) -> Result<Value> {
    serde_json::from_slice(bytes).map_err(|e| {
        Error::new(ErrorKind::Engine, "the engine's answer is not the JSON expected")
            .with_operation(op.to_owned())
            .with_runtime(RUNTIME)
            .with_source(e)
    })
}

/// What to ask libpod for a label filter (`key` or `key=value`); the answer is checked
/// again here, since libpod's semantics for several label filters vary by endpoint.
fn label_query(filter: &LabelFilter) -> Vec<(String, Option<String>)> {
    filter.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn labels_of(doc: &Value, key: &str) -> fixtures_core::spec::Labels {
    doc.get(key)
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
        .unwrap_or_default()
}

/// A stream that owns what it reads from: `produce` sends into a channel and is driven
/// by polling the stream itself (no task is spawned); dropping the stream ends it.
fn owned_stream<T, F, Fut>(produce: F) -> BoxStream<'static, T>
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<T>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(32);
    let producer = produce(tx).into_stream().filter_map(|()| std::future::ready(None));
    let consumer = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    futures_util::stream::select(producer, consumer).boxed()
}

/// Runs a listing again when it failed with "not found": libpod lists names, then looks each
/// up, and an object removed in between fails the whole listing. Docker's never does.
async fn listing<T, F, Fut>(op: &str, mut list: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, podman_api::Error>>,
{
    let mut attempt = 0;
    loop {
        match list().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                let e = map_error(op, e);
                if e.kind() != ErrorKind::NotFound || attempt >= 5 {
                    return Err(e);
                }
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(20 * attempt)).await;
            }
        }
    }
}

/// Whether `repository` names a registry on this machine, which Docker reaches over
/// plain HTTP without being told to.
fn loopback_registry(repository: &str) -> bool {
    let Some((host, _)) = repository.split_once('/') else { return false };
    let host = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A build context as a folder: the given one, or a temporary one removed on drop.
struct ContextDir {
    path: PathBuf,
    temporary: bool,
}

impl Drop for ContextDir {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

fn temporary_dir() -> Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let path = std::env::temp_dir().join(format!(
        "fixtures-podman-build-{}-{nanos:x}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&path).map_err(|e| Error::from(e).with_operation(format!("create {}", path.display())))?;
    Ok(path)
}

/// libpod builds from a folder (podman-api tars it): unpack an archive, or write the Dockerfile.
fn context_dir(context: &BuildContext) -> Result<ContextDir> {
    match context {
        BuildContext::Dir(dir) => Ok(ContextDir { path: dir.clone(), temporary: false }),
        BuildContext::Tar(bytes) => {
            let dir = ContextDir { path: temporary_dir()?, temporary: true };
            tar::Archive::new(bytes.as_ref()).unpack(&dir.path).map_err(|e| {
                Error::new(ErrorKind::InvalidInput, "the build context is not a readable tar archive").with_source(e)
            })?;
            Ok(dir)
        }
        BuildContext::Dockerfile(text) => {
            let dir = ContextDir { path: temporary_dir()?, temporary: true };
            std::fs::write(dir.path.join("Dockerfile"), text)?;
            Ok(dir)
        }
        _ => {
            Err(Error::new(ErrorKind::Unsupported, "this kind of build context is not supported by the Podman backend")
                .with_runtime(RUNTIME))
        }
    }
}

fn is_image_id(line: &str) -> bool {
    line.len() == 64 && line.bytes().all(|b| b.is_ascii_hexdigit())
}

impl PodmanRuntime {
    /// Connects to the service named by the configuration's `podman_host`, else
    /// `CONTAINER_HOST`, else the rootful socket
    /// (`/run/podman/podman.sock`) when running as root, else
    /// `$XDG_RUNTIME_DIR/podman/podman.sock`. TLS and ssh are as
    /// `fixtures_engine_api::remote` describes.
    ///
    /// # Errors
    /// [`ErrorKind::Engine`] when the service does not answer, saying where it looked;
    /// [`ErrorKind::Config`] when the configuration cannot be read.
    pub async fn connect() -> Result<Self> {
        Self::connect_to(&Self::configured_host()?).await
    }

    /// Where [`PodmanRuntime::connect`] connects: the configuration's `podman_host`, else
    /// `CONTAINER_HOST`, else [`default_host`].
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when the configuration cannot be read.
    pub fn configured_host() -> Result<String> {
        let configured = fixtures_core::config::current()?.podman_host.clone();
        let host = configured.or_else(|| std::env::var("CONTAINER_HOST").ok()).filter(|h| !h.is_empty());
        Ok(host.unwrap_or_else(default_host))
    }

    /// Connects to `host` (`unix:///path`, `tcp://host:port`,
    /// `ssh://user@host[:port][/path/to/podman.sock]`).
    ///
    /// # Errors
    /// [`ErrorKind::Engine`] when the service does not answer; [`ErrorKind::Config`] for a
    /// scheme that is not supported.
    pub async fn connect_to(host: &str) -> Result<Self> {
        // Every failure to connect says which runtime, and where it looked.
        Self::connect_unnamed(host).await.map_err(|e| e.with_runtime(RUNTIME).with_host(host))
    }

    async fn connect_unnamed(host: &str) -> Result<Self> {
        let unsupported = || {
            Error::new(
                ErrorKind::Config,
                format!(
                    "Podman host `{host}` is not supported: use unix:///path/to/podman.sock, tcp://host:port or \
                     ssh://user@host[:port]/path/to/podman.sock"
                ),
            )
            .with_runtime(RUNTIME)
        };
        if let Some(path) = host.strip_prefix("unix://") {
            if !Path::new(path).exists() {
                return Err(Error::new(
                    ErrorKind::Unreachable,
                    format!(
                        "no Podman socket at `{path}`: is the service running? Set CONTAINER_HOST to reach another one"
                    ),
                )
                .with_operation("connect")
                .with_runtime(RUNTIME)
                .with_hint(format!("start it with `podman system service --time=0 unix://{path}`")));
            }
        }
        let settings = compat::remote::Settings::from_config(ROOT_SOCKET.trim_start_matches("unix://"))?;
        let reach = compat::remote::reach(host, &settings, RUNTIME).await?;
        let (client, libpod) = match &reach.via {
            compat::remote::Via::Unix(path) => (Podman::unix(path), Libpod::unix(path)),
            compat::remote::Via::Tcp(authority) if !authority.is_empty() => {
                (Podman::tcp(authority).map_err(|_| unsupported())?, Libpod::tcp(authority))
            }
            compat::remote::Via::Tcp(_) => return Err(unsupported()),
        };
        // podman-api's default version is libpod 4.3.1's; `adjust_api_version` would lower
        // it to the Docker-compatible number, which libpod's network endpoints refuse.
        let mut runtime = PodmanRuntime {
            client,
            libpod,
            host: host.to_owned(),
            health: Arc::default(),
            rootless: false,
            limits_ignored: false,
            remote: reach.remote,
        };
        // A ping in a short time: a hung service is told apart from a busy one, whose `/info`
        // takes its runtime's locks and may take seconds under load.
        compat::remote::ping_within(runtime.ping())
            .await
            .map_err(|e| e.with_hint(format!("tried {host}; is `podman system service` running?")))?;
        // On this machine the socket and the kernel say it; a remote engine is asked.
        let local = reach.local_socket().and_then(compat::local::runs_rootless);
        let (rootless, cgroups_v1) = match local {
            Some(rootless) => (rootless, !compat::local::cgroups_v2()),
            None => {
                let info =
                    runtime.libpod.call(Method::GET, "/info", None).await.map_err(|e| map_request_error("info", e))?;
                let info = serde_json::from_slice::<serde_json::Value>(&info).unwrap_or_default();
                (
                    info.pointer("/host/security/rootless").and_then(serde_json::Value::as_bool) == Some(true),
                    info.pointer("/host/cgroupVersion").and_then(serde_json::Value::as_str) == Some("v1"),
                )
            }
        };
        runtime.rootless = rootless;
        runtime.limits_ignored = rootless && cgroups_v1;
        Ok(runtime)
    }

    /// The podman-api client, for what this library does not cover. It follows
    /// podman-api's versioning, not this crate's.
    pub fn client(&self) -> &Podman {
        &self.client
    }

    /// The host this runtime talks to.
    pub fn host(&self) -> &str {
        &self.host
    }

    async fn inspect_raw(&self, id: &str) -> Result<Value> {
        let op = "inspect container";
        // Directly: podman-api's inspect also asks for sizes, which walks the filesystem.
        let path = format!("/containers/{}/json", compat::request::encode(id));
        let bytes = compat::podman::inspect_retrying_exit_races(|| async {
            self.libpod.call(Method::GET, &path, None).await.map_err(|e| map_request_error(op, e))
        })
        .await
        .map_err(|e| e.with_container(id.to_owned()))?;
        from_slice(op, &bytes)
    }

    async fn containers_on(&self, network: &str) -> Result<Vec<String>> {
        let opts = opts::ContainerListOpts::builder()
            .all(true)
            .filter([opts::ContainerListFilter::Network(network.to_owned())])
            .build();
        let containers = self.client.containers();
        let list = listing("list containers", || containers.list(&opts)).await?;
        Ok(list.into_iter().filter_map(|c| c.id).collect())
    }

    /// One build; [`Runtime::build_image`] runs it again when it raced with an image removal.
    async fn build_once(&self, spec: &BuildSpec, progress: ProgressSink<'_>) -> Result<String> {
        let context = context_dir(&spec.context)?;
        let mut builder = opts::ImageBuildOpts::builder(context.path.to_string_lossy())
            .dockerfile(spec.dockerfile.clone().unwrap_or_else(|| "Dockerfile".to_owned()))
            .remove(spec.remove_intermediate)
            .force_rm(spec.remove_intermediate)
            .no_cache(spec.no_cache)
            .pull(spec.pull);
        if !spec.build_args.is_empty() {
            builder = builder.build_args(spec.build_args.clone());
        }
        if !spec.labels.is_empty() {
            builder = builder.labels(spec.labels.clone());
        }
        if let Some(tag) = spec.tags.first() {
            builder = builder.tag(tag);
        }
        if let Some(target) = &spec.target {
            builder = builder.target(target);
        }
        if let Some(platform) = &spec.platform {
            let mut parts = platform.splitn(3, '/');
            let mut p = opts::Platform::new(parts.next().unwrap_or("linux"));
            if let Some(arch) = parts.next() {
                p = p.arch(arch);
            }
            if let Some(variant) = parts.next() {
                p = p.version(variant);
            }
            builder = builder.platform(p);
        }
        let options = builder.build();
        let failed = |kind: ErrorKind, message: String, tail: &[String]| {
            Error::new(kind, message)
                .with_operation("build image")
                .with_runtime(RUNTIME)
                .with_logs_tail(tail.join("\n"))
        };
        let images = self.client.images();
        let mut stream = images.build(&options).map_err(|e| {
            let e = map_error("build image", e);
            Error::new(ErrorKind::Build, format!("the build context `{}` cannot be sent", context.path.display()))
                .with_runtime(RUNTIME)
                .with_source(e)
        })?;
        let mut tail: Vec<String> = Vec::new();
        let mut id = None;
        while let Some(item) = stream.next().await {
            let report = match item {
                Ok(report) => report,
                Err(e) => {
                    let e = map_error("build image", e);
                    let kind = if e.kind() == ErrorKind::Engine { ErrorKind::Build } else { e.kind() };
                    return Err(failed(kind, e.message().to_owned(), &tail));
                }
            };
            for line in report.stream.lines() {
                let line = line.trim_end();
                if line.is_empty() {
                    continue;
                }
                if is_image_id(line) {
                    id = Some(answer::image_id(line));
                }
                tracing::debug!(target: "fixtures::build", "{line}");
                progress(Progress::new(line.to_owned()));
                tail.push(line.to_owned());
                if tail.len() > 30 {
                    tail.remove(0);
                }
            }
        }
        drop(stream);
        let id = id
            .ok_or_else(|| failed(ErrorKind::Build, "the engine did not say which image it built".to_owned(), &tail))?;
        for extra in spec.tags.iter().skip(1) {
            let (repo, tag) = extra.rsplit_once(':').filter(|(_, t)| !t.contains('/')).unwrap_or((extra, "latest"));
            self.tag_image(&id, repo, tag).await?;
        }
        Ok(id)
    }
}

/// `unix:///run/podman/podman.sock` for root, else the user's socket under `XDG_RUNTIME_DIR`.
pub fn default_host() -> String {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the effective user.
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0);
    if uid == 0 {
        return ROOT_SOCKET.to_owned();
    }
    let dir =
        std::env::var("XDG_RUNTIME_DIR").ok().filter(|d| !d.is_empty()).unwrap_or_else(|| format!("/run/user/{uid}"));
    format!("unix://{dir}/podman/podman.sock")
}

#[async_trait]
impl Runtime for PodmanRuntime {
    fn name(&self) -> &str {
        RUNTIME
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn is_local(&self) -> bool {
        self.remote.is_none() && self.host.starts_with("unix://")
    }

    fn remote(&self) -> Option<std::net::IpAddr> {
        self.remote
    }

    fn host(&self) -> &str {
        &self.host
    }

    fn rootless(&self) -> bool {
        self.rootless
    }

    async fn ping(&self) -> Result<()> {
        self.libpod.call(Method::GET, "/_ping", None).await.map(drop).map_err(|e| map_request_error("ping", e))
    }

    async fn version(&self) -> Result<VersionInfo> {
        let v = self.client.version().await.map_err(err("version"))?;
        // `ApiVersion` is the Docker API level the engine offers; libpod's own is in Components.
        Ok(VersionInfo::new(
            RUNTIME,
            v.version.unwrap_or_default(),
            v.api_version.unwrap_or_default(),
            format!("{}/{}", v.os.unwrap_or_default(), v.arch.unwrap_or_default()),
        ))
    }

    async fn build_image(&self, spec: &BuildSpec, progress: ProgressSink<'_>) -> Result<String> {
        compat::podman::build_retrying_storage_races(|| self.build_once(spec, progress)).await
    }

    async fn pull_image(&self, spec: &PullSpec, progress: ProgressSink<'_>) -> Result<String> {
        let reference = spec.reference();
        let mut builder = opts::PullOpts::builder().reference(&reference);
        if let Some(platform) = &spec.platform {
            let mut parts = platform.splitn(3, '/');
            if let Some(os) = parts.next() {
                builder = builder.os(os);
            }
            if let Some(arch) = parts.next() {
                builder = builder.arch(arch);
            }
            if let Some(variant) = parts.next() {
                builder = builder.variant(variant);
            }
        }
        if loopback_registry(&spec.repository) {
            // As Docker does for registries on 127.0.0.0/8: plain HTTP is allowed.
            builder = builder.tls_verify(false);
        }
        // Given in code, else the login `podman login` (or `docker login`) keeps for the registry.
        let found = match &spec.credentials {
            Some(_) => None,
            None => {
                let registry = compat::auth::registry_of(&spec.repository);
                compat::auth::lookup(&registry, compat::auth::Tool::Podman)
            }
        };
        if let Some(c) = spec.credentials.as_ref().or(found.as_ref()) {
            let mut auth = opts::RegistryAuth::builder();
            if let Some(u) = &c.username {
                auth.username(u);
            }
            if let Some(p) = &c.password {
                auth.password(p);
            }
            if let Some(s) = &c.server_address {
                auth.server_address(s);
            }
            let auth = match &c.identity_token {
                Some(token) => opts::RegistryAuth::token(token),
                None => auth.build(),
            };
            builder.auth(auth);
        }
        let options = builder.build();
        let pull_failed = |message: String| {
            Error::new(ErrorKind::Pull, format!("pulling `{reference}` failed: {message}"))
                .with_image(reference.clone())
                .with_operation("pull image")
                .with_runtime(RUNTIME)
        };
        let images = self.client.images();
        let mut stream = images.pull(&options);
        while let Some(item) = stream.next().await {
            let report = item.map_err(|e| {
                let e = map_error("pull image", e);
                pull_failed(e.message().to_owned())
            })?;
            if let Some(error) = report.error.filter(|e| !e.is_empty()) {
                return Err(pull_failed(error.trim().to_owned()));
            }
            if let Some(text) = report.stream {
                for line in text.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
                    tracing::debug!(target: "fixtures::pull", "{line}");
                    progress(Progress::new(line.to_owned()));
                }
            }
        }
        drop(stream);
        Ok(self.inspect_image(&reference).await?.id)
    }

    async fn inspect_image(&self, reference: &str) -> Result<ImageInfo> {
        let info = self
            .client
            .images()
            .get(reference)
            .inspect()
            .await
            .map_err(|e| map_error("inspect image", e).with_image(reference.to_owned()))?;
        let raw = to_json(&info);
        let mut info = compat::image_info(answer::image(raw.clone()));
        info.raw = raw;
        Ok(info)
    }

    async fn list_images(&self, filter: &LabelFilter) -> Result<Vec<ImageInfo>> {
        let filters = label_query(filter).into_iter().map(|(k, v)| match v {
            Some(v) => opts::ImageListFilter::LabelKeyVal(k, v),
            None => opts::ImageListFilter::LabelKey(k),
        });
        let options = opts::ImageListOpts::builder().filter(filters).build();
        let images = self.client.images();
        let list = listing("list images", || images.list(&options)).await?;
        Ok(list
            .iter()
            .map(to_json)
            .filter(|doc| filter.matches(&labels_of(doc, "Labels")))
            .map(|raw| {
                let mut info = compat::image_info(answer::image(raw.clone()));
                info.raw = raw;
                info
            })
            .collect())
    }

    async fn tag_image(&self, reference: &str, repository: &str, tag: &str) -> Result<()> {
        let options = opts::ImageTagOpts::builder().repo(repository).tag(tag).build();
        self.client
            .images()
            .get(reference)
            .tag(&options)
            .await
            .map_err(|e| map_error("tag image", e).with_image(reference.to_owned()))
    }

    async fn remove_image(&self, reference: &str, force: bool) -> Result<()> {
        let image = self.client.images().get(reference);
        let removed = if force { image.remove().await } else { image.delete().await };
        removed.map_err(|e| map_error("remove image", e).with_image(reference.to_owned()))
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<String> {
        let op = "create container";
        let limited = |r: &fixtures_core::spec::Resources| {
            r.memory.is_some()
                || r.memory_reservation.is_some()
                || r.memory_swap.is_some()
                || r.nano_cpus.is_some()
                || r.pids_limit.is_some()
        };
        let mut unlimited;
        let spec = if self.limits_ignored && limited(&spec.resources) && spec.resources.optional {
            tracing::warn!(
                container = spec.name.as_deref().unwrap_or_default(),
                "rootless Podman on cgroups v1 cannot limit memory, CPUs or processes: the container runs without its limits"
            );
            unlimited = spec.clone();
            let r = &mut unlimited.resources;
            (r.memory, r.memory_reservation, r.memory_swap, r.nano_cpus, r.pids_limit) = (None, None, None, None, None);
            &unlimited
        } else {
            spec
        };
        if self.limits_ignored && limited(&spec.resources) {
            // Podman would create it and drop the limits with a warning no API caller sees.
            return Err(Error::new(
                ErrorKind::Unsupported,
                "rootless Podman on cgroups v1 cannot limit a container's memory, CPUs or processes",
            )
            .with_operation(op)
            .with_runtime(RUNTIME)
            .with_hint("run rootless Podman on cgroups v2 (it delegates limits there), rootful Podman, or Docker; or drop the limit"));
        }
        let spec = fixtures_engine_api::podman::with_default_rlimits(spec);
        let spec = spec.as_ref();
        let body = request::container_create(spec).map_err(|e| e.with_operation(op).with_runtime(RUNTIME))?;
        let answer = self
            .libpod
            .call(Method::POST, "/containers/create", Some(&body))
            .await
            .map_err(|e| map_request_error(op, e).with_image(spec.image.clone()))?;
        let created = from_slice(op, &answer)?;
        created.get("Id").and_then(Value::as_str).map(str::to_owned).ok_or_else(|| {
            Error::new(ErrorKind::Engine, "the engine did not say which container it created")
                .with_operation(op)
                .with_runtime(RUNTIME)
        })
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        self.client
            .containers()
            .get(id)
            .start(None)
            .await
            .map_err(|e| map_error("start container", e).with_container(id.to_owned()))
    }

    async fn inspect_container(&self, id: &str) -> Result<ContainerInfo> {
        let mut raw = self.inspect_raw(id).await?;
        if self.health.due(&raw) {
            let path = format!("/containers/{}/healthcheck", compat::request::encode(id));
            // A failing check is an answer too (libpod records it); only the status matters.
            if let Err(e) = self.libpod.call(Method::GET, &path, None).await {
                tracing::debug!(container_id = id, "health check: {e}");
            }
            raw = self.inspect_raw(id).await?;
        }
        let mut info = compat::container_info(answer::container(raw.clone()));
        info.raw = raw;
        Ok(info)
    }

    async fn list_containers(&self, filter: &LabelFilter) -> Result<Vec<ContainerSummary>> {
        let filters = label_query(filter).into_iter().map(|(k, v)| match v {
            Some(v) => opts::ContainerListFilter::LabelKeyVal(k, v),
            None => opts::ContainerListFilter::LabelKey(k),
        });
        let options = opts::ContainerListOpts::builder().all(true).filter(filters).build();
        let containers = self.client.containers();
        let list = listing("list containers", || containers.list(&options)).await?;
        Ok(list.iter().map(|c| compat::container_summary(&to_json(c))).filter(|c| filter.matches(&c.labels)).collect())
    }

    async fn stop_container(&self, id: &str, timeout_secs: i64) -> Result<()> {
        let options = opts::ContainerStopOpts::builder().timeout(timeout_secs.max(0) as usize).build();
        match self.client.containers().get(id).stop(&options).await {
            Ok(()) => Ok(()),
            Err(e) => {
                let e = map_error("stop container", e).with_container(id.to_owned());
                // 304: already stopped.
                if e.message().starts_with("the engine answered 304") { Ok(()) } else { Err(e) }
            }
        }
    }

    async fn kill_container(&self, id: &str, signal: &str) -> Result<()> {
        self.client
            .containers()
            .get(id)
            .send_signal(signal)
            .await
            .map_err(|e| map_error(&format!("kill container with {signal}"), e).with_container(id.to_owned()))
    }

    async fn restart_container(&self, id: &str, timeout_secs: i64) -> Result<()> {
        self.client
            .containers()
            .get(id)
            .restart_with_timeout(timeout_secs.max(0) as usize)
            .await
            .map_err(|e| map_error("restart container", e).with_container(id.to_owned()))
    }

    async fn pause_container(&self, id: &str) -> Result<()> {
        self.client
            .containers()
            .get(id)
            .pause()
            .await
            .map_err(|e| map_error("pause container", e).with_container(id.to_owned()))
    }

    async fn unpause_container(&self, id: &str) -> Result<()> {
        self.client
            .containers()
            .get(id)
            .unpause()
            .await
            .map_err(|e| map_error("unpause container", e).with_container(id.to_owned()))
    }

    async fn wait_container(&self, id: &str) -> Result<i64> {
        let op = "wait container";
        // Directly: podman-api's wait drops the exit code libpod answers with.
        // `stopped` and `exited` together are Docker's `not-running`.
        let path = format!("/containers/{}/wait?condition=stopped&condition=exited", compat::request::encode(id));
        let answer = self
            .libpod
            .call(Method::POST, &path, None)
            .await
            .map_err(|e| map_request_error(op, e).with_container(id.to_owned()))?;
        let text = String::from_utf8_lossy(&answer);
        text.trim().parse::<i64>().map_err(|_| {
            Error::new(
                ErrorKind::Engine,
                format!("the engine answered the wait with `{}`, not an exit code", text.trim()),
            )
            .with_operation(op)
            .with_container(id.to_owned())
            .with_runtime(RUNTIME)
        })
    }

    async fn remove_container(&self, id: &str, force: bool) -> Result<()> {
        // `timeout=0`: a forced removal kills at once (libpod would wait 10 s for SIGTERM).
        let options = opts::ContainerDeleteOpts::builder().force(force).volumes(true).timeout(0).build();
        self.client
            .containers()
            .get(id)
            .delete(&options)
            .await
            .map_err(|e| map_error("remove container", e).with_container(id.to_owned()))?;
        self.health.forget(id);
        Ok(())
    }

    fn logs(&self, id: &str, spec: &LogsSpec) -> BoxStream<'static, Result<LogChunk>> {
        let mut builder =
            opts::ContainerLogsOpts::builder().follow(spec.follow).stdout(spec.stdout).stderr(spec.stderr);
        // libpod 4.3 counts `tail` in log records, and conmon stores a line that came in two
        // writes as two records: `tail=20` may answer just the line's last "\n". So a log
        // that is read once is read whole, its pieces joined into lines and the tail taken
        // here; only a followed log leaves the tail to libpod.
        let tail_here = if spec.follow { None } else { spec.tail };
        if let (Some(n), true) = (spec.tail, spec.follow) {
            builder = builder.tail(n.to_string());
        }
        if let Some(since) = spec.since {
            builder = builder.since(since.to_string());
        }
        let options = builder.build();
        let client = self.client.clone();
        let id = id.to_owned();
        let follow = spec.follow;
        owned_stream(move |tx| async move {
            let container = client.containers().get(id.as_str());
            let mut stream = container.logs(&options);
            if !follow {
                let mut chunks = Vec::new();
                while let Some(item) = stream.next().await {
                    match item {
                        Ok(TtyChunk::StdOut(bytes)) => {
                            chunks.push(LogChunk { stream: Stream::Stdout, bytes: Bytes::from(bytes) })
                        }
                        Ok(TtyChunk::StdErr(bytes)) => {
                            chunks.push(LogChunk { stream: Stream::Stderr, bytes: Bytes::from(bytes) })
                        }
                        Ok(TtyChunk::StdIn(_)) => {}
                        Err(e) => {
                            let _ = tx.send(Err(map_error("read logs", e).with_container(id.clone()))).await;
                            return;
                        }
                    }
                }
                for chunk in compat::podman::last_lines(compat::podman::join_lines(chunks), tail_here) {
                    if tx.send(Ok(chunk)).await.is_err() {
                        return;
                    }
                }
                return;
            }
            while let Some(item) = stream.next().await {
                let chunk = match item {
                    Ok(TtyChunk::StdOut(bytes)) => Ok(LogChunk { stream: Stream::Stdout, bytes: Bytes::from(bytes) }),
                    Ok(TtyChunk::StdErr(bytes)) => Ok(LogChunk { stream: Stream::Stderr, bytes: Bytes::from(bytes) }),
                    Ok(TtyChunk::StdIn(_)) => continue,
                    Err(e) => {
                        let e = map_error("read logs", e).with_container(id.clone());
                        tracing::debug!(container_id = %id, "reading logs failed: {e:?}");
                        Err(e)
                    }
                };
                let failed = chunk.is_err();
                if tx.send(chunk).await.is_err() || failed {
                    break;
                }
            }
        })
    }

    async fn exec(&self, id: &str, spec: &ExecSpec) -> Result<ExecOutput> {
        let op = format!("exec {:?}", spec.cmd);
        let mut builder = opts::ExecCreateOpts::builder()
            .attach_stdout(true)
            .attach_stderr(true)
            .command(spec.cmd.clone())
            .privileged(spec.privileged);
        if !spec.env.is_empty() {
            builder = builder.env(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        }
        if let Some(dir) = &spec.working_dir {
            builder = builder.working_dir(dir);
        }
        if let Some(user) = &spec.user {
            builder = builder.user(opts::UserOpt::User(user.clone()));
        }
        let container = self.client.containers().get(id);
        let exec = container
            .create_exec(&builder.build())
            .await
            .map_err(|e| map_error(&op, e).with_container(id.to_owned()))?;
        let start = opts::ExecStartOpts::builder().build();
        let output = exec.start(&start).await.map_err(|e| map_error(&op, e).with_container(id.to_owned()))?;
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        if let Some(mut output) = output {
            while let Some(chunk) = output.next().await {
                match chunk {
                    Ok(TtyChunk::StdOut(bytes)) => stdout.extend_from_slice(&bytes),
                    Ok(TtyChunk::StdErr(bytes)) => stderr.extend_from_slice(&bytes),
                    Ok(TtyChunk::StdIn(_)) => {}
                    Err(e) => {
                        return Err(Error::new(ErrorKind::Exec, "reading the command's output failed")
                            .with_operation(op.clone())
                            .with_container(id.to_owned())
                            .with_runtime(RUNTIME)
                            .with_source(e));
                    }
                }
            }
        }
        // The session may still be closing when the output ends: wait for its exit code.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let exit_code = loop {
            let inspected = exec.inspect().await.map_err(|e| map_error(&op, e).with_container(id.to_owned()))?;
            let running = inspected.get("Running").and_then(Value::as_bool).unwrap_or(false);
            match inspected.get("ExitCode").and_then(Value::as_i64) {
                Some(code) if !running => break code,
                _ if tokio::time::Instant::now() >= deadline => {
                    return Err(Error::new(ErrorKind::Exec, "the engine did not report the command's exit code")
                        .with_operation(op.clone())
                        .with_container(id.to_owned())
                        .with_runtime(RUNTIME));
                }
                _ => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        };
        Ok(ExecOutput::new(exit_code, Bytes::from(stdout), Bytes::from(stderr)))
    }

    async fn put_archive(&self, id: &str, path: &str, tar: Bytes) -> Result<()> {
        self.client
            .containers()
            .get(id)
            .copy_to(path, tar.into())
            .await
            .map_err(|e| map_error(&format!("copy files to {path}"), e).with_container(id.to_owned()))
    }

    async fn get_archive(&self, id: &str, path: &str) -> Result<Bytes> {
        let container = self.client.containers().get(id);
        let chunks: Vec<Vec<u8>> = container
            .copy_from(path)
            .try_collect()
            .await
            .map_err(|e| map_error(&format!("copy files from {path}"), e).with_container(id.to_owned()))?;
        Ok(Bytes::from(chunks.concat()))
    }

    async fn create_network(&self, spec: &NetworkSpec) -> Result<String> {
        let op = format!("create network `{}`", spec.name);
        let options = request::network_create(spec).map_err(|e| e.with_operation(op.clone()).with_runtime(RUNTIME))?;
        let created = compat::podman::create_network_retrying_races(|| async {
            self.client.networks().create(&options).await.map_err(|e| map_error(&op, e))
        })
        .await?;
        Ok(created.id.unwrap_or_default())
    }

    async fn inspect_network(&self, id_or_name: &str) -> Result<NetworkInfo> {
        let op = format!("inspect network `{id_or_name}`");
        let name = network_name(id_or_name);
        let info = self.client.networks().get(name).inspect().await.map_err(err(&op))?;
        let containers = self.containers_on(name).await?;
        Ok(compat::network_info(&answer::network(&to_json(&info), &containers)))
    }

    async fn list_networks(&self, filter: &LabelFilter) -> Result<Vec<NetworkInfo>> {
        let filters = label_query(filter).into_iter().map(|(k, v)| match v {
            Some(v) => opts::NetworkListFilter::LabelKeyVal(k, v),
            None => opts::NetworkListFilter::LabelKey(k),
        });
        let options = opts::NetworkListOpts::builder().filter(filters).build();
        let networks = self.client.networks();
        let list = listing("list networks", || networks.list(&options)).await?;
        Ok(list
            .iter()
            .map(|n| compat::network_info(&answer::network(&to_json(n), &[])))
            .filter(|n| filter.matches(&n.labels))
            .collect())
    }

    async fn remove_network(&self, id_or_name: &str) -> Result<()> {
        let op = format!("remove network `{id_or_name}`");
        let reports = self.client.networks().get(network_name(id_or_name)).delete().await.map_err(err(&op))?;
        match reports.into_iter().find_map(|r| r.err.filter(|e| !e.is_empty())) {
            Some(message) => Err(fault(&op, 500, &message)),
            None => Ok(()),
        }
    }

    async fn connect_network(&self, network: &str, container: &str, aliases: &[String]) -> Result<()> {
        let mut builder = opts::NetworkConnectOpts::builder().container(container);
        if !aliases.is_empty() {
            builder = builder.aliases(aliases.iter().cloned());
        }
        self.client
            .networks()
            .get(network_name(network))
            .connect_container(&builder.build())
            .await
            .map_err(|e| map_error(&format!("connect to network `{network}`"), e).with_container(container.to_owned()))
    }

    async fn disconnect_network(&self, network: &str, container: &str, force: bool) -> Result<()> {
        let options = opts::NetworkDisconnectOpts::builder().container(container).force(force).build();
        self.client.networks().get(network_name(network)).disconnect_container(&options).await.map_err(|e| {
            map_error(&format!("disconnect from network `{network}`"), e).with_container(container.to_owned())
        })
    }

    async fn create_volume(&self, spec: &VolumeSpec) -> Result<VolumeInfo> {
        let created = self
            .client
            .volumes()
            .create(&request::volume_create(spec))
            .await
            .map_err(err(&format!("create volume `{}`", spec.name)))?;
        Ok(compat::volume_info(&to_json(&created)))
    }

    async fn inspect_volume(&self, name: &str) -> Result<VolumeInfo> {
        let info = self.client.volumes().get(name).inspect().await.map_err(err(&format!("inspect volume `{name}`")))?;
        Ok(compat::volume_info(&to_json(&info)))
    }

    async fn list_volumes(&self, filter: &LabelFilter) -> Result<Vec<VolumeInfo>> {
        let filters = label_query(filter).into_iter().map(|(k, v)| match v {
            Some(v) => opts::VolumeListFilter::LabelKeyVal(k, v),
            None => opts::VolumeListFilter::LabelKey(k),
        });
        let options = opts::VolumeListOpts::builder().filter(filters).build();
        let volumes = self.client.volumes();
        let list = listing("list volumes", || volumes.list(&options)).await?;
        Ok(list.iter().map(|v| compat::volume_info(&to_json(v))).filter(|v| filter.matches(&v.labels)).collect())
    }

    async fn remove_volume(&self, name: &str, force: bool) -> Result<()> {
        let volume = self.client.volumes().get(name);
        let removed = if force { volume.remove().await } else { volume.delete().await };
        removed.map_err(err(&format!("remove volume `{name}`")))
    }

    fn events(&self, filter: &LabelFilter) -> BoxStream<'static, Result<Event>> {
        // The engine ends the stream when its event log rotates: `resumed` asks again.
        let labels = filter.to_query();
        let client = self.client.clone();
        let raw = compat::events::resumed(move |since| {
            let mut builder = opts::EventsOpts::builder().stream(true).since(since);
            if !labels.is_empty() {
                builder = builder.filters([("label".to_owned(), labels.clone())]);
            }
            let options = builder.build();
            let client = client.clone();
            owned_stream(move |tx| async move {
                let mut stream = client.events(&options);
                while let Some(item) = stream.next().await {
                    let item = item.map(|e| to_json(&e)).map_err(|e| map_error("read events", e));
                    let failed = item.is_err();
                    if tx.send(item).await.is_err() || failed {
                        break;
                    }
                }
            })
        });
        let filter = filter.clone();
        raw.map(|item| item.map(|raw| compat::event(&raw)))
            // libpod ORs several label filters; Docker ANDs them.
            .filter(move |event| {
                std::future::ready(match event {
                    Ok(e) => filter.labels.len() < 2 || filter.matches(&e.attributes),
                    Err(_) => true,
                })
            })
            .boxed()
    }
}

fixtures_engine_api::backend!(
    name: "podman",
    connect: PodmanRuntime::connect,
    connect_to: PodmanRuntime::connect_to,
    configured_host: PodmanRuntime::configured_host,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpod_causes_map_to_kinds() {
        assert_eq!(compat::status::kind(500, "x:1: image not known"), ErrorKind::NotFound);
        assert_eq!(
            compat::status::kind(
                500,
                "creating container storage: the container name \"a\" is already in use by b. You have to remove that container to be able to reuse that name: that name is already in use"
            ),
            ErrorKind::Conflict
        );
        assert_eq!(
            compat::status::kind(500, "cannot remove container a as it is running: container state improper"),
            ErrorKind::Conflict
        );
        assert_eq!(compat::status::kind(404, "whatever"), ErrorKind::NotFound);
        assert_eq!(compat::status::kind(409, "whatever"), ErrorKind::Conflict);
        assert_eq!(compat::status::kind(500, "OCI runtime error"), ErrorKind::Engine);
        assert_eq!(compat::status::kind(500, "route ip+net: no such network interface"), ErrorKind::Engine);
        assert_eq!(
            compat::status::kind(500, "unable to find network with name or ID fx: network not found"),
            ErrorKind::NotFound
        );
        let e = fault("inspect image", 500, "x:1: image not known: image not known");
        assert_eq!(e.to_string(), "inspect image: the engine answered 500: x:1: image not known");
        assert_eq!(e.kind(), ErrorKind::NotFound);
    }

    #[test]
    fn loopback_registries_are_recognised() {
        assert!(loopback_registry("127.0.0.1:5000/fixtures-test/services"));
        assert!(loopback_registry("localhost:5000/app"));
        assert!(loopback_registry("[::1]:5000/app"));
        assert!(!loopback_registry("registry.example.com/app"));
        assert!(!loopback_registry("library/busybox"));
        assert!(!loopback_registry("busybox"));
    }

    #[tokio::test]
    async fn a_missing_socket_is_explained() {
        let err = PodmanRuntime::connect_to("unix:///nonexistent/podman.sock").await.expect_err("no socket");
        assert_eq!(err.kind(), ErrorKind::Unreachable);
        assert!(err.to_string().contains("/nonexistent/podman.sock"), "{err}");
        let err = PodmanRuntime::connect_to("npipe:////./pipe/podman").await.expect_err("not a scheme of ours");
        assert_eq!(err.kind(), ErrorKind::Config);
    }

    #[test]
    fn build_contexts_become_folders() {
        let dir = context_dir(&BuildContext::Dockerfile("FROM scratch\n".into())).expect("dir");
        let path = dir.path.clone();
        assert_eq!(std::fs::read_to_string(path.join("Dockerfile")).expect("written"), "FROM scratch\n");
        drop(dir);
        assert!(!path.exists(), "removed with the build");
        let tar = compat::archive::dockerfile_tar("FROM busybox\n").expect("tar");
        let dir = context_dir(&BuildContext::Tar(tar)).expect("dir");
        assert_eq!(std::fs::read_to_string(dir.path.join("Dockerfile")).expect("unpacked"), "FROM busybox\n");
        let given = context_dir(&BuildContext::Dir("/srv/ctx".into())).expect("dir");
        assert_eq!(given.path, Path::new("/srv/ctx"));
    }
}
