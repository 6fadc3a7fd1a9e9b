//! The kinds of fixture an environment declares, and their builders.
//!
//! Builders are plain data: they record what to create, with templates in
//! their strings, and do no I/O. Mistakes a builder can see (a malformed port)
//! are kept and reported when the environment is validated, with the fixture's
//! name, before anything is created.

use std::any::Any;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::archive::Files;
use crate::error::{BoxError, Error, ErrorKind, Result};
use crate::handle::Container;
use crate::readiness::{LogSource, WaitFor};
use crate::spec::{
    BuildContext, BuildSpec, ContainerSpec, Credentials, Healthcheck, Mount, NetworkAttachment, NetworkSpec, Port,
    PortBinding, PullSpec, Ulimit, VolumeSpec,
};

use super::fixture::Resolved;

/// How long a fixture lives and who shares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Made for one test, removed after it (default for containers, networks, volumes).
    Function,
    /// Shared by the tests of one module; removed when the test process ends.
    Module,
    /// Shared by every test of the process (default for images); removed when it ends.
    Session,
}

impl Scope {
    /// `function`, `module` or `session`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Function => "function",
            Scope::Module => "module",
            Scope::Session => "session",
        }
    }
}

/// A future a fixture closure returns.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T>> + Send>>;

/// A custom fixture's constructor: gets the resolved fixtures it named.
pub(crate) type MakeFn = Arc<dyn Fn(Resolved) -> BoxFuture<Arc<dyn Any + Send + Sync>> + Send + Sync>;
/// A value computed from other fixtures.
pub(crate) type ValueFn = Arc<dyn Fn(&Resolved) -> Result<serde_json::Value> + Send + Sync>;
/// A last change to a container's spec, with its dependencies resolved.
pub(crate) type ConfigureFn = Arc<dyn Fn(&mut ContainerSpec, &Resolved) -> Result<()> + Send + Sync>;
/// Wraps a container in a user type.
pub(crate) type WrapFn = Arc<dyn Fn(Container) -> Arc<dyn Any + Send + Sync> + Send + Sync>;

/// A user type around a [`Container`], with helper methods and its own readiness check
/// (the reference's `wrapper_class`). Choose it per fixture with [`ContainerNode::wrapper`].
pub trait Wrapper: Send + Sync + Sized + 'static {
    /// Wraps the container.
    fn wrap(container: Container) -> Self;

    /// Extra readiness, checked after the default one until it returns `Ok(true)`.
    fn ready(&self) -> impl Future<Output = Result<bool>> + Send {
        std::future::ready(Ok(true))
    }
}

/// A declared fixture.
#[derive(Clone)]
#[non_exhaustive]
pub enum Node {
    /// An image.
    Image(ImageNode),
    /// A container.
    Container(Box<ContainerNode>),
    /// A network.
    Network(NetworkNode),
    /// A volume.
    Volume(VolumeNode),
    /// A plain value.
    Value(ValueNode),
    /// A fixture made by user code (a client).
    Custom(CustomNode),
    /// One of several other fixtures: tests that use it run once per alternative.
    Alternatives(Vec<String>),
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Node::Image(n) => n.fmt(f),
            Node::Container(n) => n.fmt(f),
            Node::Network(n) => n.fmt(f),
            Node::Volume(n) => n.fmt(f),
            Node::Value(n) => n.fmt(f),
            Node::Custom(n) => n.fmt(f),
            Node::Alternatives(a) => f.debug_tuple("Alternatives").field(a).finish(),
        }
    }
}

impl Node {
    /// What kind of fixture this is, in words.
    pub fn kind(&self) -> &'static str {
        match self {
            Node::Image(_) => "image",
            Node::Container(_) => "container",
            Node::Network(_) => "network",
            Node::Volume(_) => "volume",
            Node::Value(_) => "value",
            Node::Custom(_) => "custom fixture",
            Node::Alternatives(_) => "alternatives",
        }
    }

    /// Its scope, explicit or the kind's default.
    pub fn scope(&self) -> Scope {
        match self {
            Node::Image(n) => n.scope.unwrap_or(Scope::Session),
            Node::Container(n) => n.scope.unwrap_or(Scope::Function),
            Node::Network(n) => n.scope.unwrap_or(Scope::Function),
            Node::Volume(n) => n.scope.unwrap_or(Scope::Function),
            Node::Value(_) => Scope::Session,
            Node::Custom(n) => n.scope.unwrap_or(Scope::Function),
            Node::Alternatives(_) => Scope::Function,
        }
    }
}

// ---------------------------------------------------------------- images

/// Where an image fixture comes from.
#[derive(Debug, Clone)]
pub(crate) enum ImageSource {
    /// Build it.
    Build { spec: BuildSpec, stages: Vec<String> },
    /// Pull it (only when the engine lacks it, with `if_missing`).
    Fetch { spec: PullSpec, if_missing: bool },
    /// It exists on the engine already.
    Existing(String),
    /// The image named by an environment variable if set, else build.
    FromEnvOrBuild { key: String, spec: BuildSpec, stages: Vec<String> },
}

/// An image fixture: built, pulled, or already there (made by [`build`], [`fetch`],
/// [`image`] or [`image_or_build`]).
#[derive(Debug, Clone)]
pub struct ImageNode {
    pub(crate) source: ImageSource,
    pub(crate) scope: Option<Scope>,
}

/// An image built from a folder (`.path(...)`) or an in-code Dockerfile (`.dockerfile_text(...)`).
pub fn build() -> BuildNode {
    BuildNode { spec: BuildSpec::new(BuildContext::Dir(PathBuf::new())), stages: Vec::new(), key: None, scope: None }
}

/// An image pulled from a registry: `fetch("127.0.0.1:5000/app:1")`.
pub fn fetch(repository: impl Into<String>) -> FetchNode {
    FetchNode { spec: PullSpec::new(repository), if_missing: false, scope: None }
}

/// An image that already exists on the engine, by id or reference. Nothing is pulled.
pub fn image(reference: impl Into<String>) -> ExistingImageNode {
    ExistingImageNode { reference: reference.into(), scope: None }
}

/// The image named by the environment variable `key` (an artifact of your CI) if it is
/// set, else an image built like [`build`], with the same methods.
pub fn image_or_build(key: impl Into<String>) -> BuildNode {
    BuildNode { key: Some(key.into()), ..build() }
}

/// An image to build: [`build`] or [`image_or_build`]. Only what applies to a build can be
/// called on it (a pull's credentials cannot).
#[derive(Debug, Clone)]
pub struct BuildNode {
    spec: BuildSpec,
    stages: Vec<String>,
    /// `image_or_build`'s variable.
    key: Option<String>,
    scope: Option<Scope>,
}

impl BuildNode {
    /// The build context folder, relative to the crate's folder (`CARGO_MANIFEST_DIR`) or absolute.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.spec.context = BuildContext::Dir(PathBuf::from(path.into()));
        self
    }

    /// A Dockerfile given in code, with an empty context.
    pub fn dockerfile_text(mut self, dockerfile: impl Into<String>) -> Self {
        self.spec.context = BuildContext::Dockerfile(dockerfile.into());
        self
    }

    /// The Dockerfile's path inside the context (default `Dockerfile`).
    pub fn dockerfile(mut self, path: impl Into<String>) -> Self {
        self.spec.dockerfile = Some(path.into());
        self
    }

    /// A build argument.
    pub fn build_arg(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.spec.build_args.insert(key.into(), value.into());
        self
    }

    /// The stage to stop at.
    pub fn target(mut self, stage: impl Into<String>) -> Self {
        self.spec.target = Some(stage.into());
        self
    }

    /// Stages to build and tag first, so that they survive a prune and cache later builds.
    pub fn stages<I, S>(mut self, stages: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.stages = stages.into_iter().map(Into::into).collect();
        self
    }

    /// A tag for the built image.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.spec.tags.push(tag.into());
        self
    }

    /// Build without the cache.
    pub fn no_cache(mut self) -> Self {
        self.spec.no_cache = true;
        self
    }

    /// The platform to build for (`linux/amd64`).
    pub fn platform(mut self, platform: impl Into<String>) -> Self {
        self.spec.platform = Some(platform.into());
        self
    }

    /// A label on the built image, beside this library's.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.spec.labels.insert(key.into(), value.into());
        self
    }

    /// Its scope (default session).
    pub fn scope(mut self, scope: Scope) -> Self {
        self.scope = Some(scope);
        self
    }
}

/// An image to pull: [`fetch`].
#[derive(Debug, Clone)]
pub struct FetchNode {
    spec: PullSpec,
    if_missing: bool,
    scope: Option<Scope>,
}

impl FetchNode {
    /// Pulls only when the engine has no image by that reference (Compose's default pull
    /// policy); otherwise the image is pulled every run, so a moved tag is seen.
    pub fn if_missing(mut self) -> Self {
        self.if_missing = true;
        self
    }

    /// The platform to pull (`linux/amd64`).
    pub fn platform(mut self, platform: impl Into<String>) -> Self {
        self.spec.platform = Some(platform.into());
        self
    }

    /// Registry credentials for the pull.
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.spec.credentials = Some(credentials);
        self
    }

    /// Its scope (default session).
    pub fn scope(mut self, scope: Scope) -> Self {
        self.scope = Some(scope);
        self
    }
}

/// An image already on the engine: [`image`].
#[derive(Debug, Clone)]
pub struct ExistingImageNode {
    reference: String,
    scope: Option<Scope>,
}

impl ExistingImageNode {
    /// Its scope (default session).
    pub fn scope(mut self, scope: Scope) -> Self {
        self.scope = Some(scope);
        self
    }
}

impl From<BuildNode> for ImageNode {
    fn from(b: BuildNode) -> ImageNode {
        let BuildNode { spec, stages, key, scope } = b;
        let source = match key {
            Some(key) => ImageSource::FromEnvOrBuild { key, spec, stages },
            None => ImageSource::Build { spec, stages },
        };
        ImageNode { source, scope }
    }
}

impl From<FetchNode> for ImageNode {
    fn from(f: FetchNode) -> ImageNode {
        ImageNode { source: ImageSource::Fetch { spec: f.spec, if_missing: f.if_missing }, scope: f.scope }
    }
}

impl From<ExistingImageNode> for ImageNode {
    fn from(e: ExistingImageNode) -> ImageNode {
        ImageNode { source: ImageSource::Existing(e.reference), scope: e.scope }
    }
}

// ---------------------------------------------------------------- containers

/// A container fixture.
#[derive(Clone)]
pub struct ContainerNode {
    pub(crate) spec: ContainerSpec,
    pub(crate) scope: Option<Scope>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) ports_ready: bool,
    /// Whether ports given with `expose` are awaited too.
    pub(crate) exposed_ready: bool,
    pub(crate) min_uptime: Duration,
    pub(crate) completes: bool,
    pub(crate) exit_ok: bool,
    pub(crate) wait_for: Vec<WaitFor>,
    pub(crate) configure: Vec<(Vec<String>, ConfigureFn)>,
    pub(crate) wrapper: Option<(&'static str, WrapFn)>,
    pub(crate) errors: Vec<String>,
}

impl std::fmt::Debug for ContainerNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let needs: Vec<&String> = self.configure.iter().flat_map(|(needs, _)| needs).collect();
        f.debug_struct("ContainerNode")
            .field("spec", &self.spec)
            .field("scope", &self.scope)
            .field("timeout", &self.timeout)
            .field("ports_ready", &self.ports_ready)
            .field("exposed_ready", &self.exposed_ready)
            .field("runs_to_completion", &self.completes)
            .field("may_exit_successfully", &self.exit_ok)
            .field("wait_for", &self.wait_for)
            .field("configure_needs", &needs)
            .field("wrapper", &self.wrapper.as_ref().map(|w| w.0))
            .finish_non_exhaustive()
    }
}

/// A container. Set its image with [`ContainerNode::image`], usually a template like
/// `"{my_image.id}"`.
///
/// ```
/// # use fixtures_core as fixtures;
/// use std::time::Duration;
/// use fixtures::container;
///
/// let api = container()
///     .image("{api_image.id}")
///     .env("LOG_LEVEL", "debug")
///     .port("8080/tcp")                  // published on an ephemeral host port
///     .network("{backend.name}")
///     .wait_for_http("8080/tcp", "/health", 200)
///     .timeout(Duration::from_secs(60));
/// ```
pub fn container() -> ContainerNode {
    ContainerNode {
        spec: ContainerSpec::default(),
        scope: None,
        timeout: None,
        ports_ready: true,
        exposed_ready: true,
        min_uptime: crate::readiness::DEFAULT_MIN_UPTIME,
        completes: false,
        exit_ok: false,
        wait_for: Vec::new(),
        configure: Vec::new(),
        wrapper: None,
        errors: Vec::new(),
    }
}

fn strings<I, S>(items: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    items.into_iter().map(Into::into).collect()
}

impl ContainerNode {
    /// The image: an id, a reference, or a template like `"{my_image.id}"`.
    pub fn image(mut self, image: impl Into<String>) -> Self {
        self.spec.image = image.into();
        self
    }

    /// The container's name. Unique names are made when none is given; a fixed name
    /// is needed for reuse mode and keeps parallel tests from running the fixture twice.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.spec.name = Some(name.into());
        self
    }

    /// The command (the image's CMD otherwise).
    pub fn command<I, S>(mut self, cmd: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.spec.command = Some(strings(cmd));
        self
    }

    /// The entrypoint (the image's ENTRYPOINT otherwise).
    pub fn entrypoint<I, S>(mut self, ep: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.spec.entrypoint = Some(strings(ep));
        self
    }

    /// An environment variable; the value (and the name) may be templates.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.spec.env.insert(key.into(), value.into());
        self
    }

    /// Several environment variables.
    pub fn envs<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        for (k, v) in vars {
            self.spec.env.insert(k.into(), v.into());
        }
        self
    }

    fn parse_port(&mut self, port: &str) -> Option<Port> {
        match Port::parse(port) {
            Ok(p) => Some(p),
            Err(e) => {
                self.errors.push(e.message().to_owned());
                None
            }
        }
    }

    /// Publishes `port` (`"8080/tcp"`, `"53/udp"`) on an ephemeral host port, on 127.0.0.1.
    pub fn port(mut self, port: &str) -> Self {
        if let Some(port) = self.parse_port(port) {
            self.spec.ports.push(PortBinding { port, host_ip: Some("127.0.0.1".into()), host_port: None });
        }
        self
    }

    /// Publishes `port` on a chosen host address and port (`None`: ephemeral).
    pub fn port_on(mut self, port: &str, host_ip: &str, host_port: Option<u16>) -> Self {
        if let Some(port) = self.parse_port(port) {
            self.spec.ports.push(PortBinding { port, host_ip: Some(host_ip.to_owned()), host_port });
        }
        self
    }

    /// Exposes a port without publishing it (it is still awaited by readiness on its networks).
    pub fn expose(mut self, port: &str) -> Self {
        if let Some(port) = self.parse_port(port) {
            self.spec.expose.push(port);
        }
        self
    }

    /// Mounts the volume `source` (a name or a template like `"{data.name}"`) at `target`.
    pub fn volume(mut self, source: impl Into<String>, target: impl Into<String>) -> Self {
        self.spec.mounts.push(Mount::Volume { name: source.into(), target: target.into(), read_only: false });
        self
    }

    /// Mounts a volume read-only.
    pub fn volume_ro(mut self, source: impl Into<String>, target: impl Into<String>) -> Self {
        self.spec.mounts.push(Mount::Volume { name: source.into(), target: target.into(), read_only: true });
        self
    }

    /// Bind-mounts a host path.
    pub fn bind(mut self, source: impl Into<String>, target: impl Into<String>, read_only: bool) -> Self {
        self.spec.mounts.push(Mount::Bind { source: source.into(), target: target.into(), read_only });
        self
    }

    /// Mounts a tmpfs.
    pub fn tmpfs(mut self, target: impl Into<String>, size: Option<u64>) -> Self {
        self.spec.mounts.push(Mount::Tmpfs { target: target.into(), size });
        self
    }

    /// Joins a network (a name or a template like `"{backend.name}"`); the first one is primary.
    pub fn network(self, network: impl Into<String>) -> Self {
        self.network_with_aliases(network, Vec::<String>::new())
    }

    /// Joins a network with extra DNS names.
    pub fn network_with_aliases<I, S>(mut self, network: impl Into<String>, aliases: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.spec.networks.push(NetworkAttachment { network: network.into(), aliases: strings(aliases) });
        self
    }

    /// Network mode (`host`, `none`, `container:<id>`) instead of networks.
    pub fn network_mode(mut self, mode: impl Into<String>) -> Self {
        self.spec.network_mode = Some(mode.into());
        self
    }

    /// A DNS server, e.g. `"{fakedns.ips.primary}"`.
    pub fn dns(mut self, server: impl Into<String>) -> Self {
        self.spec.dns.push(server.into());
        self
    }

    /// An `/etc/hosts` entry.
    pub fn extra_host(mut self, name: impl Into<String>, ip: impl Into<String>) -> Self {
        self.spec.extra_hosts.push(format!("{}:{}", name.into(), ip.into()));
        self
    }

    /// Hostname.
    pub fn hostname(mut self, hostname: impl Into<String>) -> Self {
        self.spec.hostname = Some(hostname.into());
        self
    }

    /// User (`uid[:gid]` or a name).
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.spec.user = Some(user.into());
        self
    }

    /// Working directory.
    pub fn working_dir(mut self, dir: impl Into<String>) -> Self {
        self.spec.working_dir = Some(dir.into());
        self
    }

    /// A label, beside this library's own.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.spec.labels.insert(key.into(), value.into());
        self
    }

    /// Privileged mode.
    pub fn privileged(mut self) -> Self {
        self.spec.privileged = true;
        self
    }

    /// Adds a capability.
    pub fn cap_add(mut self, cap: impl Into<String>) -> Self {
        self.spec.cap_add.push(cap.into());
        self
    }

    /// Drops a capability.
    pub fn cap_drop(mut self, cap: impl Into<String>) -> Self {
        self.spec.cap_drop.push(cap.into());
        self
    }

    /// A read-only root filesystem.
    pub fn read_only(mut self) -> Self {
        self.spec.read_only = true;
        self
    }

    /// An init process as PID 1.
    pub fn init(mut self) -> Self {
        self.spec.init = true;
        self
    }

    /// The signal that stops it.
    pub fn stop_signal(mut self, signal: impl Into<String>) -> Self {
        self.spec.stop_signal = Some(signal.into());
        self
    }

    /// How long the engine waits after the stop signal before it kills the container (whole
    /// seconds).
    pub fn stop_timeout(mut self, timeout: Duration) -> Self {
        self.spec.stop_timeout = Some(i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX));
        self
    }

    /// A health check overriding the image's.
    pub fn healthcheck(mut self, check: Healthcheck) -> Self {
        self.spec.healthcheck = Some(check);
        self
    }

    /// Memory limit in bytes.
    pub fn memory(mut self, bytes: i64) -> Self {
        self.spec.resources.memory = Some(bytes);
        self.spec.resources.memory_swap = Some(bytes);
        self
    }

    /// CPU limit in CPUs (`0.5`).
    pub fn cpus(mut self, cpus: f64) -> Self {
        self.spec.resources.nano_cpus = Some((cpus * 1e9) as i64);
        self
    }

    /// Process limit.
    pub fn pids_limit(mut self, limit: i64) -> Self {
        self.spec.resources.pids_limit = Some(limit);
        self
    }

    /// The memory, CPU and process limits may be dropped, with a warning, by an engine that
    /// cannot apply them (rootless Podman on cgroups v1), rather than refuse the container.
    pub fn limits_optional(mut self) -> Self {
        self.spec.resources.optional = true;
        self
    }

    /// Memory the container is guaranteed, in bytes (a soft limit under `memory`).
    pub fn memory_reservation(mut self, bytes: i64) -> Self {
        self.spec.resources.memory_reservation = Some(bytes);
        self
    }

    /// A terminal for the main process (`docker run -t`).
    pub fn tty(mut self) -> Self {
        self.spec.tty = true;
        self
    }

    /// Standard input kept open (`docker run -i`).
    pub fn open_stdin(mut self) -> Self {
        self.spec.open_stdin = true;
        self
    }

    /// The PID namespace: `"host"`, or another container's: `"container:{other.id}"`.
    pub fn pid_mode(mut self, mode: impl Into<String>) -> Self {
        self.spec.pid_mode = Some(mode.into());
        self
    }

    /// The IPC namespace: `"host"`, `"shareable"`, `"private"`, or `"container:{other.id}"`.
    pub fn ipc_mode(mut self, mode: impl Into<String>) -> Self {
        self.spec.ipc_mode = Some(mode.into());
        self
    }

    /// A device of the host in the container: `"/dev/fuse"`, `"/dev/sda:/dev/xvda:rwm"`.
    pub fn device(mut self, device: impl Into<String>) -> Self {
        self.spec.devices.push(device.into());
        self
    }

    /// An extra group for the main process, by name or number.
    pub fn group_add(mut self, group: impl Into<String>) -> Self {
        self.spec.group_add.push(group.into());
        self
    }

    /// A security option: `"no-new-privileges:true"`, `"seccomp=unconfined"`, `"label=disable"`.
    pub fn security_opt(mut self, option: impl Into<String>) -> Self {
        self.spec.security_opt.push(option.into());
        self
    }

    /// A DNS search domain.
    pub fn dns_search(mut self, domain: impl Into<String>) -> Self {
        self.spec.dns_search.push(domain.into());
        self
    }

    /// A resolver option (`"ndots:2"`).
    pub fn dns_option(mut self, option: impl Into<String>) -> Self {
        self.spec.dns_options.push(option.into());
        self
    }

    /// Size of /dev/shm in bytes.
    pub fn shm_size(mut self, bytes: i64) -> Self {
        self.spec.resources.shm_size = Some(bytes);
        self
    }

    /// A process limit (`ulimit`): `.ulimit("nofile", 1024, 4096)`.
    pub fn ulimit(mut self, name: impl Into<String>, soft: i64, hard: i64) -> Self {
        self.spec.resources.ulimits.push(Ulimit { name: name.into(), soft, hard });
        self
    }

    /// A kernel parameter in the container's namespaces: `.sysctl("net.core.somaxconn", "1024")`.
    pub fn sysctl(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.spec.sysctls.insert(key.into(), value.into());
        self
    }

    /// Extra fields for the engine's create request, merged into it as JSON, for what
    /// the typed methods do not cover: `.raw(json!({"HostConfig": {"Sysctls": {...}}}))`.
    /// Strings in it are not templates.
    pub fn raw(mut self, fields: serde_json::Value) -> Self {
        self.spec.raw = Some(fields);
        self
    }

    /// Edits the spec in code once the fixtures named in `needs` are ready, for values
    /// that are not strings (a port number from a value fixture, a computed list).
    pub fn configure<I, S, F>(mut self, needs: I, f: F) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
        F: Fn(&mut ContainerSpec, &Resolved) -> std::result::Result<(), BoxError> + Send + Sync + 'static,
    {
        let configure: ConfigureFn = Arc::new(move |spec, r| {
            f(spec, r).map_err(|e| Error::from_fixture_code(e, "its `configure` code returned an error"))
        });
        self.configure.push((strings(needs), configure));
        self
    }

    /// Its scope (default function).
    pub fn scope(mut self, scope: Scope) -> Self {
        self.scope = Some(scope);
        self
    }

    /// How long it may take to become ready (default 30 s, or `FIXTURE_TIMEOUT` seconds).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// How long its main process must have run before it counts as ready (default 10 ms): a
    /// container that exits sooner fails its fixture instead of being handed over. Only
    /// containers whose checks pass sooner than this wait; `Duration::ZERO` turns it off.
    pub fn min_uptime(mut self, min_uptime: Duration) -> Self {
        self.min_uptime = min_uptime;
        self
    }

    /// A container that runs to completion (a migration, a seed job): ready once its main
    /// process has exited 0; exiting with another code fails the fixture with that code and
    /// the last lines of its output. Ports and `wait_for` strategies are not awaited.
    pub fn runs_to_completion(mut self) -> Self {
        self.completes = true;
        self
    }

    /// Counts an exit with code 0 while it is awaited as ready instead of a failure: for a
    /// container that may be a one-shot job or a long-running service (what Compose's
    /// `service_started` allows). Another exit code still fails the fixture.
    pub fn may_exit_successfully(mut self) -> Self {
        self.exit_ok = true;
        self
    }

    /// Don't wait for published ports to listen (e.g. a service that only connects out).
    pub fn no_port_wait(mut self) -> Self {
        self.ports_ready = false;
        self
    }

    /// Don't wait for the ports given with [`expose`](Self::expose) (published ports are
    /// still awaited): an image may declare a port its server opens only when configured.
    pub fn no_exposed_port_wait(mut self) -> Self {
        self.exposed_ready = false;
        self
    }

    /// An extra readiness check, called until it returns `Ok(true)`; an error (of any type:
    /// it returns `Result<bool, BoxError>`) fails the fixture.
    pub fn ready_when<F, Fut>(self, name: impl Into<String>, check: F) -> Self
    where
        F: Fn(Container) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<bool, BoxError>> + Send + 'static,
    {
        let name = name.into();
        let what = format!("readiness check `{name}`");
        let check = Arc::new(check);
        self.wait_for(WaitFor::Custom(
            name,
            Arc::new(move |c| {
                let (check, what) = (check.clone(), what.clone());
                Box::pin(async move { user_code(&what, check(c)).await })
            }),
        ))
    }

    /// A readiness strategy, awaited after the default check; several are all awaited
    /// (concurrently). Combine with [`WaitFor::any`] for either-or.
    pub fn wait_for(mut self, strategy: WaitFor) -> Self {
        self.wait_for.push(strategy);
        self
    }

    /// Ready once a line of output (stdout or stderr) matches the regular expression `pattern`.
    pub fn wait_for_log(self, pattern: &str) -> Self {
        self.wait_for_log_on(pattern, LogSource::Either, 1)
    }

    /// Ready once `times` lines of `source` match `pattern`.
    pub fn wait_for_log_on(mut self, pattern: &str, source: LogSource, times: usize) -> Self {
        match WaitFor::log_on(pattern, source, times) {
            Ok(w) => self.wait_for(w),
            Err(e) => {
                self.errors.push(e.message().to_owned());
                self
            }
        }
    }

    /// Ready once `GET path` on the published `port` answers `status`.
    pub fn wait_for_http(self, port: &str, path: &str, status: u16) -> Self {
        self.wait_for(WaitFor::http(port, path, status))
    }

    /// Ready once the HEALTHCHECK (the image's, or `.healthcheck(...)`) reports healthy.
    pub fn wait_for_healthy(self) -> Self {
        self.wait_for(WaitFor::Healthy)
    }

    /// Ready once `cmd` exits 0 inside the container.
    pub fn wait_for_command<I, S>(self, cmd: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.wait_for(WaitFor::command(cmd))
    }

    /// Hands this container to tests as the user type `W`, whose `ready` joins the readiness checks.
    pub fn wrapper<W: Wrapper>(mut self) -> Self {
        let wrap: WrapFn = Arc::new(|c| Arc::new(W::wrap(c)) as Arc<dyn Any + Send + Sync>);
        self.wrapper = Some((std::any::type_name::<W>(), wrap));
        self.wait_for(WaitFor::Custom(
            format!("{}::ready", std::any::type_name::<W>()),
            Arc::new(|c: Container| Box::pin(async move { W::wrap(c).ready().await })),
        ))
    }
}

// ---------------------------------------------------------------- networks and volumes

/// A network fixture.
#[derive(Debug, Clone)]
pub struct NetworkNode {
    pub(crate) spec: NetworkSpec,
    pub(crate) scope: Option<Scope>,
}

/// A network with a unique name.
pub fn network() -> NetworkNode {
    NetworkNode { spec: NetworkSpec::default(), scope: None }
}

impl NetworkNode {
    /// A fixed name (unique ones are made otherwise).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.spec.name = name.into();
        self
    }

    /// The driver (default `bridge`).
    pub fn driver(mut self, driver: impl Into<String>) -> Self {
        self.spec.driver = Some(driver.into());
        self
    }

    /// No route to the outside.
    pub fn internal(mut self) -> Self {
        self.spec.internal = true;
        self
    }

    /// IPv6 addresses for its containers, where the engine supports it. Without a
    /// [`NetworkNode::subnet`], a unique private (`fdxx:…::/64`) one is chosen.
    pub fn ipv6(mut self) -> Self {
        self.spec.enable_ipv6 = true;
        self
    }

    /// A subnet to allocate addresses from (IPv4 or IPv6); the engine chooses otherwise.
    pub fn subnet(mut self, subnet: impl Into<String>) -> Self {
        self.spec.subnets.push(subnet.into());
        self
    }

    /// A driver option.
    pub fn option(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.spec.options.insert(key.into(), value.into());
        self
    }

    /// A label, beside this library's.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.spec.labels.insert(key.into(), value.into());
        self
    }

    /// Its scope (default function).
    pub fn scope(mut self, scope: Scope) -> Self {
        self.scope = Some(scope);
        self
    }
}

/// A volume fixture.
#[derive(Debug, Clone)]
pub struct VolumeNode {
    pub(crate) spec: VolumeSpec,
    pub(crate) scope: Option<Scope>,
    pub(crate) initial_content: Files,
}

/// A volume with a unique name.
pub fn volume() -> VolumeNode {
    VolumeNode { spec: VolumeSpec::default(), scope: None, initial_content: Files::new() }
}

impl VolumeNode {
    /// A fixed name (unique ones are made otherwise).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.spec.name = name.into();
        self
    }

    /// The driver (default `local`).
    pub fn driver(mut self, driver: impl Into<String>) -> Self {
        self.spec.driver = Some(driver.into());
        self
    }

    /// A driver option.
    pub fn driver_opt(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.spec.driver_opts.insert(key.into(), value.into());
        self
    }

    /// A label, beside this library's.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.spec.labels.insert(key.into(), value.into());
        self
    }

    /// Seeds the new volume: relative paths to file contents, `None` for a folder.
    /// No shell is needed in any image. Paths with `..` or absolute paths are refused.
    pub fn initial_content<I, K>(mut self, files: I) -> Self
    where
        I: IntoIterator<Item = (K, Option<Vec<u8>>)>,
        K: Into<String>,
    {
        self.initial_content = files.into_iter().map(|(k, v)| (k.into(), v)).collect();
        self
    }

    /// Its scope (default function).
    pub fn scope(mut self, scope: Scope) -> Self {
        self.scope = Some(scope);
        self
    }
}

// ---------------------------------------------------------------- values and custom fixtures

/// A value fixture: given, or computed from other fixtures.
#[derive(Clone)]
pub struct ValueNode {
    pub(crate) value: Option<serde_json::Value>,
    pub(crate) compute: Option<(Vec<String>, ValueFn)>,
}

impl std::fmt::Debug for ValueNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValueNode")
            .field("value", &self.value)
            .field("computed from", &self.compute.as_ref().map(|c| &c.0))
            .finish()
    }
}

/// A plain value other fixtures reference as `{name}` (strings as they are, other
/// JSON as JSON text) or by path (`{cfg.port}`).
pub fn value(value: impl Into<serde_json::Value>) -> ValueNode {
    ValueNode { value: Some(value.into()), compute: None }
}

/// A value computed from the fixtures named in `needs` (the reference's callables). `f`
/// returns `Result<Value, BoxError>`, so `?` works on any error.
pub fn value_fn<I, S, F>(needs: I, f: F) -> ValueNode
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
    F: Fn(&Resolved) -> std::result::Result<serde_json::Value, BoxError> + Send + Sync + 'static,
{
    let compute: ValueFn = Arc::new(move |r| match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(r))) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(Error::from_fixture_code(e, "its code returned an error")),
        Err(panic) => Err(Error::new(ErrorKind::Fixture, format!("its code panicked: {}", panic_text(panic.as_ref())))),
    });
    ValueNode { value: None, compute: Some((strings(needs), compute)) }
}

/// A custom fixture's teardown: gets the fixture's value back when its scope ends.
pub(crate) type TeardownFn = Arc<dyn Fn(Arc<dyn Any + Send + Sync>) -> BoxFuture<()> + Send + Sync>;

/// How long a teardown may take unless the fixture says otherwise.
pub const DEFAULT_TEARDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// A fixture made by user code, such as a client for a service (see [`fixture`]).
#[derive(Clone)]
pub struct CustomNode {
    pub(crate) needs: Vec<String>,
    pub(crate) make: MakeFn,
    pub(crate) scope: Option<Scope>,
    pub(crate) type_name: &'static str,
    pub(crate) teardown: Option<TeardownFn>,
    pub(crate) teardown_timeout: Duration,
}

impl std::fmt::Debug for CustomNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomNode")
            .field("needs", &self.needs)
            .field("type", &self.type_name)
            .field("teardown", &self.teardown.is_some())
            .finish()
    }
}

/// The builder [`fixture`] returns: a custom fixture making a `T`.
pub struct FixtureNode<T> {
    node: CustomNode,
    _makes: std::marker::PhantomData<fn() -> T>,
}

impl<T> Clone for FixtureNode<T> {
    fn clone(&self) -> Self {
        FixtureNode { node: self.node.clone(), _makes: std::marker::PhantomData }
    }
}

impl<T> std::fmt::Debug for FixtureNode<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.node.fmt(f)
    }
}

/// What a panic said, for errors.
pub(crate) fn panic_text(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(a panic without a message)".to_owned())
}

/// Runs user code, turning its error and its panic into this crate's error.
pub(crate) async fn user_code<T, E, F>(what: &str, future: F) -> Result<T>
where
    E: Into<BoxError>,
    F: Future<Output = std::result::Result<T, E>>,
{
    use futures_util::FutureExt;
    match std::panic::AssertUnwindSafe(future).catch_unwind().await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(Error::from_fixture_code(e.into(), format!("{what} returned an error"))),
        Err(panic) => Err(Error::new(ErrorKind::Fixture, format!("{what} panicked: {}", panic_text(panic.as_ref())))),
    }
}

/// A fixture made by `make` from the fixtures named in `needs`, such as a client:
///
/// ```no_run
/// # use fixtures_core::fixture;
/// # struct Client;
/// # impl Client { async fn connect(_: std::net::SocketAddr) -> std::io::Result<Client> { Ok(Client) } }
/// let client = fixture(["apiserver"], |r| async move {
///     Ok(Client::connect(r.container("apiserver")?.addr("8080/tcp")?).await?)
/// });
/// ```
///
/// `make` returns `Result<T, BoxError>`, so `?` works on any error type (a driver's, I/O,
/// this crate's). `T` need not be `Clone`: a test takes it as `&T`. `make` runs on the
/// library's runtime (see [`crate::executor`]), so what it spawns (a client's connection
/// task) lives as long as the fixture's scope and beyond, until it ends by itself.
/// Give it a teardown with [`FixtureNode::teardown`].
///
/// ```
/// # use fixtures_core as fixtures;
/// use fixtures::{Scope, fixture};
///
/// struct Client { addr: std::net::SocketAddr }
///
/// let client = fixture(["api"], |r| async move {
///     Ok(Client { addr: r.container("api")?.addr("8080/tcp")? })
/// })
/// .scope(Scope::Module);
/// ```
pub fn fixture<I, S, T, F, Fut>(needs: I, make: F) -> FixtureNode<T>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
    T: Send + Sync + 'static,
    F: Fn(Resolved) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = std::result::Result<T, BoxError>> + Send + 'static,
{
    let make = Arc::new(make);
    FixtureNode {
        node: CustomNode {
            needs: strings(needs),
            make: Arc::new(move |r| {
                let fut = make(r);
                Box::pin(
                    async move { user_code("its code", fut).await.map(|t| Arc::new(t) as Arc<dyn Any + Send + Sync>) },
                )
            }),
            scope: None,
            type_name: std::any::type_name::<T>(),
            teardown: None,
            teardown_timeout: DEFAULT_TEARDOWN_TIMEOUT,
        },
        _makes: std::marker::PhantomData,
    }
}

impl<T: Send + Sync + 'static> FixtureNode<T> {
    /// Its scope (default function). It may only need fixtures that live at least as long.
    pub fn scope(mut self, scope: Scope) -> Self {
        self.node.scope = Some(scope);
        self
    }

    /// Code that runs when the fixture's scope ends (the test's end for function scope, the
    /// process's end for module and session scope), given the fixture's value back: close a
    /// client, drop the schema it made. Teardowns run in reverse order of creation, before
    /// the containers they need are removed, also when the test failed or panicked. One that
    /// fails, panics or outlasts its [timeout](Self::teardown_timeout) is reported (the test
    /// fails when it is a function-scoped fixture) and the other removals go on.
    ///
    /// ```no_run
    /// # use fixtures_core::fixture;
    /// # struct Client;
    /// # impl Client { async fn connect() -> std::io::Result<Client> { Ok(Client) } async fn close(self) -> std::io::Result<()> { Ok(()) } }
    /// let client = fixture(["db"], |_| async move { Ok(Client::connect().await?) })
    ///     .teardown(|client| async move { Ok(client.close().await?) });
    /// ```
    pub fn teardown<F, Fut>(mut self, teardown: F) -> Self
    where
        F: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<(), BoxError>> + Send + 'static,
    {
        let teardown = Arc::new(teardown);
        self.node.teardown = Some(Arc::new(move |value| {
            let teardown = teardown.clone();
            Box::pin(async move {
                let value = take_back::<T>(value).await?;
                user_code("its teardown", teardown(value)).await
            })
        }));
        self
    }

    /// [`FixtureNode::teardown`] with synchronous code (it may block: it runs on a thread of
    /// its own).
    pub fn teardown_sync<F>(self, teardown: F) -> Self
    where
        F: Fn(T) -> std::result::Result<(), BoxError> + Send + Sync + 'static,
    {
        let teardown = Arc::new(teardown);
        self.teardown(move |value| {
            let teardown = teardown.clone();
            async move {
                match tokio::task::spawn_blocking(move || teardown(value)).await {
                    Ok(done) => done,
                    Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                    Err(e) => Err(e.into()),
                }
            }
        })
    }

    /// How long its teardown may take (default 30 s); past that it is reported and dropped.
    pub fn teardown_timeout(mut self, timeout: Duration) -> Self {
        self.node.teardown_timeout = timeout;
        self
    }
}

/// The fixture's value by itself, once the tests that held it have let go (a test's spawned
/// task may hold it a moment longer).
async fn take_back<T: Send + Sync + 'static>(value: Arc<dyn Any + Send + Sync>) -> Result<T> {
    let Ok(mut value) = value.downcast::<T>() else {
        return Err(Error::new(ErrorKind::Fixture, "its value is not of the teardown's type"));
    };
    loop {
        match Arc::try_unwrap(value) {
            Ok(value) => return Ok(value),
            // Bounded by the teardown's timeout.
            Err(shared) => {
                value = shared;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

impl<T> From<FixtureNode<T>> for Node {
    fn from(n: FixtureNode<T>) -> Node {
        Node::Custom(n.node)
    }
}

/// A fixture that is one of `names`: each test using it, directly or not, runs once per name.
pub fn alternatives<I, S>(names: I) -> Node
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    Node::Alternatives(strings(names))
}

macro_rules! into_node {
    ($($t:ty => $v:ident $(boxed)?),*) => {$(
        impl From<$t> for Node {
            fn from(n: $t) -> Node {
                Node::$v(n.into())
            }
        }
    )*};
}

into_node!(ImageNode => Image, BuildNode => Image, FetchNode => Image, ExistingImageNode => Image, ContainerNode => Container, NetworkNode => Network, VolumeNode => Volume, ValueNode => Value);

/// Names in order of first appearance, without repeats.
pub(crate) fn dedup(names: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    names.into_iter().filter(|n| seen.insert(n.clone())).collect()
}

/// Calls `f` on every string of a container spec that may hold a template: rendering and
/// dependency-finding both walk the spec this way. The spec is taken apart field by field,
/// without `..`, so a field added to `ContainerSpec` does not compile until it is placed
/// here, as a template or as not one.
pub(crate) fn container_strings(spec: &mut ContainerSpec, f: &mut dyn FnMut(&mut String) -> Result<()>) -> Result<()> {
    let ContainerSpec {
        name,
        image,
        command,
        entrypoint,
        env,
        ports: _,
        expose: _,
        mounts,
        networks,
        dns,
        dns_search,
        dns_options,
        extra_hosts,
        hostname,
        user,
        working_dir,
        labels,
        privileged: _,
        cap_add,
        cap_drop,
        read_only: _,
        init: _,
        stop_signal,
        stop_timeout: _,
        healthcheck,
        resources: _,
        network_mode,
        tty: _,
        open_stdin: _,
        pid_mode,
        ipc_mode,
        devices,
        group_add,
        security_opt,
        sysctls,
        // Raw engine JSON is passed as given.
        raw: _,
    } = spec;
    f(image)?;
    for s in [name, hostname, user, working_dir, stop_signal, network_mode, pid_mode, ipc_mode].into_iter().flatten() {
        f(s)?;
    }
    for list in [command, entrypoint].into_iter().flatten() {
        list.iter_mut().try_for_each(&mut *f)?;
    }
    dns.iter_mut()
        .chain(dns_search)
        .chain(dns_options)
        .chain(extra_hosts)
        .chain(cap_add)
        .chain(cap_drop)
        .chain(devices)
        .chain(group_add)
        .chain(security_opt)
        .try_for_each(&mut *f)?;
    for m in mounts {
        match m {
            Mount::Volume { name, target, read_only: _ } => {
                f(name)?;
                f(target)?;
            }
            Mount::Bind { source, target, read_only: _ } => {
                f(source)?;
                f(target)?;
            }
            Mount::Tmpfs { target, size: _ } => f(target)?,
        }
    }
    for NetworkAttachment { network, aliases } in networks {
        f(network)?;
        aliases.iter_mut().try_for_each(&mut *f)?;
    }
    if let Some(Healthcheck { test, interval: _, timeout: _, retries: _, start_period: _ }) = healthcheck {
        test.iter_mut().try_for_each(&mut *f)?;
    }
    for map in [env, labels, sysctls] {
        render_map(map, f)?;
    }
    Ok(())
}

/// Calls `f` on every key and value of `map`.
fn render_map(map: &mut BTreeMap<String, String>, f: &mut dyn FnMut(&mut String) -> Result<()>) -> Result<()> {
    let mut rendered = BTreeMap::new();
    for (mut k, mut v) in std::mem::take(map) {
        f(&mut k)?;
        f(&mut v)?;
        rendered.insert(k, v);
    }
    *map = rendered;
    Ok(())
}

/// Calls `f` on every string of a build spec that may hold a template; field by field, as
/// [`container_strings`] does.
pub(crate) fn build_strings(spec: &mut BuildSpec, f: &mut dyn FnMut(&mut String) -> Result<()>) -> Result<()> {
    let BuildSpec {
        context,
        dockerfile,
        tags,
        build_args,
        target,
        labels,
        no_cache: _,
        remove_intermediate: _,
        pull: _,
        platform,
    } = spec;
    match context {
        BuildContext::Dir(path) => {
            let mut s = path.to_string_lossy().into_owned();
            f(&mut s)?;
            *path = PathBuf::from(s);
        }
        // A Dockerfile's text is its own language (`${VAR}`); a tar is bytes.
        BuildContext::Dockerfile(_) | BuildContext::Tar(_) => {}
    }
    for s in dockerfile.iter_mut().chain(target).chain(platform).chain(tags) {
        f(s)?;
    }
    render_map(build_args, f)?;
    render_map(labels, f)
}
