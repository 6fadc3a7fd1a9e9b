//! `cargo xtask clean --all`: the machine as a fresh one would be, so that a run after it
//! proves that `cargo xtask test` installs and makes everything it needs.
//!
//! It removes what the project's runs left, and only that: objects with our labels, the test
//! images (by the label `cargo xtask images` puts on them, and the local registry's tags),
//! the local registry and the Podman service that xtask started (by the process ids it wrote
//! down, after checking that each is still that program), the registry's contents, and the
//! rootless row's user with everything it owns. Debian's packages stay: installing them is
//! quick, and `setup.sh` does it whenever one is missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{INPUTS_LABEL, REGISTRY, Result, clean, installed, output, rootless};

/// Where xtask writes down the services it starts: with them, gone when the machine restarts.
pub(crate) fn state_dir() -> PathBuf {
    PathBuf::from("/run/fixtures-xtask")
}

/// Writes down the process id of a service xtask started, and, for the registry, its data.
pub(crate) fn remember(service: &str, pid: u32, data: Option<&Path>) {
    let dir = state_dir();
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    let _ = std::fs::write(dir.join(format!("{service}.pid")), pid.to_string());
    if let Some(data) = data {
        let _ = std::fs::write(dir.join(format!("{service}.data")), data.display().to_string());
    }
}

/// Stops the service written down as `service`, if that process still runs `program`.
fn stop(service: &str, program: &str) {
    let file = state_dir().join(format!("{service}.pid"));
    let Some(pid) = std::fs::read_to_string(&file).ok().and_then(|p| p.trim().parse::<i32>().ok()) else { return };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    if cmdline.contains(program) {
        println!("xtask: clean: stopping the {service} xtask started (process {pid}: {})", cmdline.trim());
        let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        for _ in 0..50 {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).stderr(Stdio::null()).status();
    }
    let _ = std::fs::remove_file(file);
}

/// The images of ours on `engine`: the test images, those pushed to or pulled from the local
/// registry, and those the library built (labelled managed).
fn our_images(engine: &str) -> Vec<String> {
    let mut images = Vec::new();
    // The library's own helper image (volume seeding) is labelled `fixtures.helper`.
    for filter in
        [format!("label={INPUTS_LABEL}"), "label=fixtures.managed".to_owned(), "label=fixtures.helper".to_owned()]
    {
        let listed = output(Command::new(engine).args(["images", "-q", "--filter", &filter])).unwrap_or_default();
        images.extend(listed.lines().map(str::to_owned));
    }
    let named =
        output(Command::new(engine).args(["images", "--format", "{{.Repository}}:{{.Tag}}"])).unwrap_or_default();
    images.extend(named.lines().filter(|n| n.starts_with(&format!("{REGISTRY}/"))).map(str::to_owned));
    images.sort();
    images.dedup();
    images
}

pub(crate) fn clean_all() -> Result {
    let mut failures = Vec::new();
    for engine in ["docker", "podman"] {
        if !installed(engine) || output(Command::new(engine).arg("info")).is_none() {
            continue;
        }
        // What a killed run left may still be stopping: once more after a moment.
        if clean(engine).is_err() {
            std::thread::sleep(std::time::Duration::from_secs(3));
            if let Err(e) = clean(engine) {
                failures.push(e);
            }
        }
        let images = our_images(engine);
        println!("xtask: clean: {engine}: removing {} images of ours", images.len());
        if !images.is_empty() {
            let _ = Command::new(engine).args(["rmi", "-f"]).args(&images).stdout(Stdio::null()).status();
        }
        let left = our_images(engine);
        if !left.is_empty() {
            failures.push(format!("{engine}: could not remove the images {left:?}"));
        }
    }
    rootless::remove_user()?;
    stop("registry", "docker-registry");
    if let Ok(data) = std::fs::read_to_string(state_dir().join("registry.data")) {
        println!("xtask: clean: removing the local registry's contents ({})", data.trim());
        let _ = std::fs::remove_dir_all(data.trim());
        let _ = std::fs::remove_file(state_dir().join("registry.data"));
    }
    stop("podman-service", "podman");
    if !failures.is_empty() {
        return Err(failures.join("; "));
    }
    println!("xtask: clean: done; `cargo xtask test` makes everything again");
    Ok(())
}
