//! A service and its database, on one network: the service finds the database by its alias
//! (`db`), and the test reaches both, through a client fixture for the database.
//!
//! Run: `cargo test --example service_and_database` (images: `cargo xtask images`). The
//! images here are the repository's test services: `http` stands for your service and
//! `memcached` for its database; put your own image names in their place.

use std::net::SocketAddr;

use fixtures::{Container, Env, Result, container, fixture, image, network};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn env() -> Env {
    Env::new()
        .with("services", image("fixtures-test/services:latest"))
        .with("backend", network())
        .with(
            "db",
            container()
                .image("{services.id}")
                .command(["memcached"])
                .port("11211/tcp")
                .network_with_aliases("{backend.name}", ["db"]),
        )
        .with(
            "app",
            container()
                .image("{services.id}")
                .command(["http"])
                .env("DATABASE_URL", "memcached://db:11211")
                .network("{backend.name}")
                .port("8080/tcp"),
        )
        .with("db_client", fixture(["db"], |r| async move { Ok(Db { addr: r.container("db")?.addr("11211/tcp")? }) }))
}

/// A client of the database (memcached's text protocol, just enough of it).
struct Db {
    addr: SocketAddr,
}

impl Db {
    async fn ask(&self, request: &str) -> Result<String> {
        let mut sock = TcpStream::connect(self.addr).await?;
        sock.write_all(format!("{request}quit\r\n").as_bytes()).await?;
        let mut answer = String::new();
        sock.read_to_string(&mut answer).await?;
        Ok(answer)
    }

    async fn set(&self, key: &str, value: &str) -> Result<()> {
        let answer = self.ask(&format!("set {key} 0 0 {}\r\n{value}\r\n", value.len())).await?;
        assert_eq!(answer, "STORED\r\n");
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<String>> {
        let answer = self.ask(&format!("get {key}\r\n")).await?;
        Ok(answer.lines().nth(1).filter(|_| answer.starts_with("VALUE")).map(str::to_owned))
    }
}

/// `GET path` on `addr`: the body.
async fn get(addr: SocketAddr, path: &str) -> Result<String> {
    let mut sock = TcpStream::connect(addr).await?;
    sock.write_all(format!("GET {path} HTTP/1.0\r\nHost: app\r\n\r\n").as_bytes()).await?;
    let mut raw = String::new();
    sock.read_to_string(&mut raw).await?;
    Ok(raw.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default())
}

#[fixtures::test(env = env())]
async fn the_service_is_told_where_its_database_is(app: &Container, db: &Container) -> Result<()> {
    assert_eq!(get(app.addr("8080/tcp")?, "/env/DATABASE_URL").await?.trim(), "memcached://db:11211");
    assert!(db.ips().primary().is_some(), "the database has an address on the network");
    Ok(())
}

#[fixtures::test(env = env())]
async fn what_is_written_is_read_back(db_client: &Db) -> Result<()> {
    db_client.set("greeting", "hello").await?;
    assert_eq!(db_client.get("greeting").await?.as_deref(), Some("hello"));
    assert_eq!(db_client.get("missing").await?, None);
    Ok(())
}

// The harness: each test above is a test of its own (`harness = false` in Cargo.toml).
fixtures::main!();
