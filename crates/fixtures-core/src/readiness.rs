//! Waiting until a container is ready, and failing fast when it never will be.
//!
//! The default check needs nothing inside the image (it works for `FROM
//! scratch`): the container is running, has an address on each of its networks,
//! and every published port is listening. Listening is read from the
//! container's own network namespace (`/proc/<pid>/net/tcp` and friends) when
//! the engine runs on this machine, which sees a socket the moment it listens;
//! otherwise it connects to the container's address.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use crate::error::{Error, ErrorKind, Result};
use crate::handle::Container;
use crate::runtime::{ContainerInfo, ContainerStatus, Runtime};
use crate::spec::{LogsSpec, Port, Protocol};

/// Default time a container has to become ready.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Lines of logs kept in errors.
pub const DEFAULT_LOG_TAIL: usize = 100;

/// A user's readiness check: called until it returns `Ok(true)`.
pub type ReadyFn =
    Arc<dyn Fn(Container) -> Pin<Box<dyn Future<Output = Result<bool>> + Send>> + Send + Sync>;

/// How a container is judged ready.
#[derive(Clone)]
#[non_exhaustive]
pub struct Readiness {
    /// How long it may take.
    pub timeout: Duration,
    /// Check that each published port listens (default true).
    pub ports: bool,
    /// Ports to await besides the published ones (exposed on the container's networks).
    pub expose: Vec<Port>,
    /// Extra checks, all of which must pass after the default ones.
    pub checks: Vec<(String, ReadyFn)>,
}

impl Default for Readiness {
    fn default() -> Self {
        Readiness { timeout: DEFAULT_TIMEOUT, ports: true, expose: Vec::new(), checks: Vec::new() }
    }
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readiness")
            .field("timeout", &self.timeout)
            .field("ports", &self.ports)
            .field("expose", &self.expose)
            .field("checks", &self.checks.iter().map(|(n, _)| n).collect::<Vec<_>>())
            .finish()
    }
}

/// Growing pause between polls: starts at 2 ms, never above 25 ms.
#[derive(Debug)]
pub(crate) struct Backoff(Duration);

impl Backoff {
    pub(crate) fn new() -> Self {
        Backoff(Duration::from_millis(2))
    }

    pub(crate) async fn wait(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 3 / 2).min(Duration::from_millis(25));
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
        .with_logs_tail(logs_tail(runtime, &info.id, 20).await);
    if let Some(engine_error) = &info.error {
        err = err.with_hint(format!("the engine says: {engine_error}"));
    }
    err
}

/// Where to look for a container's sockets.
enum Probe {
    /// `/proc/<pid>/net`, in the container's network namespace.
    Proc(u32),
    /// Connect to the container's address.
    Connect(Option<IpAddr>),
}

fn probe_for(runtime: &dyn Runtime, info: &ContainerInfo) -> Probe {
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

/// Waits until the container `id` is ready by `readiness`, or fails when it stops or time runs out.
///
/// Returns the container as it is when ready.
pub(crate) async fn wait_ready(container: &Container, readiness: &Readiness) -> Result<ContainerInfo> {
    let runtime = container.runtime().as_ref();
    let id = container.id();
    let start = Instant::now();
    let deadline = start + readiness.timeout;
    let mut backoff = Backoff::new();
    let mut waiting_for = "the container to run".to_owned();

    let timeout = |waiting_for: &str| {
        let waiting_for = waiting_for.to_owned();
        async move {
            Error::new(
                ErrorKind::Timeout,
                format!(
                    "container `{}` was not ready within {:.0}s",
                    container.name(),
                    readiness.timeout.as_secs_f64()
                ),
            )
            .with_container(id.to_owned())
            .with_wait(waiting_for, start.elapsed())
            .with_logs_tail(logs_tail(runtime, id, 20).await)
            .with_hint("raise the fixture's timeout if the service is slow to start, or check its logs above")
        }
    };

    // Running, with an address on each network.
    let info = loop {
        let info = runtime.inspect_container(id).await?;
        match info.status {
            ContainerStatus::Running => {
                let missing = info.networks.values().find(|n| n.ipv4.is_none() && n.ipv6.is_none());
                match missing {
                    None => break info,
                    Some(n) => waiting_for = format!("an address on network `{}`", n.network),
                }
            }
            ContainerStatus::Exited | ContainerStatus::Dead => {
                return Err(exited_error(runtime, &info, &waiting_for, start.elapsed()).await);
            }
            _ => {}
        }
        if Instant::now() >= deadline {
            return Err(timeout(&waiting_for).await);
        }
        backoff.wait().await;
    };

    // Every published port listening.
    if readiness.ports {
        let probe = probe_for(runtime, &info);
        let mut ports: Vec<Port> = info.ports.keys().copied().collect();
        ports.extend(readiness.expose.iter().filter(|p| !info.ports.contains_key(p)));
        let mut backoff = Backoff::new();
        while let Some(&port) = ports.first() {
            waiting_for = format!("port {port} to listen");
            let listening = match &probe {
                Probe::Proc(pid) => proc_listening(*pid, port),
                Probe::Connect(Some(ip)) => Some(connect_listening(*ip, port).await),
                Probe::Connect(None) => Some(true),
            };
            match listening {
                Some(true) => {
                    ports.remove(0);
                    continue;
                }
                Some(false) => {}
                None => {
                    // The process is gone: say how it ended.
                    let now = runtime.inspect_container(id).await?;
                    if now.status != ContainerStatus::Running {
                        return Err(exited_error(runtime, &now, &waiting_for, start.elapsed()).await);
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(timeout(&waiting_for).await);
            }
            backoff.wait().await;
        }
    }

    // The user's checks.
    for (name, check) in &readiness.checks {
        waiting_for = format!("check `{name}`");
        let mut backoff = Backoff::new();
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(remaining, check(container.clone())).await {
                Ok(Ok(true)) => break,
                Ok(Ok(false)) => {}
                Ok(Err(e)) => return Err(e.with_wait(waiting_for, start.elapsed())),
                Err(_) => return Err(timeout(&waiting_for).await),
            }
            let now = runtime.inspect_container(id).await?;
            if matches!(now.status, ContainerStatus::Exited | ContainerStatus::Dead) {
                return Err(exited_error(runtime, &now, &waiting_for, start.elapsed()).await);
            }
            if Instant::now() >= deadline {
                return Err(timeout(&waiting_for).await);
            }
            backoff.wait().await;
        }
    }
    tracing::debug!(container_id = id, elapsed_ms = start.elapsed().as_millis() as u64, "container ready");
    runtime.inspect_container(id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:0035 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1
";

    #[test]
    fn proc_tables_are_read() {
        assert!(proc_table_has(TCP, 8080, "0A"), "8080 listens");
        assert!(!proc_table_has(TCP, 53, "0A"), "53 is an established socket, not a listener");
        assert!(!proc_table_has(TCP, 9000, "0A"));
        assert!(!proc_table_has("header only\n", 8080, "0A"));
    }
}
