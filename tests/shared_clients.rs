//! Shared clients keep working: a session- or module-scoped client whose driver spawns a
//! background task (as nearly every async database or broker client does) answers in every
//! test that uses it, under the attribute, under `#[tokio::test]` and under the blocking API.
//!
//! Each group's tests take turns (the second waits for the first to end, and so on), so every
//! test but the first uses the client after the test that made it has ended, and its runtime
//! with it. Before the library had a runtime of its own, the client's task died with the
//! first test's runtime and every later request failed with "connection closed".

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fixtures::{Env, Result, Scope, TestId, container, fixture, image};
use test_support::{MemcachedClient, SERVICES_IMAGE};

fn env() -> Env {
    let memcached = || container().image("{services.id}").command(["memcached"]).port("11211/tcp");
    test_support::base_env()
        .with("services", image(SERVICES_IMAGE))
        .with("session_memcached", memcached().scope(Scope::Session))
        .with("module_memcached", memcached().scope(Scope::Module))
        .with(
            "session_client",
            fixture(["session_memcached"], |r| async move {
                Ok(MemcachedClient::connect(r.container("session_memcached")?.addr("11211/tcp")?).await?)
            })
            .scope(Scope::Session),
        )
        .with(
            "module_client",
            fixture(["module_memcached"], |r| async move {
                Ok(MemcachedClient::connect(r.container("module_memcached")?.addr("11211/tcp")?).await?)
            })
            .scope(Scope::Module),
        )
}

/// Tests of one group run one after another, in the order of their numbers: each waits until
/// the ones before it have ended (they start in name order, so they have started).
struct Turns {
    ended: AtomicUsize,
}

impl Turns {
    const fn new() -> Self {
        Turns { ended: AtomicUsize::new(0) }
    }

    /// Waits (a bounded while) until `turn - 1` tests of the group have ended. Under nextest
    /// each test has a process of its own and nothing is shared to wait for.
    fn wait(&self, turn: usize) {
        if std::env::var_os("NEXTEST_RUN_ID").is_some() {
            return;
        }
        let start = Instant::now();
        while self.ended.load(Ordering::SeqCst) + 1 < turn && start.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    async fn wait_async(&self, turn: usize) {
        let start = Instant::now();
        while std::env::var_os("NEXTEST_RUN_ID").is_none()
            && self.ended.load(Ordering::SeqCst) + 1 < turn
            && start.elapsed() < Duration::from_secs(60)
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn end(&self) {
        self.ended.fetch_add(1, Ordering::SeqCst);
    }
}

/// Ends a turn however the test ends.
struct EndsTurn(&'static Turns);

impl Drop for EndsTurn {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// What every test checks: the client is the one shared client of its scope, and its
/// background task answers (a set, a get of what an earlier test stored, a version).
async fn use_client(
    client: &MemcachedClient,
    group: &str,
    turn: usize,
    first_serial: &std::sync::OnceLock<u64>,
) -> Result<()> {
    let first = *first_serial.get_or_init(|| client.serial());
    assert_eq!(client.serial(), first, "{group}: every test of the scope gets the one shared client");
    assert!(client.version().await?.starts_with("VERSION "), "{group}: the client's task answers");
    client.set(&format!("{group}-{turn}"), "here").await?;
    if turn > 1 {
        let earlier = client.get(&format!("{group}-{}", turn - 1)).await?;
        assert_eq!(earlier.as_deref(), Some("here"), "{group}: the previous test's key is in the shared server");
    }
    Ok(())
}

/// Tests of one kind that use the client `$fixture`, in group `$group` (its turns, the serial
/// of its scope's one client).
macro_rules! attribute_tests {
    ($fixture:ident, $group:literal, $turns:path, $serial:path; $($name:ident = $turn:expr),*) => {$(
        #[fixtures::test(env = env())]
        async fn $name($fixture: &MemcachedClient) -> Result<()> {
            let _ends = EndsTurn(&$turns);
            $turns.wait_async($turn).await;
            use_client($fixture, $group, $turn, &$serial).await
        }
    )*};
}

macro_rules! tokio_tests {
    ($fixture:literal, $group:literal, $turns:path, $serial:path; $($name:ident = $turn:expr),*) => {$(
        #[tokio::test]
        async fn $name() -> Result<()> {
            let _ends = EndsTurn(&$turns);
            $turns.wait_async($turn).await;
            let t = env().start(TestId::new(module_path!(), stringify!($name))).await?;
            let client = t.shared::<MemcachedClient>($fixture).await?;
            use_client(&client, $group, $turn, &$serial).await?;
            drop(client);
            t.finish().await
        }
    )*};
}

macro_rules! blocking_tests {
    ($fixture:literal, $group:literal, $turns:path, $serial:path; $($name:ident = $turn:expr),*) => {$(
        #[test]
        fn $name() -> Result<()> {
            let _ends = EndsTurn(&$turns);
            $turns.wait($turn);
            let t = env().start_blocking(TestId::new(module_path!(), stringify!($name)))?;
            let client = t.shared::<MemcachedClient>($fixture)?;
            t.block_on(use_client(&client, $group, $turn, &$serial))?;
            drop(client);
            t.finish()
        }
    )*};
}

/// Session scope: the attribute, `#[tokio::test]` and the blocking API share one client.
static SESSION_SERIAL: std::sync::OnceLock<u64> = std::sync::OnceLock::new();

mod session_attribute {
    use super::*;
    static TURNS: Turns = Turns::new();
    attribute_tests!(session_client, "session-attribute", TURNS, SESSION_SERIAL; turn_1 = 1, turn_2 = 2, turn_3 = 3, turn_4 = 4);
}

mod session_tokio {
    use super::*;
    static TURNS: Turns = Turns::new();
    tokio_tests!("session_client", "session-tokio", TURNS, SESSION_SERIAL; turn_1 = 1, turn_2 = 2, turn_3 = 3, turn_4 = 4);
}

mod session_blocking {
    use super::*;
    static TURNS: Turns = Turns::new();
    blocking_tests!("session_client", "session-blocking", TURNS, SESSION_SERIAL; turn_1 = 1, turn_2 = 2, turn_3 = 3, turn_4 = 4);
}

/// Module scope: one client per module, whichever way its tests are written. The three kinds
/// of test share one module, so they share its client; names sort in turn order (libtest
/// starts tests in name order).
mod module_scope {
    use super::*;
    static TURNS: Turns = Turns::new();
    static SERIAL: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    attribute_tests!(module_client, "module", TURNS, SERIAL;
        turn_01_attribute = 1, turn_02_attribute = 2, turn_03_attribute = 3, turn_04_attribute = 4);
    tokio_tests!("module_client", "module", TURNS, SERIAL;
        turn_05_tokio = 5, turn_06_tokio = 6, turn_07_tokio = 7, turn_08_tokio = 8);
    blocking_tests!("module_client", "module", TURNS, SERIAL;
        turn_09_blocking = 9, turn_10_blocking = 10, turn_11_blocking = 11, turn_12_blocking = 12);
}

/// Handles used from runtimes that end: ten short-lived runtimes in a row (as ten
/// `#[tokio::test]`s are) each inspect and read the logs of one session container, and connect.
/// The engine client's connections are driven on the library's runtime, so none that a
/// finished test's runtime drove is handed to the next.
#[test]
fn handles_work_from_runtimes_that_end() {
    let env = test_support::base_env().with("services", image(SERVICES_IMAGE)).with(
        "target",
        container().image("{services.id}").command(["memcached"]).port("11211/tcp").scope(Scope::Session),
    );
    for round in 0..10 {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        let outcome: Result<()> = rt.block_on(async {
            let t = env.start(TestId::new(module_path!(), format!("round_{round}"))).await?;
            let target = t.container("target").await?;
            assert_eq!(target.status().await?, "running", "round {round}");
            assert!(target.logs().await?.contains("memcached: listening"), "round {round}");
            let client = MemcachedClient::connect(target.addr("11211/tcp")?).await?;
            assert!(client.version().await?.starts_with("VERSION"), "round {round}");
            t.finish().await
        });
        outcome.unwrap_or_else(|e| panic!("round {round}: {e:?}"));
        drop(rt);
    }
}
