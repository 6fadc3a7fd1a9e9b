//! The engine-fault suite: 48 tests over function, module and session fixtures, each talking
//! to its containers for a while. It is not part of the normal run (`test = false`):
//! `tests/faults.rs` runs it against a Podman service of its own, which it kills and starts
//! again mid-run.

use std::time::Duration;

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
        .with("module_svc", container().image("{services.id}").command(["echo"]).port("7000/tcp").scope(Scope::Module))
        .with("fn_svc", container().image("{services.id}").command(["echo"]).port("7000/tcp"))
}

/// Each container answers, over about a second.
pub(crate) async fn body(fn_svc: &Container, module_svc: &Container, session_svc: &Container) -> Result<()> {
    for round in 0..5u8 {
        for svc in [fn_svc, module_svc, session_svc] {
            let mut sock = tokio::net::TcpStream::connect(svc.addr("7000/tcp")?).await?;
            sock.write_all(&[round; 4]).await?;
            let mut buf = [0u8; 4];
            sock.read_exact(&mut buf).await?;
            assert_eq!(buf, [round; 4], "{} echoes", svc.name());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(fn_svc.status().await?, "running");
    Ok(())
}

macro_rules! faults {
    ($($name:ident),*) => {$(
        #[fixtures::test(env = super::env())]
        async fn $name(fn_svc: &Container, module_svc: &Container, session_svc: &Container) -> Result<()> {
            super::body(fn_svc, module_svc, session_svc).await
        }
    )*};
}

mod m0 {
    use fixtures::{Container, Result};
    faults!(t00, t01, t02, t03, t04, t05, t06, t07, t08, t09, t10, t11);
}

mod m1 {
    use fixtures::{Container, Result};
    faults!(t12, t13, t14, t15, t16, t17, t18, t19, t20, t21, t22, t23);
}

mod m2 {
    use fixtures::{Container, Result};
    faults!(t24, t25, t26, t27, t28, t29, t30, t31, t32, t33, t34, t35);
}

mod m3 {
    use fixtures::{Container, Result};
    faults!(t36, t37, t38, t39, t40, t41, t42, t43, t44, t45, t46, t47);
}

/// Never ready: its readiness wait must end at its timeout, however slow the engine.
mod slow {
    use std::time::Duration;

    use fixtures::{Container, container};

    #[fixtures::test(env = super::env().with(
        "never_ready",
        container()
            .image("{services.id}")
            .command(["http"])
            .env("LISTEN_DELAY_MS", "600000")
            .port("8080/tcp")
            .timeout(Duration::from_secs(2)),
    ))]
    async fn never_ready(never_ready: &Container) {
        unreachable!("{} is never ready", never_ready.name())
    }
}

/// Holds a container and never ends: `tests/chaos.rs` runs it under cargo-nextest with a
/// timeout, so that nextest kills its process group.
mod hang {
    use fixtures::Container;

    #[fixtures::test(env = super::env())]
    async fn forever(fn_svc: &Container) {
        eprintln!("holding {}", fn_svc.name());
        std::future::pending::<()>().await;
    }
}
