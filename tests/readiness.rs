//! Readiness: the default check and every strategy, failing fast, timeouts, and
//! the reports a person reads when a fixture does not come up.

use std::time::{Duration, Instant};

use fixtures::spec::Healthcheck;
use fixtures::{Container, Env, ErrorKind, LogSource, Result, WaitFor, container, image};
use test_support::{BUSYBOX_IMAGE, SERVICES_IMAGE};

/// The readiness timeout of the containers that exit while starting: failing fast means well
/// before it, however busy the machine.
const EXIT_TIMEOUT: Duration = Duration::from_secs(60);

fn env() -> Env {
    test_support::base_env()
        .with("services", image(SERVICES_IMAGE))
        .with("busybox", image(BUSYBOX_IMAGE))
        .with(
            "slow_http",
            container().image("{services.id}").command(["http"]).env("LISTEN_DELAY_MS", "500").port("8080/tcp"),
        )
        .with(
            "slow_udp",
            container()
                .image("{services.id}")
                .command(["echo", "--udp"])
                .env("LISTEN_DELAY_MS", "500")
                .port("7000/udp"),
        )
        .with(
            "logs_twice",
            container()
                .image("{busybox.id}")
                .command(["sh", "-c", "sleep 0.3; echo 'ready 1' >&2; sleep 0.2; echo 'ready 2' >&2; exec sleep 300"])
                .stop_signal("SIGKILL")
                .wait_for_log_on("^ready \\d$", LogSource::Stderr, 2),
        )
        .with(
            "http_health",
            container()
                .image("{services.id}")
                .command(["http"])
                .env("LISTEN_DELAY_MS", "300")
                .port("8080/tcp")
                .wait_for_http("8080/tcp", "/status/204", 204),
        )
        .with(
            "healthy",
            container()
                .image("{busybox.id}")
                .command(["sh", "-c", "sleep 0.3; touch /ready; exec sleep 300"])
                .stop_signal("SIGKILL")
                .healthcheck(Healthcheck {
                    test: vec!["CMD".into(), "test".into(), "-f".into(), "/ready".into()],
                    interval: Some(Duration::from_millis(100)),
                    timeout: Some(Duration::from_secs(1)),
                    retries: Some(50),
                    start_period: None,
                })
                .wait_for_healthy(),
        )
        .with(
            "command",
            container()
                .image("{busybox.id}")
                .command(["sh", "-c", "sleep 0.3; touch /ready; exec sleep 300"])
                .stop_signal("SIGKILL")
                .wait_for_command(["test", "-f", "/ready"]),
        )
        .with(
            "either",
            container().image("{services.id}").command(["http"]).port("8080/tcp").wait_for(WaitFor::any([
                WaitFor::log("this line never comes").expect("a regex"),
                WaitFor::http("8080/tcp", "/health", 200),
            ])),
        )
        .with(
            "custom",
            container().image("{services.id}").command(["http"]).port("8080/tcp").ready_when(
                "GET / says hello",
                |c: Container| async move {
                    let client = test_support::HttpClient::new(c.addr("8080/tcp")?);
                    Ok(matches!(client.get("/").await, Ok((200, body)) if body == "hello\n"))
                },
            ),
        )
        .with(
            "exits_3",
            container()
                .image("{services.id}")
                .command([
                    "exit",
                    "--stdout",
                    "starting",
                    "--stderr",
                    "fatal: no config",
                    "--delay-ms",
                    "200",
                    "--code",
                    "3",
                ])
                .port("8080/tcp")
                .timeout(EXIT_TIMEOUT),
        )
        .with(
            "exits_3_while_logging",
            container()
                .image("{services.id}")
                // Two seconds: the report's snapshot shows the log wait it died in, which needs
                // the library to have seen it running first, on a busy machine too.
                .command(["exit", "--stderr", "fatal: no config", "--delay-ms", "2000", "--code", "3"])
                .no_port_wait()
                .wait_for_log("never printed")
                .timeout(EXIT_TIMEOUT),
        )
        .with("oom", container().image("{services.id}").command(["alloc"]).memory(24 << 20).port("8080/tcp"))
}

#[fixtures::test(env = env())]
async fn a_slow_listener_is_ready_only_once_it_listens(slow_http: &Container) -> Result<()> {
    // Connecting right away works: the port listened before the test started.
    tokio::net::TcpStream::connect(slow_http.addr("8080/tcp")?).await?;
    assert!(test_support::logs_come_to_contain(slow_http, "http: listening").await?);
    Ok(())
}

#[fixtures::test(env = env())]
async fn udp_ports_are_awaited_too(slow_udp: &Container) -> Result<()> {
    assert!(test_support::logs_come_to_contain(slow_udp, "listening on 0.0.0.0:7000/udp").await?);
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    sock.send_to(b"ping", slow_udp.addr("7000/udp")?).await?;
    let mut buf = [0u8; 16];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf)).await.expect("an answer")?;
    assert_eq!(&buf[..n], b"ping");
    Ok(())
}

#[fixtures::test(env = env())]
async fn log_lines_counted_on_one_stream(logs_twice: &Container) -> Result<()> {
    let (_, stderr) = logs_twice.logs_split().await?;
    assert!(stderr.contains("ready 2"), "both lines seen before ready: {stderr:?}");
    Ok(())
}

#[fixtures::test(env = env())]
async fn http_status_awaited(http_health: &Container) -> Result<()> {
    assert!(test_support::logs_come_to_contain(http_health, "GET /status/204").await?, "the probe was answered");
    Ok(())
}

#[fixtures::test(env = env())]
async fn healthcheck_awaited(healthy: &Container) -> Result<()> {
    assert_eq!(healthy.info().health, fixtures::runtime::Health::Healthy);
    Ok(())
}

#[fixtures::test(env = env())]
async fn command_awaited(command: &Container) -> Result<()> {
    assert_eq!(command.exec(["test", "-f", "/ready"]).await?.exit_code, 0);
    Ok(())
}

#[fixtures::test(env = env())]
async fn any_of_several_strategies(either: &Container) -> Result<()> {
    assert!(test_support::logs_come_to_contain(either, "GET /health").await?);
    Ok(())
}

#[fixtures::test(env = env())]
async fn custom_check_awaited(custom: &Container) -> Result<()> {
    assert!(test_support::logs_come_to_contain(custom, "GET / ").await?);
    Ok(())
}

async fn failure(node: &str) -> fixtures::Error {
    let t = env().start(format!("readiness::{node}")).await.expect("env");
    let err = t.container(node).await.expect_err("never ready");
    t.finish().await.expect("torn down");
    err
}

#[tokio::test]
async fn a_container_that_exits_while_starting_fails_at_once() {
    for node in ["exits_3", "exits_3_while_logging"] {
        let started = Instant::now();
        let err = failure(node).await;
        // It exits 0.2 s or 2 s after starting; the error comes at the exit, well before the timeout.
        assert!(
            started.elapsed() < EXIT_TIMEOUT / 3,
            "{node}: failed fast ({:?}; timeout {EXIT_TIMEOUT:?})",
            started.elapsed()
        );
        assert_eq!(err.kind(), ErrorKind::Exited, "{err:?}");
        assert_eq!(err.exit_code(), Some(3), "{err:?}");
        assert!(!err.oom_killed());
        assert!(err.logs_tail().unwrap_or_default().contains("fatal: no config"), "{err:?}");
        assert_eq!(err.fixture(), Some(node));
    }
}

#[tokio::test]
async fn an_oom_killed_container_is_reported_as_such() {
    let err = failure("oom").await;
    if test_support::rootless_on_cgroups_v1(test_support::runtime().await.as_ref()) {
        // No memory limit there: the container is refused rather than run without one.
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{err:?}");
        assert!(err.to_string().contains("cannot limit a container's memory"), "{err:?}");
        return;
    }
    assert_eq!(err.kind(), ErrorKind::Exited, "{err:?}");
    let engine = test_support::runtime().await.version().await.expect("version").engine;
    if engine == "podman" {
        // Podman 4.3.1 with conmon 2.1.6 (Debian bookworm) never sets OOMKilled: conmon writes
        // its marker where Podman does not look. What the engine does tell: killed by SIGKILL.
        assert_eq!(err.exit_code(), Some(137), "{err:?}");
    } else {
        assert!(err.oom_killed(), "{err:?}");
        assert!(format!("{err:?}").contains("OOM"), "{err:?}");
    }
}

/// Replaces what differs from run to run (ids, names, times) so a report can be compared.
fn redact(report: &str) -> String {
    let mut out = Vec::new();
    for line in report.lines() {
        let line = if let Some((head, _)) = line.split_once("container: ") {
            format!("{head}container: [id]")
        } else if let Some((head, _)) = line.split_once("image: ") {
            format!("{head}image: [image]")
        } else if let Some((head, _)) = line.split_once("runtime: ") {
            format!("{head}runtime: [runtime]")
        } else if let Some((head, _)) = line.split_once("waited: ") {
            format!("{head}waited: [time]")
        } else {
            line.to_owned()
        };
        let line = match (line.find("container `fx-"), line.find("` ")) {
            (Some(a), Some(b)) if b > a => format!("{}container `[name]{}", &line[..a], &line[b..]),
            _ => line,
        };
        out.push(line);
    }
    out.join("\n")
}

#[tokio::test]
async fn reports_say_what_happened() {
    // One line on one stream: the order of lines across stdout and stderr is not fixed.
    insta::assert_snapshot!("exited", redact(&format!("{:?}", failure("exits_3_while_logging").await)));
    let t = env()
        .with(
            "never",
            container()
                .image("{services.id}")
                .command(["http"])
                .env("LISTEN_DELAY_MS", "600000")
                .port("8080/tcp")
                .timeout(Duration::from_secs(1)),
        )
        .start("readiness::never")
        .await
        .expect("env");
    let err = t.container("never").await.expect_err("times out");
    t.finish().await.expect("torn down");
    insta::assert_snapshot!("timeout", redact(&format!("{err:?}")));
}
