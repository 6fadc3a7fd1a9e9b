//! Two services on a network of their own, talking by alias: a client container reaches an
//! echo server as `echo`, a name that exists only on that network.
//!
//! Run: `cargo test --example services_on_a_network` (images: `cargo xtask images`).

use fixtures::{Container, Env, Result, container, image, network};

fn env() -> Env {
    Env::new()
        .with("services", image("fixtures-test/services:latest"))
        .with("busybox", image("fixtures-test/busybox:latest"))
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
}

#[fixtures::test(env = env())]
async fn the_client_reaches_the_server_by_its_alias(client: &Container, server: &Container) -> Result<()> {
    let out = client.exec(["sh", "-c", "echo hello | nc -w 2 echo 7000"]).await?;
    assert_eq!((out.exit_code, out.stdout_text().as_str()), (0, "hello\n"), "{out:?}");
    assert!(server.ips().primary().is_some());
    Ok(())
}

// The harness: each test above is a test of its own (`harness = false` in Cargo.toml).
fixtures::main!();
