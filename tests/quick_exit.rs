//! No dead container is handed over as ready: a container whose main process exits within
//! milliseconds of its start (no ports, no wait strategy: nothing else to wait for) fails its
//! fixture every time, with its exit code and last log lines.

use fixtures::{Env, ErrorKind, TestId, container, image};
use test_support::BUSYBOX_IMAGE;

fn env() -> Env {
    test_support::base_env()
        .with("busybox", image(BUSYBOX_IMAGE))
        .with("quick", container().image("{busybox.id}").command(["sh", "-c", "echo boom >&2; exit 3"]))
}

/// How many times the container is made.
const TRIES: usize = 100;
/// How many tries run at once.
const AT_ONCE: usize = 4;

#[tokio::test]
async fn a_container_that_exits_at_once_fails_its_fixture_every_time() {
    let env = env();
    let mut handed_over = Vec::new();
    let mut tries = 0;
    while tries < TRIES {
        let batch = (tries..(tries + AT_ONCE).min(TRIES)).map(|i| {
            let env = env.clone();
            async move {
                let t = env.start(TestId::new(module_path!(), format!("try_{i}"))).await.expect("the environment");
                let got = t.container("quick").await;
                t.finish().await.expect("torn down");
                (i, got)
            }
        });
        for (i, got) in futures_util::future::join_all(batch).await {
            match got {
                Ok(c) => handed_over.push(format!("try {i}: container {} was handed over as ready", c.name())),
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::Exited, "try {i}: {e:?}");
                    assert_eq!(e.exit_code(), Some(3), "try {i}: {e:?}");
                    assert_eq!(e.fixture(), Some("quick"), "try {i}: {e:?}");
                    assert!(e.logs_tail().is_some_and(|l| l.contains("boom")), "try {i}: the last lines: {e:?}");
                }
            }
        }
        tries += AT_ONCE;
    }
    assert!(
        handed_over.is_empty(),
        "{} of {TRIES} tries got a dead container:\n{}",
        handed_over.len(),
        handed_over.join("\n")
    );
}
