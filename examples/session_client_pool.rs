//! A client pool shared by every test of the binary: one database container and one pool of
//! connections for the whole session, made by the first test that needs them, closed by a
//! teardown after the last one, before the container is removed.
//!
//! Run: `cargo test --example session_client_pool` (images: `cargo xtask images`).

use std::sync::atomic::{AtomicUsize, Ordering};

use fixtures::{Env, Result, Scope, container, fixture, image};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

/// Connections to the database, handed out in turn. Not `Clone`: tests borrow it.
struct Pool {
    connections: Vec<Mutex<BufReader<TcpStream>>>,
    next: AtomicUsize,
}

impl Pool {
    async fn version(&self) -> Result<String> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.connections.len();
        let mut conn = self.connections[i].lock().await;
        conn.get_mut().write_all(b"version\r\n").await?;
        let mut line = String::new();
        conn.read_line(&mut line).await?;
        Ok(line.trim_end().to_owned())
    }
}

fn env() -> Env {
    Env::new()
        .with("services", image("fixtures-test/services:latest"))
        .with("db", container().image("{services.id}").command(["memcached"]).port("11211/tcp").scope(Scope::Session))
        .with(
            "pool",
            fixture(["db"], |r| async move {
                let addr = r.container("db")?.addr("11211/tcp")?;
                let mut connections = Vec::new();
                for _ in 0..4 {
                    connections.push(Mutex::new(BufReader::new(TcpStream::connect(addr).await?)));
                }
                Ok(Pool { connections, next: AtomicUsize::new(0) })
            })
            .scope(Scope::Session)
            .teardown(|pool: Pool| async move {
                for conn in pool.connections {
                    conn.into_inner().get_mut().write_all(b"quit\r\n").await?;
                }
                Ok(())
            }),
        )
}

#[fixtures::test(env = env())]
async fn one_test_uses_the_pool(pool: &Pool) -> Result<()> {
    assert!(pool.version().await?.starts_with("VERSION"));
    Ok(())
}

#[fixtures::test(env = env())]
async fn another_test_uses_the_same_pool(pool: &Pool) -> Result<()> {
    for _ in 0..8 {
        assert!(pool.version().await?.starts_with("VERSION"));
    }
    Ok(())
}

// The harness: each test above is a test of its own (`harness = false` in Cargo.toml).
fixtures::main!();
