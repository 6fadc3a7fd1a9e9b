//! The teardown example suite, run by `tests/teardown.rs` on one thread (it fails on
//! purpose). Every fixture and test writes what happens to the file `TEARDOWN_LOG` names.

use std::io::Write;
use std::time::Duration;

use fixtures::{Env, Result, Scope, container, fixture, image};
use test_support::{MemcachedClient, SERVICES_IMAGE};

/// Appends a line to the log.
fn log(line: &str) {
    let path = std::env::var_os("TEARDOWN_LOG").expect("TEARDOWN_LOG names the log file");
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("the log opens");
    writeln!(file, "{line}").expect("the log is written");
}

/// A fixture that needs the client, with a teardown that says so.
#[derive(Debug)]
pub struct Outer;

fn env() -> Env {
    let memcached = || container().image("{services.id}").command(["memcached"]).port("11211/tcp");
    let client = |server: &'static str| {
        fixture([server], move |r| async move {
            let client = MemcachedClient::connect(r.container(server)?.addr("11211/tcp")?).await?;
            log(&format!("made {server} client"));
            Ok(client)
        })
        // The teardown still reaches the server: its container is removed only after.
        .teardown(move |client: MemcachedClient| async move {
            let answered = client.version().await.is_ok();
            log(&format!("teardown {server} client: server answered={answered}"));
            Ok(())
        })
    };
    test_support::base_env()
        .with("services", image(SERVICES_IMAGE))
        .with("memcached", memcached())
        .with("client", client("memcached"))
        .with("session_memcached", memcached().scope(Scope::Session))
        .with("session_client", client("session_memcached").scope(Scope::Session))
        .with(
            "outer",
            fixture(["client"], |_| async {
                log("made outer");
                Ok(Outer)
            })
            .teardown_sync(|_: Outer| {
                log("teardown outer");
                Ok(())
            }),
        )
        .with(
            "failing",
            fixture(["client"], |_| async {
                log("made failing");
                Ok(())
            })
            .teardown(|()| async {
                log("teardown failing");
                Err(std::io::Error::other("could not drop the schema").into())
            }),
        )
        .with(
            "hanging",
            fixture(["client"], |_| async {
                log("made hanging");
                Ok(())
            })
            .teardown(|()| async {
                log("teardown hanging");
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(())
            })
            .teardown_timeout(Duration::from_millis(300)),
        )
}

#[fixtures::test(env = env())]
async fn a_passes(outer: &Outer) {
    let _ = outer;
    log("body a_passes");
}

#[fixtures::test(env = env())]
async fn b_panics(outer: &Outer) {
    let _ = outer;
    log("body b_panics");
    panic!("b_panics panics on purpose");
}

#[fixtures::test(env = env())]
async fn c_teardown_fails(failing: &()) {
    let _ = failing;
    log("body c_teardown_fails");
}

#[fixtures::test(env = env())]
async fn d_teardown_hangs(hanging: &()) {
    let _ = hanging;
    log("body d_teardown_hangs");
}

#[fixtures::test(env = env())]
async fn e_uses_the_session_client(session_client: &MemcachedClient) -> Result<()> {
    session_client.version().await?;
    log("body e_uses_the_session_client");
    Ok(())
}
