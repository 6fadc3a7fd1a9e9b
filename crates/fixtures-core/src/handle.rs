//! Handles a test holds: [`Container`], [`Image`], [`Network`], [`Volume`].
//!
//! Handles are cheap to clone and never remove what they point at: removal
//! belongs to the fixture system, which made the object.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use futures_util::StreamExt;

use crate::archive::{self, Files};
use crate::error::{Error, Result};
use crate::readiness::{self, Readiness};
use crate::runtime::{ContainerInfo, ContainerStatus, ExecOutput, ImageInfo, Runtime, Stream};
use crate::spec::{ExecSpec, LogsSpec, Port};

/// A container's IP addresses: the primary one and one per network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ips {
    primary: Option<IpAddr>,
    by_network: BTreeMap<String, IpAddr>,
    v6_by_network: BTreeMap<String, IpAddr>,
}

impl Ips {
    fn from_info(info: &ContainerInfo, primary_network: Option<&str>) -> Self {
        let by_network: BTreeMap<String, IpAddr> =
            info.networks.iter().filter_map(|(name, n)| n.ipv4.or(n.ipv6).map(|ip| (name.clone(), ip))).collect();
        let primary =
            primary_network.and_then(|p| by_network.get(p).copied()).or_else(|| by_network.values().next().copied());
        let v6_by_network = info.networks.iter().filter_map(|(name, n)| n.ipv6.map(|ip| (name.clone(), ip))).collect();
        Ips { primary, by_network, v6_by_network }
    }

    /// The IPv6 address on the network named `network`, if it has IPv6 enabled.
    pub fn ipv6(&self, network: &str) -> Option<IpAddr> {
        self.v6_by_network.get(network).copied()
    }

    /// The address on the container's first network.
    pub fn primary(&self) -> Option<IpAddr> {
        self.primary
    }

    /// The address on the network named `network`.
    pub fn get(&self, network: &str) -> Option<IpAddr> {
        self.by_network.get(network).copied()
    }

    /// The address on `network`.
    pub fn on(&self, network: &Network) -> Option<IpAddr> {
        self.get(network.name())
    }

    /// Every network name and address.
    pub fn iter(&self) -> impl Iterator<Item = (&str, IpAddr)> {
        self.by_network.iter().map(|(k, v)| (k.as_str(), *v))
    }
}

/// A container's published ports: container port → host ports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ports {
    map: BTreeMap<Port, Vec<u16>>,
}

impl Ports {
    fn from_info(info: &ContainerInfo) -> Self {
        let map = info
            .ports
            .iter()
            .map(|(port, bindings)| {
                let mut hosts: Vec<u16> = Vec::new();
                for b in bindings {
                    if !hosts.contains(&b.host_port) {
                        hosts.push(b.host_port);
                    }
                }
                (*port, hosts)
            })
            .collect();
        Ports { map }
    }

    /// Host ports of `port` (`"8080/tcp"`, `"8080"`); `None` when it is not published.
    pub fn get(&self, port: &str) -> Option<&[u16]> {
        let port = Port::parse(port).ok()?;
        self.map.get(&port).map(Vec::as_slice).filter(|p| !p.is_empty())
    }

    /// The first host port of `port`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when the port is malformed or not published, naming the ones that are.
    pub fn host_port(&self, port: &str) -> Result<u16> {
        let parsed = Port::parse(port)?;
        self.map.get(&parsed).and_then(|p| p.first().copied()).ok_or_else(|| {
            let known: Vec<String> = self.map.keys().map(Port::to_string).collect();
            Error::invalid_input(format!("port {parsed} is not published; published: [{}]", known.join(", ")))
                .with_hint("publish it with `.port(\"...\")` on the container fixture")
        })
    }

    /// Every published port and its host ports.
    pub fn iter(&self) -> impl Iterator<Item = (Port, &[u16])> {
        self.map.iter().map(|(k, v)| (*k, v.as_slice()))
    }
}

impl std::ops::Index<&str> for Ports {
    type Output = [u16];

    /// Host ports of a published port, like `ports["8080/tcp"][0]`.
    ///
    /// Panics, like a map's index, when the port is not published; use [`Ports::get`] to check.
    fn index(&self, port: &str) -> &[u16] {
        match self.get(port) {
            Some(p) => p,
            None => panic!("{}", self.host_port(port).err().map(|e| e.to_string()).unwrap_or_default()),
        }
    }
}

/// Whether the tests run inside a container and must reach others by their own addresses.
fn tests_in_container(gateway: Option<IpAddr>) -> bool {
    if let Ok(mode) = std::env::var("FIXTURE_ADDR_MODE") {
        return mode.eq_ignore_ascii_case("container");
    }
    let in_container =
        std::path::Path::new("/.dockerenv").exists() || std::path::Path::new("/run/.containerenv").exists();
    if !in_container {
        return false;
    }
    // In a container, but on the engine's own host network (the engine runs beside us): the
    // network's gateway is one of our addresses, so published ports are on our loopback.
    match gateway {
        Some(gw) => std::net::UdpSocket::bind(SocketAddr::new(gw, 0)).is_err(),
        None => true,
    }
}

#[derive(Debug)]
struct ContainerInner {
    runtime: Arc<dyn Runtime>,
    id: String,
    name: String,
    fixture: String,
    primary_network: Option<String>,
    readiness: Readiness,
    info: RwLock<ContainerInfo>,
}

/// A running container of a fixture.
#[derive(Debug, Clone)]
///
/// ```no_run
/// # use fixtures_core as fixtures;
/// # async fn demo(db: &fixtures::Container) -> fixtures::Result<()> {
/// let addr = db.addr("5432/tcp")?;                    // from the host: 127.0.0.1:<port>
/// let ip = db.ips().primary();                        // on its first network
/// let out = db.exec(["psql", "-c", "select 1"]).await?;
/// assert_eq!(out.exit_code, 0);
/// println!("{addr} {ip:?}\n{}", db.logs().await?);
/// db.restart().await?;                                // and ready again
/// # Ok(()) }
/// ```
pub struct Container {
    inner: Arc<ContainerInner>,
}

impl Container {
    /// A handle on the container `id`, judged ready by `readiness` when it restarts.
    ///
    /// The fixture system makes these; use it directly only for containers you manage yourself.
    ///
    /// # Errors
    /// When the container cannot be inspected.
    #[doc(hidden)]
    pub async fn attach(
        runtime: Arc<dyn Runtime>,
        fixture: impl Into<String>,
        id: &str,
        primary_network: Option<String>,
        readiness: Readiness,
    ) -> Result<Self> {
        let info = runtime.inspect_container(id).await?;
        Ok(Container {
            inner: Arc::new(ContainerInner {
                runtime,
                id: info.id.clone(),
                name: info.name.clone(),
                fixture: fixture.into(),
                primary_network,
                readiness,
                info: RwLock::new(info),
            }),
        })
    }

    /// Waits until the container is ready by its readiness rules.
    ///
    /// # Errors
    /// [`ErrorKind::Exited`](crate::ErrorKind::Exited) when it stops first, [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) when time runs out.
    pub async fn wait_ready(&self) -> Result<()> {
        let info = readiness::wait_ready(self, &self.inner.readiness).await.map_err(|e| self.context(e))?;
        self.store(info);
        Ok(())
    }

    fn context(&self, err: Error) -> Error {
        let err = err
            .with_fixture(self.inner.fixture.clone())
            .with_runtime(self.inner.runtime.name())
            .with_host(self.inner.runtime.host());
        if err.has_container() { err } else { err.with_container(self.inner.id.clone()) }
    }

    fn store(&self, info: ContainerInfo) {
        *self.inner.info.write().unwrap_or_else(|p| p.into_inner()) = info;
    }

    fn info_read(&self) -> std::sync::RwLockReadGuard<'_, ContainerInfo> {
        self.inner.info.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The runtime the container lives on.
    pub fn runtime(&self) -> &Arc<dyn Runtime> {
        &self.inner.runtime
    }

    /// Container id.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// Container name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The fixture it belongs to.
    pub fn fixture(&self) -> &str {
        &self.inner.fixture
    }

    /// The container as last inspected (at readiness, or by [`Container::refresh`]).
    pub fn info(&self) -> ContainerInfo {
        self.info_read().clone()
    }

    /// The engine's raw inspect answer, as last inspected.
    pub fn attrs(&self) -> serde_json::Value {
        self.info_read().raw.clone()
    }

    /// Inspects the container again and returns what the engine says now.
    ///
    /// # Errors
    /// When the engine cannot be reached or the container is gone.
    pub async fn refresh(&self) -> Result<ContainerInfo> {
        let info = self.inner.runtime.inspect_container(&self.inner.id).await.map_err(|e| self.context(e))?;
        self.store(info.clone());
        Ok(info)
    }

    /// Its current state, asked of the engine.
    ///
    /// # Errors
    /// When the engine cannot be reached or the container is gone.
    pub async fn status(&self) -> Result<ContainerStatus> {
        Ok(self.refresh().await?.status)
    }

    /// Its environment variables.
    pub fn env(&self) -> BTreeMap<String, String> {
        self.info_read().env.clone()
    }

    /// Its IP addresses.
    pub fn ips(&self) -> Ips {
        Ips::from_info(&self.info_read(), self.inner.primary_network.as_deref())
    }

    /// Its published ports.
    pub fn ports(&self) -> Ports {
        Ports::from_info(&self.info_read())
    }

    /// Where a test reaches `port` (`"8080/tcp"`): `127.0.0.1` and the host port when the
    /// tests run on the engine's host or the engine is rootless; the engine's host and the
    /// host port when the engine is another machine (`tcp://`, `ssh://`); the container's address and
    /// port when the tests themselves run in a container on another host (set
    /// `FIXTURE_ADDR_MODE=host|container` to decide yourself).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when the port is not published or the container has no address.
    pub fn addr(&self, port: &str) -> Result<SocketAddr> {
        let parsed = Port::parse(port)?;
        // An engine on another host: its host's address and the published port.
        if let Some(remote) = self.inner.runtime.remote().filter(|_| std::env::var_os("FIXTURE_ADDR_MODE").is_none()) {
            let host_port = self.ports().host_port(port).map_err(|e| self.context(e))?;
            return Ok(SocketAddr::new(remote, host_port));
        }
        let info = self.info_read();
        let primary = self.inner.primary_network.as_deref();
        let endpoint = primary.and_then(|p| info.networks.get(p)).or_else(|| info.networks.values().next());
        // A rootless engine's container addresses are never reachable from outside it.
        if !self.inner.runtime.rootless() && tests_in_container(endpoint.and_then(|e| e.gateway)) {
            let ip = endpoint
                .and_then(|e| e.ipv4.or(e.ipv6))
                .ok_or_else(|| Error::invalid_input(format!("container `{}` has no IP address", info.name)))?;
            return Ok(SocketAddr::new(ip, parsed.number));
        }
        drop(info);
        let host_port = self.ports().host_port(port).map_err(|e| self.context(e))?;
        Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), host_port))
    }

    /// Its output so far, stdout and stderr interleaved as written.
    ///
    /// # Errors
    /// When the engine cannot be reached.
    pub async fn logs(&self) -> Result<String> {
        let (_, _, all) = self.read_logs(LogsSpec::default()).await?;
        Ok(all)
    }

    /// Its stdout and stderr so far, apart.
    ///
    /// # Errors
    /// When the engine cannot be reached.
    pub async fn logs_split(&self) -> Result<(String, String)> {
        let (out, err, _) = self.read_logs(LogsSpec::default()).await?;
        Ok((out, err))
    }

    async fn read_logs(&self, spec: LogsSpec) -> Result<(String, String, String)> {
        let mut stream = self.inner.runtime.logs(&self.inner.id, &spec);
        let (mut out, mut err, mut all) = (Vec::new(), Vec::new(), Vec::new());
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.context(e))?;
            all.extend_from_slice(&chunk.bytes);
            match chunk.stream {
                Stream::Stdout => out.extend_from_slice(&chunk.bytes),
                Stream::Stderr => err.extend_from_slice(&chunk.bytes),
            }
        }
        let text = |v: Vec<u8>| String::from_utf8_lossy(&v).into_owned();
        Ok((text(out), text(err), text(all)))
    }

    /// Runs `cmd` in the container (no shell implied) and returns its exit code and output.
    ///
    /// # Errors
    /// When the command cannot be started (e.g. it does not exist in the image).
    pub async fn exec<I, S>(&self, cmd: I) -> Result<ExecOutput>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.exec_with(&ExecSpec::new(cmd)).await
    }

    /// Runs a command with settings (environment, user, working folder).
    ///
    /// # Errors
    /// When the command cannot be started.
    pub async fn exec_with(&self, spec: &ExecSpec) -> Result<ExecOutput> {
        self.inner.runtime.exec(&self.inner.id, spec).await.map_err(|e| self.context(e))
    }

    /// The files under `path`, keyed by path relative to `path`'s parent
    /// (`get_files("/data")` gives `data/bucket/file.txt`); folders map to `None`.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound) when `path` does not exist.
    pub async fn get_files(&self, path: &str) -> Result<Files> {
        let tar = self.inner.runtime.get_archive(&self.inner.id, path).await.map_err(|e| self.context(e))?;
        archive::read_tar(&tar).map_err(|e| self.context(e))
    }

    /// The content of the file at `path` as text.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound) when it does not exist, [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when it is a folder.
    pub async fn get_text(&self, path: &str) -> Result<String> {
        let files = self.get_files(path).await?;
        let name = path.trim_end_matches('/').rsplit('/').next().unwrap_or(path);
        match files.get(name) {
            Some(Some(bytes)) => Ok(String::from_utf8_lossy(bytes).into_owned()),
            _ => Err(self.context(Error::invalid_input(format!("`{path}` is not a file")))),
        }
    }

    /// Writes `files` (relative paths; `None` for a folder) under the folder `path`, which must exist.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) for an absolute path or one with `..`; [`ErrorKind::NotFound`](crate::ErrorKind::NotFound)
    /// when `path` does not exist.
    pub async fn put_files(&self, path: &str, files: &Files) -> Result<()> {
        let tar = archive::build_tar(files).map_err(|e| self.context(e))?;
        self.put_archive(path, tar).await
    }

    /// Extracts a ready tar archive under the folder `path`.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound) when `path` does not exist.
    pub async fn put_archive(&self, path: &str, tar: Bytes) -> Result<()> {
        self.inner.runtime.put_archive(&self.inner.id, path, tar).await.map_err(|e| self.context(e))
    }

    /// Restarts the container and waits until it is ready again.
    ///
    /// # Errors
    /// When it does not come back ready.
    pub async fn restart(&self) -> Result<()> {
        self.inner.runtime.restart_container(&self.inner.id, 10).await.map_err(|e| self.context(e))?;
        self.wait_ready().await
    }

    /// Sends a signal (`"SIGKILL"`, `"SIGTERM"`, `"HUP"`).
    ///
    /// # Errors
    /// When the container is not running or the signal is unknown.
    pub async fn kill(&self, signal: &str) -> Result<()> {
        self.inner.runtime.kill_container(&self.inner.id, signal).await.map_err(|e| self.context(e))
    }

    /// Stops the container, killing it after `timeout_secs`.
    ///
    /// # Errors
    /// When the engine refuses.
    pub async fn stop(&self, timeout_secs: i64) -> Result<()> {
        self.inner.runtime.stop_container(&self.inner.id, timeout_secs).await.map_err(|e| self.context(e))
    }

    /// Waits for the container to stop and returns its exit code.
    ///
    /// # Errors
    /// When the engine cannot be reached.
    pub async fn wait(&self) -> Result<i64> {
        self.inner.runtime.wait_container(&self.inner.id).await.map_err(|e| self.context(e))
    }

    /// Freezes its processes.
    ///
    /// # Errors
    /// When it is not running.
    pub async fn pause(&self) -> Result<()> {
        self.inner.runtime.pause_container(&self.inner.id).await.map_err(|e| self.context(e))?;
        self.settle("paused", |s| s == ContainerStatus::Paused).await
    }

    /// Thaws its processes.
    ///
    /// # Errors
    /// When it is not paused.
    pub async fn unpause(&self) -> Result<()> {
        self.inner.runtime.unpause_container(&self.inner.id).await.map_err(|e| self.context(e))?;
        self.settle("unpaused", |s| s != ContainerStatus::Paused).await
    }

    /// Waits until inspecting shows what the call just done asked for. Docker answers a pause
    /// or unpause before its record of the state follows: the runtime's event of an earlier
    /// pause, handled late, can mark the container paused again for a moment after unpausing.
    async fn settle(&self, what: &str, done: impl Fn(ContainerStatus) -> bool) -> Result<()> {
        const LIMIT: std::time::Duration = std::time::Duration::from_secs(10);
        let start = std::time::Instant::now();
        loop {
            let status = self.status().await?;
            if done(status) {
                return Ok(());
            }
            if start.elapsed() > LIMIT {
                return Err(self.context(
                    Error::new(
                        crate::ErrorKind::Engine,
                        format!("the engine said the container was {what}, but after {LIMIT:?} it is still {status}"),
                    )
                    .with_operation(what),
                ));
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Attaches it to `network` (a name or id) with DNS `aliases`.
    ///
    /// # Errors
    /// When the network does not exist.
    pub async fn connect(&self, network: &str, aliases: &[String]) -> Result<()> {
        self.inner.runtime.connect_network(network, &self.inner.id, aliases).await.map_err(|e| self.context(e))?;
        self.refresh().await.map(drop)
    }

    /// Detaches it from `network`, to test how a service copes with losing it.
    ///
    /// # Errors
    /// When it is not attached.
    pub async fn disconnect(&self, network: &str) -> Result<()> {
        self.inner.runtime.disconnect_network(network, &self.inner.id, true).await.map_err(|e| self.context(e))?;
        self.refresh().await.map(drop)
    }
}

/// An image of a fixture.
#[derive(Debug, Clone)]
pub struct Image {
    info: Arc<ImageInfo>,
}

impl Image {
    /// A handle on an inspected image.
    pub fn new(info: ImageInfo) -> Self {
        Image { info: Arc::new(info) }
    }

    /// Image id (`sha256:...`).
    pub fn id(&self) -> &str {
        &self.info.id
    }

    /// Its `repo:tag` names.
    pub fn tags(&self) -> &[String] {
        &self.info.tags
    }

    /// Everything the engine says of it.
    pub fn info(&self) -> &ImageInfo {
        &self.info
    }

    /// The engine's raw inspect answer.
    pub fn attrs(&self) -> &serde_json::Value {
        &self.info.raw
    }
}

/// A network of a fixture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    name: String,
    id: String,
}

impl Network {
    /// A handle on the network `name` with `id`.
    pub fn new(name: impl Into<String>, id: impl Into<String>) -> Self {
        Network { name: name.into(), id: id.into() }
    }

    /// Network name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Network id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// A volume of a fixture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    name: String,
}

impl Volume {
    /// A handle on the volume `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Volume { name: name.into() }
    }

    /// Volume name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl std::ops::Index<&Network> for Ips {
    type Output = IpAddr;

    /// The address on `network`; panics, like a map's index, when it is not attached.
    fn index(&self, network: &Network) -> &IpAddr {
        match self.by_network.get(network.name()) {
            Some(ip) => ip,
            None => panic!(
                "container is not attached to network `{}`; attached: {:?}",
                network.name(),
                self.by_network.keys().collect::<Vec<_>>()
            ),
        }
    }
}

impl std::ops::Index<&str> for Ips {
    type Output = IpAddr;

    /// The address on the network named so; panics when it is not attached.
    fn index(&self, network: &str) -> &IpAddr {
        match self.by_network.get(network) {
            Some(ip) => ip,
            None => panic!(
                "container is not attached to network `{network}`; attached: {:?}",
                self.by_network.keys().collect::<Vec<_>>()
            ),
        }
    }
}
