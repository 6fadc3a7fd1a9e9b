//! A service built from the repository's Dockerfile, as its CI would test it: the image is
//! built once per test binary (images are session-scoped), each test gets a fresh container.
//!
//! Run: `cargo test --example built_from_dockerfile` (images: `cargo xtask images`).
//! `examples/resolver-service/api/Dockerfile` stands for your own; `image_or_build` would
//! take an image your CI already built (`IMAGE_ID=...`) instead.

use fixtures::{Container, Env, Result, build, container, value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn env() -> Env {
    Env::new()
        .with("api_image", build().path("examples/resolver-service/api"))
        .with("dns_image", build().path("examples/resolver-service/dns"))
        .with("answer", value("10.1.2.3"))
        .with("dns", container().image("{dns_image.id}").env("DNS_EXAMPLE_COM__A", "{answer}").expose("53/udp"))
        .with("api", container().image("{api_image.id}").port("8080/tcp").env("DNS_SERVER", "{dns.ips.primary}"))
}

#[fixtures::test(env = env())]
async fn the_built_service_answers(api: &Container) -> Result<()> {
    let mut sock = tokio::net::TcpStream::connect(api.addr("8080/tcp")?).await?;
    sock.write_all(b"GET / HTTP/1.0\r\nHost: api\r\n\r\n").await?;
    let mut raw = String::new();
    sock.read_to_string(&mut raw).await?;
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    assert!(raw.contains(r#"{"result": "10.1.2.3"}"#), "{raw}");
    Ok(())
}

// The harness: each test above is a test of its own (`harness = false` in Cargo.toml).
fixtures::main!();
