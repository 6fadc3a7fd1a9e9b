//! The remote subset: what a suite does with an engine on another host. Not part of the normal
//! run (`test = false`): `tests/remote.rs` runs it through a TLS front and over ssh, with
//! `FIXTURE_TEST_REMOTE_IP` the address the engine's host has there.
//!
//! Published ports are reached at the engine's host, readiness connects to them (no `/proc`),
//! a build context goes up compressed, and containers, networks, volumes and shared fixtures
//! behave as on a local engine.

use std::net::IpAddr;
use std::time::Duration;

use fixtures::{Container, Env, Image, Result, Scope, build, container, image, network, value, volume};
use test_support::{BUSYBOX_IMAGE, HttpClient, SERVICES_IMAGE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn env() -> Env {
    test_support::base_env()
        .with("services", image(SERVICES_IMAGE))
        .with("busybox", image(BUSYBOX_IMAGE))
        .with(
            "web",
            container().image("{services.id}").command(["http"]).env("LISTEN_DELAY_MS", "500").port("8080/tcp"),
        )
        .with(
            "shared_echo",
            container().image("{services.id}").command(["echo"]).port("7000/tcp").scope(Scope::Session),
        )
        .with("net", network())
        .with(
            "server",
            container()
                .image("{services.id}")
                .command(["echo"])
                .expose("7000/tcp")
                .network_with_aliases("{net.name}", ["echo"]),
        )
        .with(
            "client",
            container().image("{busybox.id}").command(["sleep", "300"]).stop_signal("SIGKILL").network("{net.name}"),
        )
        .with("data", volume())
        .with(
            "writer",
            container()
                .image("{busybox.id}")
                .command(["sleep", "300"])
                .stop_signal("SIGKILL")
                .volume("{data.name}", "/data"),
        )
        // The reference's build example: two images from their folders, one service asking
        // the other by its address.
        .with("api_image", build().path("examples/resolver-service/api"))
        .with("dns_image", build().path("examples/resolver-service/dns"))
        .with("answer", value("10.1.2.3"))
        .with("dns", container().image("{dns_image.id}").env("DNS_EXAMPLE_COM__A", "{answer}").expose("53/udp"))
        .with("api", container().image("{api_image.id}").port("8080/tcp").env("DNS_SERVER", "{dns.ips.primary}"))
        // Published, but nothing ever listens: readiness must see through the engine's proxy.
        .with(
            "deaf",
            container()
                .image("{services.id}")
                .command(["sleep"])
                .port("8080/tcp")
                // Long enough to get past the container's start to the port, however busy the
                // machine (3 s was seen to end while it was still starting).
                .timeout(Duration::from_secs(10)),
        )
}

fn engine_host() -> IpAddr {
    std::env::var("FIXTURE_TEST_REMOTE_IP")
        .expect("FIXTURE_TEST_REMOTE_IP: tests/remote.rs runs this suite")
        .parse()
        .expect("an address")
}

#[fixtures::test(env = env())]
async fn published_ports_are_reached_at_the_engines_host(web: &Container) -> Result<()> {
    let addr = web.addr("8080/tcp")?;
    assert_eq!(addr.ip(), engine_host(), "the engine's host, not this machine's loopback");
    let (status, body) = HttpClient::new(addr).get("/").await?;
    assert_eq!((status, body.as_str()), (200, "hello\n"));
    Ok(())
}

async fn echoes(svc: &Container) -> Result<()> {
    let mut sock = tokio::net::TcpStream::connect(svc.addr("7000/tcp")?).await?;
    sock.write_all(b"ping").await?;
    let mut buf = [0u8; 4];
    sock.read_exact(&mut buf).await?;
    assert_eq!(&buf, b"ping");
    Ok(())
}

#[fixtures::test(env = env())]
async fn a_session_fixture_is_shared(shared_echo: &Container) -> Result<()> {
    echoes(shared_echo).await
}

#[fixtures::test(env = env())]
async fn a_session_fixture_is_shared_again(shared_echo: &Container) -> Result<()> {
    echoes(shared_echo).await
}

#[fixtures::test(env = env())]
async fn containers_reach_each_other_by_alias(client: &Container, server: &Container) -> Result<()> {
    let out = client.exec(["sh", "-c", "echo hello | nc -w 2 echo 7000"]).await?;
    assert_eq!((out.exit_code, out.stdout_text().as_str()), (0, "hello\n"), "{out:?}");
    assert!(server.logs().await?.contains("listening"), "its logs come back too");
    Ok(())
}

#[fixtures::test(env = env())]
async fn a_volume_keeps_what_is_written(writer: &Container) -> Result<()> {
    let out = writer.exec(["sh", "-c", "echo kept > /data/file && cat /data/file"]).await?;
    assert_eq!(out.stdout_text(), "kept\n", "{out:?}");
    Ok(())
}

#[fixtures::test(env = env())]
async fn an_image_built_from_a_folder_runs(api: &Container, api_image: &Image) -> Result<()> {
    assert!(!api_image.id().is_empty());
    let (status, body) = HttpClient::new(api.addr("8080/tcp")?).get("/").await?;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#"{"result": "10.1.2.3"}"#), "{body}");
    Ok(())
}

#[tokio::test]
async fn a_port_nobody_listens_on_is_not_ready() {
    let t = env().start("remote::deaf").await.expect("env");
    let err = t.container("deaf").await.expect_err("never ready");
    t.finish().await.expect("torn down");
    assert_eq!(err.kind(), fixtures::ErrorKind::Timeout, "{err:?}");
    assert!(format!("{err:?}").contains("port 8080/tcp to listen"), "{err:?}");
}
