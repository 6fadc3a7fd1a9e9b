//! Helpers of this repository's own tests (`tests/`).
//!
//! The tests run against a real engine: `FIXTURE_RUNTIME` picks it (Docker by
//! default). The test images are built by `cargo xtask images`.

use std::sync::Arc;

use fixtures_core::labels;
use fixtures_core::spec::{ContainerSpec, LabelFilter, Labels};
use fixtures_core::{Result, Runtime};

/// The image with the project's static test services (no shell).
pub const SERVICES_IMAGE: &str = "fixtures-test/services:latest";
/// The services image as pushed to the local registry by `cargo xtask images`.
pub const REGISTRY_IMAGE: &str = "127.0.0.1:5000/fixtures-test/services:latest";
/// The label on each test image that fingerprints what it was built from: the same on every
/// engine for the same inputs, where image ids differ.
pub const INPUTS_LABEL: &str = "fixtures.test-image.inputs";
/// An image with busybox and a shell.
pub const BUSYBOX_IMAGE: &str = "fixtures-test/busybox:latest";

/// Prints this library's `tracing` events (builds, pulls, creation, readiness, removal)
/// when `FIXTURE_LOG` is set (`info`, `debug`); `cargo xtask demo` sets it.
pub fn init_tracing() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    let Ok(level) = std::env::var("FIXTURE_LOG") else { return };
    ONCE.call_once(|| {
        let level = match level.to_ascii_lowercase().as_str() {
            "debug" => tracing_subscriber::filter::LevelFilter::DEBUG,
            "trace" => tracing_subscriber::filter::LevelFilter::TRACE,
            _ => tracing_subscriber::filter::LevelFilter::INFO,
        };
        let _ = tracing_subscriber::fmt()
            .with_max_level(level)
            .with_target(false)
            .without_time()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init();
    });
}

/// The backends compiled into the tests; `FIXTURE_RUNTIME` picks one (without it,
/// Docker is tried first, then Podman).
pub fn backends() -> Vec<fixtures_core::Backend> {
    vec![fixtures_docker::backend(), fixtures_podman::backend()]
}

/// An empty environment on the backends under test: every one compiled in, as `Env::new()`
/// offers them (this crate links both).
pub fn base_env() -> fixtures_core::Env {
    init_tracing();
    test_images();
    fixtures_core::Env::new()
}

/// The engine under test.
///
/// # Panics
/// When no engine answers: an integration test never passes without one.
pub async fn runtime() -> Arc<dyn Runtime> {
    test_images();
    match fixtures_core::backend::select(&backends()).await {
        Ok(rt) => rt,
        Err(e) => panic!("integration tests need a container engine: {e:?}"),
    }
}

/// Labels for everything a low-level test creates, unique to that test, so
/// [`Scratch`] removes exactly what the test made.
#[derive(Debug)]
pub struct Scratch {
    runtime: Arc<dyn Runtime>,
    run: String,
}

impl Scratch {
    /// A new scratch space on `runtime` named after `test`.
    pub fn new(runtime: Arc<dyn Runtime>, test: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let run = format!("it-{test}-{}-{nanos:x}", std::process::id());
        Scratch { runtime, run }
    }

    /// The runtime.
    pub fn runtime(&self) -> &Arc<dyn Runtime> {
        &self.runtime
    }

    /// A unique name for a resource of this test.
    pub fn name(&self, what: &str) -> String {
        format!("{}-{what}", self.run)
    }

    /// Our labels for this test's resources.
    pub fn labels(&self) -> Labels {
        let mut l = Labels::new();
        l.insert(labels::MANAGED.to_owned(), "true".to_owned());
        l.insert(labels::RUN.to_owned(), self.run.clone());
        l
    }

    /// The filter that finds this test's resources.
    pub fn filter(&self) -> LabelFilter {
        LabelFilter::eq(labels::RUN, self.run.clone())
    }

    /// A container spec of `image` with this test's labels and a unique name.
    pub fn container(&self, what: &str, image: &str) -> ContainerSpec {
        ContainerSpec {
            name: Some(self.name(what)),
            image: image.to_owned(),
            labels: self.labels(),
            ..ContainerSpec::default()
        }
    }

    /// Creates and starts a container; returns its id.
    ///
    /// # Errors
    /// When the engine refuses.
    pub async fn start(&self, spec: &ContainerSpec) -> Result<String> {
        let id = self.runtime.create_container(spec).await?;
        self.runtime.start_container(&id).await?;
        Ok(id)
    }

    /// Removes everything of this test: containers, then networks and volumes.
    ///
    /// # Errors
    /// When something cannot be removed.
    pub async fn clean(&self) -> Result<()> {
        remove_all(self.runtime.as_ref(), &self.filter()).await
    }
}

/// Removes the containers, then the networks and volumes, that `filter` selects.
///
/// # Errors
/// When something cannot be removed.
pub async fn remove_all(runtime: &dyn Runtime, filter: &LabelFilter) -> Result<()> {
    for c in runtime.list_containers(filter).await? {
        runtime.remove_container(&c.id, true).await?;
    }
    for n in runtime.list_networks(filter).await? {
        runtime.remove_network(&n.id).await?;
    }
    for v in runtime.list_volumes(filter).await? {
        runtime.remove_volume(&v.name, true).await?;
    }
    Ok(())
}

impl Drop for Scratch {
    /// Cleans up after a test that panicked before calling [`Scratch::clean`].
    fn drop(&mut self) {
        let runtime = self.runtime.clone();
        let filter = self.filter();
        // A separate thread with its own runtime: this may run inside the test's runtime.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            rt.block_on(remove_all(runtime.as_ref(), &filter)).ok()
        });
        let _ = done.join();
    }
}

/// Whether the container's logs come to contain `text` within 5 s. A service's log line
/// may trail what it did (a request answered, a port bound) by a moment.
///
/// # Errors
/// When the logs cannot be read.
pub async fn logs_come_to_contain(c: &fixtures_core::Container, text: &str) -> Result<bool> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        if c.logs().await?.contains(text) {
            return Ok(true);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Ok(false)
}

/// The features the matrix builds the suite with (`cargo xtask integration`): tests that run
/// cargo or cargo-nextest use the same, so nothing is built twice.
pub const TEST_FEATURES: &str = "fixtures/podman,fixtures/compose,fixtures/tls";

/// cargo's package selection and features for the suite, as `cargo xtask integration` builds
/// it: tests that run cargo or cargo-nextest pass these, so that cargo resolves features as the
/// suite's build did and builds nothing again.
pub const SUITE: [&str; 5] = ["--workspace", "--exclude", "fixtures-bench", "--features", TEST_FEATURES];

/// Whether the long forms of the suite's long tests run (`cargo xtask test --full` sets
/// `FIXTURES_FULL`): chaos in full rather than one module of it, every round of a repeated
/// check.
pub fn full() -> bool {
    std::env::var("FIXTURES_FULL").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Cargo, as a test runs it: without the variables cargo set for the test itself
/// (`CARGO_MANIFEST_DIR`, `CARGO_PKG_*`, ...). Build scripts that watch them (ring's does)
/// would otherwise see a change and build again what the outer cargo had built.
pub fn cargo() -> std::process::Command {
    let mut cmd = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_MANIFEST_")
            || ["CARGO_CRATE_NAME", "CARGO_BIN_NAME", "CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR", "OUT_DIR"]
                .contains(&key.as_ref())
        {
            cmd.env_remove(key.as_ref());
        }
    }
    cmd
}

/// The binary of the test target `target` of this package (one with `test = false`, run by
/// another test as a subprocess), built if needed.
///
/// # Panics
/// When cargo cannot build it or does not say where it is.
pub fn test_binary(target: &str) -> std::path::PathBuf {
    let out = cargo()
        .current_dir(workspace_root())
        // The features `cargo xtask integration` builds the suite with, so nothing is built twice.
        .arg("test")
        .args(SUITE)
        .args(["--test", target, "--no-run"])
        .output()
        .expect("cargo runs");
    let text = String::from_utf8_lossy(&out.stderr);
    let line = text
        .lines()
        .find(|l| l.contains("Executable") && l.contains(&format!("{target}-")))
        .unwrap_or_else(|| panic!("no binary for {target} in: {text}"));
    let path = std::path::PathBuf::from(line.rsplit_once('(').and_then(|(_, p)| p.strip_suffix(')')).expect("a path"));
    if path.is_absolute() { path } else { workspace_root().join(path) }
}

/// The repository's root, where the `fixtures` package and its `tests/` are.
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Another run's output, indented, for a test's failure message: `cargo xtask integration`
/// counts only libtest's summary lines at column 0, so a quoted run's own must not be there.
pub fn quoted(output: &str) -> String {
    output.lines().map(|l| format!("    | {l}\n")).collect()
}

/// A minimal HTTP/1.0 client, enough for the test services.
#[derive(Debug, Clone)]
pub struct HttpClient {
    addr: std::net::SocketAddr,
}

impl HttpClient {
    /// A client of the server at `addr`.
    pub fn new(addr: std::net::SocketAddr) -> Self {
        HttpClient { addr }
    }

    /// `GET path`: the status code and the body.
    ///
    /// # Errors
    /// When the server cannot be reached or answers something that is not HTTP.
    pub async fn get(&self, path: &str) -> std::io::Result<(u16, String)> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut sock = tokio::net::TcpStream::connect(self.addr).await?;
        sock.write_all(format!("GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").as_bytes()).await?;
        let mut raw = String::new();
        sock.read_to_string(&mut raw).await?;
        let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, format!("not an HTTP answer: {raw:?}"));
        let status = raw.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(bad)?;
        let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).ok_or_else(bad)?;
        Ok((status, body))
    }
}

/// The engine's events for one label filter, recorded from the moment it starts, and a way
/// to know which of them have happened by now.
///
/// An engine delivers an event some time after it happened, so a test that counts events
/// cannot know by waiting a while that it has them all. [`EventLog::until_now`] creates a
/// marker container that carries the filter's labels and waits for the event of its creation:
/// events come in order, so every event before it has been delivered.
#[derive(Debug)]
pub struct EventLog {
    runtime: Arc<dyn Runtime>,
    labels: Labels,
    events: tokio::sync::mpsc::UnboundedReceiver<fixtures_core::runtime::Event>,
    reader: tokio::task::JoinHandle<()>,
    markers: Vec<String>,
}

impl EventLog {
    /// Starts recording the events of objects with every one of `labels`.
    pub fn start(runtime: Arc<dyn Runtime>, labels: &[(&str, &str)]) -> Self {
        let filter = labels.iter().fold(LabelFilter::default(), |filter, (key, value)| filter.and_eq(*key, *value));
        let labels: Labels = labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let mut stream = runtime.events(&filter);
        let (tx, events) = tokio::sync::mpsc::unbounded_channel();
        let reader = tokio::spawn(async move {
            use futures_util::StreamExt;
            while let Some(Ok(event)) = stream.next().await {
                if tx.send(event).is_err() {
                    break;
                }
            }
        });
        EventLog { runtime, labels, events, reader, markers: Vec::new() }
    }

    /// The events recorded since the last call (or the start) that happened before this call.
    ///
    /// # Panics
    /// When the marker cannot be made or its creation is not seen within 30 s.
    pub async fn until_now(&mut self) -> Vec<fixtures_core::runtime::Event> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let mut labels = self.labels.clone();
        labels.insert(labels::MANAGED.to_owned(), "true".to_owned());
        let marker = ContainerSpec {
            name: Some(format!("fx-event-marker-{}-{nanos:x}", std::process::id())),
            image: SERVICES_IMAGE.to_owned(),
            command: Some(vec!["sleep".to_owned()]),
            labels,
            ..ContainerSpec::default()
        };
        let id = match self.runtime.create_container(&marker).await {
            Ok(id) => id,
            Err(e) => panic!("the event marker: {e:?}"),
        };
        self.markers.push(id.clone());
        let mut before = Vec::new();
        let seen = tokio::time::timeout(std::time::Duration::from_secs(30), async {
            while let Some(event) = self.events.recv().await {
                if event.id == id && event.action == fixtures_core::runtime::EventAction::Create {
                    return true;
                }
                if !self.markers.contains(&event.id) {
                    before.push(event);
                }
            }
            false
        })
        .await;
        let _ = self.runtime.remove_container(&id, true).await;
        assert!(matches!(seen, Ok(true)), "no creation event of the marker {id} (the stream ended, or 30 s passed)");
        before
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// A memcached client in the manner of most async database and broker clients: `connect`
/// spawns a task that owns the connection, and the client talks to it through a channel.
/// The task runs on whichever runtime `connect` was called on; when that runtime ends, so
/// does the task, and every later request fails with "connection closed". Not `Clone`.
#[derive(Debug)]
pub struct MemcachedClient {
    requests: tokio::sync::mpsc::UnboundedSender<(Vec<u8>, tokio::sync::oneshot::Sender<std::io::Result<String>>)>,
    serial: u64,
}

/// Counts the clients made in this process.
static CLIENTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl MemcachedClient {
    /// Connects to the memcached service at `addr` and spawns the connection's task.
    ///
    /// # Errors
    /// When the server cannot be reached.
    pub async fn connect(addr: std::net::SocketAddr) -> std::io::Result<Self> {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        let stream = tokio::net::TcpStream::connect(addr).await?;
        let (tx, mut rx) =
            tokio::sync::mpsc::unbounded_channel::<(Vec<u8>, tokio::sync::oneshot::Sender<std::io::Result<String>>)>();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut read = tokio::io::BufReader::new(read);
            while let Some((request, reply)) = rx.recv().await {
                let answer = async {
                    write.write_all(&request).await?;
                    // An answer is `VALUE` blocks (a header and a data line each) up to one
                    // line of another kind (`END`, `STORED`, `VERSION ...`).
                    let mut text = String::new();
                    loop {
                        let mut line = String::new();
                        if read.read_line(&mut line).await? == 0 {
                            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the server hung up"));
                        }
                        text.push_str(&line);
                        if !line.starts_with("VALUE ") {
                            return Ok(text);
                        }
                        read.read_line(&mut text).await?;
                    }
                };
                let _ = reply.send(answer.await);
            }
        });
        let serial = CLIENTS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        Ok(MemcachedClient { requests: tx, serial })
    }

    /// Which client of this process this is (1 for the first made).
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// How many clients this process has made.
    pub fn made() -> u64 {
        CLIENTS.load(std::sync::atomic::Ordering::SeqCst)
    }

    async fn request(&self, request: String) -> std::io::Result<String> {
        let closed = || std::io::Error::new(std::io::ErrorKind::BrokenPipe, "connection closed: its task is gone");
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.requests.send((request.into_bytes(), reply)).map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// Stores `value` under `key`.
    ///
    /// # Errors
    /// When the connection or its task is gone, or the server refuses.
    pub async fn set(&self, key: &str, value: &str) -> std::io::Result<()> {
        let answer = self.request(format!("set {key} 0 0 {}\r\n{value}\r\n", value.len())).await?;
        if answer.trim_end() == "STORED" {
            Ok(())
        } else {
            Err(std::io::Error::other(format!("set {key}: {answer:?}")))
        }
    }

    /// The value under `key`, if any.
    ///
    /// # Errors
    /// When the connection or its task is gone.
    pub async fn get(&self, key: &str) -> std::io::Result<Option<String>> {
        let answer = self.request(format!("get {key}\r\n")).await?;
        let mut lines = answer.lines();
        match lines.next() {
            Some(header) if header.starts_with("VALUE ") => Ok(lines.next().map(str::to_owned)),
            _ => Ok(None),
        }
    }

    /// The server's version line: a round trip through the connection's task.
    ///
    /// # Errors
    /// When the connection or its task is gone.
    pub async fn version(&self) -> std::io::Result<String> {
        Ok(self.request("version\r\n".to_owned()).await?.trim_end().to_owned())
    }
}

/// Checks, from a run's engine events in order, that no two containers whose name starts with
/// `prefix` were running at the same time; returns the ids of their starts, in order (an id
/// twice if a container started twice).
///
/// A run's session container is one at a time, not one for the whole run: between two of
/// cargo-nextest's processes an engine may have no process of the run alive, and the library
/// then ends the run's session objects there; a process that comes after makes them anew
/// (more likely on a busy machine, where processes start slowly).
///
/// # Errors
/// Naming both containers, when one started while the other still ran.
pub fn one_at_a_time(
    events: &[fixtures_core::runtime::Event],
    prefix: &str,
) -> std::result::Result<Vec<String>, String> {
    use fixtures_core::runtime::{EventAction, EventObject};
    let mut running: Option<&str> = None;
    let mut started = Vec::new();
    for e in events.iter().filter(|e| e.object == EventObject::Container) {
        if !e.attributes.get("name").is_some_and(|n| n.trim_start_matches('/').starts_with(prefix)) {
            continue;
        }
        match e.action {
            EventAction::Start => {
                if let Some(other) = running.filter(|other| *other != e.id) {
                    return Err(format!("{} started while {other} still ran", e.id));
                }
                running = Some(&e.id);
                started.push(e.id.clone());
            }
            EventAction::Die | EventAction::Destroy if running == Some(e.id.as_str()) => running = None,
            _ => {}
        }
    }
    Ok(started)
}

/// Whether `rt` is a rootless engine on cgroups v1, which can neither pause containers nor
/// limit their resources (the library says so with [`fixtures_core::ErrorKind::Unsupported`]).
pub fn rootless_on_cgroups_v1(rt: &dyn Runtime) -> bool {
    rt.rootless() && !fixtures_engine_api::local::cgroups_v2()
}
pub mod remote;

/// The last of the stand-ins for public images (`postgres:16-alpine`, ...) that
/// `cargo xtask images` builds: when the engine has it, it has them all.
pub const LAST_STAND_IN: &str = "python:3.12-slim";

/// Set by `cargo xtask` for the tests it runs: it has built the test images on every engine of
/// the run already.
pub const IMAGES_READY: &str = "FIXTURES_TEST_IMAGES_READY";

/// Makes sure the engine under test has the test images ([`SERVICES_IMAGE`], [`BUSYBOX_IMAGE`],
/// the stand-ins for public images),
/// building them with `cargo xtask images --local` when it has not (once per machine: a
/// plain `cargo test` in a fresh clone works without a set-up step). Under `cargo xtask` it does
/// nothing: the run built them first.
///
/// # Panics
/// When the images are missing and cannot be built: the message says why and what to install.
pub fn test_images() {
    // The command-line client of the engine under test: it reads DOCKER_HOST and
    // CONTAINER_HOST as the library does, so it asks the same engine.
    images_on(if std::env::var("FIXTURE_RUNTIME").is_ok_and(|r| r == "podman") { "podman" } else { "docker" });
}

/// [`test_images`] on the engine `cli` (`docker` or `podman`) talks to.
fn images_on(cli: &'static str) {
    static DONE: [std::sync::OnceLock<()>; 2] = [std::sync::OnceLock::new(), std::sync::OnceLock::new()];
    DONE[usize::from(cli == "podman")].get_or_init(|| {
        if std::env::var_os(IMAGES_READY).is_some() {
            return;
        }
        // Whether the engine lacks an image (`Some(true)`); `None` when it could not say (no
        // client, no engine: the test's own connection reports that better).
        let missing = || {
            let out = std::process::Command::new(cli)
                .args(["image", "inspect", "--format", "{{.Id}}", SERVICES_IMAGE, BUSYBOX_IMAGE, LAST_STAND_IN])
                .output()
                .ok()?;
            let err = String::from_utf8_lossy(&out.stderr).to_ascii_lowercase();
            if out.status.success() {
                Some(false)
            } else if err.contains("no such image") || err.contains("image not known") {
                Some(true)
            } else {
                None
            }
        };
        if missing() != Some(true) {
            return;
        }
        // One builder at a time across test processes (cargo-nextest runs many).
        let target = workspace_root().join("target");
        let _ = std::fs::create_dir_all(&target);
        let lock = std::fs::File::create(target.join("test-images.lock")).expect("the test images' lock file");
        lock.lock().expect("lock the test images' lock file");
        if missing() != Some(true) {
            return;
        }
        eprintln!(
            "test-support: {cli} lacks the test images: building them (`cargo xtask images --local --engine {cli}`)"
        );
        let out = cargo()
            .current_dir(workspace_root())
            .args(["xtask", "images", "--local", "--engine", cli])
            .output()
            .expect("cargo runs");
        assert!(
            out.status.success(),
            "the test images could not be built on {cli}; run `cargo xtask images --engine {cli}` to see why \
             (on Debian, `bash xtask/setup.sh docker` installs what it needs):\n{}{}",
            quoted(&String::from_utf8_lossy(&out.stdout)),
            quoted(&String::from_utf8_lossy(&out.stderr)),
        );
    });
}

/// Something a test needs beyond the engine under test and its images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Podman's command line (a test that starts a service of its own).
    Podman,
    /// Podman's API service on `/run/podman/podman.sock` (`cargo xtask test` starts it).
    PodmanService,
    /// cargo-nextest (`cargo install cargo-nextest`).
    Nextest,
    /// The local registry on 127.0.0.1:5000, holding [`REGISTRY_IMAGE`].
    Registry,
    /// What remote engines on loopback take: openssl, socat, an ssh server and ssh-agent.
    RemoteTools,
    /// docker-compose, to compare the library's reading of a file with.
    DockerCompose,
    /// What a private registry of a test's own takes: Debian's `docker-registry` and
    /// `htpasswd` (apache2-utils).
    PrivateRegistry,
}

impl Need {
    /// Why this machine lacks it, if it does.
    fn missing(self) -> Option<String> {
        let on_path = |name: &str| {
            std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        };
        match self {
            Need::Podman | Need::PodmanService if !on_path("podman") => Some("Podman (not installed)".to_owned()),
            Need::PodmanService if !answers("/run/podman/podman.sock", "/_ping") => {
                Some("Podman's API service on /run/podman/podman.sock (not running)".to_owned())
            }
            Need::Registry if !registry_has(REGISTRY_IMAGE) => {
                Some(format!("the local registry on 127.0.0.1:5000 holding {REGISTRY_IMAGE}"))
            }
            Need::RemoteTools => {
                let lacking: Vec<&str> = ["openssl", "socat", "ssh-agent"]
                    .into_iter()
                    .filter(|t| !on_path(t))
                    .chain((!std::path::Path::new("/usr/sbin/sshd").exists()).then_some("sshd"))
                    .collect();
                (!lacking.is_empty()).then(|| format!("{} (not installed)", lacking.join(", ")))
            }
            Need::Nextest if !on_path("cargo-nextest") => Some("cargo-nextest (not installed)".to_owned()),
            Need::DockerCompose if !on_path("docker-compose") => Some("docker-compose (not installed)".to_owned()),
            Need::PrivateRegistry => {
                let lacking: Vec<&str> = ["docker-registry", "htpasswd"].into_iter().filter(|t| !on_path(t)).collect();
                (!lacking.is_empty()).then(|| format!("{} (not installed)", lacking.join(", ")))
            }
            _ => None,
        }
    }
}

/// Whether this machine has everything in `needs`. When it lacks something, the test says on
/// stderr what it did not find and that it did not run, and the caller returns: a plain
/// `cargo test` on a machine with Docker alone passes what that machine can run. Under
/// `CI=true` nothing is skipped: a missing need fails the test.
///
/// # Panics
/// Under `CI=true`, when something is missing.
pub fn has(needs: &[Need]) -> bool {
    let missing: Vec<String> = needs.iter().filter_map(|n| n.missing()).collect();
    if missing.is_empty() {
        if needs.iter().any(|n| matches!(n, Need::Podman | Need::PodmanService)) {
            // A test on Podman beside the engine under test uses the test images there too.
            images_on("podman");
        }
        return true;
    }
    let test = std::thread::current().name().unwrap_or("this test").to_owned();
    let what = missing.join("; ");
    let how = "`bash xtask/setup.sh` installs it and `cargo xtask test` starts it";
    assert!(!ci(), "{test} needs {what}: {how} (under CI nothing is skipped)");
    // Past libtest's capture (which takes `eprintln!`), so that a passing run shows it too.
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!("SKIPPED {test}: it needs {what}; {how}\n").as_bytes(),
    );
    false
}

/// Whether this is a CI run (`CI` set, and not `false` or `0`, as `cargo xtask` reads it).
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Whether an HTTP server on the unix socket `socket` answers `path` with 200.
fn answers(socket: &str, path: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::os::unix::net::UnixStream::connect(socket) else { return false };
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(5)));
    if stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: engine\r\n\r\n").as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.split_whitespace().nth(1) == Some("200")
}

/// Whether the registry at `reference`'s host serves its manifest.
fn registry_has(reference: &str) -> bool {
    use std::io::{Read, Write};
    let Some((host, rest)) = reference.split_once('/') else { return false };
    let (repository, tag) = rest.rsplit_once(':').unwrap_or((rest, "latest"));
    let Ok(addr) = host.parse::<std::net::SocketAddr>() else { return false };
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(5)));
    let request = format!(
        "HEAD /v2/{repository}/manifests/{tag} HTTP/1.0\r\nHost: {host}\r\nAccept: \
         application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.split_whitespace().nth(1) == Some("200")
}
