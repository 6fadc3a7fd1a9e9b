//! The `podman-rootless` row (and `cargo xtask rootless`): the suite's test binaries, built as
//! `integration` builds them, run as an ordinary user against that user's own Podman service,
//! which the library finds where it looks by default for a user
//! (`$XDG_RUNTIME_DIR/podman/podman.sock`). The user is made
//! here with what rootless Podman needs from Debian's packages (subordinate ids from
//! `useradd`, `uidmap`'s setuid helpers, slirp4netns, which needs `/dev/net/tun` open to users).
//!
//! Binaries that run `cargo`, `cargo-nextest` or Docker are not run here (the user has neither
//! a toolchain nor Docker's socket); each is named with its reason, and the row says how many
//! ran.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Counts, Result, output, root, run, run_counting};

pub(crate) const USER: &str = "fixtures-rootless";
/// The row's name in the matrix.
pub(crate) const ROW: &str = "podman-rootless";

/// Test binaries not run as the user, and why.
const NOT_HERE: &[(&str, &str)] = &[
    ("chaos", "runs cargo and cargo-nextest"),
    ("harness", "runs cargo-nextest"),
    ("compile_errors", "runs cargo"),
    ("user_crate", "runs cargo"),
    ("selection", "runs cargo"),
    ("lifetimes", "runs cargo"),
    ("reuse", "runs cargo"),
    ("teardown", "runs cargo"),
    ("signals", "runs cargo"),
    ("faults", "runs cargo"),
    ("remote", "runs cargo, and an ssh server only root can start"),
    ("pool", "runs cargo-nextest, over the machine's rootful engines"),
    ("compose_vs_docker_compose", "runs docker-compose on Docker"),
    ("dockerignore", "runs docker build on Docker"),
    ("registry_login", "runs docker login and push on Docker"),
    ("cleanup", "lists Docker as well as Podman"),
    ("fixtures_macros", "is a proc-macro crate's tests, linked to the toolchain's libstd the user cannot read"),
    ("xtask", "is not a test"),
];

/// The user's id, made first if needed, with its runtime folder.
struct User {
    uid: String,
    home: PathBuf,
    runtime_dir: PathBuf,
}

impl User {
    /// A command run as the user, with a clean environment but for what it needs.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", USER, "--", "env", "-i"])
            .arg("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            .arg(format!("HOME={}", self.home.display()))
            .arg(format!("USER={USER}"))
            .arg(format!("XDG_RUNTIME_DIR={}", self.runtime_dir.display()))
            .arg("FIXTURE_RUNTIME=podman")
            .arg("RUST_BACKTRACE=1")
            // Snapshots are read from the workspace (insta cannot ask cargo where it is) and
            // never written (the user cannot write there).
            .arg(format!("INSTA_WORKSPACE_ROOT={}", root().display()))
            .arg("INSTA_UPDATE=no")
            .arg(format!("CI={}", std::env::var("CI").unwrap_or_default()))
            // The run loaded the test images into the user's storage before the row.
            .arg("FIXTURES_TEST_IMAGES_READY=1")
            .arg(program)
            .current_dir("/");
        cmd
    }

    fn socket(&self) -> PathBuf {
        self.runtime_dir.join("podman/podman.sock")
    }
}

fn user() -> Result<User> {
    if output(Command::new("id").args(["-u", USER])).is_none() {
        println!("xtask: rootless: adding the user {USER}");
        run(Command::new("useradd").args(["--create-home", "--shell", "/bin/bash", USER]))?;
    }
    let uid = output(Command::new("id").args(["-u", USER])).ok_or("no uid for the rootless user")?;
    for file in ["/etc/subuid", "/etc/subgid"] {
        let has = std::fs::read_to_string(file).is_ok_and(|t| t.lines().any(|l| l.starts_with(&format!("{USER}:"))));
        if !has {
            println!("xtask: rootless: giving {USER} subordinate ids in {file}");
            let flag = if file.ends_with("uid") { "--add-subuids" } else { "--add-subgids" };
            run(Command::new("usermod").args([flag, "300000-365535", USER]))?;
        }
    }
    // slirp4netns opens /dev/net/tun as the user; this sandbox makes it root's alone, and a
    // container may not have it at all.
    let tun = Path::new("/dev/net/tun");
    if !tun.exists() {
        println!("xtask: rootless: making /dev/net/tun (the TUN device, 10:200)");
        std::fs::create_dir_all("/dev/net").map_err(|e| e.to_string())?;
        run(Command::new("mknod").args(["/dev/net/tun", "c", "10", "200"]))?;
    }
    if let Ok(meta) = std::fs::metadata(tun) {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o006 != 0o006 {
            println!("xtask: rootless: /dev/net/tun is root's alone; opening it to users as Debian does (0666)");
            std::fs::set_permissions(tun, std::fs::Permissions::from_mode(0o666)).map_err(|e| e.to_string())?;
        }
    }
    let runtime_dir = PathBuf::from(format!("/run/user/{uid}"));
    if !runtime_dir.exists() {
        std::fs::create_dir_all(&runtime_dir).map_err(|e| e.to_string())?;
        run(Command::new("chown").arg(format!("{USER}:{USER}")).arg(&runtime_dir))?;
        run(Command::new("chmod").arg("700").arg(&runtime_dir))?;
    }
    Ok(User { uid, home: PathBuf::from(format!("/home/{USER}")), runtime_dir })
}

/// Starts the user's Podman service on its default socket unless it answers.
fn service(user: &User) -> Result {
    let socket = user.socket();
    if crate::podman_answers(&socket) {
        return Ok(());
    }
    let log_path = root().join("target/xtask-podman/rootless-service.log");
    std::fs::create_dir_all(log_path.parent().expect("a folder")).map_err(|e| e.to_string())?;
    let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
    println!("xtask: rootless: starting {USER}'s Podman service on {}", socket.display());
    let mut cmd = user.command("podman");
    cmd.args(["system", "service", "--time=0"])
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log);
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd.spawn().map_err(|e| format!("cannot start the rootless Podman service: {e}"))?;
    for _ in 0..150 {
        if crate::podman_answers(&socket) {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Err(format!("{USER}'s Podman service did not answer on {}; see {}", socket.display(), log_path.display()))
}

/// The test images in the user's storage: the services image pulled from the local registry
/// (so that `fetch` finds the same image there), busybox and the stand-ins of public images
/// copied from root's Podman.
fn images(user: &User) -> Result {
    let quiet = |cmd: &mut Command| run(cmd.stdout(std::process::Stdio::null()));
    quiet(user.command("podman").args(["pull", "--quiet", "--tls-verify=false", crate::REGISTRY_IMAGE]))?;
    quiet(user.command("podman").args(["tag", crate::REGISTRY_IMAGE, crate::SERVICES_IMAGE]))?;
    let tar = std::env::temp_dir().join("fixtures-rootless-images.tar");
    let _ = std::fs::remove_file(&tar);
    run(Command::new("podman")
        .args(["save", "--quiet", "--multi-image-archive", "-o"])
        .arg(&tar)
        .arg(crate::BUSYBOX_IMAGE)
        .args(crate::standins::STAND_INS.iter().map(|s| s.tag)))?;
    run(Command::new("chmod").arg("644").arg(&tar))?;
    quiet(user.command("podman").args(["load", "--quiet", "-i"]).arg(&tar))?;
    let _ = std::fs::remove_file(&tar);
    Ok(())
}

/// Removes what the run left in the user's storage, and says how much there was.
fn leftovers(user: &User) -> usize {
    let filter = "label=fixtures.managed";
    let list = |args: &[&str]| -> Vec<String> {
        output(user.command("podman").args(args)).map(|s| s.lines().map(str::to_owned).collect()).unwrap_or_default()
    };
    let containers = list(&["ps", "-aq", "--filter", filter]);
    let networks = list(&["network", "ls", "-q", "--filter", filter]);
    let volumes = list(&["volume", "ls", "-q", "--filter", filter]);
    let count = containers.len() + networks.len() + volumes.len();
    if !containers.is_empty() {
        let _ = user.command("podman").args(["rm", "-f", "-v", "-t", "0"]).args(&containers).output();
    }
    if !networks.is_empty() {
        let _ = user.command("podman").args(["network", "rm"]).args(&networks).output();
    }
    if !volumes.is_empty() {
        let _ = user.command("podman").args(["volume", "rm", "-f"]).args(&volumes).output();
    }
    count
}

/// The row: whether it passed, its counts, and what it did not run.
pub(crate) fn row(binaries: &[crate::suite::Binary], env: &[(String, String)]) -> Result<(bool, Counts, usize)> {
    let user = user()?;
    service(&user)?;
    images(&user)?;
    println!("xtask: rootless: uid {}, socket {}", user.uid, user.socket().display());
    let mut ok = true;
    let mut counts = Counts::default();
    let mut skipped = 0;
    for binary in binaries {
        let name = &binary.name;
        if let Some((_, why)) = NOT_HERE.iter().find(|(n, _)| n == name) {
            println!("xtask: rootless: not running `{name}`: it {why}");
            skipped += 1;
            continue;
        }
        println!("xtask: rootless: running `{name}` as {USER}");
        let mut cmd = user.command("env");
        cmd.args(env.iter().map(|(k, v)| format!("{k}={v}"))).arg(&binary.exe).current_dir(&binary.dir);
        let (passed, c) = run_counting(&mut cmd)?;
        ok &= passed;
        counts.passed += c.passed;
        counts.failed += c.failed;
        counts.ignored += c.ignored;
    }
    std::thread::sleep(std::time::Duration::from_secs(2));
    let left = leftovers(&user);
    if left > 0 {
        println!("xtask: rootless: {left} objects of ours were left in {USER}'s storage");
        ok = false;
    }
    Ok((ok, counts, skipped))
}

/// Removes the rootless row's user, its processes (its Podman service among them: the user is
/// this project's alone), its home with its Podman storage, and its runtime folder.
pub(crate) fn remove_user() -> Result {
    let Some(uid) = output(Command::new("id").args(["-u", USER])) else { return Ok(()) };
    println!("xtask: clean: removing the user {USER} (uid {uid}), its processes and its storage");
    let _ = Command::new("pkill").args(["-KILL", "-u", USER]).status();
    for _ in 0..50 {
        if output(Command::new("pgrep").args(["-u", USER])).is_none() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // Podman's storage there holds files owned by the user's subordinate ids: root removes it.
    let _ = std::fs::remove_dir_all(format!("/home/{USER}"));
    run(Command::new("userdel").args(["--remove", USER]).stderr(std::process::Stdio::null()))
        .or_else(|e| if output(Command::new("id").args(["-u", USER])).is_none() { Ok(()) } else { Err(e) })?;
    let _ = std::fs::remove_dir_all(format!("/run/user/{uid}"));
    for file in ["/etc/subuid", "/etc/subgid"] {
        if let Ok(text) = std::fs::read_to_string(file) {
            let kept: String =
                text.lines().filter(|l| !l.starts_with(&format!("{USER}:"))).map(|l| format!("{l}\n")).collect();
            if kept != text {
                std::fs::write(file, kept).map_err(|e| format!("write {file}: {e}"))?;
            }
        }
    }
    Ok(())
}
