//! The `Runtime` trait: everything this library asks of a container engine.
//!
//! Only implementations of this trait talk to an engine. It is object-safe and
//! used as `Arc<dyn Runtime>`; backends live in their own crates
//! (`fixtures-docker`, `fixtures-podman`). Results are this crate's types, so
//! nothing of a backend's client leaks through.

use std::any::Any;
use std::collections::BTreeMap;
use std::net::IpAddr;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::BoxStream;

use crate::error::Result;
use crate::spec::{
    BuildSpec, ContainerSpec, ExecSpec, LabelFilter, Labels, LogsSpec, NetworkSpec, Port, PullSpec, VolumeSpec,
};

/// Engine identity, from `version`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VersionInfo {
    /// The backend: `docker`, `podman`.
    pub runtime: String,
    /// The engine behind the API, `docker` or `podman`: the Docker backend may be talking
    /// to Podman's Docker-compatible API, and Podman's limits are then the engine's.
    pub engine: String,
    /// Engine version (`20.10.24`).
    pub version: String,
    /// API version in use (`1.41`).
    pub api_version: String,
    /// Operating system and architecture (`linux/amd64`).
    pub platform: String,
}

impl VersionInfo {
    /// Engine identity; the engine is named like the runtime (see [`VersionInfo::with_engine`]).
    pub fn new(
        runtime: impl Into<String>,
        version: impl Into<String>,
        api_version: impl Into<String>,
        platform: impl Into<String>,
    ) -> Self {
        let runtime = runtime.into();
        VersionInfo {
            engine: runtime.clone(),
            runtime,
            version: version.into(),
            api_version: api_version.into(),
            platform: platform.into(),
        }
    }

    /// Names the engine behind the API when it is not the runtime's own.
    #[must_use]
    pub fn with_engine(mut self, engine: impl Into<String>) -> Self {
        self.engine = engine.into();
        self
    }
}

/// A progress line of a build or pull, for tracing or a progress display.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// What the engine said.
    pub message: String,
}

impl Progress {
    /// A progress line.
    pub fn new(message: impl Into<String>) -> Self {
        Progress { message: message.into() }
    }
}

/// Receives build and pull progress as it streams in.
pub type ProgressSink<'a> = &'a (dyn Fn(Progress) + Send + Sync);

/// An image, as the engine describes it.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct ImageInfo {
    /// Image id (`sha256:...`).
    pub id: String,
    /// `repo:tag` names.
    pub tags: Vec<String>,
    /// Labels.
    pub labels: Labels,
    /// Operating system (`linux`).
    pub os: String,
    /// Architecture.
    pub architecture: String,
    /// The engine's whole answer.
    pub raw: serde_json::Value,
}

/// The state of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ContainerStatus {
    /// Created, not started.
    Created,
    /// Running.
    Running,
    /// Paused.
    Paused,
    /// Restarting.
    Restarting,
    /// Being removed.
    Removing,
    /// Stopped.
    Exited,
    /// Dead.
    Dead,
    /// A state this library does not know.
    #[default]
    Unknown,
}

impl ContainerStatus {
    /// Parses the engine's state word.
    pub fn parse(text: &str) -> Self {
        match text.to_ascii_lowercase().as_str() {
            "created" | "configured" | "initialized" => ContainerStatus::Created,
            "running" => ContainerStatus::Running,
            "paused" => ContainerStatus::Paused,
            "restarting" => ContainerStatus::Restarting,
            "removing" => ContainerStatus::Removing,
            "exited" | "stopped" | "stopping" => ContainerStatus::Exited,
            "dead" => ContainerStatus::Dead,
            _ => ContainerStatus::Unknown,
        }
    }

    /// The state word, as `docker ps` shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerStatus::Created => "created",
            ContainerStatus::Running => "running",
            ContainerStatus::Paused => "paused",
            ContainerStatus::Restarting => "restarting",
            ContainerStatus::Removing => "removing",
            ContainerStatus::Exited => "exited",
            ContainerStatus::Dead => "dead",
            ContainerStatus::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for ContainerStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for ContainerStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Health of a container with a health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Health {
    /// The container has no health check.
    #[default]
    None,
    /// Within its start period.
    Starting,
    /// Healthy.
    Healthy,
    /// Unhealthy.
    Unhealthy,
}

/// A container's address on one network.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct NetworkEndpoint {
    /// Network name.
    pub network: String,
    /// Network id.
    pub network_id: String,
    /// IPv4 address, if any.
    pub ipv4: Option<IpAddr>,
    /// IPv6 address, if any.
    pub ipv6: Option<IpAddr>,
    /// Gateway of the network.
    pub gateway: Option<IpAddr>,
    /// DNS aliases on that network.
    pub aliases: Vec<String>,
}

/// A host address a container port is published on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostBinding {
    /// Host address (`0.0.0.0`, `::`, `127.0.0.1`).
    pub host_ip: String,
    /// Host port.
    pub host_port: u16,
}

/// A container, as the engine describes it, normalised across engines.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct ContainerInfo {
    /// Container id.
    pub id: String,
    /// Name, without the leading `/`.
    pub name: String,
    /// Image id.
    pub image_id: String,
    /// State.
    pub status: ContainerStatus,
    /// Health.
    pub health: Health,
    /// PID of the main process on the engine's host, when running.
    pub pid: Option<u32>,
    /// Exit code, when it has exited.
    pub exit_code: Option<i64>,
    /// When the main process last started, as the engine writes it (RFC 3339), if it has.
    pub started_at: Option<String>,
    /// When the main process last exited, as the engine writes it (RFC 3339), if it has.
    pub finished_at: Option<String>,
    /// Whether the engine restarts the container by itself when it exits (a restart policy
    /// other than `no`).
    pub restarts: bool,
    /// Killed for lack of memory.
    pub oom_killed: bool,
    /// Error the engine recorded on start, if any.
    pub error: Option<String>,
    /// Environment variables.
    pub env: BTreeMap<String, String>,
    /// Labels.
    pub labels: Labels,
    /// Networks, by name.
    pub networks: BTreeMap<String, NetworkEndpoint>,
    /// Published ports.
    pub ports: BTreeMap<Port, Vec<HostBinding>>,
    /// Ports exposed by image or spec (published or not).
    pub exposed: Vec<Port>,
    /// The engine's whole answer.
    pub raw: serde_json::Value,
}

/// One container in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ContainerSummary {
    /// Id.
    pub id: String,
    /// Names.
    pub names: Vec<String>,
    /// State.
    pub status: ContainerStatus,
    /// Labels.
    pub labels: Labels,
}

/// A network, as the engine describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct NetworkInfo {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Driver.
    pub driver: String,
    /// Labels.
    pub labels: Labels,
    /// Ids of the containers attached.
    pub containers: Vec<String>,
}

/// A volume, as the engine describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct VolumeInfo {
    /// Name.
    pub name: String,
    /// Driver.
    pub driver: String,
    /// Where it is on the engine's host.
    pub mountpoint: String,
    /// Labels.
    pub labels: Labels,
}

/// Which stream a chunk of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// A piece of a container's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogChunk {
    /// Its stream.
    pub stream: Stream,
    /// Its bytes (not necessarily whole lines).
    pub bytes: Bytes,
}

/// The outcome of an exec.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExecOutput {
    /// Exit code.
    pub exit_code: i64,
    /// Standard output.
    pub stdout: Bytes,
    /// Standard error.
    pub stderr: Bytes,
}

impl ExecOutput {
    /// An exec's outcome.
    pub fn new(exit_code: i64, stdout: Bytes, stderr: Bytes) -> Self {
        ExecOutput { exit_code, stdout, stderr }
    }

    /// Whether the command exited 0.
    pub fn success(&self) -> bool {
        self.exit_code == 0
    }

    /// Standard output as text (lossy).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Standard error as text (lossy).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// What kind of object an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum EventObject {
    /// A container.
    Container,
    /// An image.
    Image,
    /// A network.
    Network,
    /// A volume.
    Volume,
    /// Something else.
    #[default]
    Other,
}

/// What happened, normalised across engines (Podman's `died` is [`EventAction::Die`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventAction {
    /// Created.
    Create,
    /// Started.
    Start,
    /// The main process ended.
    Die,
    /// Killed for lack of memory.
    Oom,
    /// Health status changed to the given word.
    HealthStatus(String),
    /// Removed or destroyed.
    Destroy,
    /// Any other action, as the engine named it.
    Other(String),
}

impl Default for EventAction {
    fn default() -> Self {
        EventAction::Other(String::new())
    }
}

/// An event of the engine.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Event {
    /// The object's kind.
    pub object: EventObject,
    /// What happened.
    pub action: EventAction,
    /// The object's id.
    pub id: String,
    /// The object's attributes (labels, name, exit code).
    pub attributes: BTreeMap<String, String>,
    /// The exit code a container's `die` event carries.
    pub exit_code: Option<i64>,
    /// When it happened, in nanoseconds since the Unix epoch, by the engine's clock, when the
    /// engine says it that precisely (Docker's `timeNano`; Podman says whole seconds only).
    pub time_nanos: Option<i128>,
    /// When it happened, in whole seconds since the Unix epoch, by the engine's clock.
    pub time_secs: Option<i64>,
}

/// A container engine.
///
/// Every method maps to one engine operation. Errors carry the runtime's name
/// and the operation; 404 maps to [`ErrorKind::NotFound`](crate::ErrorKind::NotFound)
/// and 409 to [`ErrorKind::Conflict`](crate::ErrorKind::Conflict).
#[async_trait]
pub trait Runtime: Send + Sync + std::fmt::Debug + 'static {
    /// `docker` or `podman`.
    fn name(&self) -> &str;

    /// The backend itself, to reach its raw client by downcasting
    /// (e.g. to `fixtures_docker::DockerRuntime`).
    fn as_any(&self) -> &dyn Any;

    /// Whether the engine runs on this machine and shares its process table, so that a
    /// container's `/proc/<pid>` can be read here. Remote engines answer false.
    fn is_local(&self) -> bool {
        false
    }

    /// Where the engine is (`unix:///run/podman/podman.sock`, `tcp://10.0.0.5:2376`), named in
    /// every error of its calls; empty when unknown.
    fn host(&self) -> &str {
        ""
    }

    /// The address of the engine's host when it is another machine (`tcp://`, `ssh://`):
    /// its published ports are reached there, and published on all of its addresses instead
    /// of its loopback. `None` for an engine on this machine.
    fn remote(&self) -> Option<std::net::IpAddr> {
        None
    }

    /// Whether the engine runs rootless (rootless Podman, rootless Docker): containers' own
    /// addresses then live in the engine user's network namespace, which the host cannot
    /// reach; only published ports are reachable, on the host's loopback.
    fn rootless(&self) -> bool {
        false
    }

    /// Checks that the engine answers.
    async fn ping(&self) -> Result<()>;

    /// Engine and API versions.
    async fn version(&self) -> Result<VersionInfo>;

    // --- images ---

    /// Builds an image and returns its id, streaming progress to `progress`.
    async fn build_image(&self, spec: &BuildSpec, progress: ProgressSink<'_>) -> Result<String>;

    /// Pulls an image and returns its id, streaming progress to `progress`.
    async fn pull_image(&self, spec: &PullSpec, progress: ProgressSink<'_>) -> Result<String>;

    /// Describes an image by id or reference.
    async fn inspect_image(&self, reference: &str) -> Result<ImageInfo>;

    /// Images whose labels match.
    async fn list_images(&self, filter: &LabelFilter) -> Result<Vec<ImageInfo>>;

    /// Tags an image as `repository:tag`.
    async fn tag_image(&self, reference: &str, repository: &str, tag: &str) -> Result<()>;

    /// Removes an image.
    async fn remove_image(&self, reference: &str, force: bool) -> Result<()>;

    // --- containers ---

    /// Creates a container (joining its first network) and returns its id.
    async fn create_container(&self, spec: &ContainerSpec) -> Result<String>;

    /// Starts a created or stopped container.
    async fn start_container(&self, id: &str) -> Result<()>;

    /// Describes a container.
    async fn inspect_container(&self, id: &str) -> Result<ContainerInfo>;

    /// Containers (running or not) whose labels match.
    async fn list_containers(&self, filter: &LabelFilter) -> Result<Vec<ContainerSummary>>;

    /// Stops a container, killing it after `timeout_secs`.
    async fn stop_container(&self, id: &str, timeout_secs: i64) -> Result<()>;

    /// Sends a signal (`SIGKILL`, `SIGTERM`, `HUP`, `9`).
    async fn kill_container(&self, id: &str, signal: &str) -> Result<()>;

    /// Restarts a container, killing it after `timeout_secs`.
    async fn restart_container(&self, id: &str, timeout_secs: i64) -> Result<()>;

    /// Freezes a container's processes.
    async fn pause_container(&self, id: &str) -> Result<()>;

    /// Thaws a paused container.
    async fn unpause_container(&self, id: &str) -> Result<()>;

    /// Waits for the container to stop and returns its exit code.
    async fn wait_container(&self, id: &str) -> Result<i64>;

    /// Removes a container; `force` kills it first. Anonymous volumes go with it.
    async fn remove_container(&self, id: &str, force: bool) -> Result<()>;

    /// A container's output, once or following it.
    fn logs(&self, id: &str, spec: &LogsSpec) -> BoxStream<'static, Result<LogChunk>>;

    /// Runs a command in a running container and collects its output.
    async fn exec(&self, id: &str, spec: &ExecSpec) -> Result<ExecOutput>;

    /// Extracts a tar archive into the container at `path` (a folder that exists).
    async fn put_archive(&self, id: &str, path: &str, tar: Bytes) -> Result<()>;

    /// A tar archive of `path` in the container (its last component is the archive's top entry).
    async fn get_archive(&self, id: &str, path: &str) -> Result<Bytes>;

    // --- networks ---

    /// Creates a network and returns its id.
    async fn create_network(&self, spec: &NetworkSpec) -> Result<String>;

    /// Describes a network.
    async fn inspect_network(&self, id_or_name: &str) -> Result<NetworkInfo>;

    /// Networks whose labels match.
    async fn list_networks(&self, filter: &LabelFilter) -> Result<Vec<NetworkInfo>>;

    /// Removes a network.
    async fn remove_network(&self, id_or_name: &str) -> Result<()>;

    /// Attaches a container to a network with DNS aliases.
    async fn connect_network(&self, network: &str, container: &str, aliases: &[String]) -> Result<()>;

    /// Detaches a container from a network.
    async fn disconnect_network(&self, network: &str, container: &str, force: bool) -> Result<()>;

    // --- volumes ---

    /// Creates a volume.
    async fn create_volume(&self, spec: &VolumeSpec) -> Result<VolumeInfo>;

    /// Describes a volume.
    async fn inspect_volume(&self, name: &str) -> Result<VolumeInfo>;

    /// Volumes whose labels match.
    async fn list_volumes(&self, filter: &LabelFilter) -> Result<Vec<VolumeInfo>>;

    /// Removes a volume.
    async fn remove_volume(&self, name: &str, force: bool) -> Result<()>;

    // --- events ---

    /// The engine's events from now on, for objects whose labels match.
    fn events(&self, filter: &LabelFilter) -> BoxStream<'static, Result<Event>>;
}
