//! Module and session fixtures end with the last test that needs them, under libtest's
//! harness and the library's: `tests/lifetimes/suite.rs` (three modules of one module
//! container each, and a module whose two tests share a session container) is run on one
//! thread, and the engine's events must show at most one module container alive at a
//! time, each module's made once, and the session container gone before the module after
//! its users starts.

use std::process::Command;

use fixtures::runtime::{Event, EventAction, EventObject};

/// Runs the suite `target` on one thread; its output.
fn run_suite(target: &str) -> String {
    let out = Command::new(test_support::test_binary(target))
        .arg("--test-threads=1")
        // A run of its own: session fixtures of a run shared with other processes stay to its end.
        .env_remove("NEXTEST_RUN_ID")
        .env_remove("FIXTURE_RUN_ID")
        .output()
        .expect("the suite runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{target} passed:\n{}", test_support::quoted(&text));
    assert!(text.contains("11 passed; 0 failed"), "{target} ran its 11 tests:\n{}", test_support::quoted(&text));
    text
}

/// What the events of one run say about its fixtures' containers.
#[derive(Debug, Default)]
struct Lives {
    /// The most module containers alive (started, not yet dead) at one time.
    most_modules_alive: usize,
    module_starts: Vec<String>,
    session_starts: Vec<String>,
    /// Where in the run the session container died, and where each module container started.
    session_died_at: Option<usize>,
    module_started_at: Vec<usize>,
}

fn lives(events: &[Event]) -> Lives {
    let mut lives = Lives::default();
    let mut alive_modules = std::collections::BTreeSet::new();
    for (at, e) in events.iter().enumerate().filter(|(_, e)| e.object == EventObject::Container) {
        let name = e.attributes.get("name").map(String::as_str).unwrap_or_default();
        let module = name.starts_with("fx-per_module-");
        let session = name.starts_with("fx-per_session-");
        match (&e.action, module, session) {
            (EventAction::Start, true, _) => {
                alive_modules.insert(e.id.clone());
                lives.most_modules_alive = lives.most_modules_alive.max(alive_modules.len());
                lives.module_starts.push(e.id.clone());
                lives.module_started_at.push(at);
            }
            (EventAction::Die | EventAction::Destroy, true, _) => {
                alive_modules.remove(&e.id);
            }
            (EventAction::Start, _, true) => lives.session_starts.push(e.id.clone()),
            (EventAction::Die, _, true) => lives.session_died_at = lives.session_died_at.or(Some(at)),
            _ => {}
        }
    }
    lives
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_fixtures_end_with_their_last_test() {
    let rt = test_support::runtime().await;
    let mut events = test_support::EventLog::start(rt, &[("fixtures.managed", "true")]);
    for target in ["lifetimes_suite", "lifetimes_harness"] {
        let output = tokio::task::spawn_blocking(move || run_suite(target)).await.expect("joined");
        let lives = lives(&events.until_now().await);
        let context = format!("{target}: {lives:#?}\n{}", test_support::quoted(&output));
        assert_eq!(lives.module_starts.len(), 3, "one container per module: {context}");
        assert_eq!(lives.most_modules_alive, 1, "a module's container is gone before the next starts: {context}");
        assert_eq!(lives.session_starts.len(), 1, "one session container: {context}");
        let gamma_started = lives.module_started_at.get(2).copied().unwrap_or(0);
        assert!(
            lives.session_died_at.is_some_and(|died| died < gamma_started),
            "the session container ended with its last test, before `gamma` started: {context}"
        );
    }
}
