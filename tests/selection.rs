//! Choosing the engine against the real ones: defaults, then the nearest `fixtures.toml`,
//! then `FIXTURE_*` variables, each overriding the one before; and the errors for a runtime
//! that is not one, one that is not compiled in, and one whose socket is dead.
//!
//! Configuration is read once per process, so each case runs the probe binary
//! (`tests/selection/probe.rs`) with its own environment and crate folder.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A crate folder holding `fixtures.toml` with `toml` (none when `None`).
struct CrateDir(PathBuf);

impl CrateDir {
    fn new(case: &str, toml: Option<&str>) -> CrateDir {
        let dir = std::env::temp_dir().join(format!("fixtures-selection-{}-{case}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary folder");
        if let Some(toml) = toml {
            std::fs::write(dir.join("fixtures.toml"), toml).expect("fixtures.toml written");
        }
        CrateDir(dir)
    }
}

impl Drop for CrateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What the probe printed, choosing among `backends` with `vars` set and nothing inherited
/// that could choose for it.
fn probe(binary: &Path, dir: &Path, backends: &[&str], vars: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(binary);
    cmd.args(backends).current_dir(dir).env("CARGO_MANIFEST_DIR", dir);
    for inherited in std::env::vars().map(|(k, _)| k).filter(|k| k.starts_with("FIXTURE_")) {
        cmd.env_remove(inherited);
    }
    cmd.env_remove("DOCKER_HOST").env_remove("CONTAINER_HOST");
    cmd.envs(vars.iter().copied());
    let out = cmd.output().expect("the probe runs");
    assert!(out.status.success(), "the probe failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn each_source_overrides_the_one_before() {
    if !test_support::has(&[test_support::Need::PodmanService]) {
        return;
    }
    let binary = test_support::test_binary("selection_probe");
    let both = ["docker", "podman"];

    // Defaults: the first listed backend that answers.
    let plain = CrateDir::new("plain", None);
    assert_eq!(probe(&binary, &plain.0, &both, &[]), "selected docker (engine docker)");
    assert_eq!(probe(&binary, &plain.0, &["podman", "docker"], &[]), "selected podman (engine podman)");

    // fixtures.toml over the defaults, found walking up from the crate's folder.
    let file = CrateDir::new("file", Some("runtime = \"podman\"\n"));
    let nested = file.0.join("tests/deeper");
    std::fs::create_dir_all(&nested).expect("nested folder");
    assert_eq!(probe(&binary, &file.0, &both, &[]), "selected podman (engine podman)");
    assert_eq!(probe(&binary, &nested, &both, &[]), "selected podman (engine podman)");

    // FIXTURE_* over the file.
    assert_eq!(probe(&binary, &file.0, &both, &[("FIXTURE_RUNTIME", "docker")]), "selected docker (engine docker)");

    // The file's host for the Docker backend, and the variable over it: here Podman's
    // Docker-compatible socket, which the Docker backend recognises as Podman.
    let host = CrateDir::new("host", Some("runtime = \"docker\"\ndocker_host = \"unix:///run/podman/podman.sock\"\n"));
    assert_eq!(probe(&binary, &host.0, &both, &[]), "selected docker (engine podman)");
    assert_eq!(
        probe(&binary, &host.0, &both, &[("FIXTURE_DOCKER_HOST", "unix:///var/run/docker.sock")]),
        "selected docker (engine docker)"
    );
    // DOCKER_HOST is honoured when the configuration names no host.
    assert_eq!(
        probe(&binary, &plain.0, &["docker"], &[("DOCKER_HOST", "unix:///run/podman/podman.sock")]),
        "selected docker (engine podman)"
    );
}

#[test]
fn wrong_choices_say_what_was_tried_and_how_to_fix_it() {
    let binary = test_support::test_binary("selection_probe");
    let dir = CrateDir::new("errors", None);
    insta::assert_snapshot!(
        "not_a_runtime",
        probe(&binary, &dir.0, &["docker", "podman"], &[("FIXTURE_RUNTIME", "containerd")])
    );
    insta::assert_snapshot!("not_compiled_in", probe(&binary, &dir.0, &["docker"], &[("FIXTURE_RUNTIME", "podman")]));
    insta::assert_snapshot!(
        "dead_docker_socket",
        probe(
            &binary,
            &dir.0,
            &["docker", "podman"],
            &[("FIXTURE_RUNTIME", "docker"), ("DOCKER_HOST", "unix:///nonexistent/docker.sock")]
        )
    );
    insta::assert_snapshot!(
        "dead_podman_socket",
        probe(
            &binary,
            &dir.0,
            &["docker", "podman"],
            &[("FIXTURE_RUNTIME", "podman"), ("CONTAINER_HOST", "unix:///nonexistent/podman.sock")]
        )
    );
    let bad = CrateDir::new("bad-file", Some("runtime = 3\n"));
    insta::assert_snapshot!(
        "invalid_file",
        probe(&binary, &bad.0, &["docker"], &[]).replace(&*bad.0.to_string_lossy(), "<crate>")
    );
    insta::assert_snapshot!("invalid_variable", probe(&binary, &dir.0, &["docker"], &[("FIXTURE_TIMEOUT", "soon")]));
}
