//! Resolved specifications of engine objects: plain data, no I/O.
//!
//! These are what a [`Runtime`](crate::Runtime) turns into requests. Every
//! template of the environment graph has been replaced by its value by the time
//! a spec is built. Backends translate them into their own request types, which
//! keeps the translation snapshot-testable.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;

use crate::error::{Error, Result};

/// Labels as an ordered map, so requests and signatures are deterministic.
pub type Labels = BTreeMap<String, String>;

/// A transport protocol of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// TCP
    Tcp,
    /// UDP
    Udp,
    /// SCTP
    Sctp,
}

impl Protocol {
    /// `tcp`, `udp` or `sctp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// A container port with its protocol, written `8080/tcp` (the protocol defaults to tcp).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Port {
    /// Port number inside the container.
    pub number: u16,
    /// Its protocol.
    pub protocol: Protocol,
}

impl Port {
    /// A TCP port.
    pub fn tcp(number: u16) -> Self {
        Port { number, protocol: Protocol::Tcp }
    }

    /// A UDP port.
    pub fn udp(number: u16) -> Self {
        Port { number, protocol: Protocol::Udp }
    }

    /// Parses `8080`, `8080/tcp`, `53/udp`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) naming the text when it is not a port.
    pub fn parse(text: &str) -> Result<Self> {
        let (number, protocol) = match text.split_once('/') {
            Some((n, p)) => (n, p),
            None => (text, "tcp"),
        };
        let number = number.trim().parse::<u16>().map_err(|_| {
            Error::invalid_input(format!(
                "`{text}` is not a port: expected a number from 1 to 65535, optionally followed by /tcp, /udp or /sctp"
            ))
        })?;
        let protocol = match protocol.trim().to_ascii_lowercase().as_str() {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            "sctp" => Protocol::Sctp,
            other => {
                return Err(Error::invalid_input(format!(
                    "`{text}` has protocol `{other}`: expected tcp, udp or sctp"
                )));
            }
        };
        Ok(Port { number, protocol })
    }
}

impl std::fmt::Display for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.number, self.protocol.as_str())
    }
}

impl std::str::FromStr for Port {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Port::parse(s)
    }
}

/// A port published on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortBinding {
    /// The container's port.
    pub port: Port,
    /// Host address to bind; the engine's default (all addresses) when `None`.
    pub host_ip: Option<String>,
    /// Host port; an ephemeral one chosen by the engine when `None`.
    pub host_port: Option<u16>,
}

/// Something mounted into a container.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mount {
    /// A named volume.
    Volume {
        /// Volume name.
        name: String,
        /// Path inside the container.
        target: String,
        /// Mounted read-only.
        read_only: bool,
    },
    /// A host path.
    Bind {
        /// Path on the host.
        source: String,
        /// Path inside the container.
        target: String,
        /// Mounted read-only.
        read_only: bool,
    },
    /// A tmpfs.
    Tmpfs {
        /// Path inside the container.
        target: String,
        /// Size limit in bytes.
        size: Option<u64>,
    },
}

/// A network a container joins, with the names it is known by there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkAttachment {
    /// Network name or id.
    pub network: String,
    /// Extra DNS names of the container on that network.
    pub aliases: Vec<String>,
}

/// A HEALTHCHECK for a container, overriding the image's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    /// The test, as the engine takes it: `["CMD", "prog", "arg"]`, `["CMD-SHELL", "cmd"]` or `["NONE"]`.
    pub test: Vec<String>,
    /// Time between checks.
    pub interval: Option<Duration>,
    /// Time one check may take.
    pub timeout: Option<Duration>,
    /// Failures in a row before unhealthy.
    pub retries: Option<u32>,
    /// Grace time after start.
    pub start_period: Option<Duration>,
}

/// Resource limits of a container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// Memory limit in bytes.
    pub memory: Option<i64>,
    /// Memory the container is guaranteed, in bytes (a soft limit).
    pub memory_reservation: Option<i64>,
    /// Memory plus swap limit in bytes (`-1`: unlimited swap).
    pub memory_swap: Option<i64>,
    /// CPU quota in units of 10^-9 CPUs.
    pub nano_cpus: Option<i64>,
    /// Maximum number of processes.
    pub pids_limit: Option<i64>,
    /// Size of /dev/shm in bytes.
    pub shm_size: Option<i64>,
    /// Process limits (`nofile`, `nproc`, ...).
    pub ulimits: Vec<Ulimit>,
    /// Whether an engine that cannot apply the memory, CPU and process limits (rootless
    /// Podman on cgroups v1) may run the container without them, with a warning; otherwise
    /// it refuses the container. A compose file's limits, written for production, are so.
    pub optional: bool,
}

/// A process limit of a container (`ulimit`): `nofile` with its soft and hard values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ulimit {
    /// The limit's name without `RLIMIT_`, lower case: `nofile`, `nproc`, `core`, ...
    pub name: String,
    /// Soft limit.
    pub soft: i64,
    /// Hard limit.
    pub hard: i64,
}

/// A container to create: every field resolved, nothing left to look up.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerSpec {
    /// Container name; the engine chooses one when `None`.
    pub name: Option<String>,
    /// Image id or reference.
    pub image: String,
    /// Command (the image's CMD when `None`).
    pub command: Option<Vec<String>>,
    /// Entrypoint (the image's ENTRYPOINT when `None`).
    pub entrypoint: Option<Vec<String>>,
    /// Environment variables.
    pub env: BTreeMap<String, String>,
    /// Published ports.
    pub ports: Vec<PortBinding>,
    /// Ports exposed without publishing.
    pub expose: Vec<Port>,
    /// Mounts.
    pub mounts: Vec<Mount>,
    /// Networks; the first is joined at creation, the rest right after.
    pub networks: Vec<NetworkAttachment>,
    /// DNS servers.
    pub dns: Vec<String>,
    /// DNS search domains.
    pub dns_search: Vec<String>,
    /// Resolver options (`ndots:2`).
    pub dns_options: Vec<String>,
    /// Extra `/etc/hosts` entries, `name:ip`.
    pub extra_hosts: Vec<String>,
    /// Hostname.
    pub hostname: Option<String>,
    /// User (`uid[:gid]` or name).
    pub user: Option<String>,
    /// Working directory.
    pub working_dir: Option<String>,
    /// Labels (user labels and this library's).
    pub labels: Labels,
    /// Privileged mode.
    pub privileged: bool,
    /// Capabilities to add.
    pub cap_add: Vec<String>,
    /// Capabilities to drop.
    pub cap_drop: Vec<String>,
    /// Read-only root filesystem.
    pub read_only: bool,
    /// Run an init process as PID 1.
    pub init: bool,
    /// Signal that stops the container.
    pub stop_signal: Option<String>,
    /// Seconds the engine waits after the stop signal before killing.
    pub stop_timeout: Option<i64>,
    /// Health check overriding the image's.
    pub healthcheck: Option<Healthcheck>,
    /// Resource limits.
    pub resources: Resources,
    /// Network mode (`bridge`, `host`, `none`, `container:<id>`), when not set by `networks`.
    pub network_mode: Option<String>,
    /// A terminal for the main process (`docker run -t`).
    pub tty: bool,
    /// Standard input kept open (`docker run -i`).
    pub open_stdin: bool,
    /// PID namespace: `host`, or `container:<id>`; its own when `None`.
    pub pid_mode: Option<String>,
    /// IPC namespace: `host`, `shareable`, `private`, or `container:<id>`.
    pub ipc_mode: Option<String>,
    /// Devices of the host: `/dev/x[:/dev/y[:rwm]]`.
    pub devices: Vec<String>,
    /// Extra groups of the main process.
    pub group_add: Vec<String>,
    /// Security options (`no-new-privileges:true`, `seccomp=unconfined`, `label=disable`).
    pub security_opt: Vec<String>,
    /// Kernel parameters set in the container's namespaces (`net.core.somaxconn`).
    pub sysctls: BTreeMap<String, String>,
    /// Extra fields merged into the engine's create request as JSON, for what the typed fields
    /// do not cover (`{"HostConfig": {"Sysctls": {...}}}`). Backends apply it as a deep merge.
    pub raw: Option<serde_json::Value>,
}

/// Where an image build gets its context.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum BuildContext {
    /// A folder on this machine; `dockerfile` is relative to it.
    Dir(PathBuf),
    /// A ready tar archive of the context.
    Tar(Bytes),
    /// A Dockerfile alone, with an empty context.
    Dockerfile(String),
}

/// An image to build.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildSpec {
    /// The build context.
    pub context: BuildContext,
    /// Path of the Dockerfile inside the context (`Dockerfile` when `None`).
    pub dockerfile: Option<String>,
    /// Tags to give the result (`repo:tag`).
    pub tags: Vec<String>,
    /// Build arguments.
    pub build_args: BTreeMap<String, String>,
    /// Stage to stop at.
    pub target: Option<String>,
    /// Labels on the image.
    pub labels: Labels,
    /// Build without the cache.
    pub no_cache: bool,
    /// Remove intermediate containers (default true).
    pub remove_intermediate: bool,
    /// Try to pull newer base images (default false: nothing can be assumed reachable).
    pub pull: bool,
    /// Platform (`linux/amd64`).
    pub platform: Option<String>,
}

impl BuildSpec {
    /// A build of `context` with the defaults.
    pub fn new(context: BuildContext) -> Self {
        BuildSpec {
            context,
            dockerfile: None,
            tags: Vec::new(),
            build_args: BTreeMap::new(),
            target: None,
            labels: Labels::new(),
            no_cache: false,
            remove_intermediate: true,
            pull: false,
            platform: None,
        }
    }
}

/// Credentials for a registry.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: Option<String>,
    /// Password.
    pub password: Option<String>,
    /// Identity token.
    pub identity_token: Option<String>,
    /// Registry address.
    pub server_address: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("identity_token", &self.identity_token.as_ref().map(|_| "<redacted>"))
            .field("server_address", &self.server_address)
            .finish()
    }
}

/// An image to pull.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullSpec {
    /// Repository, with registry if any (`127.0.0.1:5000/app`).
    pub repository: String,
    /// Tag (`latest` when `None`) or digest (`sha256:...`).
    pub tag: Option<String>,
    /// Platform (`linux/amd64`).
    pub platform: Option<String>,
    /// Registry credentials.
    pub credentials: Option<Credentials>,
}

impl PullSpec {
    /// A pull of `repository`, which may carry a `:tag` or `@digest`.
    pub fn new(repository: impl Into<String>) -> Self {
        let repository = repository.into();
        let (repository, tag) = split_reference(&repository);
        PullSpec { repository, tag, ..PullSpec::default() }
    }

    /// `repository:tag` or `repository@digest`.
    pub fn reference(&self) -> String {
        match &self.tag {
            Some(tag) if tag.starts_with("sha256:") => format!("{}@{tag}", self.repository),
            Some(tag) => format!("{}:{tag}", self.repository),
            None => format!("{}:latest", self.repository),
        }
    }
}

/// Splits `host:5000/repo:tag` into repository and tag, minding the registry's port.
pub(crate) fn split_reference(reference: &str) -> (String, Option<String>) {
    if let Some((repo, digest)) = reference.split_once('@') {
        return (repo.to_owned(), Some(digest.to_owned()));
    }
    let last_slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[last_slash..].rfind(':') {
        Some(i) => {
            let at = last_slash + i;
            (reference[..at].to_owned(), Some(reference[at + 1..].to_owned()))
        }
        None => (reference.to_owned(), None),
    }
}

/// A network to create.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkSpec {
    /// Name.
    pub name: String,
    /// Driver (`bridge` when `None`).
    pub driver: Option<String>,
    /// No route to the outside.
    pub internal: bool,
    /// Give containers IPv6 addresses too.
    pub enable_ipv6: bool,
    /// Subnets to allocate from (`172.30.0.0/16`, `fd00:1::/64`); the engine chooses when empty.
    pub subnets: Vec<String>,
    /// Driver options.
    pub options: BTreeMap<String, String>,
    /// Labels.
    pub labels: Labels,
}

/// A volume to create.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeSpec {
    /// Name.
    pub name: String,
    /// Driver (`local` when `None`).
    pub driver: Option<String>,
    /// Driver options.
    pub driver_opts: BTreeMap<String, String>,
    /// Labels.
    pub labels: Labels,
}

/// A command to run in a running container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecSpec {
    /// The command and its arguments (no shell is implied).
    pub cmd: Vec<String>,
    /// Extra environment variables.
    pub env: BTreeMap<String, String>,
    /// Working directory.
    pub working_dir: Option<String>,
    /// User.
    pub user: Option<String>,
    /// Run privileged.
    pub privileged: bool,
}

impl ExecSpec {
    /// Runs `cmd` with no extra settings.
    pub fn new<I, S>(cmd: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ExecSpec { cmd: cmd.into_iter().map(Into::into).collect(), ..ExecSpec::default() }
    }
}

/// Which logs to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogsSpec {
    /// Include stdout.
    pub stdout: bool,
    /// Include stderr.
    pub stderr: bool,
    /// Keep streaming new output until the container stops.
    pub follow: bool,
    /// Only the last N lines.
    pub tail: Option<usize>,
    /// Only lines since this Unix time (seconds).
    pub since: Option<i64>,
}

impl Default for LogsSpec {
    fn default() -> Self {
        LogsSpec { stdout: true, stderr: true, follow: false, tail: None, since: None }
    }
}

/// Selects objects by label: every pair must match; a `None` value matches any value of the key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelFilter {
    /// Labels that must be present.
    pub labels: BTreeMap<String, Option<String>>,
}

impl LabelFilter {
    /// Matches objects with `key` set to anything.
    pub fn has(key: impl Into<String>) -> Self {
        LabelFilter::default().and_has(key)
    }

    /// Matches objects with `key` equal to `value`.
    pub fn eq(key: impl Into<String>, value: impl Into<String>) -> Self {
        LabelFilter::default().and_eq(key, value)
    }

    /// Also requires `key` to be present.
    pub fn and_has(mut self, key: impl Into<String>) -> Self {
        self.labels.insert(key.into(), None);
        self
    }

    /// Also requires `key` to equal `value`.
    pub fn and_eq(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), Some(value.into()));
        self
    }

    /// The filter as the engines' `label=` query values.
    pub fn to_query(&self) -> Vec<String> {
        self.labels
            .iter()
            .map(|(k, v)| match v {
                Some(v) => format!("{k}={v}"),
                None => k.clone(),
            })
            .collect()
    }

    /// Whether `labels` satisfy this filter.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.labels.iter().all(|(k, v)| match (labels.get(k), v) {
            (Some(_), None) => true,
            (Some(have), Some(want)) => have == want,
            (None, _) => false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_port(text: &str, expect: &str) {
        let got = match Port::parse(text) {
            Ok(p) => p.to_string(),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, expect, "parsing {text:?}");
    }

    #[test]
    fn ports_parse() {
        check_port("8080", "8080/tcp");
        check_port("8080/tcp", "8080/tcp");
        check_port("53/UDP", "53/udp");
        check_port("9/sctp", "9/sctp");
        check_port(
            "http",
            "error: `http` is not a port: expected a number from 1 to 65535, optionally followed by /tcp, /udp or /sctp",
        );
        check_port("80/icmp", "error: `80/icmp` has protocol `icmp`: expected tcp, udp or sctp");
        check_port(
            "70000",
            "error: `70000` is not a port: expected a number from 1 to 65535, optionally followed by /tcp, /udp or /sctp",
        );
    }

    #[track_caller]
    fn check_ref(text: &str, repo: &str, tag: Option<&str>) {
        let (r, t) = split_reference(text);
        assert_eq!((r.as_str(), t.as_deref()), (repo, tag), "splitting {text:?}");
    }

    #[test]
    fn references_split() {
        check_ref("redis", "redis", None);
        check_ref("redis:7", "redis", Some("7"));
        check_ref("127.0.0.1:5000/app", "127.0.0.1:5000/app", None);
        check_ref("127.0.0.1:5000/app:v1", "127.0.0.1:5000/app", Some("v1"));
        check_ref("app@sha256:abc", "app", Some("sha256:abc"));
        assert_eq!(PullSpec::new("app@sha256:abc").reference(), "app@sha256:abc");
        assert_eq!(PullSpec::new("app").reference(), "app:latest");
    }

    #[test]
    fn label_filters_match() {
        let mut labels = Labels::new();
        labels.insert("fixtures.run".into(), "r1".into());
        assert!(LabelFilter::has("fixtures.run").matches(&labels));
        assert!(LabelFilter::eq("fixtures.run", "r1").matches(&labels));
        assert!(!LabelFilter::eq("fixtures.run", "r2").matches(&labels));
        assert!(!LabelFilter::has("fixtures.run").and_has("other").matches(&labels));
        assert_eq!(LabelFilter::eq("a", "1").and_has("b").to_query(), vec!["a=1", "b"]);
    }
}
