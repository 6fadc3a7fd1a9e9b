//! Three services from a compose file (`examples/compose-app/docker-compose.yml`): a database
//! with a health check, a seed job that must complete successfully, and an app that starts
//! once both are done. Each test gets its own three containers and network, so the tests run
//! in parallel, which one compose project cannot do.
//!
//! Run: `cargo test --features compose --example compose_app` (images: `cargo xtask images`).

use std::net::SocketAddr;

use fixtures::compose::Compose;
use fixtures::{Container, ContainerStatus, Env, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn env() -> Env {
    Compose::new("examples/compose-app/docker-compose.yml").env()
}

/// Sends `request` and reads until the server closes.
async fn ask(addr: SocketAddr, request: &str) -> Result<String> {
    let mut sock = TcpStream::connect(addr).await?;
    sock.write_all(request.as_bytes()).await?;
    let mut answer = String::new();
    sock.read_to_string(&mut answer).await?;
    Ok(answer)
}

/// An engine time (`2026-12-03T12:00:00.123456789Z`) as nanoseconds within its day, enough to
/// order two times of one test.
fn nanos_of_day(time: &str) -> u128 {
    let clock = time.split_once('T').map(|(_, c)| c).unwrap_or(time);
    let clock = clock.trim_end_matches('Z').split(['+', '-']).next().unwrap_or(clock);
    let (hms, fraction) = clock.split_once('.').unwrap_or((clock, "0"));
    let seconds: u128 = hms.split(':').fold(0, |acc, part| acc * 60 + part.parse::<u128>().unwrap_or(0));
    let fraction: String = fraction.chars().chain(std::iter::repeat('0')).take(9).collect();
    seconds * 1_000_000_000 + fraction.parse::<u128>().unwrap_or(0)
}

#[fixtures::test(env = env())]
async fn the_app_finds_the_database_by_its_service_name(app: &Container, db: &Container) -> Result<()> {
    let db_ip = db.ips().primary().expect("the database has an address");
    // Asked again for up to 20 s while the lookup fails: Podman 4.3's DNS server (aardvark-dns
    // 1.4) restarts its listeners whenever any network changes, refusing lookups meanwhile.
    let mut answer = String::new();
    for _ in 0..80 {
        answer = ask(app.addr("8080/tcp")?, "GET / HTTP/1.0\r\nHost: app\r\n\r\n").await?;
        if answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(answer.ends_with(&format!(r#"{{"result": "{db_ip}"}}"#)), "{answer}");
    Ok(())
}

#[fixtures::test(env = env())]
async fn the_seed_completed_before_the_app_started(app: &Container, seed: &Container, db: &Container) -> Result<()> {
    let seed = seed.refresh().await?;
    assert_eq!((seed.status, seed.exit_code), (ContainerStatus::Exited, Some(0)), "{seed:?}");
    let app = app.refresh().await?;
    let (finished, started) = (seed.finished_at.expect("finished"), app.started_at.expect("started"));
    assert!(nanos_of_day(&finished) <= nanos_of_day(&started), "seed finished {finished}, app started {started}");
    let stored = ask(db.addr("11211/tcp")?, "get greeting\r\nquit\r\n").await?;
    assert_eq!(stored, "VALUE greeting 0 5\r\nhello\r\nEND\r\n");
    Ok(())
}

// The harness: each test above is a test of its own (`harness = false` in Cargo.toml).
fixtures::main!();
