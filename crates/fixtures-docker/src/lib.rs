//! The Docker Engine API backend of `fixtures-core`, over [bollard].
//!
//! ```no_run
//! # async fn demo() -> fixtures_core::Result<()> {
//! use std::sync::Arc;
//! use fixtures_core::Runtime;
//!
//! let docker = fixtures_docker::DockerRuntime::connect().await?;
//! println!("{:?}", docker.version().await?);
//! let runtime: Arc<dyn Runtime> = Arc::new(docker);
//! # Ok(()) }
//! ```
//!
//! The raw client is reachable with [`DockerRuntime::client`]; it follows
//! bollard's versioning, not this crate's.
//!
//! [bollard]: https://docs.rs/bollard

#![warn(missing_docs)]

mod raw;
mod request;

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use bollard::Docker;
use bollard::errors::Error as BollardError;
use bollard::query_parameters as q;
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
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};

/// Seconds a single request may take (builds and pulls stream for longer).
const REQUEST_TIMEOUT_SECS: u64 = 600;

/// The default socket.
pub const DEFAULT_SOCKET: &str = "unix:///var/run/docker.sock";

/// A [`Runtime`] over the Docker Engine API.
#[derive(Debug, Clone)]
pub struct DockerRuntime {
    client: Docker,
    host: String,
    /// Where documents are read raw (see `raw`).
    endpoint: raw::Endpoint,
    name: &'static str,
    /// Set when the engine is Podman (its Docker-compatible API): see `compat::podman`.
    podman: Option<Arc<compat::podman::HealthSchedule>>,
    /// Whether the engine runs rootless (its socket's owner; remote: `name=rootless` among its
    /// security options).
    rootless: bool,
    /// The engine's host when it is another machine (see `fixtures_engine_api::remote`).
    remote: Option<std::net::IpAddr>,
    /// Whether build contexts go up gzip-compressed (default: when the engine is remote).
    compress_contexts: bool,
}

fn err(op: &str) -> impl Fn(BollardError) -> Error + '_ {
    move |e: BollardError| map_error(op, e)
}

/// `options` for a build through BuildKit: its builder version and a session of its own.
#[cfg(feature = "buildkit")]
fn through_buildkit(options: q::BuildImageOptions) -> q::BuildImageOptions {
    q::BuildImageOptions { version: q::BuilderVersion::BuilderBuildKit, session: Some(buildkit_session()), ..options }
}

/// Without the `buildkit` feature every build takes the classic builder.
#[cfg(not(feature = "buildkit"))]
fn through_buildkit(options: q::BuildImageOptions) -> q::BuildImageOptions {
    options
}

/// A BuildKit session id for one build (unique within the engine for the build's life).
#[cfg(feature = "buildkit")]
fn buildkit_session() -> String {
    static BUILDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = BUILDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("fixtures-{}-{n}-{nanos}", std::process::id())
}

/// What a build answer's `aux` says: the image id, and under BuildKit the steps as they
/// start, their output and their errors (as lines, each step once).
#[cfg(feature = "buildkit")]
fn read_aux(
    aux: &bollard::models::BuildInfoAux,
    id: &mut Option<String>,
    lines: &mut Vec<String>,
    announced: &mut std::collections::HashSet<String>,
) {
    match aux {
        bollard::models::BuildInfoAux::Default(image) => {
            if let Some(found) = &image.id {
                *id = Some(found.clone());
            }
        }
        bollard::models::BuildInfoAux::BuildKit(status) => {
            for vertex in &status.vertexes {
                if vertex.started.is_some() && !vertex.name.is_empty() && announced.insert(vertex.digest.clone()) {
                    lines.push(vertex.name.clone());
                }
                if !vertex.error.is_empty() {
                    lines.push(format!("{}: {}", vertex.name, vertex.error));
                }
            }
            lines.extend(status.logs.iter().map(|log| String::from_utf8_lossy(&log.msg).into_owned()));
        }
    }
}

/// Without this crate's `buildkit` feature, another crate of the build may still turn on
/// bollard's, which changes `aux`'s type: read the image id from its debug form in both shapes.
#[cfg(not(feature = "buildkit"))]
fn read_aux<T: std::fmt::Debug>(
    aux: &T,
    id: &mut Option<String>,
    _lines: &mut Vec<String>,
    _announced: &mut std::collections::HashSet<String>,
) {
    if let Some(found) = image_id_in(&format!("{aux:?}")) {
        *id = Some(found);
    }
}

/// The first `sha256:<64 hex>` in `text`.
#[cfg(any(test, not(feature = "buildkit")))]
fn image_id_in(text: &str) -> Option<String> {
    let start = text.find("sha256:")?;
    let hex: String = text[start + 7..].chars().take_while(char::is_ascii_hexdigit).collect();
    (hex.len() == 64).then(|| format!("sha256:{hex}"))
}

// Listings: the engine's label filter narrows what it sends, and the labels are checked again
// here: Podman ORs several `label` filters of volumes (and events) where Docker ANDs them,
// and a removal must never reach what does not carry every label asked for.

/// Maps a bollard error to this library's kinds (404 → not found, 409 → conflict).
fn map_error(op: &str, e: BollardError) -> Error {
    let (kind, message) = match &e {
        BollardError::DockerResponseServerError { status_code, message } => {
            let lower = message.to_ascii_lowercase();
            let race = compat::podman::exit_race(&lower) || compat::podman::network_race(&lower);
            let kind = match *status_code {
                // Podman's Docker-compatible API answers these with 500; a race stays an
                // engine error (asked again), any other missing thing is not found.
                500 if !race && lower.contains("already in use") => ErrorKind::Conflict,
                500 if !race && (lower.contains("no such") || lower.contains("not known")) => ErrorKind::NotFound,
                status => compat::status::kind(status, message),
            };
            (kind, format!("the engine answered {status_code}: {}", message.trim()))
        }
        BollardError::SocketNotFoundError(path) => (
            ErrorKind::Unreachable,
            format!("no Docker socket at `{path}`: is the engine running? Set DOCKER_HOST to reach another one"),
        ),
        BollardError::DockerStreamError { error } => (ErrorKind::Engine, error.clone()),
        other => {
            (fixtures_engine_api::transport::kind(other), fixtures_engine_api::transport::failure(other).to_owned())
        }
    };
    let base = Error::new(kind, message).with_operation(op.to_owned()).with_runtime("docker");
    match e {
        // Its text is already the message; don't print it twice.
        BollardError::DockerResponseServerError { .. }
        | BollardError::SocketNotFoundError(_)
        | BollardError::DockerStreamError { .. } => base,
        other => base.with_source(other),
    }
}

fn label_filters(filter: &LabelFilter) -> Option<HashMap<String, Vec<String>>> {
    let labels = filter.to_query();
    if labels.is_empty() { None } else { Some(HashMap::from([("label".to_owned(), labels)])) }
}

fn to_json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

fn from_json<T: serde::de::DeserializeOwned>(op: &str, value: serde_json::Value) -> Result<T> {
    serde_json::from_value(value).map_err(|e| {
        Error::new(ErrorKind::InvalidInput, "the request cannot be expressed for the Docker API")
            .with_operation(op.to_owned())
            .with_source(e)
    })
}

impl DockerRuntime {
    /// Connects to the engine named by the configuration's `docker_host`, else `DOCKER_HOST`,
    /// else the default socket, and negotiates the API version. TLS (`tls_verify`, else
    /// `DOCKER_TLS_VERIFY`) and ssh are as `fixtures_engine_api::remote` describes.
    ///
    /// # Errors
    /// [`ErrorKind::Engine`] when the engine does not answer, saying where it looked.
    pub async fn connect() -> Result<Self> {
        Self::connect_to(&Self::configured_host()?).await
    }

    /// Where [`DockerRuntime::connect`] connects: the configuration's `docker_host`, else
    /// `DOCKER_HOST`, else the default socket.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when the configuration cannot be read.
    pub fn configured_host() -> Result<String> {
        let configured = fixtures_core::config::current()?.docker_host.clone();
        let host = configured.or_else(|| std::env::var("DOCKER_HOST").ok()).filter(|h| !h.is_empty());
        Ok(host.unwrap_or_else(|| DEFAULT_SOCKET.to_owned()))
    }

    /// Connects to `host` (`unix:///path`, `tcp://host:port`, `http://host:port`,
    /// `ssh://user@host[:port][/path/to/docker.sock]`).
    ///
    /// # Errors
    /// [`ErrorKind::Engine`] when the engine does not answer; [`ErrorKind::Config`] for a
    /// scheme that is not supported.
    pub async fn connect_to(host: &str) -> Result<Self> {
        Self::connect_named(host, "docker").await
    }

    /// Like [`DockerRuntime::connect_to`], reporting itself as `name` (e.g. `podman-docker-api`
    /// when pointed at Podman's Docker-compatible socket).
    ///
    /// # Errors
    /// As [`DockerRuntime::connect_to`].
    pub async fn connect_named(host: &str, name: &'static str) -> Result<Self> {
        // Every failure to connect says which runtime, and where it looked.
        Self::connect_unnamed(host, name).await.map_err(|e| e.with_runtime(name).with_host(host))
    }

    async fn connect_unnamed(host: &str, name: &'static str) -> Result<Self> {
        let settings = compat::remote::Settings::from_config(DEFAULT_SOCKET.trim_start_matches("unix://"))?;
        let reach = compat::remote::reach(host, &settings, name).await?;
        let (client, endpoint) = match &reach.via {
            compat::remote::Via::Unix(path) => (
                Docker::connect_with_unix(path, REQUEST_TIMEOUT_SECS, bollard::API_DEFAULT_VERSION),
                raw::Endpoint::Unix(path.clone()),
            ),
            compat::remote::Via::Tcp(authority) => (
                Docker::connect_with_http(
                    &format!("tcp://{authority}"),
                    REQUEST_TIMEOUT_SECS,
                    bollard::API_DEFAULT_VERSION,
                ),
                raw::Endpoint::Tcp(authority.clone()),
            ),
        };
        let client = client.map_err(|e| map_error("connect", e).with_hint(format!("tried {host}")))?;
        // A ping first, in a short time: a hung engine is told apart from a busy one, whose
        // `/version` (Podman's takes its runtime's locks) may take seconds under load.
        compat::remote::ping_within(async {
            client
                .ping()
                .await
                .map_err(|e| map_error("connect", e).with_hint(format!("tried {host}; is the engine running?")))
        })
        .await?;
        let client = client
            .negotiate_version()
            .await
            .map_err(|e| map_error("connect", e).with_hint(format!("tried {host}; is the engine running?")))?;
        let version = client.version().await.map_err(|e| map_error("connect", e).with_hint(format!("tried {host}")))?;
        let podman = version.components.unwrap_or_default().iter().any(|c| c.name.contains("Podman"));
        if podman {
            tracing::debug!(host, "the engine is Podman: its Docker-compatible API's differences are smoothed");
        }
        // On this machine the socket's owner says it; a remote engine is asked.
        let rootless = match reach.local_socket().and_then(fixtures_engine_api::local::runs_rootless) {
            Some(rootless) => rootless,
            None => {
                let info =
                    client.info().await.map_err(|e| map_error("connect", e).with_hint(format!("tried {host}")))?;
                info.security_options.unwrap_or_default().iter().any(|o| o.split(',').any(|f| f == "name=rootless"))
            }
        };
        Ok(DockerRuntime {
            client,
            host: host.to_owned(),
            endpoint,
            name,
            podman: podman.then(Arc::default),
            rootless,
            remote: reach.remote,
            compress_contexts: reach.remote.is_some(),
        })
    }

    /// Whether build contexts are sent gzip-compressed: by default when the engine is on
    /// another host, where the link is slower than compressing (`cargo xtask bench` measures
    /// it, S9); off on a fast link, on for a slow one to a local engine.
    pub fn compress_contexts(mut self, on: bool) -> Self {
        self.compress_contexts = on;
        self
    }

    /// Whether builds go through BuildKit: with this crate's `buildkit` feature (on by
    /// default), on Docker. Podman's Docker-compatible API has no BuildKit; its own builder
    /// (buildah) runs there.
    fn buildkit(&self) -> bool {
        cfg!(feature = "buildkit") && self.podman.is_none()
    }

    /// The bollard client, for what this library does not cover. It follows bollard's
    /// versioning, not this crate's.
    pub fn client(&self) -> &Docker {
        &self.client
    }

    /// The host this runtime talks to.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// A document read as the engine wrote it (see `raw`), errors mapped like bollard's.
    /// `path` follows the API version prefix.
    async fn get_document(&self, op: &str, path: &str) -> Result<serde_json::Value> {
        let path = format!("/v{}{path}", self.client.client_version());
        raw::get_json(&self.endpoint, &path).await.map_err(|e| match e {
            Ok(raw::Fault { status, message }) => {
                map_error(op, BollardError::DockerResponseServerError { status_code: status, message })
            }
            Err(e) => e.with_operation(op.to_owned()).with_runtime(self.name),
        })
    }

    async fn build_once(&self, spec: &BuildSpec, progress: ProgressSink<'_>) -> Result<String> {
        let context = Self::build_context(spec).await?;
        // The link to a remote engine is slower than compressing (see `archive::gzip`).
        let context = if self.compress_contexts { compat::archive::gzip(&context)? } else { context };
        let options = q::BuildImageOptions {
            dockerfile: spec.dockerfile.clone().unwrap_or_else(|| "Dockerfile".to_owned()),
            t: spec.tags.first().cloned(),
            nocache: spec.no_cache,
            rm: spec.remove_intermediate,
            forcerm: spec.remove_intermediate,
            pull: spec.pull.then(|| "1".to_owned()),
            buildargs: Some(spec.build_args.clone().into_iter().collect()),
            labels: Some(spec.labels.clone().into_iter().collect()),
            target: spec.target.clone().unwrap_or_default(),
            platform: spec.platform.clone().unwrap_or_default(),
            ..q::BuildImageOptions::default()
        };
        // A context whose `.dockerignore` leaves out its Dockerfile goes to the classic builder,
        // which takes it out of what `COPY` sees as `docker build` does (see
        // `archive::ignores_build_files`).
        let ignores_build_files = match &spec.context {
            BuildContext::Dir(dir) => compat::archive::ignores_build_files(dir, &options.dockerfile),
            _ => false,
        };
        let buildkit = self.buildkit() && !ignores_build_files;
        let options = if buildkit { through_buildkit(options) } else { options };
        let mut stream = self.client.build_image(options, None, Some(bollard::body_full(context)));
        let mut id = None;
        let mut tail: Vec<String> = Vec::new();
        let mut lines: Vec<String> = Vec::new();
        let mut announced = std::collections::HashSet::new();
        while let Some(item) = stream.next().await {
            let info = match item {
                Ok(info) => info,
                Err(e) => {
                    let e = map_error("build image", e);
                    let kind = if e.kind() == ErrorKind::Engine { ErrorKind::Build } else { e.kind() };
                    return Err(Error::new(kind, e.message().to_owned())
                        .with_operation("build image")
                        .with_runtime(self.name)
                        .with_logs_tail(tail.join("\n")));
                }
            };
            if let Some(aux) = &info.aux {
                read_aux(aux, &mut id, &mut lines, &mut announced);
            }
            if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                return Err(Error::new(ErrorKind::Build, detail)
                    .with_operation("build image")
                    .with_runtime(self.name)
                    .with_logs_tail(tail.join("\n")));
            }
            lines.extend(info.stream.or(info.status));
            for line in lines.drain(..) {
                for line in line.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
                    tracing::debug!(target: "fixtures::build", "{line}");
                    progress(Progress::new(line.to_owned()));
                    tail.push(line.to_owned());
                    if tail.len() > 30 {
                        tail.remove(0);
                    }
                }
            }
        }
        let id = match id {
            Some(id) => id,
            // Older engines only say "Successfully built <short id>".
            None => {
                let short = tail
                    .iter()
                    .rev()
                    .find_map(|l| l.strip_prefix("Successfully built "))
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        Error::new(ErrorKind::Build, "the engine did not say which image it built")
                            .with_runtime(self.name)
                            .with_logs_tail(tail.join("\n"))
                    })?;
                self.inspect_image(&short).await?.id
            }
        };
        for extra in spec.tags.iter().skip(1) {
            let (repo, tag) = extra.rsplit_once(':').filter(|(_, t)| !t.contains('/')).unwrap_or((extra, "latest"));
            self.tag_image(&id, repo, tag).await?;
        }
        Ok(id)
    }

    async fn build_context(spec: &BuildSpec) -> Result<Bytes> {
        match &spec.context {
            BuildContext::Dir(dir) => {
                let dir = dir.clone();
                let dockerfile = spec.dockerfile.clone().unwrap_or_else(|| "Dockerfile".to_owned());
                tokio::task::spawn_blocking(move || compat::archive::context_tar(&dir, &dockerfile))
                    .await
                    .map_err(|e| Error::new(ErrorKind::Io, "build context task failed").with_source(e))?
            }
            BuildContext::Tar(bytes) => Ok(bytes.clone()),
            BuildContext::Dockerfile(text) => compat::archive::dockerfile_tar(text),
            _ => Err(Error::new(
                ErrorKind::Unsupported,
                "this kind of build context is not supported by the Docker backend",
            )),
        }
    }
}

#[async_trait]
impl Runtime for DockerRuntime {
    fn name(&self) -> &str {
        self.name
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn is_local(&self) -> bool {
        self.remote.is_none() && matches!(self.endpoint, raw::Endpoint::Unix(_))
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
        self.client.ping().await.map(drop).map_err(err("ping"))
    }

    async fn version(&self) -> Result<VersionInfo> {
        let v = self.client.version().await.map_err(err("version"))?;
        Ok(VersionInfo::new(
            self.name,
            v.version.unwrap_or_default(),
            self.client.client_version().to_string(),
            format!("{}/{}", v.os.unwrap_or_default(), v.arch.unwrap_or_default()),
        )
        .with_engine(if self.podman.is_some() { "podman" } else { "docker" }))
    }

    async fn build_image(&self, spec: &BuildSpec, progress: ProgressSink<'_>) -> Result<String> {
        if self.podman.is_some() {
            compat::podman::build_retrying_storage_races(|| self.build_once(spec, progress)).await
        } else {
            self.build_once(spec, progress).await
        }
    }

    async fn pull_image(&self, spec: &PullSpec, progress: ProgressSink<'_>) -> Result<String> {
        let options = q::CreateImageOptions {
            from_image: Some(spec.repository.clone()),
            tag: Some(spec.tag.clone().unwrap_or_else(|| "latest".to_owned())),
            platform: spec.platform.clone().unwrap_or_default(),
            ..q::CreateImageOptions::default()
        };
        // Given in code, else the login `docker login` keeps for the registry.
        let found;
        let given = match &spec.credentials {
            Some(c) => Some(c),
            None => {
                let registry = compat::auth::registry_of(&spec.repository);
                found = compat::auth::lookup(&registry, compat::auth::Tool::Docker);
                found.as_ref()
            }
        };
        let credentials = given.map(|c| bollard::auth::DockerCredentials {
            username: c.username.clone(),
            password: c.password.clone(),
            identitytoken: c.identity_token.clone(),
            serveraddress: c.server_address.clone(),
            ..bollard::auth::DockerCredentials::default()
        });
        let mut stream = self.client.create_image(Some(options), None, credentials);
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| {
                let e = map_error("pull image", e).with_image(spec.reference());
                Error::new(ErrorKind::Pull, format!("pulling `{}` failed", spec.reference()))
                    .with_runtime(self.name)
                    .with_source(e)
            })?;
            if let Some(message) = info.error_detail.and_then(|d| d.message) {
                return Err(Error::new(ErrorKind::Pull, message).with_image(spec.reference()).with_runtime(self.name));
            }
            if let Some(status) = info.status {
                let line = match info.id {
                    Some(layer) => format!("{layer}: {status}"),
                    None => status,
                };
                tracing::debug!(target: "fixtures::pull", "{line}");
                progress(Progress::new(line));
            }
        }
        Ok(self.inspect_image(&spec.reference()).await?.id)
    }

    async fn inspect_image(&self, reference: &str) -> Result<ImageInfo> {
        let info = self
            .client
            .inspect_image(reference)
            .await
            .map_err(|e| map_error("inspect image", e).with_image(reference.to_owned()))?;
        Ok(compat::image_info(to_json(&info)))
    }

    async fn list_images(&self, filter: &LabelFilter) -> Result<Vec<ImageInfo>> {
        let options = q::ListImagesOptions { filters: label_filters(filter), ..q::ListImagesOptions::default() };
        let list = self.client.list_images(Some(options)).await.map_err(err("list images"))?;
        Ok(list.iter().map(|i| compat::image_info(to_json(i))).filter(|i| filter.matches(&i.labels)).collect())
    }

    async fn tag_image(&self, reference: &str, repository: &str, tag: &str) -> Result<()> {
        let options = q::TagImageOptions { repo: Some(repository.to_owned()), tag: Some(tag.to_owned()) };
        self.client.tag_image(reference, Some(options)).await.map_err(err("tag image"))
    }

    async fn remove_image(&self, reference: &str, force: bool) -> Result<()> {
        let options = q::RemoveImageOptions { force, ..q::RemoveImageOptions::default() };
        self.client
            .remove_image(reference, Some(options), None)
            .await
            .map(drop)
            .map_err(|e| map_error("remove image", e).with_image(reference.to_owned()))
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<String> {
        let spec = match self.podman {
            Some(_) => compat::podman::with_default_rlimits(spec),
            None => std::borrow::Cow::Borrowed(spec),
        };
        let spec = spec.as_ref();
        let body: bollard::models::ContainerCreateBody =
            from_json("create container", request::container_create(spec))?;
        let options = q::CreateContainerOptions { name: spec.name.clone(), ..q::CreateContainerOptions::default() };
        let created = self
            .client
            .create_container(Some(options), body)
            .await
            .map_err(|e| map_error("create container", e).with_image(spec.image.clone()))?;
        for extra in spec.networks.iter().skip(1) {
            if let Err(e) = self.connect_network(&extra.network, &created.id, &extra.aliases).await {
                let _ = self.remove_container(&created.id, true).await;
                return Err(e);
            }
        }
        Ok(created.id)
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        self.client
            .start_container(id, None::<q::StartContainerOptions>)
            .await
            .map_err(|e| map_error("start container", e).with_container(id.to_owned()))
    }

    async fn inspect_container(&self, id: &str) -> Result<ContainerInfo> {
        let path = format!("/containers/{}/json", compat::request::encode(id));
        let op = "inspect container";
        let mut doc = compat::podman::inspect_retrying_exit_races(|| self.get_document(op, &path))
            .await
            .map_err(|e| e.with_container(id.to_owned()))?;
        if let Some(health) = &self.podman {
            if health.due(&doc) {
                // Podman's own endpoint on the same socket runs the check and records it; a
                // failing check is an answer too, so only the new status matters.
                let run = format!(
                    "/v{}/libpod/containers/{}/healthcheck",
                    self.client.client_version(),
                    compat::request::encode(id)
                );
                if let Err(e) = raw::get_json(&self.endpoint, &run).await {
                    tracing::debug!(container_id = id, "health check: {e:?}");
                }
                doc = self.get_document(op, &path).await.map_err(|e| e.with_container(id.to_owned()))?;
            }
            let raw = doc.clone();
            compat::podman::rename_default_network(&mut doc);
            let mut info = compat::container_info(doc);
            info.raw = raw;
            return Ok(info);
        }
        Ok(compat::container_info(doc))
    }

    async fn list_containers(&self, filter: &LabelFilter) -> Result<Vec<ContainerSummary>> {
        let mut path = "/containers/json?all=true".to_owned();
        if let Some(filters) = label_filters(filter) {
            path.push_str(&format!("&filters={}", compat::request::encode(&to_json(&filters).to_string())));
        }
        let list = self.get_document("list containers", &path).await?;
        Ok(list
            .as_array()
            .map(|l| l.iter().map(compat::container_summary).filter(|c| filter.matches(&c.labels)).collect())
            .unwrap_or_default())
    }

    async fn stop_container(&self, id: &str, timeout_secs: i64) -> Result<()> {
        let options = q::StopContainerOptions { t: Some(timeout_secs as i32), signal: None };
        match self.client.stop_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            // 304: already stopped.
            Err(BollardError::DockerResponseServerError { status_code: 304, .. }) => Ok(()),
            Err(e) => Err(map_error("stop container", e).with_container(id.to_owned())),
        }
    }

    async fn kill_container(&self, id: &str, signal: &str) -> Result<()> {
        let options = q::KillContainerOptions { signal: signal.to_owned() };
        self.client
            .kill_container(id, Some(options))
            .await
            .map_err(|e| map_error(&format!("kill container with {signal}"), e).with_container(id.to_owned()))
    }

    async fn restart_container(&self, id: &str, timeout_secs: i64) -> Result<()> {
        let options = q::RestartContainerOptions { t: Some(timeout_secs as i32), signal: None };
        self.client
            .restart_container(id, Some(options))
            .await
            .map_err(|e| map_error("restart container", e).with_container(id.to_owned()))
    }

    async fn pause_container(&self, id: &str) -> Result<()> {
        self.client.pause_container(id).await.map_err(|e| map_error("pause container", e).with_container(id.to_owned()))
    }

    async fn unpause_container(&self, id: &str) -> Result<()> {
        self.client
            .unpause_container(id)
            .await
            .map_err(|e| map_error("unpause container", e).with_container(id.to_owned()))
    }

    async fn wait_container(&self, id: &str) -> Result<i64> {
        let options = q::WaitContainerOptions { condition: "not-running".to_owned() };
        let mut stream = self.client.wait_container(id, Some(options));
        match stream.next().await {
            Some(Ok(r)) => Ok(r.status_code),
            // bollard reports a non-zero exit as an error carrying the code.
            Some(Err(BollardError::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(e)) => Err(map_error("wait container", e).with_container(id.to_owned())),
            None => Err(Error::new(ErrorKind::Engine, "the engine ended the wait without an answer")
                .with_container(id.to_owned())
                .with_runtime(self.name)),
        }
    }

    async fn remove_container(&self, id: &str, force: bool) -> Result<()> {
        let options = q::RemoveContainerOptions { force, v: true, ..q::RemoveContainerOptions::default() };
        self.client
            .remove_container(id, Some(options))
            .await
            .map_err(|e| map_error("remove container", e).with_container(id.to_owned()))?;
        if let Some(health) = &self.podman {
            health.forget(id);
        }
        Ok(())
    }

    fn logs(&self, id: &str, spec: &LogsSpec) -> BoxStream<'static, Result<LogChunk>> {
        // Podman counts `tail` in log records, not lines (see `compat::podman`): a log read
        // once is read whole there and its tail taken here.
        let tail_here = if self.podman.is_some() && !spec.follow { spec.tail } else { None };
        let tail = if tail_here.is_some() { None } else { spec.tail };
        let options = q::LogsOptions {
            follow: spec.follow,
            stdout: spec.stdout,
            stderr: spec.stderr,
            since: spec.since.unwrap_or(0) as i32,
            tail: tail.map_or_else(|| "all".to_owned(), |n| n.to_string()),
            ..q::LogsOptions::default()
        };
        let id = id.to_owned();
        let chunks = self
            .client
            .logs(&id, Some(options))
            .filter_map(move |item| {
                let out = match item {
                    Ok(bollard::container::LogOutput::StdErr { message }) => {
                        Some(Ok(LogChunk { stream: Stream::Stderr, bytes: message }))
                    }
                    Ok(
                        bollard::container::LogOutput::StdOut { message }
                        | bollard::container::LogOutput::Console { message },
                    ) => Some(Ok(LogChunk { stream: Stream::Stdout, bytes: message })),
                    Ok(bollard::container::LogOutput::StdIn { .. }) => None,
                    Err(e) => Some(Err(map_error("read logs", e).with_container(id.clone()))),
                };
                std::future::ready(out)
            })
            .boxed();
        match tail_here {
            None => chunks,
            Some(n) => futures_util::stream::once(async move {
                let all: Vec<LogChunk> = chunks.try_collect().await?;
                Ok::<_, Error>(compat::podman::last_lines(compat::podman::join_lines(all), Some(n)))
            })
            .map(|read| match read {
                Ok(chunks) => futures_util::stream::iter(chunks.into_iter().map(Ok)).boxed(),
                Err(e) => futures_util::stream::once(std::future::ready(Err(e))).boxed(),
            })
            .flatten()
            .boxed(),
        }
    }

    async fn exec(&self, id: &str, spec: &ExecSpec) -> Result<ExecOutput> {
        let config = bollard::models::ExecConfig {
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            cmd: Some(spec.cmd.clone()),
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            working_dir: spec.working_dir.clone(),
            user: spec.user.clone(),
            privileged: Some(spec.privileged),
            ..bollard::models::ExecConfig::default()
        };
        let op = format!("exec {:?}", spec.cmd);
        let created =
            self.client.create_exec(id, config).await.map_err(|e| map_error(&op, e).with_container(id.to_owned()))?;
        let started = self
            .client
            .start_exec(&created.id, None)
            .await
            .map_err(|e| map_error(&op, e).with_container(id.to_owned()))?;
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        if let bollard::exec::StartExecResults::Attached { mut output, .. } = started {
            while let Some(item) = output.next().await {
                match item.map_err(|e| map_error(&op, e).with_container(id.to_owned()))? {
                    bollard::container::LogOutput::StdErr { message } => stderr.extend_from_slice(&message),
                    bollard::container::LogOutput::StdOut { message }
                    | bollard::container::LogOutput::Console { message } => stdout.extend_from_slice(&message),
                    bollard::container::LogOutput::StdIn { .. } => {}
                }
            }
        }
        let inspected =
            self.client.inspect_exec(&created.id).await.map_err(|e| map_error(&op, e).with_container(id.to_owned()))?;
        let exit_code = inspected.exit_code.ok_or_else(|| {
            Error::new(ErrorKind::Exec, "the engine did not report the command's exit code")
                .with_operation(op.clone())
                .with_container(id.to_owned())
        })?;
        Ok(ExecOutput::new(exit_code, Bytes::from(stdout), Bytes::from(stderr)))
    }

    async fn put_archive(&self, id: &str, path: &str, tar: Bytes) -> Result<()> {
        let options = q::UploadToContainerOptions { path: path.to_owned(), ..q::UploadToContainerOptions::default() };
        self.client
            .upload_to_container(id, Some(options), bollard::body_full(tar))
            .await
            .map_err(|e| map_error(&format!("copy files to {path}"), e).with_container(id.to_owned()))
    }

    async fn get_archive(&self, id: &str, path: &str) -> Result<Bytes> {
        let options = q::DownloadFromContainerOptions { path: path.to_owned() };
        let chunks: Vec<Bytes> = self
            .client
            .download_from_container(id, Some(options))
            .try_collect()
            .await
            .map_err(|e| map_error(&format!("copy files from {path}"), e).with_container(id.to_owned()))?;
        Ok(Bytes::from(chunks.concat()))
    }

    async fn create_network(&self, spec: &NetworkSpec) -> Result<String> {
        let body: bollard::models::NetworkCreateRequest = from_json("create network", request::network_create(spec))?;
        let op = format!("create network `{}`", spec.name);
        let created = compat::podman::create_network_retrying_races(|| async {
            self.client.create_network(body.clone()).await.map_err(|e| map_error(&op, e))
        })
        .await?;
        Ok(created.id)
    }

    async fn inspect_network(&self, id_or_name: &str) -> Result<NetworkInfo> {
        let info = self
            .client
            .inspect_network(id_or_name, None::<q::InspectNetworkOptions>)
            .await
            .map_err(|e| map_error(&format!("inspect network `{id_or_name}`"), e))?;
        Ok(compat::network_info(&to_json(&info)))
    }

    async fn list_networks(&self, filter: &LabelFilter) -> Result<Vec<NetworkInfo>> {
        let options = q::ListNetworksOptions { filters: label_filters(filter) };
        let list = self.client.list_networks(Some(options)).await.map_err(err("list networks"))?;
        Ok(list.iter().map(|n| compat::network_info(&to_json(n))).filter(|n| filter.matches(&n.labels)).collect())
    }

    async fn remove_network(&self, id_or_name: &str) -> Result<()> {
        self.client
            .remove_network(id_or_name)
            .await
            .map_err(|e| map_error(&format!("remove network `{id_or_name}`"), e))
    }

    async fn connect_network(&self, network: &str, container: &str, aliases: &[String]) -> Result<()> {
        let request = bollard::models::NetworkConnectRequest {
            container: container.to_owned(),
            endpoint_config: Some(bollard::models::EndpointSettings {
                aliases: (!aliases.is_empty()).then(|| aliases.to_vec()),
                ..bollard::models::EndpointSettings::default()
            }),
        };
        self.client
            .connect_network(network, request)
            .await
            .map_err(|e| map_error(&format!("connect to network `{network}`"), e).with_container(container.to_owned()))
    }

    async fn disconnect_network(&self, network: &str, container: &str, force: bool) -> Result<()> {
        let request = bollard::models::NetworkDisconnectRequest { container: container.to_owned(), force: Some(force) };
        self.client.disconnect_network(network, request).await.map_err(|e| {
            map_error(&format!("disconnect from network `{network}`"), e).with_container(container.to_owned())
        })
    }

    async fn create_volume(&self, spec: &VolumeSpec) -> Result<VolumeInfo> {
        let body: bollard::models::VolumeCreateRequest = from_json("create volume", request::volume_create(spec))?;
        let created = self
            .client
            .create_volume(body)
            .await
            .map_err(|e| map_error(&format!("create volume `{}`", spec.name), e))?;
        Ok(compat::volume_info(&to_json(&created)))
    }

    async fn inspect_volume(&self, name: &str) -> Result<VolumeInfo> {
        let info =
            self.client.inspect_volume(name).await.map_err(|e| map_error(&format!("inspect volume `{name}`"), e))?;
        Ok(compat::volume_info(&to_json(&info)))
    }

    async fn list_volumes(&self, filter: &LabelFilter) -> Result<Vec<VolumeInfo>> {
        let options = q::ListVolumesOptions { filters: label_filters(filter) };
        let list = self.client.list_volumes(Some(options)).await.map_err(err("list volumes"))?;
        Ok(list
            .volumes
            .unwrap_or_default()
            .iter()
            .map(|v| compat::volume_info(&to_json(v)))
            .filter(|v| filter.matches(&v.labels))
            .collect())
    }

    async fn remove_volume(&self, name: &str, force: bool) -> Result<()> {
        let options = q::RemoveVolumeOptions { force };
        self.client
            .remove_volume(name, Some(options))
            .await
            .map_err(|e| map_error(&format!("remove volume `{name}`"), e))
    }

    fn events(&self, filter: &LabelFilter) -> BoxStream<'static, Result<Event>> {
        let podman = self.podman.is_some();
        // Podman ends the stream when its event log rotates: `resumed` asks again.
        let filters = label_filters(filter);
        let client = self.client.clone();
        let raw = compat::events::resumed(move |since| {
            let options =
                q::EventsOptions { filters: filters.clone(), since: Some(since), ..q::EventsOptions::default() };
            client
                .events(Some(options))
                .map(|item| item.map(|e| to_json(&e)).map_err(|e| map_error("read events", e)))
                .boxed()
        });
        let filter = filter.clone();
        raw.map(|item| item.map(|raw| compat::event(&raw)))
            // Podman ORs several label filters; Docker ANDs them (a container's event carries
            // its labels as attributes).
            .filter(move |event| {
                let keep = match event {
                    Ok(e) => filter.labels.len() < 2 || !podman || filter.matches(&e.attributes),
                    Err(_) => true,
                };
                std::future::ready(keep)
            })
            .boxed()
    }
}

fixtures_engine_api::backend!(
    name: "docker",
    connect: DockerRuntime::connect,
    connect_to: DockerRuntime::connect_to,
    configured_host: DockerRuntime::configured_host,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(status_code: u16, message: &str, kind: ErrorKind) {
        let e = map_error("op", BollardError::DockerResponseServerError { status_code, message: message.to_owned() });
        assert_eq!(e.kind(), kind, "{status_code} {message}");
    }

    #[test]
    fn engine_statuses_map_to_kinds() {
        check(404, "No such container: x", ErrorKind::NotFound);
        check(409, "Conflict. The container name is already in use", ErrorKind::Conflict);
        check(304, "", ErrorKind::Conflict);
        check(400, "bad parameter", ErrorKind::InvalidInput);
        check(500, "creating container storage: the container name \"x\" is already in use", ErrorKind::Conflict);
        check(500, "no such container", ErrorKind::NotFound);
        check(500, "something broke", ErrorKind::Engine);
        assert_eq!(
            image_id_in(&format!("Some(ImageId {{ id: Some(\"sha256:{}\") }})", "a".repeat(64))),
            Some(format!("sha256:{}", "a".repeat(64)))
        );
        assert_eq!(image_id_in("sha256:abc"), None);
    }
}
