//! The pool suite: 16 tests over a session container and a container of their own. Not part
//! of the normal run (`test = false`): `tests/pool.rs` runs it under cargo-nextest (a process
//! per test) with a pool of two engines, and reads what each test wrote to
//! `FIXTURE_TEST_POOL_LOG`: the engine it ran on and the session container it was given.

use std::io::Write;

use fixtures::{Container, Env, Result, Scope, container, image};
use test_support::SERVICES_IMAGE;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub(crate) fn env() -> Env {
    test_support::base_env()
        .with("services", image(SERVICES_IMAGE))
        .with(
            "session_svc",
            container().image("{services.id}").command(["echo"]).port("7000/tcp").scope(Scope::Session),
        )
        .with("fn_svc", container().image("{services.id}").command(["echo"]).port("7000/tcp"))
}

pub(crate) async fn body(name: &str, fn_svc: &Container, session_svc: &Container) -> Result<()> {
    let engine = fn_svc.runtime();
    assert_eq!(engine.host(), session_svc.runtime().host(), "a test's fixtures all live on one engine");
    for svc in [fn_svc, session_svc] {
        let mut sock = tokio::net::TcpStream::connect(svc.addr("7000/tcp")?).await?;
        sock.write_all(b"pool").await?;
        let mut buf = [0u8; 4];
        sock.read_exact(&mut buf).await?;
        assert_eq!(&buf, b"pool");
    }
    let log = std::env::var("FIXTURE_TEST_POOL_LOG").expect("tests/pool.rs sets FIXTURE_TEST_POOL_LOG");
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
    // One write: the tests' processes append to the file at once, and `writeln!` on a file
    // writes each piece of the line by itself, so lines would interleave.
    let line = format!("{name} {} {} {}\n", engine.name(), engine.host(), session_svc.id());
    file.write_all(line.as_bytes())?;
    Ok(())
}

macro_rules! pooled {
    ($($name:ident),*) => {$(
        #[fixtures::test(env = env())]
        async fn $name(fn_svc: &Container, session_svc: &Container) -> Result<()> {
            body(stringify!($name), fn_svc, session_svc).await
        }
    )*};
}

pooled!(p00, p01, p02, p03, p04, p05, p06, p07, p08, p09, p10, p11, p12, p13, p14, p15);
