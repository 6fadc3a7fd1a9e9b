//! S9: an engine on another host, on loopback. The engine of the bench behind a TLS front
//! (socat, a client certificate required) and behind sshd, as `tests/remote.rs` makes them:
//!
//! - one test (start the echo service, talk to it, tear down) with the engine reached by its
//!   local socket, through the TLS front and over ssh, interleaved;
//! - a 24 MB build context (source-like text) sent through the TLS front over a link held to
//!   100 Mbit/s (a proxy of the bench's own), as a plain tar and gzip-compressed.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use fixtures_core::spec::{BuildContext, BuildSpec};
use fixtures_core::{Backend, Env, Runtime, container, image};
use test_support::remote::Fronts;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{Row, SERVICES, ms, on_podman};

static TLS_HOST: OnceLock<String> = OnceLock::new();
static SSH_HOST: OnceLock<String> = OnceLock::new();

type Connecting = Pin<Box<dyn Future<Output = fixtures_core::Result<Arc<dyn Runtime>>> + Send>>;

fn connect(host: &'static str) -> Connecting {
    Box::pin(async move {
        Ok(if on_podman() {
            Arc::new(fixtures_podman::PodmanRuntime::connect_to(host).await?) as Arc<dyn Runtime>
        } else {
            Arc::new(fixtures_docker::DockerRuntime::connect_to(host).await?) as Arc<dyn Runtime>
        })
    })
}

fn connect_tls() -> Connecting {
    connect(TLS_HOST.get().expect("the TLS front"))
}

fn connect_ssh() -> Connecting {
    connect(SSH_HOST.get().expect("the ssh server"))
}

/// Starts the fronts before the bench engine's socket and points this process's configuration
/// at their certificates and ssh options. Call before anything reads the configuration.
pub(crate) fn start() -> Fronts {
    let socket = if on_podman() { "/run/podman/podman.sock".to_owned() } else { crate::docker_host() };
    let fronts = Fronts::start(socket.trim_start_matches("unix://"));
    let _ = TLS_HOST.set(fronts.tls_host.clone());
    let _ = SSH_HOST.set(fronts.ssh_host.clone());
    let runtime = if on_podman() { "podman" } else { "docker" };
    for (key, value) in fronts.tls_env(runtime).into_iter().chain(fronts.ssh_env(runtime)) {
        if key.ends_with("_HOST") {
            continue;
        }
        // SAFETY: set before the configuration is first read, by the bench's own main, while
        // no other thread of the bench reads the environment.
        unsafe { std::env::set_var(key, value) };
    }
    fronts
}

fn env_on(backend: Backend) -> Env {
    Env::new()
        .backend(backend)
        .with("services", image(SERVICES))
        .with("echo", container().image("{services.id}").command(["echo"]).port("7000/tcp"))
}

async fn one_test(env: &Env) -> f64 {
    let t0 = Instant::now();
    let t = env.start("bench::remote").await.expect("env");
    let c = t.container("echo").await.expect("echo");
    let mut s = tokio::net::TcpStream::connect(c.addr("7000/tcp").expect("addr")).await.expect("connect");
    s.write_all(b"ping").await.expect("write");
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf).await.expect("echo");
    t.finish().await.expect("torn down");
    ms(t0.elapsed())
}

/// One test with the engine reached three ways, interleaved.
pub(crate) async fn s9_one_test(n: usize) -> Vec<Row> {
    let local = crate::our_env();
    // Named as the bench's runtime (FIXTURE_RUNTIME chooses by name), connecting their own way.
    let name = if on_podman() { "podman" } else { "docker" };
    let tls = env_on(Backend::new(name, connect_tls));
    let ssh = env_on(Backend::new(name, connect_ssh));
    // Each way connected once before timing (the tunnels are made at connect).
    for env in [&local, &tls, &ssh] {
        one_test(env).await;
    }
    let (mut l, mut t, mut s) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        l.push(one_test(&local).await);
        t.push(one_test(&tls).await);
        s.push(one_test(&ssh).await);
    }
    let label = "S9 one test, engine by";
    vec![
        (label.into(), "local socket".into(), l),
        (label.into(), "TLS front".into(), t),
        (label.into(), "ssh".into(), s),
    ]
}

/// A link of `bytes_per_sec` from a local port to `target`: the upload direction (client to
/// engine) is held to the rate, the answers are not.
async fn slow_link(target: String, bytes_per_sec: f64) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.2:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let target = target.clone();
            tokio::spawn(async move {
                let Ok(upstream) = tokio::net::TcpStream::connect(&target).await else { return };
                let (mut cr, mut cw) = client.into_split();
                let (mut ur, mut uw) = upstream.into_split();
                let up = async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    let start = Instant::now();
                    let mut sent = 0f64;
                    while let Ok(n) = cr.read(&mut buf).await {
                        if n == 0 || uw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        sent += n as f64;
                        let due = Duration::from_secs_f64(sent / bytes_per_sec);
                        if let Some(wait) = due.checked_sub(start.elapsed()) {
                            tokio::time::sleep(wait).await;
                        }
                    }
                    let _ = uw.shutdown().await;
                };
                let down = async move {
                    let _ = tokio::io::copy(&mut ur, &mut cw).await;
                    let _ = cw.shutdown().await;
                };
                tokio::join!(up, down);
            });
        }
    });
    port
}

/// A build context like a repository's sources: a Dockerfile and 24 MB of text in 96 files.
fn big_context() -> bytes::Bytes {
    let dir = std::env::temp_dir().join(format!("fixtures-bench-context-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("src")).expect("dir");
    std::fs::write(dir.join("Dockerfile"), "FROM scratch\nCOPY Dockerfile /\n").expect("Dockerfile");
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    for file in 0..96 {
        let mut text = String::with_capacity(256 * 1024);
        while text.len() < 256 * 1024 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            text.push_str(&format!(
                "    let value_{} = compute(&input[{}], {:#x}); // step {}\n",
                state % 1000,
                state % 97,
                state % 65_536,
                state % 31
            ));
        }
        std::fs::write(dir.join("src").join(format!("m{file}.rs")), text).expect("source");
    }
    let tar = fixtures_engine_api::archive::context_tar(&dir, "Dockerfile").expect("tar");
    let _ = std::fs::remove_dir_all(&dir);
    tar
}

/// The same context built through the TLS front over a 100 Mbit/s link, plain and gzip.
pub(crate) async fn s9_context(n: usize) -> Vec<Row> {
    if on_podman() {
        // podman-api always sends the context gzip-compressed (its own tarball): nothing to compare.
        return Vec::new();
    }
    let tls = TLS_HOST.get().expect("the TLS front");
    let port = slow_link(tls.trim_start_matches("tcp://").to_owned(), 100e6 / 8.0).await;
    // The link's own host, for a tunnel of its own: the certificate is for 127.0.0.2.
    let host = format!("tcp://127.0.0.2:{port}");
    let gzip = fixtures_docker::DockerRuntime::connect_to(&host).await.expect("through the link");
    let plain = gzip.clone().compress_contexts(false);
    let context = big_context();
    let spec = |tag: &str| {
        let mut spec = BuildSpec::new(BuildContext::Tar(context.clone()));
        spec.tags = vec![format!("fixtures-bench/context:{tag}")];
        spec
    };
    let (mut p, mut g) = (Vec::new(), Vec::new());
    for _ in 0..n {
        for (runtime, times, tag) in [(&plain, &mut p, "plain"), (&gzip, &mut g, "gzip")] {
            let t0 = Instant::now();
            runtime.build_image(&spec(tag), &|_| {}).await.expect("build");
            times.push(ms(t0.elapsed()));
        }
    }
    for tag in ["plain", "gzip"] {
        let _ = gzip.remove_image(&format!("fixtures-bench/context:{tag}"), true).await;
    }
    let label = format!("S9 {} MB context, 100 Mbit/s", context.len() >> 20);
    vec![(label.clone(), "plain tar".into(), p), (label, "gzip".into(), g)]
}
