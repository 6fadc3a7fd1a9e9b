//! Reuse mode (`FIXTURE_REUSE=1`): named fixtures outlive a run and the next run takes them
//! up again without creating anything; a changed spec replaces exactly that fixture; objects
//! with the wanted names that this library did not make are refused and left untouched.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use fixtures::runtime::{Event, EventAction, EventObject};
use fixtures::spec::{ContainerSpec, NetworkSpec, VolumeSpec};
use fixtures::{ErrorKind, Runtime};

/// Runs one test of the suite in reuse mode; returns success and output.
async fn run(binary: &Path, test: &str, version: &str) -> (bool, String) {
    let binary = binary.to_path_buf();
    let (test, version) = (test.to_owned(), version.to_owned());
    tokio::task::spawn_blocking(move || {
        let out = Command::new(binary)
            .args([test.as_str(), "--exact"])
            .env("FIXTURE_REUSE", "1")
            .env("REUSE_VERSION", version)
            .output()
            .expect("suite runs");
        (
            out.status.success(),
            test_support::quoted(&format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )),
        )
    })
    .await
    .expect("joined")
}

/// The ids of the containers created in `events`.
fn creations(events: Vec<Event>) -> Vec<String> {
    events
        .into_iter()
        .filter(|e| e.object == EventObject::Container && e.action == EventAction::Create)
        .map(|e| e.id)
        .collect()
}

async fn id_of(rt: &Arc<dyn Runtime>, name: &str) -> String {
    rt.inspect_container(name).await.unwrap_or_else(|e| panic!("{name}: {e:?}")).id
}

async fn remove_everything(rt: &Arc<dyn Runtime>) {
    for name in ["fx-reuse-db", "fx-reuse-web", "fx-reuse-decoy", "fx-reuse-net-user", "fx-reuse-vol-user"] {
        let _ = rt.remove_container(name, true).await;
    }
    for name in ["fx-reuse-net", "fx-reuse-decoy-net"] {
        let _ = rt.remove_network(name).await;
    }
    for name in ["fx-reuse-vol", "fx-reuse-decoy-vol"] {
        let _ = rt.remove_volume(name, true).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reuse_mode() {
    let rt = test_support::runtime().await;
    let binary = test_support::test_binary("reuse_suite");
    remove_everything(&rt).await;

    // First run: everything is created.
    let (ok, out) = run(&binary, "uses_reused_fixtures", "1").await;
    assert!(ok, "{out}");
    let db = id_of(&rt, "fx-reuse-db").await;
    let web = id_of(&rt, "fx-reuse-web").await;
    let net = rt.inspect_network("fx-reuse-net").await.expect("kept").id;
    assert_eq!(rt.inspect_volume("fx-reuse-vol").await.expect("kept").labels["fixtures.reuse"], "true");

    // Second run, nothing changed: no container is created.
    let mut events = test_support::EventLog::start(rt.clone(), &[("fixtures.reuse", "true")]);
    events.until_now().await; // what the stream replays of the first run
    let (ok, out) = run(&binary, "uses_reused_fixtures", "1").await;
    assert!(ok, "{out}");
    assert_eq!(creations(events.until_now().await), Vec::<String>::new(), "the second run created no container");
    assert_eq!(id_of(&rt, "fx-reuse-db").await, db);
    assert_eq!(id_of(&rt, "fx-reuse-web").await, web);
    assert_eq!(rt.inspect_network("fx-reuse-net").await.expect("kept").id, net);

    // One node's spec changes: exactly that one is replaced.
    let (ok, out) = run(&binary, "uses_reused_fixtures", "2").await;
    assert!(ok, "{out}");
    let new_web = id_of(&rt, "fx-reuse-web").await;
    assert_ne!(new_web, web, "the stale one was replaced");
    assert_eq!(creations(events.until_now().await), [new_web], "only the changed container was created");
    assert_eq!(id_of(&rt, "fx-reuse-db").await, db, "the unchanged one was kept");
    drop(events);

    // Decoys with the wanted names, not ours: refused, untouched.
    let decoy = rt
        .create_container(&ContainerSpec {
            name: Some("fx-reuse-decoy".into()),
            image: test_support::SERVICES_IMAGE.into(),
            command: Some(vec!["sleep".into()]),
            ..ContainerSpec::default()
        })
        .await
        .expect("decoy container");
    let decoy_net = rt
        .create_network(&NetworkSpec { name: "fx-reuse-decoy-net".into(), ..NetworkSpec::default() })
        .await
        .expect("decoy network");
    rt.create_volume(&VolumeSpec { name: "fx-reuse-decoy-vol".into(), ..VolumeSpec::default() })
        .await
        .expect("decoy volume");
    for (test, kind, name) in [
        ("decoy_container", "container", "fx-reuse-decoy"),
        ("decoy_network", "network", "fx-reuse-decoy-net"),
        ("decoy_volume", "volume", "fx-reuse-decoy-vol"),
    ] {
        let (ok, out) = run(&binary, test, "1").await;
        assert!(!ok, "{test} must fail");
        let why = format!(
            "a {kind} named `{name}` exists that this library did not create (it has no `fixtures.managed` label); it is left alone"
        );
        assert!(out.contains(&why), "{test}: {out}");
    }
    assert_eq!(id_of(&rt, "fx-reuse-decoy").await, decoy, "the decoy container is untouched");
    assert_eq!(rt.inspect_network("fx-reuse-decoy-net").await.expect("untouched").id, decoy_net);
    assert!(rt.inspect_volume("fx-reuse-decoy-vol").await.is_ok());

    // An unnamed fixture cannot be reused.
    let (ok, out) = run(&binary, "unnamed_fixture", "1").await;
    assert!(!ok);
    assert!(out.contains("fixture `unnamed`: reuse mode is on, but this container has no name"), "{out}");

    remove_everything(&rt).await;
    let left = rt.inspect_container("fx-reuse-db").await.expect_err("removed");
    assert_eq!(left.kind(), ErrorKind::NotFound);
}
