//! `cargo xtask bench`: scenarios run side by side in one process, for three contenders:
//! the raw engine floor (bollard calls doing only what the scenario needs, with the same
//! readiness check), testcontainers-rs (closest configuration), and fixtures (its DSL).
//!
//! Prints a table (median, p10–p90 spread, ratios to the floor and to testcontainers-rs,
//! and the goal) and writes the same as JSON to `target/bench/results-<engine>.json`.
//! Flags: `--reps N` scales the repetitions (default 1 = the counts), `--only S1,S3`.
//! S9 (`remote`) puts the engine behind a TLS front and an ssh server on loopback and compares
//! one test through each with the local socket, and a large build context plain and gzip.
//! The engine is the one `cargo xtask bench --runtime docker|podman` chose: `DOCKER_HOST`
//! for the floor and testcontainers-rs (both bollard), `FIXTURE_RUNTIME` for fixtures.

mod remote;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bollard::Docker;
use bollard::query_parameters as q;
use fixtures_core::{Env, Result, build, container, image};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub(crate) const SERVICES: &str = "fixtures-test/services:latest";

pub(crate) type Row = (String, String, Vec<f64>);

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn quantile(values: &[f64], q: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * q).round() as usize]
}

// ------------------------------------------------------------ the floor

/// Whether the bench runs on Podman (`cargo xtask bench --runtime podman`).
pub(crate) fn on_podman() -> bool {
    std::env::var("FIXTURES_BENCH_ENGINE").is_ok_and(|e| e == "podman")
}

/// The engine's socket: `DOCKER_HOST` (Podman's, under `--runtime podman`), else Docker's.
pub(crate) fn docker_host() -> String {
    std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "unix:///var/run/docker.sock".into())
}

async fn floor_client() -> Docker {
    let host = docker_host();
    Docker::connect_with_unix(host.trim_start_matches("unix://"), 120, bollard::API_DEFAULT_VERSION)
        .expect("the engine's socket")
        .negotiate_version()
        .await
        .expect("negotiate")
}

fn proc_listening(pid: u64, port: u16) -> bool {
    ["tcp", "tcp6"].iter().any(|f| {
        std::fs::read_to_string(format!("/proc/{pid}/net/{f}")).is_ok_and(|t| {
            t.lines().skip(1).any(|l| {
                let mut it = l.split_whitespace();
                let local = it.nth(1).unwrap_or_default();
                let st = it.nth(1).unwrap_or_default();
                local.rsplit_once(':').is_some_and(|(_, p)| u16::from_str_radix(p, 16) == Ok(port)) && st == "0A"
            })
        })
    })
}

/// Create, start, wait until `port` listens (reading /proc, 2 ms growing to 25 ms), return id and host port.
async fn floor_start(docker: &Docker, cmd: &[&str], env: &[&str], port: u16) -> (String, u16) {
    let mut bindings = std::collections::HashMap::new();
    bindings.insert(
        format!("{port}/tcp"),
        Some(vec![bollard::models::PortBinding { host_ip: Some("127.0.0.1".into()), host_port: Some(String::new()) }]),
    );
    let body = bollard::models::ContainerCreateBody {
        image: Some(SERVICES.into()),
        cmd: Some(cmd.iter().map(|s| (*s).to_owned()).collect()),
        env: Some(env.iter().map(|s| (*s).to_owned()).collect()),
        exposed_ports: Some(vec![format!("{port}/tcp")]),
        host_config: Some(bollard::models::HostConfig { port_bindings: Some(bindings), ..Default::default() }),
        labels: Some(
            [("fixtures.managed".to_owned(), "true".to_owned()), ("fixtures.bench".to_owned(), "floor".to_owned())]
                .into(),
        ),
        ..Default::default()
    };
    let id = docker.create_container(None::<q::CreateContainerOptions>, body).await.expect("create").id;
    docker.start_container(&id, None::<q::StartContainerOptions>).await.expect("start");
    let info = docker.inspect_container(&id, None::<q::InspectContainerOptions>).await.expect("inspect");
    let pid = info.state.and_then(|s| s.pid).unwrap_or(0) as u64;
    let host_port = info
        .network_settings
        .and_then(|n| n.ports)
        .and_then(|p| p.get(&format!("{port}/tcp")).cloned().flatten())
        .and_then(|b| b.first().and_then(|b| b.host_port.clone()))
        .and_then(|p| p.parse().ok())
        .expect("a host port");
    let mut pause = Duration::from_millis(2);
    while !proc_listening(pid, port) {
        tokio::time::sleep(pause).await;
        pause = (pause * 3 / 2).min(Duration::from_millis(25));
    }
    (id, host_port)
}

async fn floor_remove(docker: &Docker, id: &str) {
    let _ = docker.remove_container(id, Some(q::RemoveContainerOptions { force: true, ..Default::default() })).await;
}

async fn exchange(port: u16) {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    s.write_all(b"ping").await.expect("write");
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf).await.expect("echo");
}

// ------------------------------------------------------------ testcontainers-rs

mod tc {
    /// Whether testcontainers-rs runs on this bench's engine. On Podman 4.3's Docker API it
    /// cannot read a container's published ports (`PortNotExposed`), and it builds only
    /// through BuildKit, which that API lacks: there the table compares the floor and fixtures.
    pub(crate) fn runs_here() -> bool {
        !super::on_podman()
    }

    use testcontainers::core::{ContainerPort, WaitFor};
    use testcontainers::runners::AsyncRunner;
    use testcontainers::{GenericImage, ImageExt};

    pub(crate) async fn start(
        cmd: &[&str],
        env: &[(&str, &str)],
        port: u16,
        ready_line: &str,
    ) -> (testcontainers::ContainerAsync<GenericImage>, u16) {
        let mut req = GenericImage::new("fixtures-test/services", "latest")
            .with_exposed_port(ContainerPort::Tcp(port))
            .with_wait_for(WaitFor::message_on_stdout(ready_line))
            .with_cmd(cmd.iter().map(|s| (*s).to_owned()));
        for (k, v) in env {
            req = req.with_env_var(*k, *v);
        }
        let c = req.start().await.expect("testcontainers start");
        let port = c.get_host_port_ipv4(ContainerPort::Tcp(port)).await.expect("port");
        (c, port)
    }

    /// A container that exits with code 1 after 100 ms, awaited for a line it never prints.
    pub(crate) async fn start_dying(label: &str) -> bool {
        GenericImage::new("fixtures-test/services", "latest")
            .with_wait_for(WaitFor::message_on_stdout("never printed"))
            .with_cmd(["exit", "--delay-ms", "100", "--code", "1"])
            .with_label("fixtures.bench.s4", label)
            .start()
            .await
            .is_err()
    }

    /// The resolver-service graph: both images built without cache, one after the other
    /// (testcontainers-rs has no graph), then both containers started.
    pub(crate) async fn cold_graph(
        root: &std::path::Path,
        bust: &str,
    ) -> Vec<testcontainers::ContainerAsync<GenericImage>> {
        use testcontainers::core::BuildImageOptions;
        use testcontainers::runners::AsyncBuilder;
        let mut containers = Vec::new();
        for dir in ["dns", "api"] {
            let image = testcontainers::GenericBuildableImage::new(format!("fx-bench-tc-{dir}"), bust.to_owned())
                .with_dockerfile(root.join(dir).join("Dockerfile"))
                .build_image_with(BuildImageOptions::new().with_no_cache(true))
                .await
                .expect("testcontainers build");
            containers.push(image.with_label("fixtures.bench", "tc").start().await.expect("testcontainers start"));
        }
        containers
    }

    /// The echo container under testcontainers-rs' reuse (found again by its labels), and
    /// its published port.
    pub(crate) async fn start_reused() -> (testcontainers::ContainerAsync<GenericImage>, u16) {
        let c = GenericImage::new("fixtures-test/services", "latest")
            .with_exposed_port(ContainerPort::Tcp(7000))
            .with_wait_for(WaitFor::message_on_stdout("echo: listening"))
            .with_cmd(["echo"])
            .with_container_name("fx-bench-tc-reused")
            .with_label("fixtures.bench", "tc-reused")
            .with_reuse(testcontainers::ReuseDirective::Always)
            .start()
            .await
            .expect("testcontainers start");
        let port = c.get_host_port_ipv4(ContainerPort::Tcp(7000)).await.expect("port");
        (c, port)
    }
}

// ------------------------------------------------------------ fixtures

pub(crate) fn our_env() -> Env {
    Env::new()
        .backend(fixtures_docker::backend())
        .backend(fixtures_podman::backend())
        .with("services", image(SERVICES))
        .with("echo", container().image("{services.id}").command(["echo"]).port("7000/tcp"))
        // S1 with the last look before hand-over (the main process has run 10 ms and waits) off:
        // what the library did before it looked.
        .with(
            "echo_unsettled",
            container().image("{services.id}").command(["echo"]).port("7000/tcp").min_uptime(Duration::ZERO),
        )
        .with(
            "slow",
            container().image("{services.id}").command(["http"]).env("LISTEN_DELAY_MS", "300").port("8080/tcp"),
        )
        .with(
            "dies",
            container().image("{services.id}").command(["exit", "--delay-ms", "100", "--code", "1"]).port("8080/tcp"),
        )
        // Function scope: under reuse mode every test takes the named container up again from the engine.
        .with("reused", container().name("fx-bench-reused").image("{services.id}").command(["echo"]).port("7000/tcp"))
}

async fn ours_start(node: &str) -> Result<(fixtures_core::TestEnv, fixtures_core::Container)> {
    let t = our_env().start(format!("bench::{node}")).await?;
    let c = t.container(node).await?;
    Ok((t, c))
}

/// The engine's timestamp of the first log line containing `needle`.
async fn log_time(docker: &Docker, id: &str, needle: &str) -> Option<SystemTime> {
    let opts =
        q::LogsOptions { stdout: true, stderr: true, timestamps: true, tail: "all".into(), ..Default::default() };
    let mut logs = docker.logs(id, Some(opts));
    while let Some(Ok(chunk)) = logs.next().await {
        let text = chunk.to_string();
        if let Some(line) = text.lines().find(|l| l.contains(needle)) {
            return parse_rfc3339(line.split_whitespace().next()?);
        }
    }
    None
}

/// When the S3 service began to listen: its log line's time on Docker. Podman's APIs stamp log
/// lines to the second only; there it is the start the engine recorded plus the service's
/// 300 ms delay (the process's own start-up, a few ms, not counted).
async fn listened_at(docker: &Docker, id: &str) -> Option<SystemTime> {
    if on_podman() {
        use fixtures_core::Runtime as _;
        let runtime = fixtures_docker::DockerRuntime::connect_to(&docker_host()).await.ok()?;
        let info = runtime.inspect_container(id).await.ok()?;
        let started = parse_rfc3339(info.raw.pointer("/State/StartedAt")?.as_str()?)?;
        return Some(started + Duration::from_millis(300));
    }
    log_time(docker, id, "listening").await
}

/// When the container exited, as the engine recorded it (`State.FinishedAt`), read raw:
/// bollard's models cannot read an exited container on Podman.
async fn finished_at(id: &str) -> Option<SystemTime> {
    use fixtures_core::Runtime as _;
    let runtime = fixtures_docker::DockerRuntime::connect_to(&docker_host()).await.ok()?;
    let info = runtime.inspect_container(id).await.ok()?;
    parse_rfc3339(info.raw.pointer("/State/FinishedAt")?.as_str()?)
}

/// `2026-11-26T03:04:05.123456789Z` (or `+00:00`) → time.
fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let (date, time) = s.trim_end_matches('Z').trim_end_matches("+00:00").split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|x| x.parse::<i64>().ok());
    let (h, mi, se) = (t.next()??, t.next()??, t.next()??);
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + se;
    let nanos: u32 = format!("{frac:0<9}")[..9].parse().ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::new(secs as u64, nanos))
}

// ------------------------------------------------------------ scenarios

async fn s1(n: usize) -> Vec<Row> {
    let docker = floor_client().await;
    let (mut floor, mut tcs, mut ours, mut unsettled) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        let t0 = Instant::now();
        let (id, port) = floor_start(&docker, &["echo"], &[], 7000).await;
        exchange(port).await;
        floor_remove(&docker, &id).await;
        floor.push(ms(t0.elapsed()));

        if tc::runs_here() {
            let t0 = Instant::now();
            let (c, port) = tc::start(&["echo"], &[], 7000, "echo: listening").await;
            exchange(port).await;
            c.rm().await.expect("rm");
            tcs.push(ms(t0.elapsed()));
        }

        let t0 = Instant::now();
        let (t, c) = ours_start("echo").await.expect("ours");
        exchange(c.ports().host_port("7000/tcp").expect("port")).await;
        t.finish().await.expect("torn down");
        ours.push(ms(t0.elapsed()));

        let t0 = Instant::now();
        let (t, c) = ours_start("echo_unsettled").await.expect("ours");
        exchange(c.ports().host_port("7000/tcp").expect("port")).await;
        t.finish().await.expect("torn down");
        unsettled.push(ms(t0.elapsed()));
    }
    vec![
        ("S1 serial".into(), "floor".into(), floor),
        ("S1 serial".into(), "testcontainers".into(), tcs),
        ("S1 serial".into(), "fixtures".into(), ours),
        ("S1 serial".into(), "fixtures-nosettle".into(), unsettled),
    ]
}

/// S7: what a test spends on its async runtime. Before, the attribute built a runtime (two
/// workers) per test and dropped it at the end; now the test's thread enters the library's.
/// Each sample is one empty test body on a thread of its own, as libtest runs it.
fn s7(n: usize) -> Vec<Row> {
    let sample = |per_test: bool| {
        std::thread::spawn(move || {
            let t0 = Instant::now();
            if per_test {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("a runtime");
                rt.block_on(async { tokio::task::yield_now().await });
                drop(rt);
            } else {
                fixtures_core::executor::block_on(async { tokio::task::yield_now().await })
                    .expect("the library's runtime");
            }
            ms(t0.elapsed())
        })
        .join()
        .expect("joined")
    };
    let (mut before, mut now) = (Vec::new(), Vec::new());
    for _ in 0..n {
        before.push(sample(true));
        now.push(sample(false));
    }
    vec![
        ("S7 test runtime (ms)".into(), "floor".into(), before),
        ("S7 test runtime (ms)".into(), "fixtures".into(), now),
    ]
}

/// `samples` runs of `n` tests at `threads` at a time per contender, the contenders taking
/// turns (and a different one first each round) so that drift of the machine falls on all.
async fn s2(n: usize, threads: usize, samples: usize) -> Vec<Row> {
    let label = format!("S2 parallel x{threads} (total ms)");
    let docker = Arc::new(floor_client().await);
    let contenders: Vec<&'static str> = ["floor", "testcontainers", "fixtures"]
        .into_iter()
        .filter(|c| *c != "testcontainers" || tc::runs_here())
        .collect();
    let mut totals: Vec<Vec<f64>> = vec![Vec::new(); contenders.len()];
    for round in 0..samples {
        for k in 0..contenders.len() {
            let which = (round + k) % contenders.len();
            let contender = contenders[which];
            let sem = Arc::new(tokio::sync::Semaphore::new(threads));
            let t0 = Instant::now();
            let mut tasks = Vec::new();
            for _ in 0..n {
                let (sem, docker) = (sem.clone(), docker.clone());
                tasks.push(tokio::spawn(async move {
                    let _permit = sem.acquire().await.expect("semaphore");
                    match contender {
                        "floor" => {
                            let (id, _) = floor_start(&docker, &["echo"], &[], 7000).await;
                            floor_remove(&docker, &id).await;
                        }
                        "testcontainers" => {
                            let (c, _) = tc::start(&["echo"], &[], 7000, "echo: listening").await;
                            c.rm().await.expect("rm");
                        }
                        _ => {
                            let (t, _) = ours_start("echo").await.expect("ours");
                            t.finish().await.expect("torn down");
                        }
                    }
                }));
            }
            for task in tasks {
                task.await.expect("task");
            }
            totals[which].push(ms(t0.elapsed()));
        }
    }
    contenders.iter().zip(totals).map(|(c, v)| (label.clone(), (*c).to_owned(), v)).collect()
}

async fn s3(n: usize) -> Vec<Row> {
    let docker = floor_client().await;
    let (mut floor, mut tcs, mut ours, mut latency) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        let t0 = Instant::now();
        let (id, _) = floor_start(&docker, &["http"], &["LISTEN_DELAY_MS=300"], 8080).await;
        floor.push(ms(t0.elapsed()) - 300.0);
        floor_remove(&docker, &id).await;

        if tc::runs_here() {
            let t0 = Instant::now();
            let (c, _) = tc::start(&["http"], &[("LISTEN_DELAY_MS", "300")], 8080, "http: listening").await;
            tcs.push(ms(t0.elapsed()) - 300.0);
            c.rm().await.expect("rm");
        }

        let t0 = Instant::now();
        let (t, c) = ours_start("slow").await.expect("ours");
        let ready_at = SystemTime::now();
        ours.push(ms(t0.elapsed()) - 300.0);
        if let Some(listening) = listened_at(&docker, c.id()).await
            && let Ok(d) = ready_at.duration_since(listening)
        {
            latency.push(ms(d));
        }
        t.finish().await.expect("torn down");
    }
    vec![
        ("S3 slow start (ms over 300)".into(), "floor".into(), floor),
        ("S3 slow start (ms over 300)".into(), "testcontainers".into(), tcs),
        ("S3 slow start (ms over 300)".into(), "fixtures".into(), ours),
        ("S3 listening -> ready (ms)".into(), "fixtures".into(), latency),
    ]
}

/// Exit → error: a container exits with code 1 100 ms after it starts. For each contender,
/// the time from the exit the engine recorded (`State.FinishedAt`) to the moment the
/// contender reports it. The floor is the engine's own first word of it, its `die` event;
/// testcontainers-rs awaits a log line that never comes; fixtures awaits the container's
/// readiness (its default check) and reports the exit code and the last log lines.
async fn s4(n: usize) -> Vec<Row> {
    let docker = floor_client().await;
    let (mut floor, mut tcs, mut ours) = (Vec::new(), Vec::new(), Vec::new());
    let tag = |who: &str, rep: usize| format!("{who}-{rep}-{}", std::process::id());
    for rep in 0..n {
        // Floor: the engine's own report of the exit, its `die` event.
        let label = tag("floor", rep);
        let mut events = docker.events(Some(q::EventsOptions {
            filters: Some([("label".to_owned(), vec![format!("fixtures.bench.s4={label}")])].into()),
            ..Default::default()
        }));
        let body = bollard::models::ContainerCreateBody {
            image: Some(SERVICES.into()),
            cmd: Some(["exit", "--delay-ms", "100", "--code", "1"].map(str::to_owned).to_vec()),
            labels: Some(
                [("fixtures.managed".to_owned(), "true".to_owned()), ("fixtures.bench.s4".to_owned(), label.clone())]
                    .into(),
            ),
            ..Default::default()
        };
        let id = docker.create_container(None::<q::CreateContainerOptions>, body).await.expect("create").id;
        docker.start_container(&id, None::<q::StartContainerOptions>).await.expect("start");
        let mut failed_at = None;
        while let Some(Ok(event)) = events.next().await {
            if matches!(event.action.as_deref(), Some("die" | "died")) {
                failed_at = Some(SystemTime::now());
                break;
            }
        }
        drop(events);
        if let Some(d) = finished_at(&id).await.zip(failed_at).and_then(|(f, at)| at.duration_since(f).ok()) {
            floor.push(ms(d));
        }
        floor_remove(&docker, &id).await;

        // testcontainers-rs removes the container when its start fails: the exit time is read
        // as soon as the engine reports the exit, by a watcher of the engine's events.
        if tc::runs_here() {
            let label = tag("tc", rep);
            let watcher = tokio::spawn(exit_time_of_labelled(docker.clone(), format!("fixtures.bench.s4={label}")));
            tokio::time::sleep(Duration::from_millis(50)).await; // the watcher's subscription is in place
            assert!(tc::start_dying(&label).await, "testcontainers-rs reports the exit as an error");
            let failed_at = SystemTime::now();
            if let Ok(Some(exited)) = watcher.await
                && let Ok(d) = failed_at.duration_since(exited)
            {
                tcs.push(ms(d));
            }
        }

        let t = our_env().start("bench::dies").await.expect("env");
        let err = t.container("dies").await.expect_err("it exits");
        let failed_at = SystemTime::now();
        let id = err.container().unwrap_or_default().to_owned();
        if let Some(d) = finished_at(&id).await.and_then(|f| failed_at.duration_since(f).ok()) {
            ours.push(ms(d));
        }
        t.finish().await.expect("torn down");
    }
    let _ = docker
        .prune_containers(Some(q::PruneContainersOptions {
            filters: Some([("label".to_owned(), vec!["fixtures.bench.s4".to_owned()])].into()),
        }))
        .await;
    vec![
        ("S4 exit -> error (ms)".into(), "floor".into(), floor),
        ("S4 exit -> error (ms)".into(), "testcontainers".into(), tcs),
        ("S4 exit -> error (ms)".into(), "fixtures".into(), ours),
    ]
}

/// The exit time of the first container labelled `label` to die, read when the engine says so.
async fn exit_time_of_labelled(docker: Docker, label: String) -> Option<SystemTime> {
    let options = q::EventsOptions {
        filters: Some([("label".to_owned(), vec![label]), ("type".to_owned(), vec!["container".to_owned()])].into()),
        ..Default::default()
    };
    let mut events = docker.events(Some(options));
    let deadline = tokio::time::sleep(Duration::from_secs(30));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            event = events.next() => {
                let event = event?.ok()?;
                if matches!(event.action.as_deref(), Some("die" | "died")) {
                    let id = event.actor.and_then(|a| a.id)?;
                    return finished_at(&id).await;
                }
            }
            () = &mut deadline => return None,
        }
    }
}

/// Cold graph: two image builds without cache, then two containers. The floor does it one
/// step after another with the builder fixtures uses (BuildKit on Docker); testcontainers-rs
/// builds one image after the other too (with BuildKit); fixtures resolves the graph,
/// building both images at once.
async fn s5(n: usize) -> Vec<Row> {
    let docker = floor_client().await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../integration-tests/examples/resolver-service");
    let (mut floor, mut tcs, mut ours) = (Vec::new(), Vec::new(), Vec::new());
    let podman = on_podman();
    for rep in 0..n {
        let bust = format!("{}-{rep}", std::process::id());
        let t0 = Instant::now();
        let mut ids = Vec::new();
        for dir in ["dns", "api"] {
            let tar = fixtures_engine_api::archive::context_tar(&root.join(dir), "Dockerfile").expect("context");
            // The same builder fixtures uses: BuildKit on Docker, the classic API on Podman.
            let opts = q::BuildImageOptions {
                nocache: true,
                rm: true,
                labels: Some([("fixtures.bench".to_owned(), bust.clone())].into()),
                version: if podman { q::BuilderVersion::BuilderV1 } else { q::BuilderVersion::BuilderBuildKit },
                session: (!podman).then(|| format!("fixtures-bench-{bust}-{dir}")),
                ..Default::default()
            };
            let mut stream = docker.build_image(opts, None, Some(bollard::body_full(tar)));
            while let Some(item) = stream.next().await {
                item.expect("build");
            }
            let id = docker
                .list_images(Some(q::ListImagesOptions {
                    filters: Some([("label".to_owned(), vec![format!("fixtures.bench={bust}")])].into()),
                    ..Default::default()
                }))
                .await
                .expect("list")
                .into_iter()
                .map(|i| i.id)
                .find(|id| !ids.contains(id))
                .expect("built");
            ids.push(id);
        }
        let mut containers = Vec::new();
        for id in &ids {
            let body = bollard::models::ContainerCreateBody {
                image: Some(id.clone()),
                labels: Some([("fixtures.managed".to_owned(), "true".to_owned())].into()),
                ..Default::default()
            };
            let cid = docker.create_container(None::<q::CreateContainerOptions>, body).await.expect("create").id;
            docker.start_container(&cid, None::<q::StartContainerOptions>).await.expect("start");
            containers.push(cid);
        }
        floor.push(ms(t0.elapsed()));
        for c in containers {
            floor_remove(&docker, &c).await;
        }

        if tc::runs_here() {
            let t0 = Instant::now();
            let containers = tc::cold_graph(&root, &bust).await;
            tcs.push(ms(t0.elapsed()));
            for c in containers {
                c.rm().await.expect("rm");
            }
            for dir in ["dns", "api"] {
                let image = format!("fx-bench-tc-{dir}:{bust}");
                let _ = docker.remove_image(&image, None::<q::RemoveImageOptions>, None).await;
            }
        }

        let env = Env::new()
            .backend(fixtures_docker::backend())
            .backend(fixtures_podman::backend())
            .with(
                "dns_image",
                build()
                    .path(root.join("dns").display().to_string())
                    .no_cache()
                    .label("fixtures.bench", format!("ours-{bust}")),
            )
            .with(
                "api_image",
                build()
                    .path(root.join("api").display().to_string())
                    .no_cache()
                    .label("fixtures.bench", format!("ours-{bust}")),
            )
            .with("dns", container().image("{dns_image.id}"))
            .with("api", container().image("{api_image.id}"));
        let t0 = Instant::now();
        let t = env.start("bench::s5").await.expect("env");
        t.prepare(&["dns", "api"]).await.expect("graph");
        ours.push(ms(t0.elapsed()));
        t.finish().await.expect("torn down");
    }
    vec![
        ("S5 cold graph".into(), "floor".into(), floor),
        ("S5 cold graph".into(), "testcontainers".into(), tcs),
        ("S5 cold graph".into(), "fixtures".into(), ours),
    ]
}

async fn s6(n: usize) -> Vec<Row> {
    // Reuse mode is configuration read once per process: measure in a child in reuse mode.
    let exe = std::env::current_exe().expect("exe");
    let out = tokio::process::Command::new(exe)
        .args(["--s6-child", &n.to_string()])
        .env("FIXTURE_REUSE", "1")
        .output()
        .await
        .expect("child");
    let text = String::from_utf8_lossy(&out.stdout);
    let values: Vec<f64> =
        text.lines().filter_map(|l| l.strip_prefix("reused ")).filter_map(|v| v.parse().ok()).collect();

    // testcontainers-rs' reuse (`reusable-containers`): the first start creates, later ones find it.
    let mut tcs = Vec::new();
    if tc::runs_here() {
        let (first, _) = tc::start_reused().await;
        for _ in 0..n {
            let t0 = Instant::now();
            let (c, _) = tc::start_reused().await;
            tcs.push(ms(t0.elapsed()));
            drop(c);
        }
        first.rm().await.expect("rm");
    }
    vec![
        ("S6 reused fixture (ms)".into(), "testcontainers".into(), tcs),
        ("S6 reused fixture (ms)".into(), "fixtures".into(), values),
    ]
}

async fn s6_child(n: usize) {
    // First run creates the named container; every later one reuses it.
    let (t, _) = ours_start("reused").await.expect("first");
    t.finish().await.expect("torn down");
    for _ in 0..n {
        let t0 = Instant::now();
        let env = our_env();
        let t = env.start("bench::reused").await.expect("env");
        t.container("reused").await.expect("reused");
        println!("reused {}", ms(t0.elapsed()));
        t.finish().await.expect("torn down");
    }
    let docker = floor_client().await;
    floor_remove(&docker, "fx-bench-reused").await;
}

/// S8: the three-service compose file (a database with a health check, a seed job that must
/// complete, an app), from nothing to the app answering: `docker-compose up -d` (which waits
/// for the health check and the job) plus polling the app's port, against this library's
/// `Compose` on the same file (which waits for the same, and for the app's port to listen).
/// docker-compose runs on Docker only: on Podman without systemd its health checks never run.
async fn s8(n: usize) -> Vec<Row> {
    const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/compose-app/docker-compose.yml");
    let mut theirs = Vec::new();
    if !on_podman() {
        for i in 0..n {
            let project = format!("fxbench{}x{i}", std::process::id());
            let compose = |args: &[&str]| {
                let mut cmd = tokio::process::Command::new("docker-compose");
                cmd.args(["--no-ansi", "-p", &project, "-f", FILE]).args(args);
                cmd
            };
            let t0 = Instant::now();
            let up = compose(&["up", "-d"]).output().await.expect("docker-compose runs");
            assert!(up.status.success(), "docker-compose up: {}", String::from_utf8_lossy(&up.stderr));
            let port = compose(&["port", "app", "8080"]).output().await.expect("docker-compose port");
            let addr = String::from_utf8_lossy(&port.stdout).trim().replace("0.0.0.0", "127.0.0.1");
            let addr: std::net::SocketAddr = addr.parse().expect("the app's address");
            while tokio::net::TcpStream::connect(addr).await.is_err() {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            theirs.push(ms(t0.elapsed()));
            let down = compose(&["down", "-v", "--timeout", "1"]).output().await.expect("docker-compose down");
            assert!(down.status.success(), "docker-compose down: {}", String::from_utf8_lossy(&down.stderr));
        }
    }
    let mut ours = Vec::new();
    for i in 0..n {
        let t0 = Instant::now();
        let env = fixtures_compose::Compose::new(FILE).load().expect("the file loads");
        let t = env.start(format!("bench::compose_{i}")).await.expect("env");
        t.container("app").await.expect("the app");
        ours.push(ms(t0.elapsed()));
        t.finish().await.expect("torn down");
    }
    vec![
        ("S8 compose up, 3 services".into(), "docker-compose".into(), theirs),
        ("S8 compose up, 3 services".into(), "fixtures".into(), ours),
    ]
}

/// S10: a real-world-sized file (`tests/compose-files/stack`: six services, each with a health
/// check, started in the order their health allows) from nothing to every service healthy:
/// `docker-compose up -d` plus waiting for the last health checks (it waits only for those
/// that others depend on), against this library's `Compose` asking for every service. Both
/// run on Docker's health checks, so both wait the same intervals.
async fn s10(n: usize) -> Vec<Row> {
    const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/compose-files/stack/docker-compose.yml");
    const SERVICES: [&str; 6] = ["proxy", "api", "worker", "db", "cache", "broker"];
    let mut theirs = Vec::new();
    if !on_podman() {
        for i in 0..n {
            let project = format!("fxbenchstack{}x{i}", std::process::id());
            let compose = |args: &[&str]| {
                let mut cmd = tokio::process::Command::new("docker-compose");
                cmd.args(["--no-ansi", "-p", &project, "-f", FILE]).args(args);
                cmd
            };
            let t0 = Instant::now();
            let up = compose(&["up", "-d"]).output().await.expect("docker-compose runs");
            assert!(up.status.success(), "docker-compose up: {}", String::from_utf8_lossy(&up.stderr));
            let ids = compose(&["ps", "-q"]).output().await.expect("docker-compose ps");
            let ids: Vec<String> = String::from_utf8_lossy(&ids.stdout).lines().map(str::to_owned).collect();
            assert_eq!(ids.len(), SERVICES.len(), "one container per service");
            loop {
                let health = tokio::process::Command::new("docker")
                    .args(["inspect", "--format", "{{.State.Health.Status}}"])
                    .args(&ids)
                    .output()
                    .await
                    .expect("docker inspect");
                if String::from_utf8_lossy(&health.stdout).lines().all(|l| l == "healthy") {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            theirs.push(ms(t0.elapsed()));
            let down = compose(&["down", "-v", "--timeout", "1"]).output().await.expect("docker-compose down");
            assert!(down.status.success(), "docker-compose down: {}", String::from_utf8_lossy(&down.stderr));
        }
    }
    let mut ours = Vec::new();
    for i in 0..n {
        let t0 = Instant::now();
        let env = fixtures_compose::Compose::new(FILE).load().expect("the file loads");
        let t = env.start(format!("bench::stack_{i}")).await.expect("env");
        futures_util::future::try_join_all(SERVICES.iter().map(|s| t.container(s))).await.expect("every service");
        ours.push(ms(t0.elapsed()));
        t.finish().await.expect("torn down");
    }
    vec![
        ("S10 compose up, 6 services with health checks".into(), "docker-compose".into(), theirs),
        ("S10 compose up, 6 services with health checks".into(), "fixtures".into(), ours),
    ]
}

fn goal(scenario: &str, contender: &str, median: f64, floor: Option<f64>, tc: Option<f64>) -> String {
    let ratio = |base: Option<f64>| base.map(|b| median / b);
    let verdict = |ok: bool, text: String| format!("{} {text}", if ok { "met" } else { "MISSED" });
    match (scenario, contender) {
        (s, "fixtures") if s.starts_with("S1 ") => {
            let f = ratio(floor).unwrap_or(f64::NAN);
            let versus_tc = match ratio(tc) {
                Some(t) => format!("{} (<=0.65x tc: {t:.2}x)", if t <= 0.65 { "met" } else { "MISSED" }),
                None => "(<=0.65x tc: testcontainers-rs does not run here)".to_owned(),
            };
            format!("{} (<=1.2x floor: {f:.2}x); {versus_tc}", if f <= 1.2 { "met" } else { "MISSED" })
        }
        (s, "fixtures") if s.starts_with("S2 parallel x4") => {
            let f = ratio(floor).unwrap_or(f64::NAN);
            verdict(f <= 1.1, format!("(<=1.1x floor: {f:.2}x)"))
        }
        (s, "fixtures") if s.starts_with("S3 slow") => {
            let over = median - floor.unwrap_or(f64::NAN);
            verdict(over <= 25.0, format!("(<=25 ms over the floor: {over:+.1} ms)"))
        }
        (s, "fixtures") if s.starts_with("S3 listening") => verdict(median <= 25.0, "(<25 ms)".into()),
        (s, "fixtures") if s.starts_with("S4") => {
            let over = median - floor.unwrap_or(f64::NAN);
            verdict(median <= 100.0, format!("(<=100 ms; {over:+.1} ms over the floor)"))
        }
        (s, "fixtures") if s.starts_with("S5") => {
            let f = ratio(floor).unwrap_or(f64::NAN);
            verdict(f <= 0.7, format!("(<=0.7x sequential: {f:.2}x)"))
        }
        (s, "fixtures") if s.starts_with("S6") => verdict(median <= 30.0, "(<=30 ms)".into()),
        (s, "fixtures-nosettle") if s.starts_with("S1") => {
            "the same library without the last look before hand-over".into()
        }
        (s, "floor") if s.starts_with("S7") => "a runtime per test, as before".into(),
        (s, "fixtures") if s.starts_with("S7") => {
            let saved = floor.unwrap_or(f64::NAN) - median;
            format!("{saved:.2} ms a test no longer spends on its runtime")
        }
        _ => String::new(),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(n) = args.iter().position(|a| a == "--s6-child").and_then(|i| args.get(i + 1)?.parse().ok()) {
        s6_child(n).await;
        return;
    }
    let reps: f64 = args.iter().position(|a| a == "--reps").and_then(|i| args.get(i + 1)?.parse().ok()).unwrap_or(1.0);
    let only: Option<Vec<String>> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(|s| s.split(',').map(str::to_owned).collect());
    let run = |s: &str| only.as_ref().is_none_or(|o| o.iter().any(|x| x.eq_ignore_ascii_case(s)));
    let n = |base: usize| ((base as f64 * reps).round() as usize).max(3);

    // S9's fronts, made and named in the configuration before anything reads it.
    let fronts = run("S9").then(remote::start);
    let mut rows: Vec<Row> = Vec::new();
    // Warm up: first container creation pays one-time costs for every contender alike.
    drop(s1(1).await);
    if run("S1") {
        rows.extend(s1(n(50)).await);
    }
    if run("S2") {
        let samples = ((3.0 * reps).round() as usize).max(3);
        rows.extend(s2(n(100), 2, samples).await);
        rows.extend(s2(n(100), 4, samples).await);
    }
    if run("S3") {
        rows.extend(s3(n(20)).await);
    }
    if run("S4") {
        rows.extend(s4(n(10)).await);
    }
    if run("S5") {
        rows.extend(s5(n(5)).await);
    }
    if run("S6") {
        rows.extend(s6(n(20)).await);
    }
    if run("S8") {
        rows.extend(s8(n(5)).await);
    }
    if run("S10") {
        rows.extend(s10(n(3)).await);
    }
    if run("S9") {
        rows.extend(remote::s9_one_test(n(30)).await);
        rows.extend(remote::s9_context(n(5)).await);
    }
    drop(fronts);
    if run("S7") {
        let n = n(100);
        rows.extend(tokio::task::spawn_blocking(move || s7(n)).await.expect("S7"));
    }

    // A contender that could not run a scenario here (testcontainers-rs builds only through
    // BuildKit, which Podman lacks) has no samples: said once, left out of the table.
    for (scenario, contender, _) in rows.iter().filter(|(_, _, v)| v.is_empty()) {
        println!("{scenario}: {contender} did not run on this engine");
    }
    rows.retain(|(_, _, v)| !v.is_empty());
    let engine = std::env::var("FIXTURES_BENCH_ENGINE").unwrap_or_else(|_| "docker".to_owned());
    println!("\nengine: {engine}");
    let medians: BTreeMap<(String, String), f64> =
        rows.iter().map(|(s, c, v)| ((s.clone(), c.clone()), quantile(v, 0.5))).collect();
    println!(
        "\n{:<30} {:<15} {:>5} {:>9} {:>17} {:>8} {:>8}  goal",
        "scenario", "contender", "n", "median", "p10..p90", "/floor", "/tc"
    );
    let mut json = Vec::new();
    for (scenario, contender, values) in &rows {
        let median = quantile(values, 0.5);
        let floor = medians.get(&(scenario.clone(), "floor".into())).copied();
        let tc = medians.get(&(scenario.clone(), "testcontainers".into())).copied();
        let fmt_ratio = |b: Option<f64>| b.map_or("-".to_owned(), |b| format!("{:.2}x", median / b));
        println!(
            "{scenario:<30} {contender:<15} {:>5} {median:>9.1} {:>8.1}..{:<8.1} {:>8} {:>8}  {}",
            values.len(),
            quantile(values, 0.1),
            quantile(values, 0.9),
            fmt_ratio(floor),
            fmt_ratio(tc),
            goal(scenario, contender, median, floor, tc)
        );
        json.push(serde_json::json!({
            "engine": engine, "scenario": scenario, "contender": contender, "n": values.len(), "median_ms": median,
            "p10_ms": quantile(values, 0.1), "p90_ms": quantile(values, 0.9), "samples_ms": values,
            "ratio_to_floor": floor.map(|f| median / f), "ratio_to_testcontainers": tc.map(|t| median / t),
        }));
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    let _ = std::fs::create_dir_all(&dir);
    let file = format!("results-{engine}.json");
    let _ = std::fs::write(dir.join(&file), serde_json::to_string_pretty(&json).unwrap_or_default());
    println!("\nwritten: target/bench/{file}");
}
