//! When the engine fails under a running suite. The engine is a Podman API service this test
//! starts on a socket of its own (never the machine's dockerd nor its Podman service), driven
//! through the backend of the row under test: Podman's own API on the `podman` row, the Docker
//! client on the others. The machine's Podman shares its storage, so `podman` on the command
//! line sees what the service made.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fixtures::runtime::EventAction;
use futures_util::StreamExt;

/// A Podman API service of this test's own: killed and started again only through the
/// process id it started, and killed when dropped.
struct OwnEngine {
    socket: PathBuf,
    child: Option<Child>,
}

impl OwnEngine {
    fn start(tag: &str) -> OwnEngine {
        let socket = std::env::temp_dir().join(format!("fx-engine-{tag}-{}.sock", std::process::id()));
        let mut engine = OwnEngine { socket, child: None };
        engine.up();
        engine
    }

    fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Starts the service and waits until it answers a ping.
    fn up(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
        let child = Command::new("podman")
            .args(["system", "service", "--time=0", &self.host()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("podman system service starts");
        self.child = Some(child);
        let start = Instant::now();
        while !pings(&self.socket) {
            assert!(start.elapsed() < Duration::from_secs(30), "the Podman service at {} never answered", self.host());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL to the service this test started, and only to it.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnEngine {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.socket);
    }
}

use std::os::unix::process::CommandExt;

fn pings(socket: &Path) -> bool {
    let Ok(mut stream) = UnixStream::connect(socket) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream.write_all(b"GET /_ping HTTP/1.0\r\nHost: d\r\n\r\n").is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.") && answer.contains(" 200 ")
}

/// The row's client against the engine at `host`: its name and the environment the suite
/// runs with.
fn client_env(host: &str) -> (&'static str, Vec<(&'static str, String)>) {
    if std::env::var("FIXTURE_RUNTIME").is_ok_and(|r| r == "podman") {
        ("podman", vec![("FIXTURE_RUNTIME", "podman".to_owned()), ("CONTAINER_HOST", host.to_owned())])
    } else {
        ("docker", vec![("FIXTURE_RUNTIME", "docker".to_owned()), ("DOCKER_HOST", host.to_owned())])
    }
}

fn run_id(what: &str) -> String {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("faults{what}{}x{nanos:x}", std::process::id())
}

/// What `podman` lists of `kind` (`ps -a`, `network ls`, `volume ls`) labelled with run `run`.
fn listed(kind: &[&str], run: &str) -> Vec<String> {
    let format = if kind[0] == "ps" { "{{.Names}}" } else { "{{.Name}}" };
    let out = Command::new("podman")
        .args(kind)
        .args(["--filter", &format!("label=fixtures.run={run}"), "--format", format])
        .output()
        .expect("podman runs");
    assert!(out.status.success(), "podman {kind:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
}

fn left(run: &str) -> Vec<String> {
    let mut all = listed(&["ps", "-a"], run);
    all.extend(listed(&["network", "ls"], run));
    all.extend(listed(&["volume", "ls"], run));
    all
}

/// A result line of libtest (`test m0::t01 ... ok`), as read, with when it was read.
struct Finished {
    at: Instant,
    test: String,
    ok: bool,
}

/// The failure reports of libtest's output: test name to its report.
fn reports(output: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in output.lines() {
        if let Some(name) = line.strip_prefix("---- ").and_then(|l| l.strip_suffix(" stdout ----")) {
            out.extend(current.take());
            current = Some((name.to_owned(), String::new()));
        } else if line == "failures:" {
            out.extend(current.take());
        } else if let Some((_, text)) = &mut current {
            text.push_str(line);
            text.push('\n');
        }
    }
    out.extend(current);
    out
}

#[test]
fn the_engine_is_killed_and_started_again_mid_run() {
    if !test_support::has(&[test_support::Need::Podman]) {
        return;
    }
    let mut engine = OwnEngine::start("restart");
    let (runtime, client) = client_env(&engine.host());
    let binary = test_support::test_binary("faults_suite");
    let threads = 3;
    let run = run_id("restart");
    let mut suite = Command::new(&binary)
        .args([&format!("--test-threads={threads}"), "--skip", "slow::", "--skip", "hang::"])
        .env("FIXTURE_RUN_ID", &run)
        .env("RUST_BACKTRACE", "0")
        .envs(client.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the suite runs");
    let (tx, lines) = mpsc::channel::<(Instant, String)>();
    let stdout = suite.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send((Instant::now(), line));
        }
    });
    let mut stderr = suite.stderr.take().expect("piped");
    let err_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });

    // An event stream held across the restart: it must go on once the engine is back.
    let events_rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(EventAction, i128)>::new()));
    let watcher = {
        let (host, seen, run) = (engine.host(), seen.clone(), run.clone());
        events_rt.spawn(async move {
            let rt: std::sync::Arc<dyn fixtures::Runtime> = if runtime == "podman" {
                std::sync::Arc::new(fixtures::podman::PodmanRuntime::connect_to(&host).await.expect("connect"))
            } else {
                std::sync::Arc::new(fixtures::docker::DockerRuntime::connect_to(&host).await.expect("connect"))
            };
            let mut events = rt.events(&fixtures::spec::LabelFilter::eq("fixtures.run", run));
            while let Some(event) = events.next().await {
                let event = match event {
                    Ok(event) => event,
                    Err(e) => {
                        eprintln!("the event stream ended: {e:?}");
                        break;
                    }
                };
                seen.lock().expect("seen").push((event.action, event.time_nanos.unwrap_or(0)));
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut output = String::new();
    let mut finished = Vec::<Finished>::new();
    let mut restarted_at = None;
    loop {
        let Ok((at, line)) = lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) else {
            let hung = Instant::now() >= deadline;
            if hung {
                let _ = suite.kill();
            }
            assert!(!hung, "the suite hung after the engine came back:\n{}", test_support::quoted(&output));
            break;
        };
        output.push_str(&line);
        output.push('\n');
        if let Some(rest) = line.strip_prefix("test ").filter(|_| !line.starts_with("test result")) {
            if let Some((test, verdict)) = rest.split_once(" ... ") {
                finished.push(Finished { at, test: test.to_owned(), ok: verdict == "ok" });
            }
        }
        // Four tests done: the others hold containers and talk to them. The engine dies and
        // comes back a second later.
        if finished.len() == 4 && restarted_at.is_none() {
            engine.kill();
            std::thread::sleep(Duration::from_secs(1));
            engine.up();
            restarted_at = Some(Instant::now());
        }
    }
    reader.join().expect("reader");
    let errors = err_reader.join().expect("reader");
    let status = suite.wait().expect("the suite ends");
    let restarted_at = restarted_at.expect("the engine was restarted mid-run");
    assert_eq!(finished.len(), 48, "every test reported:\n{}", test_support::quoted(&output));

    // Tests in flight when it died fail, each with a report that names the engine and what
    // was being done; the library itself never panics.
    let failed: Vec<&Finished> = finished.iter().filter(|f| !f.ok).collect();
    let reports = reports(&output);
    assert_eq!(reports.len(), failed.len(), "{}", test_support::quoted(&output));
    for (test, report) in &reports {
        assert!(
            report.contains("panicked at crates/fixtures-core/src/private.rs"),
            "{test} failed elsewhere than in the library's report of an error:\n{report}"
        );
        assert!(report.contains(&format!("runtime: {runtime}")), "{test}'s report names no engine:\n{report}");
        assert!(report.contains(&engine.host()), "{test}'s report does not say where the engine was:\n{report}");
    }
    // Once it is back, a test that starts gets a working engine: of the tests that ended after
    // the restart, only those already running when it died (one per thread) may fail.
    let after: Vec<&Finished> = finished.iter().filter(|f| f.at > restarted_at).collect();
    let late_failures: Vec<&str> = after.iter().skip(threads).filter(|f| !f.ok).map(|f| f.test.as_str()).collect();
    assert!(
        late_failures.is_empty(),
        "tests that started after the engine came back failed: {late_failures:?}\n{}",
        test_support::quoted(&output)
    );
    assert!(
        after.len() > 30,
        "most of the run came after the restart, not {}:\n{}",
        after.len(),
        test_support::quoted(&output)
    );
    eprintln!("{} of 48 failed while the engine was down ({status}); stderr:\n{errors}", failed.len());

    // The stream opened before the restart delivered the starts of containers made after it.
    let restarted_nanos = i128::try_from(
        (std::time::SystemTime::now() - restarted_at.elapsed())
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_nanos(),
    )
    .expect("fits");
    let starts_after =
        seen.lock().expect("seen").iter().filter(|(a, t)| *a == EventAction::Start && *t > restarted_nanos).count();
    assert!(!watcher.is_finished(), "the event stream ended at the restart");
    assert!(starts_after >= 30, "the event stream held across the restart saw {starts_after} starts after it");
    watcher.abort();
    drop(events_rt);

    // The next run sweeps what the dead engine kept from being removed.
    let next = run_id("next");
    let out = Command::new(&binary)
        .args(["--exact", "m3::t47"])
        .env("FIXTURE_RUN_ID", &next)
        .envs(client.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("the next run runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the next run passes:\n{}", test_support::quoted(&text));
    let start = Instant::now();
    loop {
        let now = [left(&run), left(&next)].concat();
        if now.is_empty() {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "left after the next run: {now:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A proxy on a socket of its own in front of `upstream` that holds every chunk the client
/// sends for `delay` before passing it on: each request to the engine takes that much longer.
fn slow_proxy(upstream: PathBuf, delay: Duration) -> PathBuf {
    let socket = std::env::temp_dir().join(format!("fx-slow-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&socket);
    let listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind the proxy");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
        rt.block_on(async move {
            listener.set_nonblocking(true).expect("nonblocking");
            let listener = tokio::net::UnixListener::from_std(listener).expect("listener");
            while let Ok((client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let Ok(engine) = tokio::net::UnixStream::connect(&upstream).await else { return };
                    let (mut client_read, mut client_write) = client.into_split();
                    let (mut engine_read, mut engine_write) = engine.into_split();
                    let answers = tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut engine_read, &mut client_write).await;
                        let _ = client_write.shutdown().await;
                    });
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n @ 1..) = client_read.read(&mut buf).await {
                        tokio::time::sleep(delay).await;
                        if engine_write.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = engine_write.shutdown().await;
                    let _ = answers.await;
                });
            }
        });
    });
    socket
}

#[test]
fn a_slow_engine_still_passes_and_timeouts_mean_what_they_say() {
    if !test_support::has(&[test_support::Need::Podman]) {
        return;
    }
    let engine = OwnEngine::start("slow");
    let proxy = slow_proxy(engine.socket.clone(), Duration::from_millis(200));
    let host = format!("unix://{}", proxy.display());
    let (runtime, client) = client_env(&host);
    let binary = test_support::test_binary("faults_suite");
    let run = run_id("slow");
    let out = Command::new(&binary)
        .args(["--test-threads=3", "m0::", "slow::"])
        .env("FIXTURE_RUN_ID", &run)
        .env("RUST_BACKTRACE", "0")
        .envs(client.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("the suite runs");
    let text = String::from_utf8_lossy(&out.stdout);
    // Twelve tests pass; the one never ready fails, at its 2 s timeout.
    assert!(text.contains("test result: FAILED. 12 passed; 1 failed"), "{}", test_support::quoted(&text));
    let reports = reports(&text);
    let (test, report) = &reports[0];
    assert_eq!(test, "slow::never_ready");
    assert!(report.contains("kind: timed out"), "{report}");
    assert!(report.contains(&format!("runtime: {runtime} at {host}")), "{report}");
    let waited: f64 = report
        .lines()
        .find_map(|l| l.trim().strip_prefix("waited: ")?.strip_suffix('s')?.parse().ok())
        .unwrap_or_else(|| panic!("no wait in: {report}"));
    // Each look at it takes 200 ms more: the deadline holds (not a count of looks).
    assert!((2.0..4.0).contains(&waited), "a 2 s timeout waited {waited} s:\n{report}");
    let start = Instant::now();
    while !left(&run).is_empty() {
        assert!(start.elapsed() < Duration::from_secs(10), "left: {:?}", left(&run));
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = std::fs::remove_file(&proxy);
}

#[test]
fn an_engine_that_is_down_at_start_is_reported_at_once() {
    if !test_support::has(&[test_support::Need::Podman]) {
        return;
    }
    // A socket file nobody listens on (an engine that died), and no socket at all.
    let stale = std::env::temp_dir().join(format!("fx-stale-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&stale);
    drop(std::os::unix::net::UnixListener::bind(&stale).expect("bind"));
    let missing = std::env::temp_dir().join(format!("fx-missing-{}.sock", std::process::id()));
    let binary = test_support::test_binary("faults_suite");
    for socket in [&stale, &missing] {
        let host = format!("unix://{}", socket.display());
        for (runtime, var) in [("docker", "DOCKER_HOST"), ("podman", "CONTAINER_HOST")] {
            let started = Instant::now();
            let out = Command::new(&binary)
                .args(["--exact", "m0::t00"])
                .env("FIXTURE_RUNTIME", runtime)
                .env(var, &host)
                .env("RUST_BACKTRACE", "0")
                .output()
                .expect("the suite runs");
            let took = started.elapsed();
            let text = String::from_utf8_lossy(&out.stdout);
            let reports = reports(&text);
            assert_eq!(reports.len(), 1, "{}", test_support::quoted(&text));
            let report = &reports[0].1;
            assert!(
                report.contains(&format!("runtime `{runtime}` (FIXTURE_RUNTIME or fixtures.toml) does not answer")),
                "{report}"
            );
            assert!(report.contains("kind: engine unreachable"), "{report}");
            assert!(report.contains(&socket.display().to_string()), "{report}");
            // Not a readiness timeout (30 s): the first request says so.
            assert!(took < Duration::from_secs(10), "{runtime} at {host}: {took:?}");
            eprintln!("{runtime} at {host}: reported in {took:?}");
        }
    }
    let _ = std::fs::remove_file(&stale);
}
