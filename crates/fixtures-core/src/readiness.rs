//! Waiting until a container is ready, and failing fast when it never will be.
//!
//! The default check needs nothing inside the image (it works for `FROM
//! scratch`): the container is running, has an address on each of its networks,
//! and every published (and declared exposed) port is listening. Listening is
//! read from the container's own network namespace (`/proc/<pid>/net/tcp` and
//! friends) when the engine runs on this machine, which sees a socket the
//! moment it listens; otherwise it connects to the container's address.
//!
//! After the default check come the node's [`WaitFor`] strategies (all of them
//! by default, concurrently): a log line, an HTTP answer, the HEALTHCHECK, a
//! command's exit 0, a custom check. Meanwhile the engine's event stream is
//! watched and the container's output followed: a container that dies or is
//! OOM-killed fails at once, with its exit code and last log lines (from the
//! followed output, so the engine need not be asked about a container it is still
//! cleaning up after). Repeated checks start at 2 ms and back off to 25 ms.

use std::collections::BTreeSet;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::future::{select_ok, try_join_all};

use crate::error::{Error, ErrorKind, Result};
use crate::handle::Container;
use crate::runtime::{ContainerInfo, ContainerStatus, EventAction, Health, Runtime, Stream};
use crate::spec::{LabelFilter, LogsSpec, Port, Protocol};

/// Default time a container has to become ready (`timeout` in the configuration changes it).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Lines of logs kept when a test fails (`FIXTURE_LOG_TAIL` changes it).
pub const DEFAULT_LOG_TAIL: usize = 100;

/// The readiness timeout for nodes that set none: the configuration's `timeout` (30 s).
pub fn default_timeout() -> Duration {
    crate::config::current().map_or(DEFAULT_TIMEOUT, crate::config::Config::timeout)
}

/// A user's readiness check: called until it returns `Ok(true)`.
pub(crate) type ReadyFn = Arc<dyn Fn(Container) -> Pin<Box<dyn Future<Output = Result<bool>> + Send>> + Send + Sync>;

/// Which output a log strategy reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogSource {
    /// Standard output only.
    Stdout,
    /// Standard error only.
    Stderr,
    /// Either.
    Either,
}

/// A way to tell that a container is ready, beyond the default check.
#[derive(Clone)]
#[non_exhaustive]
pub enum WaitFor {
    /// A line of output matches `pattern`, `times` times.
    Log {
        /// The pattern (a regular expression).
        pattern: regex_lite::Regex,
        /// Which output to read.
        source: LogSource,
        /// How many matching lines.
        times: usize,
    },
    /// `GET path` on the published `port` answers `status` (and a body containing `body`).
    Http {
        /// The container port (`8080/tcp`).
        port: String,
        /// The request path.
        path: String,
        /// The status awaited.
        status: u16,
        /// Text the body must contain.
        body: Option<String>,
    },
    /// The image's (or the node's) HEALTHCHECK reports healthy.
    Healthy,
    /// The command exits 0 inside the container.
    Command(Vec<String>),
    /// A custom check returns `Ok(true)`.
    Custom(String, ReadyFn),
    /// Every one of these.
    All(Vec<WaitFor>),
    /// Any one of these.
    Any(Vec<WaitFor>),
}

impl WaitFor {
    /// A line matching the regular expression `pattern` on stdout or stderr.
    ///
    /// The syntax is the `regex` crate's without Unicode classes (`\d`, `\w`, `\s` are ASCII;
    /// no `\p{..}`): patterns are read by `regex-lite`, which builds in a fraction of the time.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when `pattern` is not a regular expression.
    pub fn log(pattern: &str) -> Result<Self> {
        WaitFor::log_on(pattern, LogSource::Either, 1)
    }

    /// `times` lines matching `pattern` on `source`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when `pattern` is not a regular expression.
    pub fn log_on(pattern: &str, source: LogSource, times: usize) -> Result<Self> {
        let pattern = regex_lite::Regex::new(pattern)
            .map_err(|e| Error::invalid_input(format!("`{pattern}` is not a regular expression")).with_source(e))?;
        Ok(WaitFor::Log { pattern, source, times: times.max(1) })
    }

    /// `GET path` on `port` answers `status`.
    pub fn http(port: &str, path: &str, status: u16) -> Self {
        WaitFor::Http { port: port.to_owned(), path: path.to_owned(), status, body: None }
    }

    /// A command that must exit 0 inside the container.
    pub fn command<I, S>(cmd: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        WaitFor::Command(cmd.into_iter().map(Into::into).collect())
    }

    /// Any one of `strategies`.
    pub fn any(strategies: impl IntoIterator<Item = WaitFor>) -> Self {
        WaitFor::Any(strategies.into_iter().collect())
    }

    /// Every one of `strategies`.
    pub fn all(strategies: impl IntoIterator<Item = WaitFor>) -> Self {
        WaitFor::All(strategies.into_iter().collect())
    }

    /// In words, for errors.
    pub fn describe(&self) -> String {
        match self {
            WaitFor::Log { pattern, source, times } => {
                let on = match source {
                    LogSource::Stdout => " on stdout",
                    LogSource::Stderr => " on stderr",
                    LogSource::Either => "",
                };
                let n = if *times > 1 { format!(" {times} times") } else { String::new() };
                format!("a log line matching /{pattern}/{on}{n}")
            }
            WaitFor::Http { port, path, status, body } => {
                let b = body.as_ref().map(|b| format!(" with {b:?} in the body")).unwrap_or_default();
                format!("GET {path} on {port} to answer {status}{b}")
            }
            WaitFor::Healthy => "the health check to report healthy".to_owned(),
            WaitFor::Command(cmd) => format!("{cmd:?} to exit 0"),
            WaitFor::Custom(name, _) => format!("check `{name}`"),
            WaitFor::All(list) => list.iter().map(WaitFor::describe).collect::<Vec<_>>().join(" and "),
            WaitFor::Any(list) => {
                format!("any of ({})", list.iter().map(WaitFor::describe).collect::<Vec<_>>().join(", "))
            }
        }
    }
}

impl std::fmt::Debug for WaitFor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// How a container is judged ready: made by the container builder's `timeout`, `ready_when`,
/// `wait_for`, ... (plumbing for [`Container::attach`](crate::Container), hidden).
#[doc(hidden)]
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Readiness {
    /// How long it may take.
    pub timeout: Duration,
    /// Check that each published port listens (default true).
    pub ports: bool,
    /// Ports to await besides the published ones (exposed on the container's networks).
    pub expose: Vec<Port>,
    /// Strategies, all of which must pass after the default check.
    pub wait_for: Vec<WaitFor>,
    /// How long the main process must have run before the container counts as ready
    /// ([`DEFAULT_MIN_UPTIME`]): a process that exits within milliseconds of its start is
    /// seen as exited, not handed over as ready.
    pub min_uptime: Duration,
    /// The container runs to completion (a migration, a seed job): it is ready once its main
    /// process has exited 0, and fails with its exit code and logs if it exits otherwise. The
    /// other checks do not apply.
    pub completes: bool,
    /// An exit with code 0 while awaited counts as ready (the container did its work and
    /// finished), not as a failure: Compose's "started" for a service that may be a one-shot job.
    pub exit_ok: bool,
}

/// How long a container's main process must have run before it counts as ready. A check that
/// passes sooner (no ports, no strategies: the container is running, nothing else to wait for)
/// waits out the rest, watching the process; a container whose checks took longer pays nothing.
pub const DEFAULT_MIN_UPTIME: Duration = Duration::from_millis(10);

impl Default for Readiness {
    fn default() -> Self {
        Readiness {
            timeout: default_timeout(),
            ports: true,
            expose: Vec::new(),
            wait_for: Vec::new(),
            min_uptime: DEFAULT_MIN_UPTIME,
            completes: false,
            exit_ok: false,
        }
    }
}

/// Growing pause between polls: starts at 2 ms, never above its cap (25 ms for checks
/// that cost a request or a connection; 5 ms for reading `/proc`, which costs microseconds).
#[derive(Debug)]
pub(crate) struct Backoff(Duration, Duration);

impl Backoff {
    pub(crate) fn new() -> Self {
        Backoff(Duration::from_millis(2), Duration::from_millis(25))
    }

    /// For checks that cost next to nothing.
    pub(crate) fn cheap() -> Self {
        Backoff(Duration::from_millis(1), Duration::from_millis(5))
    }

    pub(crate) async fn wait(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 3 / 2).min(self.1);
    }
}

/// The last `lines` lines of a container's output, both streams.
pub async fn logs_tail(runtime: &dyn Runtime, id: &str, lines: usize) -> String {
    let spec = LogsSpec { tail: Some(lines), ..LogsSpec::default() };
    let mut stream = runtime.logs(id, &spec);
    let mut out = Vec::new();
    while let Some(Ok(chunk)) = stream.next().await {
        out.extend_from_slice(&chunk.bytes);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The error for a container that stopped while it was awaited.
pub(crate) async fn exited_error(
    runtime: &dyn Runtime,
    info: &ContainerInfo,
    waiting_for: &str,
    waited: Duration,
) -> Error {
    let logs = logs_tail(runtime, &info.id, 20).await;
    exit_error(info, waiting_for, waited, logs)
}

/// The error for a container the engine says has stopped: how it ended and its last lines,
/// asked for at once.
async fn exit_report(runtime: &dyn Runtime, id: &str, waiting_for: &str) -> Error {
    let (info, logs) = tokio::join!(runtime.inspect_container(id), logs_tail(runtime, id, 20));
    match info {
        Ok(info) => exit_error(&info, waiting_for, Duration::ZERO, logs),
        Err(e) => e,
    }
}

fn exit_error(info: &ContainerInfo, waiting_for: &str, waited: Duration, logs: String) -> Error {
    let how = if info.oom_killed {
        "was killed for lack of memory (OOM) before it was ready".to_owned()
    } else {
        match info.exit_code {
            Some(code) => format!("exited with code {code} before it was ready"),
            None => format!("is {} and will not become ready", info.status),
        }
    };
    let mut err = Error::new(ErrorKind::Exited, format!("container `{}` {how}", info.name))
        .with_container(info.id.clone())
        .with_image(info.image_id.clone())
        .with_wait(waiting_for, waited)
        .with_exit(info.exit_code, info.oom_killed)
        .with_logs_tail(logs);
    if let Some(engine_error) = &info.error {
        err = err.with_hint(format!("the engine says: {engine_error}"));
    }
    err
}

/// A container's state in words, for failure reports: `running`, `exited with code 3 at
/// <time>`, `OOM-killed (exit code 137) at <time>`, `restarting`, ...
pub fn describe_state(info: &ContainerInfo) -> String {
    let code = info.exit_code.map_or_else(|| "unknown".to_owned(), |c| c.to_string());
    let at = info.finished_at.as_ref().map(|t| format!(" at {t}")).unwrap_or_default();
    // Running but cut off: taken off every network (it was made on one: its mode is not
    // `none`, `host` or another container's).
    let mode = info.raw.pointer("/HostConfig/NetworkMode").and_then(serde_json::Value::as_str).unwrap_or("");
    let cut_off = info.networks.is_empty()
        && !mode.is_empty()
        && !matches!(mode, "none" | "host" | "slirp4netns" | "pasta" | "private")
        && !mode.starts_with("container:");
    let running = if cut_off { "running, on no network" } else { "running" };
    match info.status {
        ContainerStatus::Running => match info.health {
            Health::Healthy => format!("{running}, healthy"),
            Health::Unhealthy => format!("{running}, unhealthy"),
            Health::Starting => format!("{running}, health check starting"),
            _ => running.to_owned(),
        },
        ContainerStatus::Exited | ContainerStatus::Dead if info.oom_killed => {
            format!("OOM-killed (exit code {code}){at}")
        }
        ContainerStatus::Exited | ContainerStatus::Dead => format!("exited with code {code}{at}"),
        ContainerStatus::Restarting => format!("restarting (last exit code {code}{at})"),
        ContainerStatus::Created => "created, never started".to_owned(),
        other => other.to_string(),
    }
}

/// Seconds since the Unix epoch of an RFC 3339 time as engines write it
/// (`2026-12-02T11:52:03.123456789Z`, or with an offset `+01:00`).
fn rfc3339_seconds(text: &str) -> Option<f64> {
    let (date, time) = text.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (clock, offset) = match time.find(['Z', 'z', '+', '-']) {
        Some(i) => time.split_at(i),
        None => (time, ""),
    };
    let mut c = clock.splitn(3, ':');
    let (h, min, sec) =
        (c.next()?.parse::<i64>().ok()?, c.next()?.parse::<i64>().ok()?, c.next()?.parse::<f64>().ok()?);
    let offset = match offset.as_bytes().first() {
        Some(b'+' | b'-') => {
            let (oh, om) = offset[1..].split_once(':')?;
            let secs = oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60;
            if offset.starts_with('-') { -secs } else { secs }
        }
        _ => 0,
    };
    // Days from the civil date (proleptic Gregorian), after H. Hinnant's algorithm.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + h * 3600 + min * 60 - offset) as f64 + sec)
}

/// How long the container's main process has run, by the engine's `StartedAt`.
fn uptime(info: &ContainerInfo) -> Option<Duration> {
    let started = info.started_at.as_deref().and_then(rfc3339_seconds)?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_secs_f64();
    Some(Duration::from_secs_f64((now - started).max(0.0)))
}

/// What `/proc` tells of a container's main process.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Process {
    /// Gone, or a zombie: it exited.
    Gone,
    /// Sleeping until something happens (a connection, a timer), as a started service does;
    /// with the process's name and start time, to know a second look sees the same program.
    Waiting(String, u64),
    /// Running or runnable, in uninterruptible sleep (loading its binary from disk), or still
    /// the container runtime's own init (`runc:[2:INIT]`), not yet the container's program:
    /// still starting, or busy.
    Busy,
}

/// The state of the process `pid` of this machine, when its pid can be trusted: the engine is
/// local and the pid is in a mount namespace of its own.
fn process_state(runtime: &dyn Runtime, pid: Option<u32>) -> Option<Process> {
    let pid = pid.filter(|p| *p > 0 && runtime.is_local())?;
    let ours = std::fs::read_link("/proc/self/ns/mnt").ok()?;
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return Some(Process::Gone) };
    if std::fs::read_link(format!("/proc/{pid}/ns/mnt")).is_ok_and(|theirs| theirs == ours) {
        return None;
    }
    Some(parse_stat(&stat))
}

/// Reads a `/proc/<pid>/stat` line: `pid (name) state ... starttime ...`.
fn parse_stat(stat: &str) -> Process {
    let Some((head, rest)) = stat.rsplit_once(')') else { return Process::Gone };
    let name = head.split_once('(').map_or("", |(_, n)| n);
    let mut fields = rest.split_whitespace();
    let state = fields.next().and_then(|s| s.chars().next());
    // Field 22 of the line; the 20th after the state.
    let started = fields.nth(18).and_then(|t| t.parse().ok()).unwrap_or(0);
    let runtime_init = name.starts_with("runc:") || matches!(name, "crun" | "youki" | "runsc");
    match state {
        Some('Z' | 'X' | 'x') | None => Process::Gone,
        Some('R' | 'D' | 'W') => Process::Busy,
        Some(_) if runtime_init => Process::Busy,
        Some(_) => Process::Waiting(name.to_owned(), started),
    }
}

/// How long past its minimum uptime a main process that never waits (busy, or still loading)
/// is watched before it is taken as ready anyway.
const BUSY_GRACE: Duration = Duration::from_millis(500);

/// What the last look before a container is handed over found.
enum Settled {
    Ready,
    /// It exited and the engine restarted it: the checks start again.
    Restarted,
}

/// The last look before a container is handed over: its main process has run for at least
/// `min_uptime`, is alive, and has been seen waiting (a process that is still running flat out
/// after its start may be about to exit: under load a shell's `echo boom; exit 3` is seen
/// running 50 ms after its start). Costs a look at `/proc` to a started service whose checks
/// took longer than `min_uptime`; on a remote engine, whose processes cannot be seen, the rest
/// of `min_uptime` and one inspect.
async fn settle(container: &Container, info: &ContainerInfo, min_uptime: Duration) -> Result<Settled> {
    let runtime = container.runtime().as_ref();
    // The engine's clock may be another machine's: never wait longer than min_uptime.
    let rest = min_uptime.saturating_sub(uptime(info).unwrap_or(Duration::ZERO)).min(min_uptime);
    let settled_at = tokio::time::Instant::now() + rest;
    let busy_until = settled_at + BUSY_GRACE;
    let mut backoff = Backoff::cheap();
    // Waiting is believed on a second look that finds the same program waiting.
    let mut seen_waiting: Option<Process> = None;
    let (alive, local) = loop {
        let now = tokio::time::Instant::now();
        let state = process_state(runtime, info.pid);
        match state {
            Some(Process::Gone) => break (false, true),
            Some(_) if min_uptime.is_zero() => break (true, true),
            Some(waiting @ Process::Waiting(..)) => {
                if now >= settled_at && seen_waiting.as_ref() == Some(&waiting) {
                    break (true, true);
                }
                seen_waiting = Some(waiting);
            }
            Some(Process::Busy) if now >= busy_until => break (true, true),
            Some(Process::Busy) => seen_waiting = None,
            None if now >= settled_at => break (true, false),
            None => {}
        }
        let pause = if now < settled_at { backoff.0.min(settled_at - now) } else { backoff.0 };
        tokio::time::sleep(pause).await;
        backoff.0 = (backoff.0 * 3 / 2).min(backoff.1);
    };
    let now = if alive && local {
        tracing::debug!(container_id = container.id(), uptime = ?uptime(info), "its main process runs and waits");
        return Ok(Settled::Ready);
    } else if alive {
        runtime.inspect_container(container.id()).await?
    } else {
        // Gone: the engine may not have recorded the exit yet; wait until it has.
        runtime.wait_container(container.id()).await?;
        runtime.inspect_container(container.id()).await?
    };
    match now.status {
        ContainerStatus::Running if now.pid == info.pid => Ok(Settled::Ready),
        ContainerStatus::Running | ContainerStatus::Restarting => Ok(Settled::Restarted),
        _ => Err(exited_error(runtime, &now, "its main process to keep running", Duration::ZERO).await),
    }
}

/// Where to look for a container's sockets.
enum Probe {
    /// `/proc/<pid>/net`, in the container's network namespace.
    Proc(u32),
    /// Connect to the container's address.
    Connect(Option<IpAddr>),
    /// Connect to the published port at the engine's host (an engine on another host, whose
    /// containers' addresses are not reachable from here).
    Published(IpAddr),
}

fn probe_for(runtime: &dyn Runtime, info: &ContainerInfo) -> Probe {
    if let Some(remote) = runtime.remote() {
        return Probe::Published(remote);
    }
    let first_ip = info.networks.values().find_map(|n| n.ipv4.or(n.ipv6));
    if runtime.is_local() {
        if let Some(pid) = info.pid.filter(|p| *p > 0) {
            // Trust the pid only if it is in another network namespace than ours: a pid of a
            // different pid namespace could name some unrelated process here.
            let theirs = std::fs::read_link(format!("/proc/{pid}/ns/net")).ok();
            let ours = std::fs::read_link("/proc/self/ns/net").ok();
            if theirs.is_some() && theirs != ours {
                return Probe::Proc(pid);
            }
        }
    }
    Probe::Connect(first_ip)
}

/// Whether `port` is listening (TCP) or bound (UDP) in the namespace of `pid`.
/// `None` when the process is gone.
fn proc_listening(pid: u32, port: Port) -> Option<bool> {
    let (files, state): (&[&str], &str) = match port.protocol {
        Protocol::Tcp => (&["tcp", "tcp6"], "0A"),
        Protocol::Udp => (&["udp", "udp6"], "07"),
        Protocol::Sctp => return Some(true),
    };
    let mut any_read = false;
    for file in files {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{file}")) else { continue };
        any_read = true;
        if proc_table_has(&text, port.number, state) {
            return Some(true);
        }
    }
    any_read.then_some(false)
}

/// Whether a `/proc/net/{tcp,udp}` table has a local socket on `port` in `state`.
pub(crate) fn proc_table_has(table: &str, port: u16, state: &str) -> bool {
    table.lines().skip(1).any(|line| {
        let mut fields = line.split_whitespace();
        let local = fields.nth(1);
        let st = fields.nth(1);
        match (local.and_then(|l| l.rsplit_once(':')), st) {
            (Some((_, p)), Some(s)) => u16::from_str_radix(p, 16) == Ok(port) && s == state,
            _ => false,
        }
    })
}

async fn connect_listening(ip: IpAddr, port: Port) -> bool {
    match port.protocol {
        Protocol::Tcp => {
            let addr = SocketAddr::new(ip, port.number);
            matches!(
                tokio::time::timeout(Duration::from_millis(500), tokio::net::TcpStream::connect(addr)).await,
                Ok(Ok(_))
            )
        }
        // Nothing tells from outside that a UDP port is bound; take it as ready.
        Protocol::Udp | Protocol::Sctp => true,
    }
}

/// Whether a published TCP port at `ip` has a listener behind it. The engine's proxy may take
/// the connection whatever is behind it, and then closes it when nothing listens in the
/// container: a connection that stays open for a moment, or brings data, has a listener. The
/// moment is a few round trips to the engine's host (the connect's own time, eight times
/// over), at least 150 ms (a busy engine host's proxy takes tens of milliseconds to give up:
/// 20 ms was seen too short on this project's 2-core machine) and at most 500 ms.
async fn published_listening(ip: IpAddr, host_port: u16) -> bool {
    use tokio::io::AsyncReadExt;
    let addr = SocketAddr::new(ip, host_port);
    let started = std::time::Instant::now();
    let Ok(Ok(mut stream)) =
        tokio::time::timeout(Duration::from_millis(500), tokio::net::TcpStream::connect(addr)).await
    else {
        return false;
    };
    let moment = (started.elapsed() * 8).clamp(Duration::from_millis(150), Duration::from_millis(500));
    let mut byte = [0u8; 1];
    match tokio::time::timeout(moment, stream.read(&mut byte)).await {
        Err(_) => true,
        Ok(Ok(n)) => n > 0,
        Ok(Err(_)) => false,
    }
}

/// What is still awaited, for the timeout's message.
#[derive(Debug, Default)]
struct Pending(Mutex<BTreeSet<String>>);

impl Pending {
    fn start(&self, what: String) -> String {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).insert(what.clone());
        what
    }

    fn done(&self, what: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(what);
    }

    fn describe(&self) -> String {
        let set = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if set.is_empty() {
            "the container to be ready".to_owned()
        } else {
            set.iter().cloned().collect::<Vec<_>>().join(" and ")
        }
    }
}

/// A check failed for good (not "not yet").
struct Stop(Error);

/// Running, with an address on each network, every port listening.
async fn default_check(container: &Container, readiness: &Readiness, pending: &Pending) -> Result<ContainerInfo> {
    let runtime = container.runtime().as_ref();
    let id = container.id();
    let mut backoff = Backoff::new();
    let step = pending.start("the container to run".to_owned());
    let info = loop {
        let info = runtime.inspect_container(id).await?;
        match info.status {
            ContainerStatus::Running => match info.networks.values().find(|n| n.ipv4.is_none() && n.ipv6.is_none()) {
                None => break info,
                Some(n) => {
                    pending.done(&step);
                    pending.start(format!("an address on network `{}`", n.network));
                }
            },
            ContainerStatus::Exited | ContainerStatus::Dead => {
                return Err(exited_error(runtime, &info, &pending.describe(), Duration::ZERO).await);
            }
            _ => {}
        }
        backoff.wait().await;
    };
    *pending.0.lock().unwrap_or_else(|p| p.into_inner()) = BTreeSet::new();
    if !readiness.ports {
        return Ok(info);
    }
    let probe = probe_for(runtime, &info);
    let mut ports: Vec<Port> = info.ports.keys().copied().collect();
    ports.extend(readiness.expose.iter().filter(|p| !info.ports.contains_key(p)));
    let mut backoff = if matches!(probe, Probe::Proc(_)) { Backoff::cheap() } else { Backoff::new() };
    while let Some(&port) = ports.first() {
        let step = pending.start(format!("port {port} to listen"));
        let listening = match &probe {
            Probe::Proc(pid) => proc_listening(*pid, port),
            Probe::Connect(Some(ip)) => Some(connect_listening(*ip, port).await),
            Probe::Connect(None) => Some(true),
            Probe::Published(ip) => match (port.protocol, info.ports.get(&port).and_then(|b| b.first())) {
                (Protocol::Tcp, Some(binding)) => Some(published_listening(*ip, binding.host_port).await),
                // Not published, or not TCP: nothing tells from here.
                _ => Some(true),
            },
        };
        match listening {
            Some(true) => {
                pending.done(&step);
                ports.remove(0);
                continue;
            }
            Some(false) => {}
            None => {
                // The process is gone. The engine may not have recorded the exit yet: wait
                // for it to (one request, answered when it has), then say how it ended.
                runtime.wait_container(id).await?;
                return Err(exit_report(runtime, id, &step).await);
            }
        }
        backoff.wait().await;
    }
    Ok(info)
}

/// Lines of a log stream matching a pattern, `times` times.
async fn wait_log(
    container: &Container,
    pattern: &regex_lite::Regex,
    source: LogSource,
    times: usize,
) -> std::result::Result<(), Stop> {
    let spec = LogsSpec {
        follow: true,
        stdout: source != LogSource::Stderr,
        stderr: source != LogSource::Stdout,
        ..LogsSpec::default()
    };
    let mut stream = container.runtime().logs(container.id(), &spec);
    let mut partial = [String::new(), String::new()];
    let mut seen = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(Stop)?;
        let buf = &mut partial[usize::from(chunk.stream == Stream::Stderr)];
        buf.push_str(&String::from_utf8_lossy(&chunk.bytes));
        while let Some(end) = buf.find('\n') {
            let line: String = buf.drain(..=end).collect();
            if pattern.is_match(line.trim_end_matches(['\n', '\r'])) {
                seen += 1;
                if seen >= times {
                    return Ok(());
                }
            }
        }
    }
    // The stream ended: the container stopped. A last line without a newline counts too.
    if partial.iter().any(|rest| !rest.is_empty() && pattern.is_match(rest)) && seen + 1 >= times {
        return Ok(());
    }
    let info = container.runtime().inspect_container(container.id()).await.map_err(Stop)?;
    Err(Stop(
        exited_error(container.runtime().as_ref(), &info, &format!("a log line matching /{pattern}/"), Duration::ZERO)
            .await,
    ))
}

async fn http_once(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut sock = tokio::net::TcpStream::connect(addr).await?;
    sock.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes()).await?;
    let mut raw = Vec::new();
    sock.read_to_end(&mut raw).await?;
    let raw = String::from_utf8_lossy(&raw);
    let status = raw.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Ok((status, body))
}

async fn until<F, Fut>(mut check: F) -> std::result::Result<(), Stop>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<bool, Stop>>,
{
    let mut backoff = Backoff::new();
    loop {
        if check().await? {
            return Ok(());
        }
        backoff.wait().await;
    }
}

fn run<'a>(
    container: &'a Container,
    strategy: &'a WaitFor,
    pending: &'a Pending,
) -> Pin<Box<dyn Future<Output = std::result::Result<(), Stop>> + Send + 'a>> {
    Box::pin(async move {
        let step = match strategy {
            WaitFor::All(_) | WaitFor::Any(_) => None,
            other => Some(pending.start(other.describe())),
        };
        let result = match strategy {
            WaitFor::Log { pattern, source, times } => wait_log(container, pattern, *source, *times).await,
            WaitFor::Http { port, path, status, body } => {
                let addr = container.addr(port).map_err(Stop)?;
                until(|| async move {
                    Ok(match http_once(addr, path).await {
                        Ok((got, text)) => got == *status && body.as_ref().is_none_or(|b| text.contains(b.as_str())),
                        Err(_) => false,
                    })
                })
                .await
            }
            WaitFor::Healthy => {
                until(|| async move {
                    let info = container.runtime().inspect_container(container.id()).await.map_err(Stop)?;
                    match info.health {
                        Health::Healthy => Ok(true),
                        Health::Unhealthy => Err(Stop(
                            Error::new(ErrorKind::Exited, "the health check reports unhealthy")
                                .with_logs_tail(logs_tail(container.runtime().as_ref(), container.id(), 20).await),
                        )),
                        Health::None => Err(Stop(Error::invalid_input(
                            "waiting for healthy, but the container has no health check: give the image a HEALTHCHECK or the node `.healthcheck(...)`",
                        ))),
                        _ => Ok(false),
                    }
                })
                .await
            }
            WaitFor::Command(cmd) => {
                until(|| async move {
                    match container.exec(cmd.clone()).await {
                        Ok(out) => Ok(out.success()),
                        Err(e) if e.kind() == ErrorKind::Conflict => Ok(false),
                        Err(e) => Err(Stop(e)),
                    }
                })
                .await
            }
            WaitFor::Custom(_, check) => until(|| async move { check(container.clone()).await.map_err(Stop) }).await,
            WaitFor::All(list) => try_join_all(list.iter().map(|s| run(container, s, pending))).await.map(drop),
            WaitFor::Any(list) if list.is_empty() => Ok(()),
            WaitFor::Any(list) => select_ok(list.iter().map(|s| run(container, s, pending))).await.map(drop),
        };
        if let Some(step) = step {
            if result.is_ok() {
                pending.done(&step);
            }
        }
        result
    })
}

/// The last lines of `text` (a last line without a newline counts).
fn last_lines_of(text: &str, n: usize) -> &str {
    let body = text.strip_suffix('\n').unwrap_or(text);
    match body.rmatch_indices('\n').nth(n.saturating_sub(1)) {
        Some((i, _)) if n > 0 => &text[i + 1..],
        _ if n == 0 => "",
        _ => text,
    }
}

/// A container's output followed while it is awaited: when it exits, its last lines are
/// here already. (Docker answers questions about a container that just exited, its logs
/// included, only once it has cleaned up after it: ~100 ms on this project's machine.)
struct FollowedOutput {
    text: Vec<u8>,
    /// The engine ended the stream (the container stopped), rather than failing it.
    complete: bool,
}

impl FollowedOutput {
    const KEEP: usize = 64 * 1024;

    fn push(&mut self, bytes: &[u8]) {
        self.text.extend_from_slice(bytes);
        if self.text.len() > 2 * Self::KEEP {
            self.text.drain(..self.text.len() - Self::KEEP);
        }
    }

    fn tail(&self, lines: usize) -> String {
        last_lines_of(&String::from_utf8_lossy(&self.text), lines).to_owned()
    }
}

/// Whether `event` happened before `since` (nanoseconds): by its exact time, or for an engine
/// that stamps events to the second, in an earlier second.
fn before(event: &crate::runtime::Event, since: i128) -> bool {
    match (event.time_nanos, event.time_secs) {
        (Some(t), _) => t < since,
        (None, Some(s)) => i128::from(s) < since.div_euclid(1_000_000_000),
        (None, None) => false,
    }
}

/// How long after a container's output ended `died` waits for the engine's `die` event before
/// asking the engine itself.
const OUTPUT_END_GRACE: Duration = Duration::from_millis(200);

/// Resolves when the engine says the container died or was OOM-killed.
///
/// The engine's `die` event is the fast way. The end of the followed output is the other: an
/// event can be late or lost (Podman's event log loses its readers when it rotates), so when the
/// output ends and no event came within [`OUTPUT_END_GRACE`], the engine is asked.
async fn died(container: &Container) -> Error {
    let runtime = container.runtime().as_ref();
    let info = container.info();
    let filter = match info.labels.get(crate::labels::RUN) {
        Some(run) => LabelFilter::eq(crate::labels::RUN, run.clone()),
        None => LabelFilter::default(),
    };
    let waiting_since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX));
    let mut events = runtime.events(&filter);
    // Fused: a stream that ended may be polled again when a restarted container is awaited on.
    let mut logs = runtime.logs(container.id(), &LogsSpec { follow: true, ..LogsSpec::default() }).fuse();
    let mut output = FollowedOutput { text: Vec::new(), complete: false };
    let (mut following, mut watching) = (true, true);
    let mut ask_at: Option<tokio::time::Instant> = None;
    while following || watching || ask_at.is_some() {
        tokio::select! {
            chunk = logs.next(), if following => match chunk {
                Some(Ok(chunk)) => output.push(&chunk.bytes),
                Some(Err(_)) => following = false,
                None => {
                    following = false;
                    output.complete = true;
                    ask_at = Some(tokio::time::Instant::now() + OUTPUT_END_GRACE);
                }
            },
            () = tokio::time::sleep_until(ask_at.unwrap_or_else(tokio::time::Instant::now)), if ask_at.is_some() => {
                ask_at = None;
                match runtime.inspect_container(container.id()).await {
                    Ok(now) if matches!(now.status, ContainerStatus::Exited | ContainerStatus::Dead) => {
                        return exit_error(&now, "", Duration::ZERO, output.tail(20));
                    }
                    // Running again (a restart policy), or the stream ended for another reason.
                    Ok(_) => {}
                    Err(e) => return e,
                }
            }
            event = events.next(), if watching => match event {
                // The stream replays the current second: a die from before this wait (the stop
                // of a restart) is not this process's.
                Some(Ok(e)) if e.id == container.id() && e.action == EventAction::Die && before(&e, waiting_since) => {}
                Some(Ok(e)) if e.id == container.id() && e.action == EventAction::Die => {
                    // How it ended, from whichever answers first. With the event's exit code:
                    // the output followed to its end (Docker ends it a moment after the process
                    // but answers about a just-exited container only after its clean-up), or
                    // the last lines asked for (Podman answers those at once, but ends the
                    // output and answers an inspect only after its clean-up). Not for code 137
                    // (maybe an OOM kill, which only the state tells), nor for a container the
                    // engine restarts: the engine is asked for its state then.
                    let code = e.exit_code.filter(|c| *c != 137 && !info.restarts);
                    let ended = match code {
                        Some(code) => {
                            let followed = async {
                                let complete = if following {
                                    let rest = async {
                                        loop {
                                            match logs.next().await {
                                                Some(Ok(chunk)) => output.push(&chunk.bytes),
                                                Some(Err(_)) => return false,
                                                None => return true,
                                            }
                                        }
                                    };
                                    tokio::time::timeout(Duration::from_secs(1), rest).await.unwrap_or(false)
                                } else {
                                    output.complete
                                };
                                if complete { Some(output.tail(20)) } else { None }
                            };
                            let tail = tokio::select! {
                                Some(tail) = followed => tail,
                                tail = logs_tail(runtime, container.id(), 20) => tail,
                            };
                            Ok((code, tail))
                        }
                        None => Err(tokio::join!(
                            runtime.inspect_container(container.id()),
                            logs_tail(runtime, container.id(), 20)
                        )),
                    };
                    match ended {
                        Ok((code, tail)) => {
                            let mut exited = info.clone();
                            exited.status = ContainerStatus::Exited;
                            exited.exit_code = Some(code);
                            return exit_error(&exited, "", Duration::ZERO, tail);
                        }
                        Err((Ok(now), tail)) if matches!(now.status, ContainerStatus::Exited | ContainerStatus::Dead) => {
                            return exit_error(&now, "", Duration::ZERO, tail);
                        }
                        // Running again: the engine restarted it.
                        Err((Ok(_), _)) => {}
                        Err((Err(e), _)) => return e,
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "event stream ended; readiness falls back to the output and polling");
                    watching = false;
                }
                None => watching = false,
            },
        }
    }
    std::future::pending::<Error>().await
}

/// Waits until the container is ready by `readiness`, or fails when it stops or time runs out.
///
/// Returns the container as it is when ready.
pub(crate) async fn wait_ready(container: &Container, readiness: &Readiness) -> Result<ContainerInfo> {
    if readiness.completes {
        return wait_completed(container, readiness).await;
    }
    let runtime = container.runtime().as_ref();
    let id = container.id();
    let start = Instant::now();
    let pending = Pending::default();
    let checks = async {
        loop {
            let info = default_check(container, readiness, &pending).await.map_err(Stop)?;
            try_join_all(readiness.wait_for.iter().map(|s| run(container, s, &pending))).await?;
            // After strategies (a health check changes the state), look again; else what the
            // default check saw is current.
            let info =
                if readiness.wait_for.is_empty() { info } else { runtime.inspect_container(id).await.map_err(Stop)? };
            let step = pending.start("its main process to keep running".to_owned());
            match settle(container, &info, readiness.min_uptime).await.map_err(Stop)? {
                Settled::Ready => return Ok::<_, Stop>(info),
                Settled::Restarted => pending.done(&step),
            }
        }
    };
    let outcome = tokio::select! {
        r = checks => r.map_err(|Stop(e)| e),
        e = died(container) => Err(e),
        () = tokio::time::sleep(readiness.timeout) => {
            let waiting_for = pending.describe();
            return Err(Error::new(
                ErrorKind::Timeout,
                format!("container `{}` was not ready within {:.0}s", container.name(), readiness.timeout.as_secs_f64()),
            )
            .with_container(id.to_owned())
            .with_wait(waiting_for, start.elapsed())
            .with_logs_tail(logs_tail(runtime, id, 20).await)
            .with_hint("raise the fixture's `.timeout(...)` (or FIXTURE_TIMEOUT) if the service is slow to start, or check its logs (`docker logs`, or the test's output)"));
        }
    };
    match outcome {
        Ok(info) => {
            tracing::debug!(container_id = id, elapsed_ms = start.elapsed().as_millis() as u64, "container ready");
            Ok(info)
        }
        // Seen exited by any of the checks or by the engine: with code 0 it did its work.
        Err(e) if readiness.exit_ok && e.kind() == ErrorKind::Exited && e.exit_code() == Some(0) && !e.oom_killed() => {
            tracing::debug!(container_id = id, "container finished with code 0 while awaited: done");
            runtime.inspect_container(id).await
        }
        Err(e) => {
            let waiting = pending.describe();
            Err(if e.kind() == ErrorKind::Exited { e.with_wait(waiting, start.elapsed()) } else { e })
        }
    }
}

/// Waits until a container that runs to completion has exited 0.
async fn wait_completed(container: &Container, readiness: &Readiness) -> Result<ContainerInfo> {
    let runtime = container.runtime().as_ref();
    let id = container.id();
    let start = Instant::now();
    let waiting_for = "its main process to exit 0 (it runs to completion)";
    tokio::select! {
        e = died(container) => {
            if e.kind() == ErrorKind::Exited && e.exit_code() == Some(0) && !e.oom_killed() {
                tracing::debug!(container_id = id, elapsed_ms = start.elapsed().as_millis() as u64, "container completed");
                return runtime.inspect_container(id).await;
            }
            let how = match (e.exit_code(), e.oom_killed()) {
                (_, true) => "was killed for lack of memory (OOM)".to_owned(),
                (Some(code), false) => format!("exited with code {code}"),
                (None, false) => return Err(e),
            };
            let mut err = Error::new(
                ErrorKind::Exited,
                format!("container `{}` {how}; it must complete successfully (exit 0)", container.name()),
            )
            .with_container(id.to_owned())
            .with_wait(waiting_for, start.elapsed())
            .with_exit(e.exit_code(), e.oom_killed());
            if let Some(logs) = e.logs_tail() {
                err = err.with_logs_tail(logs.to_owned());
            }
            Err(err)
        }
        () = tokio::time::sleep(readiness.timeout) => Err(Error::new(
            ErrorKind::Timeout,
            format!("container `{}` did not complete within {:.0}s", container.name(), readiness.timeout.as_secs_f64()),
        )
        .with_container(id.to_owned())
        .with_wait(waiting_for, start.elapsed())
        .with_logs_tail(logs_tail(runtime, id, 20).await)
        .with_hint("raise the fixture's `.timeout(...)` (or FIXTURE_TIMEOUT) if the job is slow, or check its logs")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:0035 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1
";

    #[test]
    fn last_lines_are_cut_from_followed_output() {
        assert_eq!(last_lines_of("a\nb\nc\n", 2), "b\nc\n");
        assert_eq!(last_lines_of("a\nb\nc", 2), "b\nc");
        assert_eq!(last_lines_of("a\nb\n", 5), "a\nb\n");
        assert_eq!(last_lines_of("a\n", 0), "");
        let mut out = FollowedOutput { text: Vec::new(), complete: true };
        for i in 0..20_000 {
            out.push(format!("line {i}\n").as_bytes());
        }
        assert!(out.text.len() <= 2 * FollowedOutput::KEEP, "bounded");
        assert_eq!(out.tail(2), "line 19998\nline 19999\n");
    }

    #[test]
    fn die_events_from_before_a_wait_are_told_apart() {
        let event = |nanos: Option<i128>, secs: Option<i64>| crate::runtime::Event {
            action: crate::runtime::EventAction::Die,
            time_nanos: nanos,
            time_secs: secs,
            ..Default::default()
        };
        let since = 1_796_212_323_500_000_000_i128;
        assert!(before(&event(Some(since - 1), Some(1_796_212_323)), since), "a nanosecond before");
        assert!(!before(&event(Some(since + 1), Some(1_796_212_323)), since), "a nanosecond after");
        // Stamped to the second (Podman): only an earlier second is surely before.
        assert!(!before(&event(None, Some(1_796_212_323)), since), "the same second may be after");
        assert!(before(&event(None, Some(1_796_212_322)), since));
        assert!(!before(&event(None, None), since), "no time: taken as this wait's");
    }

    #[test]
    fn engine_times_and_states_are_read() {
        assert_eq!(rfc3339_seconds("1970-01-01T00:00:01.5Z"), Some(1.5));
        assert_eq!(rfc3339_seconds("2026-12-02T11:52:03.25Z"), Some(1_796_212_323.25));
        assert_eq!(rfc3339_seconds("2026-12-02T12:52:03.25+01:00"), Some(1_796_212_323.25));
        assert_eq!(rfc3339_seconds("2026-12-02T10:52:03.25-01:00"), Some(1_796_212_323.25));
        assert_eq!(rfc3339_seconds("yesterday"), None);
        let mut info = ContainerInfo {
            status: ContainerStatus::Exited,
            exit_code: Some(3),
            finished_at: Some("2026-12-02T11:52:03.25Z".to_owned()),
            ..ContainerInfo::default()
        };
        assert_eq!(describe_state(&info), "exited with code 3 at 2026-12-02T11:52:03.25Z");
        info.oom_killed = true;
        info.exit_code = Some(137);
        assert_eq!(describe_state(&info), "OOM-killed (exit code 137) at 2026-12-02T11:52:03.25Z");
        info.status = ContainerStatus::Running;
        assert_eq!(describe_state(&info), "running");
        info.raw = serde_json::json!({"HostConfig": {"NetworkMode": "fx-net-1"}});
        assert_eq!(describe_state(&info), "running, on no network");
        info.raw = serde_json::json!({"HostConfig": {"NetworkMode": "none"}});
        assert_eq!(describe_state(&info), "running");
        info.status = ContainerStatus::Restarting;
        assert!(describe_state(&info).starts_with("restarting"));
    }

    #[test]
    fn process_states_are_read() {
        let line = |name: &str, state: &str| {
            format!(
                "4242 ({name}) {state} 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 2473984 1 18446744073709551615"
            )
        };
        assert_eq!(parse_stat(&line("test-services", "S")), Process::Waiting("test-services".into(), 987_654));
        assert_eq!(parse_stat(&line("sh", "R")), Process::Busy);
        assert_eq!(parse_stat(&line("sh", "D")), Process::Busy);
        assert_eq!(parse_stat(&line("sh", "Z")), Process::Gone);
        assert_eq!(parse_stat(&line("runc:[2:INIT]", "S")), Process::Busy, "the runtime's init is not the program yet");
        assert_eq!(
            parse_stat(&line("a (b) c", "S")),
            Process::Waiting("a (b) c".into(), 987_654),
            "names with parentheses"
        );
        assert_eq!(parse_stat("garbage"), Process::Gone);
    }

    #[test]
    fn proc_tables_are_read() {
        assert!(proc_table_has(TCP, 8080, "0A"), "8080 listens");
        assert!(!proc_table_has(TCP, 53, "0A"), "53 is an established socket, not a listener");
        assert!(!proc_table_has(TCP, 9000, "0A"));
        assert!(!proc_table_has("header only\n", 8080, "0A"));
    }

    #[test]
    fn strategies_describe_themselves() {
        let s = WaitFor::all([
            WaitFor::log_on("ready (\\d+)", LogSource::Stderr, 2).expect("regex"),
            WaitFor::any([WaitFor::http("8080/tcp", "/health", 200), WaitFor::Healthy]),
            WaitFor::command(["pg_isready"]),
        ]);
        assert_eq!(
            s.describe(),
            "a log line matching /ready (\\d+)/ on stderr 2 times and any of (GET /health on 8080/tcp to answer 200, \
             the health check to report healthy) and [\"pg_isready\"] to exit 0"
        );
        let err = WaitFor::log("(unclosed").expect_err("bad regex");
        assert_eq!(err.to_string(), "`(unclosed` is not a regular expression");
    }

    #[test]
    fn backoff_grows_and_caps() {
        let mut b = Backoff::new();
        let mut seen = Vec::new();
        for _ in 0..12 {
            seen.push(b.0.as_millis());
            b.0 = (b.0 * 3 / 2).min(b.1);
        }
        assert_eq!(seen[0], 2);
        assert!(seen.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(*seen.last().expect("some"), 25);
    }
}
