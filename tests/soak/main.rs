//! The soak suite: 1000 tests over function, module and session fixtures, some of which break
//! their own container mid-test: 10% kill it, 5% disconnect it from its network. Not part of
//! any test run (`test = false`): `cargo xtask soak` runs it against a Podman service of its
//! own, which it also restarts once mid-run, then checks that each failure reports its cause
//! and that nothing is left.
//!
//! Each test appends `<n> <fault> <unix ms>` to `SOAK_LOG` when its body starts, and talks to
//! its containers until three rounds after its fault was done.

use std::io::Write;
use std::time::Duration;

use fixtures::{Container, Env, Network, Result, Scope, container, image, network};
use test_support::SERVICES_IMAGE;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn env() -> Env {
    test_support::base_env()
        .with("services", image(SERVICES_IMAGE))
        .with(
            "session_svc",
            container().image("{services.id}").command(["echo"]).port("7000/tcp").scope(Scope::Session),
        )
        .with("module_svc", container().image("{services.id}").command(["echo"]).port("7000/tcp").scope(Scope::Module))
        .with("fn_net", network())
        .with("fn_svc", container().image("{services.id}").command(["echo"]).port("7000/tcp").network("{fn_net.name}"))
}

/// What test `n` does to its own container: the same for every run with the same `SOAK_SEED`.
fn fault(n: u32) -> &'static str {
    let seed: u64 = std::env::var("SOAK_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    // splitmix64 of (seed, n): spread evenly over 0..100.
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(n);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    match (x ^ (x >> 31)) % 100 {
        0..10 => "kill",
        10..15 => "disconnect",
        _ => "none",
    }
}

async fn echo(svc: &Container, round: u8) -> Result<()> {
    let talk = async {
        let mut sock = tokio::net::TcpStream::connect(svc.addr("7000/tcp")?).await?;
        sock.write_all(&[round; 4]).await?;
        let mut buf = [0u8; 4];
        sock.read_exact(&mut buf).await?;
        assert_eq!(buf, [round; 4], "{} echoes", svc.name());
        Ok(())
    };
    match tokio::time::timeout(Duration::from_secs(2), talk).await {
        Ok(done) => done,
        Err(_) => {
            Err(fixtures::Error::new(fixtures::ErrorKind::Timeout, format!("{} did not echo within 2 s", svc.name())))
        }
    }
}

async fn body(
    n: u32,
    fn_svc: &Container,
    fn_net: &Network,
    module_svc: &Container,
    session_svc: &Container,
) -> Result<()> {
    let fault = fault(n);
    if let Some(path) = std::env::var_os("SOAK_LOG") {
        let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let mut log = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        log.write_all(format!("{n} {fault} {ms}\n").as_bytes())?;
    }
    // The fault comes 50 to 250 ms in, while the test talks to its containers.
    let delay = Duration::from_millis(50 + u64::from(n * 37 % 200));
    let (svc, net) = (fn_svc.clone(), fn_net.name().to_owned());
    let injected = tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        match fault {
            "kill" => svc.kill("SIGKILL").await,
            "disconnect" => svc.disconnect(&net).await,
            _ => Ok(()),
        }
    });
    // Until three rounds after the fault is done: the engine may take its time to do it.
    let mut after = 0;
    for i in 0u32.. {
        let round = (i % 200) as u8;
        echo(fn_svc, round).await?;
        echo(module_svc, round).await?;
        echo(session_svc, round).await?;
        if injected.is_finished() {
            after += 1;
            if after > 3 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    injected.await.expect("the injector ran")?;
    Ok(())
}

macro_rules! soak {
    ($module:ident: $($name:ident = $n:literal),*) => {
        mod $module {
            use fixtures::{Container, Network, Result};
            $(
                #[fixtures::test(env = super::env())]
                async fn $name(fn_svc: &Container, fn_net: &Network, module_svc: &Container, session_svc: &Container) -> Result<()> {
                    super::body($n, fn_svc, fn_net, module_svc, session_svc).await
                }
            )*
        }
    };
}

include!("cases.rs");
