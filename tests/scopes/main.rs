//! Scopes, with a memcached-protocol server: a session container is shared by every
//! module of the test binary, a module container by the tests of one module.
//!
//! In Rust a test binary is the session and a module is the unit of `module` scope
//! (the reference's test files are the modules `scope_1` and `scope_2` here).
//!
//! This file runs under the library's harness (`harness = false`): a module container is
//! removed when the last test of its module that needs it has ended.

fixtures::main!();

mod scope_1;
mod scope_2;

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use fixtures::{Container, Env, Result, Scope, TestId, container, image};
use test_support::SERVICES_IMAGE;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub(crate) fn env() -> Env {
    test_support::base_env()
        .with("memcache_image", image(SERVICES_IMAGE))
        .with(
            "memcache_session",
            container().image("{memcache_image.id}").command(["memcached"]).port("11211/tcp").scope(Scope::Session),
        )
        .with(
            "memcache_module",
            container().image("{memcache_image.id}").command(["memcached"]).port("11211/tcp").scope(Scope::Module),
        )
}

/// Sends `request` and reads until `expect.len()` bytes came back.
pub(crate) async fn exchange(memcache: &Container, request: &[u8], expect: &[u8]) -> Result<()> {
    let mut sock = tokio::net::TcpStream::connect(memcache.addr("11211/tcp")?).await?;
    sock.write_all(request).await?;
    let mut got = vec![0u8; expect.len()];
    sock.read_exact(&mut got).await?;
    assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(expect));
    Ok(())
}

/// The session container every test saw: there must be one.
pub(crate) fn saw_session(c: &Container) {
    static SESSION: OnceLock<String> = OnceLock::new();
    assert_eq!(SESSION.get_or_init(|| c.id().to_owned()), c.id(), "one session container for the whole binary");
}

/// The module container each module saw: one per module, different across modules.
pub(crate) fn saw_module(module: &str, c: &Container) {
    static MODULES: OnceLock<Mutex<HashMap<String, String>>> = OnceLock::new();
    let mut seen = MODULES.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    assert_eq!(
        seen.entry(module.to_owned()).or_insert_with(|| c.id().to_owned()),
        c.id(),
        "one module container per module"
    );
    let others: Vec<_> = seen.iter().filter(|(m, _)| m.as_str() != module).map(|(_, id)| id.clone()).collect();
    assert!(!others.contains(&c.id().to_owned()), "modules do not share module containers");
}

/// The reference's sequence, step by step: module 1 stores a key in both containers; in
/// module 2 the session container still has it and the module container is new and empty.
///
/// The test asks for the session container itself: a session group ends when the last test
/// that planned it has ended, and the steps below, started by hand, plan nothing. Without it
/// the session container could end between two steps once the other modules' tests are done.
#[fixtures::test(env = env())]
async fn session_state_outlives_a_module_module_state_does_not(memcache_session: &Container) -> Result<()> {
    let env = env();
    let first = env.start(TestId::new("scopes::sequence_1", "test_session_1")).await?;
    let session = first.container("memcache_session").await?;
    assert_eq!(session.id(), memcache_session.id(), "one session container for the whole binary");
    exchange(&session, b"set mykey 0 600 4\r\ndata\r\nget mykey\r\n", b"STORED\r\nVALUE mykey 0 4\r\ndata\r\nEND\r\n")
        .await?;
    let module = first.container("memcache_module").await?;
    exchange(&module, b"set mykey 0 600 4\r\ndata\r\nget mykey\r\n", b"STORED\r\nVALUE mykey 0 4\r\ndata\r\nEND\r\n")
        .await?;
    first.finish().await.expect("torn down");

    let again = env.start(TestId::new("scopes::sequence_1", "test_module_2")).await?;
    let same_module = again.container("memcache_module").await?;
    assert_eq!(same_module.id(), module.id(), "the module's tests share its container");
    again.finish().await.expect("torn down");

    let second = env.start(TestId::new("scopes::sequence_2", "test_session_3")).await?;
    let session_again = second.container("memcache_session").await?;
    assert_eq!(session_again.id(), session.id());
    exchange(&session_again, b"get mykey\r\n", b"VALUE mykey 0 4\r\ndata\r\nEND\r\n").await?;
    let module_2 = second.container("memcache_module").await?;
    assert_ne!(module_2.id(), module.id(), "a new module gets a new container");
    exchange(&module_2, b"get mykey\r\n", b"END\r\n").await?;
    second.finish().await.expect("torn down");
    Ok(())
}
