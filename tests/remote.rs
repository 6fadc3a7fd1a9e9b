//! Engines on another host, on this machine's loopback: this machine's engine behind a TLS
//! front (socat, a client certificate required) on 127.0.0.2 and behind sshd on 127.0.0.3,
//! both made here (`test_support::remote`). The remote subset (`tests/remote/suite.rs`) passes
//! through each, and bad certificates are refused with a message that names the file.
//!
//! The engine is the one the matrix row tests: `FIXTURE_RUNTIME` (Docker's socket, or
//! `DOCKER_HOST` when it points at Podman's Docker-compatible one; Podman's rootful socket).

use std::path::{Path, PathBuf};
use std::process::Command;

use fixtures::spec::LabelFilter;
use fixtures_engine_api::remote::{Settings, reach};
use test_support::remote::{Fronts, SSH_IP, TLS_IP};

/// The runtime under test and its engine's socket.
fn engine() -> (String, String) {
    let runtime = std::env::var("FIXTURE_RUNTIME").unwrap_or_else(|_| "docker".to_owned());
    let socket = if runtime == "podman" {
        std::env::var("CONTAINER_HOST").unwrap_or_else(|_| "unix:///run/podman/podman.sock".to_owned())
    } else {
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".to_owned())
    };
    let socket = socket.strip_prefix("unix://").expect("the row's engine is a local socket").to_owned();
    (runtime, socket)
}

/// Runs the remote subset with `env`, in a run of its own; answers its output and run id.
fn run_suite(env: &[(String, String)], remote_ip: &str, label: &str) -> (std::process::Output, String) {
    let run = format!("remote{label}{}", std::process::id());
    let mut cmd = Command::new(test_support::test_binary("remote_suite"));
    for var in ["DOCKER_HOST", "CONTAINER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "NEXTEST_RUN_ID"] {
        cmd.env_remove(var);
    }
    cmd.current_dir(test_support::workspace_root())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("FIXTURE_TEST_REMOTE_IP", remote_ip)
        .env("FIXTURE_RUN_ID", &run)
        .args(["--test-threads", "4"]);
    (cmd.output().expect("the suite runs"), run)
}

/// Nothing of `run` is left on the engine (asked through its local socket). A run's session
/// objects are removed by the watcher of its last process, once the run has been held by no
/// process for its grace time: that is waited for, while the fronts still stand.
async fn nothing_left(run: &str) {
    let runtime = fixtures::backend::select(&test_support::backends()).await.expect("the engine");
    let filter = LabelFilter::eq("fixtures.run", run.to_owned());
    let start = std::time::Instant::now();
    loop {
        let containers = runtime.list_containers(&filter).await.expect("containers");
        let networks = runtime.list_networks(&filter).await.expect("networks");
        let volumes = runtime.list_volumes(&filter).await.expect("volumes");
        let left = (containers.len(), networks.len(), volumes.len());
        if left == (0, 0, 0) {
            return;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(30), "left by run {run} after 30 s: {left:?}");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

fn passed(output: &std::process::Output) -> String {
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "the remote subset failed:\n{text}\n{}", String::from_utf8_lossy(&output.stderr));
    text.lines().find(|l| l.starts_with("test result:")).unwrap_or_default().to_owned()
}

#[tokio::test]
async fn the_remote_subset_passes_through_a_tls_front() {
    if !test_support::has(&[test_support::Need::RemoteTools]) {
        return;
    }
    let (runtime, socket) = engine();
    let fronts = Fronts::start(&socket);
    let (output, run) = run_suite(&fronts.tls_env(&runtime), TLS_IP, "tls");
    assert!(passed(&output).contains("7 passed; 0 failed"), "{}", String::from_utf8_lossy(&output.stdout));
    nothing_left(&run).await;

    // A client certificate the engine does not trust: every test fails at connecting, saying
    // which file to look at, and nothing is made.
    let mut env = fronts.tls_env(&runtime);
    env.retain(|(k, _)| k != "FIXTURE_CERT_PATH");
    env.push(("FIXTURE_CERT_PATH".to_owned(), fronts.certs("stranger").display().to_string()));
    let (output, run) = run_suite(&env, TLS_IP, "stranger");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{text}");
    let named = format!("refused the client certificate `{}`", fronts.certs("stranger").join("cert.pem").display());
    assert!(text.contains(&named), "{text}");
    nothing_left(&run).await;
}

#[tokio::test]
async fn the_remote_subset_passes_over_ssh() {
    if !test_support::has(&[test_support::Need::RemoteTools]) {
        return;
    }
    let (runtime, socket) = engine();
    let fronts = Fronts::start(&socket);
    let (output, run) = run_suite(&fronts.ssh_env(&runtime), SSH_IP, "ssh");
    assert!(passed(&output).contains("7 passed; 0 failed"), "{}", String::from_utf8_lossy(&output.stdout));
    nothing_left(&run).await;
}

/// `dir` with the client's files, `change` applied.
fn certs_like(fronts: &Fronts, name: &str, change: impl FnOnce(&Path)) -> PathBuf {
    let dir = fronts.dir().join(name);
    std::fs::create_dir_all(&dir).expect("dir");
    for file in ["ca.pem", "cert.pem", "key.pem"] {
        std::fs::copy(fronts.certs("client").join(file), dir.join(file)).expect("copy");
    }
    change(&dir);
    dir
}

async fn refusal(host: &str, cert_path: &Path) -> String {
    let settings = Settings { tls_verify: true, cert_path: cert_path.to_owned(), ssh_command: vec![], ssh_socket: "" };
    let err = reach(host, &settings, "docker").await.expect_err("refused");
    assert_eq!(err.kind(), fixtures::ErrorKind::Config, "{err:?}");
    err.to_string()
}

#[tokio::test]
async fn bad_certificates_are_refused_naming_the_file() {
    if !test_support::has(&[test_support::Need::RemoteTools]) {
        return;
    }
    let (_, socket) = engine();
    let fronts = Fronts::start(&socket);
    let host = fronts.tls_host.clone();

    let no_key = certs_like(&fronts, "no-key", |d| std::fs::remove_file(d.join("key.pem")).expect("rm"));
    let said = refusal(&host, &no_key).await;
    assert!(said.contains(&format!("`{}` is missing", no_key.join("key.pem").display())), "{said}");

    let not_pem = certs_like(&fronts, "not-pem", |d| std::fs::write(d.join("cert.pem"), "hello\n").expect("write"));
    let said = refusal(&host, &not_pem).await;
    assert!(said.contains(&format!("`{}` holds no certificate", not_pem.join("cert.pem").display())), "{said}");

    let wrong_ca = certs_like(&fronts, "wrong-ca", |d| {
        std::fs::copy(fronts.certs("stranger").join("../stranger-ca/ca.pem"), d.join("ca.pem")).expect("ca");
    });
    let said = refusal(&host, &wrong_ca).await;
    assert!(said.contains(&format!("is not one `{}` vouches for", wrong_ca.join("ca.pem").display())), "{said}");

    let other_key = certs_like(&fronts, "other-key", |d| {
        std::fs::copy(fronts.certs("stranger").join("key.pem"), d.join("key.pem")).expect("key");
    });
    let said = refusal(&host, &other_key).await;
    assert!(said.contains(&format!("`{}`", other_key.join("key.pem").display())), "{said}");

    let said = refusal(&host, &fronts.certs("stranger")).await;
    assert!(
        said.contains(&format!(
            "refused the client certificate `{}`",
            fronts.certs("stranger").join("cert.pem").display()
        )),
        "{said}"
    );
}

#[tokio::test]
async fn an_ssh_login_that_fails_says_so() {
    if !test_support::has(&[test_support::Need::RemoteTools]) {
        return;
    }
    let (_, socket) = engine();
    let fronts = Fronts::start(&socket);
    // The server's host key is known, but no key is offered: no agent, no identity file.
    let mut env = fronts.ssh_env("docker");
    let config = env.iter().find(|(k, _)| k == "FIXTURE_SSH_COMMAND").expect("ssh").1.clone();
    env.clear();
    let command: Vec<String> = config
        .split_whitespace()
        .map(str::to_owned)
        .chain(["-o".to_owned(), "IdentityFile=/dev/null".to_owned(), "-o".to_owned(), "IdentityAgent=none".to_owned()])
        .collect();
    let settings = Settings { tls_verify: false, cert_path: PathBuf::new(), ssh_command: command, ssh_socket: "" };
    let err = reach(&fronts.ssh_host, &settings, "docker").await.expect_err("no key");
    assert_eq!(err.kind(), fixtures::ErrorKind::Unreachable, "{err:?}");
    let said = format!("{err:?}");
    assert!(said.contains("the ssh tunnel to") && said.contains("Permission denied"), "{said}");
}
