//! Reaching an engine where its host says: a local socket or plain TCP as they are, an engine
//! that speaks TLS or sits behind ssh through a tunnel this library owns.
//!
//! Both backends' clients speak only HTTP over a unix socket or plain TCP. An engine that
//! needs more is given to them as a unix socket of this process's own, so every request of
//! either backend (documents read raw, hijacked attach streams, BuildKit's session, events)
//! goes the same way:
//!
//! - `tcp://host:port` with TLS verification on (`tls_verify`, else `DOCKER_TLS_VERIFY`): a
//!   thread of its own accepts on the socket and forwards each connection over TLS with the
//!   client certificate of `cert_path` (else `DOCKER_CERT_PATH`, else `~/.docker`). The files
//!   are read, and one request is sent through, before the engine is called connected: a
//!   missing or unreadable file, a certificate the engine refuses, an engine the CA does not
//!   vouch for, each is an error that names the file. Needs the `tls` feature.
//! - `ssh://user@host[:port][/path/to/engine.sock]`: the ssh client (`ssh_command`, else
//!   `ssh`: its keys from the agent and `~/.ssh` as always) forwards the socket to the
//!   engine's (the backend's usual path when none is given).
//!
//! A remote engine's published ports are reached at its host's address ([`Reach::remote`]).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};

use fixtures_core::{Error, ErrorKind, Result};

/// Where a backend's client connects, and where the engine is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reach {
    /// What the client connects to.
    pub via: Via,
    /// The engine's host when it is not this machine: its published ports are reached there.
    pub remote: Option<IpAddr>,
}

impl Reach {
    /// The engine's own unix socket when the engine is on this machine (not a tunnel's, not
    /// TCP): what can be read about it locally (see [`crate::local`]).
    pub fn local_socket(&self) -> Option<&str> {
        match &self.via {
            Via::Unix(path) if self.remote.is_none() => Some(path),
            _ => None,
        }
    }
}

/// What a client connects to: a unix socket (the engine's own or a tunnel's) or plain TCP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// A unix socket's path.
    Unix(String),
    /// `host:port`, plain HTTP.
    Tcp(String),
}

/// How to reach engines that need more than a socket: read from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// TLS with a client certificate for `tcp://` hosts.
    pub tls_verify: bool,
    /// The folder of `ca.pem`, `cert.pem`, `key.pem`.
    pub cert_path: PathBuf,
    /// The ssh client and its options.
    pub ssh_command: Vec<String>,
    /// The engine's socket on an ssh host whose URL names none.
    pub ssh_socket: &'static str,
}

impl Settings {
    /// The configuration's keys, else Docker's variables (`DOCKER_TLS_VERIFY`,
    /// `DOCKER_CERT_PATH`), else the defaults; `ssh_socket` for an `ssh://` host without a path.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when the configuration cannot be read.
    pub fn from_config(ssh_socket: &'static str) -> Result<Settings> {
        let config = fixtures_core::config::current()?;
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let tls_verify = config.tls_verify.unwrap_or_else(|| env("DOCKER_TLS_VERIFY").is_some());
        let cert_path = config
            .cert_path
            .clone()
            .or_else(|| env("DOCKER_CERT_PATH"))
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".docker"));
        let ssh = config.ssh_command.clone().unwrap_or_else(|| "ssh".to_owned());
        let ssh_command = ssh.split_whitespace().map(str::to_owned).collect();
        Ok(Settings { tls_verify, cert_path, ssh_command, ssh_socket })
    }
}

/// Tunnels made by this process, by host: one per engine, kept for the process's life.
static REACHED: LazyLock<Mutex<std::collections::HashMap<String, Reach>>> = LazyLock::new(Default::default);

/// How to reach the engine at `host` (`unix:///path`, `/path`, `tcp://host:port`,
/// `http://host:port`, `ssh://user@host[:port][/socket]`), making the tunnel it needs once
/// per process. `runtime` names the backend in errors.
///
/// # Errors
/// [`ErrorKind::Config`] for a host or certificate that cannot be used, naming what to fix;
/// [`ErrorKind::Unreachable`] when the tunnel cannot be made (ssh refused, nothing listens).
pub async fn reach(host: &str, settings: &Settings, runtime: &'static str) -> Result<Reach> {
    if let Some(found) = REACHED.lock().unwrap_or_else(|p| p.into_inner()).get(host) {
        return Ok(found.clone());
    }
    let unsupported = || {
        Error::new(
            ErrorKind::Config,
            format!(
                "engine host `{host}` is not supported: use unix:///path/to/socket, tcp://host:port or \
                 ssh://user@host[:port][/path/to/socket]"
            ),
        )
        .with_runtime(runtime)
    };
    let reach = if let Some(path) = host.strip_prefix("unix://") {
        Reach { via: Via::Unix(path.to_owned()), remote: None }
    } else if host.starts_with('/') {
        Reach { via: Via::Unix(host.to_owned()), remote: None }
    } else if let Some(rest) = host.strip_prefix("tcp://").or_else(|| host.strip_prefix("http://")) {
        let authority = rest.trim_end_matches('/');
        let (name, _) = split_port(authority).ok_or_else(unsupported)?;
        let remote = Some(address_of(name, host, runtime).await?);
        if settings.tls_verify && host.starts_with("tcp://") {
            let local = tls::front(authority, name, &settings.cert_path, runtime).await?;
            Reach { via: Via::Unix(local), remote }
        } else {
            Reach { via: Via::Tcp(authority.to_owned()), remote }
        }
    } else if let Some(rest) = host.strip_prefix("ssh://") {
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, settings.ssh_socket),
        };
        let (user_host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if p.parse::<u16>().is_ok() => (h, Some(p)),
            _ => (authority, None),
        };
        let name = user_host.rsplit_once('@').map_or(user_host, |(_, h)| h);
        if name.is_empty() {
            return Err(unsupported());
        }
        let remote = Some(address_of(name, host, runtime).await?);
        let local = ssh::tunnel(&settings.ssh_command, user_host, port, path, host, runtime).await?;
        Reach { via: Via::Unix(local), remote }
    } else {
        return Err(unsupported());
    };
    Ok(REACHED.lock().unwrap_or_else(|p| p.into_inner()).entry(host.to_owned()).or_insert(reach).clone())
}

/// `host:port` (or `[v6]:port`) apart.
fn split_port(authority: &str) -> Option<(&str, u16)> {
    let (name, port) = authority.rsplit_once(':')?;
    let name = name.trim_start_matches('[').trim_end_matches(']');
    Some((name, port.parse().ok()?)).filter(|(n, _)| !n.is_empty())
}

/// The address of the engine's host, an IPv4 one when it has both.
async fn address_of(name: &str, host: &str, runtime: &'static str) -> Result<IpAddr> {
    if let Ok(ip) = name.parse() {
        return Ok(ip);
    }
    let found: Vec<IpAddr> = tokio::net::lookup_host((name, 0))
        .await
        .map_err(|e| {
            Error::new(
                ErrorKind::Unreachable,
                format!("the engine's host `{name}` (of `{host}`) cannot be resolved: {e}"),
            )
            .with_operation("connect")
            .with_runtime(runtime)
        })?
        .map(|a| a.ip())
        .collect();
    found.iter().find(|ip| ip.is_ipv4()).or(found.first()).copied().ok_or_else(|| {
        Error::new(ErrorKind::Unreachable, format!("the engine's host `{name}` (of `{host}`) has no address"))
            .with_runtime(runtime)
    })
}

/// A fresh path for a tunnel's socket, in a folder only this user can read; sockets of
/// processes that are gone are removed on the way.
fn socket_path(kind: &str) -> Result<PathBuf> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    let dir = std::env::temp_dir().join(format!("fixtures-tunnels-{uid}"));
    std::fs::create_dir_all(&dir).map_err(|e| Error::from(e).with_operation(format!("create {}", dir.display())))?;
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let pid = name.to_string_lossy().split('-').next().and_then(|p| p.parse::<i32>().ok());
            // SAFETY: signal 0 only asks whether the process exists.
            if pid.is_some_and(|pid| unsafe { libc::kill(pid, 0) } != 0) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    Ok(dir.join(format!("{}-{kind}-{n}.sock", std::process::id())))
}

mod ssh {
    use super::*;
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    /// How long ssh has to log in and open the forward.
    const LOGIN: Duration = Duration::from_secs(20);

    /// Runs `ssh -N -L <local socket>:<engine socket> user@host` for this process's life and
    /// returns the local socket once it answers.
    pub(super) async fn tunnel(
        command: &[String],
        user_host: &str,
        port: Option<&str>,
        engine_socket: &str,
        host: &str,
        runtime: &'static str,
    ) -> Result<String> {
        let local = socket_path("ssh")?;
        let program = command.first().map_or("ssh", String::as_str);
        let mut cmd = Command::new(program);
        cmd.args(command.iter().skip(1))
            .args(["-N", "-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes", "-o", "StreamLocalBindUnlink=yes"])
            .args(["-o", "ServerAliveInterval=15", "-L"])
            .arg(format!("{}:{engine_socket}", local.display()));
        if let Some(port) = port {
            cmd.args(["-p", port]);
        }
        cmd.arg(user_host).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        // Its own process group, so Ctrl-C reaches the tests' clean-up before it; and it ends
        // with this process, however this process ends.
        cmd.process_group(0);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let failed = |what: String| {
            Error::new(ErrorKind::Unreachable, format!("the ssh tunnel to `{host}` {what}"))
                .with_operation("connect")
                .with_runtime(runtime)
                .with_hint(format!(
                    "check that `{} {user_host}` logs in without a prompt (keys from ssh-agent or ~/.ssh; \
                     ssh_command / FIXTURE_SSH_COMMAND for other options) and that the engine's socket is at \
                     {engine_socket} there",
                    command.join(" ")
                ))
        };
        let mut child = cmd.spawn().map_err(|e| failed(format!("cannot start `{program}`: {e}")))?;
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let mut said = String::new();
                if let Some(mut stderr) = child.stderr.take() {
                    let _ = stderr.read_to_string(&mut said);
                }
                let said = said.trim().lines().last().unwrap_or("").to_owned();
                return Err(failed(format!("ended ({status}): {said}")));
            }
            if tokio::net::UnixStream::connect(&local).await.is_ok() {
                break;
            }
            if started.elapsed() > LOGIN {
                let _ = child.kill();
                let _ = child.wait();
                return Err(failed(format!("was not open after {}s", LOGIN.as_secs())));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        // Reaped whenever it ends; its stderr drained so it never blocks on a full pipe.
        let stderr = child.stderr.take();
        std::thread::spawn(move || {
            if let Some(mut stderr) = stderr {
                let _ = std::io::copy(&mut stderr, &mut std::io::sink());
            }
            let _ = child.wait();
        });
        Ok(local.to_string_lossy().into_owned())
    }
}

#[cfg(not(feature = "tls"))]
mod tls {
    use super::*;

    pub(super) async fn front(_: &str, _: &str, _: &Path, runtime: &'static str) -> Result<String> {
        Err(Error::new(ErrorKind::Config, "this engine is to be reached over TLS, which is not compiled in")
            .with_runtime(runtime)
            .with_hint("turn on the `tls` feature of `fixtures`, or unset DOCKER_TLS_VERIFY / tls_verify"))
    }
}

#[cfg(feature = "tls")]
mod tls {
    use super::*;
    use std::sync::Arc;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// How the certificates of one engine are used.
    struct Target {
        authority: String,
        name: ServerName<'static>,
        connector: tokio_rustls::TlsConnector,
    }

    impl Target {
        async fn connect(&self) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
            let tcp = tokio::net::TcpStream::connect(&self.authority).await?;
            tcp.set_nodelay(true)?;
            self.connector.connect(self.name.clone(), tcp).await
        }
    }

    fn bad_file(path: &Path, what: &str, runtime: &'static str) -> Error {
        Error::new(ErrorKind::Config, format!("TLS: `{}` {what}", path.display()))
            .with_operation("connect")
            .with_runtime(runtime)
            .with_hint(
                "cert_path / FIXTURE_CERT_PATH / DOCKER_CERT_PATH names the folder of ca.pem (the CA that signed \
                 the engine's certificate), cert.pem and key.pem (this client's)",
            )
    }

    fn read_certs(path: &Path, runtime: &'static str) -> Result<Vec<CertificateDer<'static>>> {
        if !path.is_file() {
            return Err(bad_file(path, "is missing", runtime));
        }
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|found| found.collect::<std::result::Result<Vec<_>, _>>())
            .map_err(|e| bad_file(path, &format!("cannot be read as PEM certificates: {e}"), runtime))?;
        if certs.is_empty() {
            return Err(bad_file(path, "holds no certificate", runtime));
        }
        Ok(certs)
    }

    fn config(dir: &Path, runtime: &'static str) -> Result<rustls::ClientConfig> {
        let (ca, cert, key) = (dir.join("ca.pem"), dir.join("cert.pem"), dir.join("key.pem"));
        let mut roots = rustls::RootCertStore::empty();
        for found in read_certs(&ca, runtime)? {
            roots
                .add(found)
                .map_err(|e| bad_file(&ca, &format!("holds a CA certificate that is not usable: {e}"), runtime))?;
        }
        let chain = read_certs(&cert, runtime)?;
        if !key.is_file() {
            return Err(bad_file(&key, "is missing", runtime));
        }
        let private = PrivateKeyDer::from_pem_file(&key)
            .map_err(|e| bad_file(&key, &format!("cannot be read as a PEM private key: {e}"), runtime))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::new(ErrorKind::Config, format!("TLS: {e}")).with_runtime(runtime))?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, private)
            .map_err(|e| bad_file(&key, &format!("does not fit the certificate in cert.pem: {e}"), runtime))?;
        // Every connection makes a full handshake: fronts built on OpenSSL that ask for a client
        // certificate (socat, stunnel set up without a session id context) answer a resumed
        // session with an internal error. A handshake costs about a millisecond.
        config.resumption = rustls::client::Resumption::disabled();
        Ok(config)
    }

    /// What a failed first request says, naming the file to look at.
    fn refused(e: &std::io::Error, dir: &Path, host: &str, runtime: &'static str) -> Error {
        let text = e.to_string();
        let lower = text.to_ascii_lowercase();
        let (kind, message) = if lower.contains("unknownissuer")
            || lower.contains("unknown issuer")
            || lower.contains("notvalidforname")
            || lower.contains("not valid for name")
            || lower.contains("expired")
            || lower.contains("badsignature")
        {
            (
                ErrorKind::Config,
                format!(
                    "TLS: the engine's certificate is not one `{}` vouches for at `{host}` ({text})",
                    dir.join("ca.pem").display()
                ),
            )
        } else if lower.contains("alert") || lower.contains("certificate") {
            (
                ErrorKind::Config,
                format!(
                    "TLS: the engine at `{host}` refused the client certificate `{}` ({text})",
                    dir.join("cert.pem").display()
                ),
            )
        } else if e.kind() == std::io::ErrorKind::ConnectionRefused {
            (
                ErrorKind::Unreachable,
                format!("nothing listens at `{host}` (connection refused): is the engine running?"),
            )
        } else {
            (ErrorKind::Unreachable, format!("TLS to `{host}` failed: {text}"))
        };
        let error = Error::new(kind, message).with_operation("connect").with_runtime(runtime);
        if kind == ErrorKind::Config {
            error.with_hint(
                "ca.pem must be the CA that signed the engine's certificate (for this host name or address), and \
                 cert.pem/key.pem a client certificate signed by the CA the engine trusts",
            )
        } else {
            error
        }
    }

    /// A `GET /_ping` through the tunnel's TLS, read to its first bytes: a client certificate
    /// the engine refuses shows only when it answers (TLS 1.3 sends the refusal after the
    /// handshake).
    async fn ping(target: &Target) -> std::io::Result<()> {
        let mut tls = target.connect().await?;
        let request = format!("GET /_ping HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", target.authority);
        tls.write_all(request.as_bytes()).await?;
        let mut first = [0u8; 12];
        let n = tls.read(&mut first).await?;
        if n == 0 || !first.starts_with(b"HTTP/") {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the engine closed the connection"));
        }
        Ok(())
    }

    /// Serves a unix socket that forwards every connection to `authority` over TLS.
    pub(super) async fn front(authority: &str, name: &str, dir: &Path, runtime: &'static str) -> Result<String> {
        let host = format!("tcp://{authority}");
        let config = config(dir, runtime)?;
        let name = ServerName::try_from(name.to_owned()).map_err(|e| {
            Error::new(ErrorKind::Config, format!("TLS: `{name}` is not a host name: {e}")).with_runtime(runtime)
        })?;
        let target = Arc::new(Target {
            authority: authority.to_owned(),
            name,
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
        });
        ping(&target).await.map_err(|e| refused(&e, dir, &host, runtime))?;
        let path = socket_path("tls")?;
        let listener = std::os::unix::net::UnixListener::bind(&path)
            .map_err(|e| Error::from(e).with_operation(format!("listen on {}", path.display())))?;
        listener.set_nonblocking(true)?;
        // A thread and runtime of its own: the tunnel outlives whichever runtime connected
        // (the watcher's, a test's), and serves the exit hook's clean-up.
        std::thread::Builder::new()
            .name("fixtures-tls".to_owned())
            .spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
                rt.block_on(async move {
                    let Ok(listener) = tokio::net::UnixListener::from_std(listener) else { return };
                    while let Ok((mut local, _)) = listener.accept().await {
                        let target = target.clone();
                        tokio::spawn(async move {
                            match target.connect().await {
                                Ok(mut tls) => {
                                    let _ = tokio::io::copy_bidirectional(&mut local, &mut tls).await;
                                }
                                Err(e) => tracing::debug!(error = %e, "TLS to the engine failed"),
                            }
                        });
                    }
                });
            })
            .map_err(|e| Error::from(e).with_operation("start the TLS tunnel"))?;
        Ok(path.to_string_lossy().into_owned())
    }
}

/// How long an engine that took the connection may take to answer a ping: the one request that
/// every engine answers at once, busy or not (Podman answers `/version` and `/info` only once it
/// has its runtime's locks, which takes seconds under load). Past it the engine is hung.
pub const PING_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// `ping` (the engine's `/_ping`), given [`PING_LIMIT`] to answer.
///
/// # Errors
/// What `ping` answers; [`ErrorKind::Engine`] naming the wait when it does not answer in time.
pub async fn ping_within<T>(ping: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    match tokio::time::timeout(PING_LIMIT, ping).await {
        Ok(answer) => answer,
        Err(_) => Err(Error::new(
            ErrorKind::Engine,
            format!("the engine took the connection but did not answer a ping within {} s", PING_LIMIT.as_secs()),
        )
        .with_operation("connect")
        .with_hint("is it hung? Check DOCKER_HOST / CONTAINER_HOST point at the engine you mean")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_are_split() {
        assert_eq!(split_port("10.0.0.5:2376"), Some(("10.0.0.5", 2376)));
        assert_eq!(split_port("[::1]:2376"), Some(("::1", 2376)));
        assert_eq!(split_port("engine"), None);
        assert_eq!(split_port(":2376"), None);
    }

    #[tokio::test]
    async fn hosts_are_read_or_refused_by_name() {
        let settings =
            Settings { tls_verify: false, cert_path: PathBuf::new(), ssh_command: vec![], ssh_socket: "/s.sock" };
        let local = reach("unix:///x.sock", &settings, "docker").await.expect("a socket");
        assert_eq!(local, Reach { via: Via::Unix("/x.sock".to_owned()), remote: None });
        let tcp = reach("tcp://127.0.0.9:2375", &settings, "docker").await.expect("plain tcp");
        assert_eq!(tcp.via, Via::Tcp("127.0.0.9:2375".to_owned()));
        assert_eq!(tcp.remote, Some("127.0.0.9".parse().expect("ip")));
        let err = reach("npipe:////./pipe/docker", &settings, "docker").await.expect_err("not ours");
        assert!(err.to_string().contains("ssh://user@host[:port][/path/to/socket]"), "{err}");
    }
}
