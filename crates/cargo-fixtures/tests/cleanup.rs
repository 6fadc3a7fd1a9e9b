//! `cargo fixtures ls | clean` on the engine under test: it lists and removes what carries the
//! library's labels, filtered by run and by age, removes nothing on a dry run, and never
//! touches an object without `fixtures.managed`.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use fixtures_core::spec::{LabelFilter, NetworkSpec};
use fixtures_core::{Result, labels};
use test_support::{BUSYBOX_IMAGE, Scratch};

/// `cargo fixtures <args>` against the runtime the suite tests: its output and success.
fn cargo_fixtures(args: &[&str]) -> (String, bool) {
    let runtime = std::env::var("FIXTURE_RUNTIME").unwrap_or_else(|_| "docker".to_owned());
    let out = Command::new(env!("CARGO_BIN_EXE_cargo-fixtures"))
        .arg("fixtures")
        .args(args)
        .args(["--runtime", &runtime])
        .output()
        .expect("the command runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (text, out.status.success())
}

/// `<host>:<pid>:<start time>`, as the library labels an owner: this process (alive), or a
/// pid above the kernel's limit (2^22, so gone).
fn owner(alive: bool) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    if !alive {
        return format!("{}:4194305:1", host.trim());
    }
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let start = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(19)).unwrap_or("0").to_owned();
    format!("{}:{}:{start}", host.trim(), std::process::id())
}

#[tokio::test]
async fn lists_and_removes_only_what_is_ours() -> Result<()> {
    let scratch = Scratch::new(test_support::runtime().await, "cargo-fixtures");
    let rt = scratch.runtime().clone();
    let run = scratch.filter().labels[labels::RUN].clone().unwrap_or_default();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let sleeping = |what: &str, created: u64, alive: bool| {
        let mut spec = scratch.container(what, BUSYBOX_IMAGE);
        spec.command = Some(vec!["sleep".into(), "300".into()]);
        spec.stop_signal = Some("SIGKILL".into());
        spec.labels.insert(labels::CREATED.into(), created.to_string());
        spec.labels.insert(labels::OWNER.into(), owner(alive));
        spec
    };
    scratch.start(&sleeping("old", now - 7200, false)).await?;
    scratch.start(&sleeping("new", now, false)).await?;
    scratch.start(&sleeping("held", now - 7200, true)).await?;
    let mut network = NetworkSpec { name: scratch.name("net"), labels: scratch.labels(), ..NetworkSpec::default() };
    network.labels.insert(labels::CREATED.into(), now.to_string());
    network.labels.insert(labels::OWNER.into(), owner(false));
    rt.create_network(&network).await?;
    // The same run label, but not ours: never touched.
    let mut foreign = sleeping("foreign", now - 7200, false);
    foreign.labels.remove(labels::MANAGED);
    let foreign_id = scratch.start(&foreign).await?;

    let names = |list: Vec<fixtures_core::runtime::ContainerSummary>| -> Vec<String> {
        let mut n: Vec<String> =
            list.into_iter().filter_map(|c| c.names.first().map(|n| n.trim_start_matches('/').to_owned())).collect();
        n.sort();
        n
    };
    let left = || async { rt.list_containers(&LabelFilter::eq(labels::RUN, run.clone())).await.map(names) };

    let (out, ok) = cargo_fixtures(&["ls", "--run", &run]);
    assert!(ok, "{out}");
    for listed in [scratch.name("old"), scratch.name("new"), scratch.name("held"), scratch.name("net")] {
        assert!(out.contains(&listed), "`{listed}` listed:\n{out}");
    }
    assert!(!out.contains(&scratch.name("foreign")), "not ours, not listed:\n{out}");
    assert!(out.contains("(gone)") && out.contains("(alive)"), "owners judged:\n{out}");

    let (out, ok) = cargo_fixtures(&["clean", "--run", &run, "--older-than", "1h", "--dry-run"]);
    assert!(ok && out.contains("dry run: nothing removed") && out.contains(&scratch.name("old")), "{out}");
    assert!(!out.contains(&scratch.name("new")), "younger than an hour:\n{out}");
    assert_eq!(left().await?.len(), 4, "nothing removed by a dry run");

    let (out, ok) = cargo_fixtures(&["clean", "--run", &run, "--older-than", "1h"]);
    assert!(ok && out.contains("removed 1 container(s), 0 network(s), 0 volume(s)"), "{out}");
    assert!(out.contains("1 held by a live owner left alone"), "{out}");
    assert_eq!(left().await?, [scratch.name("foreign"), scratch.name("held"), scratch.name("new")]);

    let (out, ok) = cargo_fixtures(&["clean", "--run", &run]);
    assert!(ok && out.contains("removed 1 container(s), 1 network(s), 0 volume(s)"), "{out}");
    assert_eq!(left().await?, [scratch.name("foreign"), scratch.name("held")]);
    assert!(rt.list_networks(&LabelFilter::eq(labels::RUN, run.clone())).await?.is_empty());

    let (out, ok) = cargo_fixtures(&["clean", "--run", &run, "--include-alive"]);
    assert!(ok && out.contains("removed 1 container(s), 0 network(s), 0 volume(s)"), "{out}");
    assert_eq!(left().await?, [scratch.name("foreign")], "the container without fixtures.managed is left");

    rt.remove_container(&foreign_id, true).await?;
    scratch.clean().await
}

#[test]
fn a_mistake_in_the_arguments_says_how_to_use_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_cargo-fixtures")).args(["fixtures", "purge"]).output().expect("runs");
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.starts_with("cargo fixtures: unknown command `purge`") && text.contains("usage: cargo fixtures ls"),
        "{text}"
    );
}
