//! The resolver-service example from a compose file (`examples/resolver-service/docker-compose.yml`):
//! each service is a fixture named after it, made for each test and removed after it, so these
//! tests run in parallel; a test changes a service as it would any fixture.
//!
//! Run: `cargo test --features compose --example compose_resolver_service` (images: `cargo xtask images`).

use std::net::SocketAddr;

use fixtures::compose::Compose;
use fixtures::{Container, Env, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const FILE: &str = "examples/resolver-service/docker-compose.yml";

fn env() -> Env {
    Compose::new(FILE).env()
}

/// `GET /` on the API server: the address it resolved example.com to. Asked again for up to
/// 20 s while the API cannot find `fakedns`: Podman 4.3's DNS server (aardvark-dns 1.4)
/// restarts its listeners whenever any network changes, refusing lookups meanwhile.
async fn resolved(apiserver: &Container) -> Result<String> {
    let addr: SocketAddr = apiserver.addr("8080/tcp")?;
    let mut body = String::new();
    for _ in 0..80 {
        let mut sock = TcpStream::connect(addr).await?;
        sock.write_all(b"GET / HTTP/1.0\r\nHost: api\r\n\r\n").await?;
        let mut raw = String::new();
        sock.read_to_string(&mut raw).await?;
        body = raw.split_once("\r\n\r\n").map(|(_, body)| body).unwrap_or_default().trim().to_owned();
        if !body.contains("DNS_SERVER") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    Ok(body)
}

#[fixtures::test(env = env())]
async fn the_api_resolves_through_the_fake_dns(apiserver: &Container) -> Result<()> {
    assert_eq!(resolved(apiserver).await?, r#"{"result": "127.0.0.1"}"#);
    Ok(())
}

// `${EXAMPLE_COM_A:-127.0.0.1}` in the file, given here as if set in the shell.
#[fixtures::test(env = Compose::new(FILE).var("EXAMPLE_COM_A", "192.168.192.168").env())]
async fn a_variable_of_the_file_is_given_by_the_test(apiserver: &Container) -> Result<()> {
    assert_eq!(resolved(apiserver).await?, r#"{"result": "192.168.192.168"}"#);
    Ok(())
}

// A service is changed like any fixture: here the fake DNS server's answer.
#[fixtures::test(env = env().edit_container("fakedns", |dns| dns.env("DNS_EXAMPLE_COM__A", "10.0.0.7")))]
async fn a_service_is_changed_like_any_fixture(apiserver: &Container) -> Result<()> {
    assert_eq!(resolved(apiserver).await?, r#"{"result": "10.0.0.7"}"#);
    Ok(())
}

// What Rust adds is a template: the API server is given the fake DNS server's address instead
// of its name, as the reference's example does.
#[fixtures::test(env = env().edit_container("apiserver", |api| api.env("DNS_SERVER", "{fakedns.ips.primary}")))]
async fn templates_reference_services(apiserver: &Container, fakedns: &Container) -> Result<()> {
    let dns = fakedns.ips().primary().expect("the fake DNS server has an address");
    assert_eq!(apiserver.env().get("DNS_SERVER"), Some(&dns.to_string()));
    assert_eq!(resolved(apiserver).await?, r#"{"result": "127.0.0.1"}"#);
    Ok(())
}

// The harness: each test above is a test of its own (`harness = false` in Cargo.toml).
fixtures::main!();
