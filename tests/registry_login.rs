//! A private registry (Debian's `docker-registry` with htpasswd logins, started by this test on
//! 127.0.0.1:5001): after `docker login`, a fixture pulls from it with no credentials in
//! code, as the docker CLI and Podman would; so it does with a credential helper of the test's
//! own (`docker-credential-fxtest` on `PATH`); without a login the pull fails, and no message
//! shows the password. The logins live in a folder of the test's (`DOCKER_CONFIG`), never the
//! machine's.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fixtures::fetch;

const PASSWORD: &str = "correct-horse-battery-staple";
/// One tag per pull.
const TAGS: [&str; 3] = ["login", "nologin", "helper"];

/// The registry, stopped and its folder removed when dropped.
struct Registry {
    dir: PathBuf,
    port: u16,
    child: Child,
}

impl Registry {
    fn start() -> Registry {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("fixtures-registry-login-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(dir.join("docker")).expect("folders");
        // A fixed port: Podman's Docker API takes plain HTTP only from registries its
        // configuration names (`xtask/setup.sh` names this one).
        let port = 5001;
        let htpasswd = Command::new("htpasswd")
            .args(["-Bbc"])
            .arg(dir.join("htpasswd"))
            .args(["fx", PASSWORD])
            .stderr(Stdio::null())
            .status()
            .expect("htpasswd runs");
        assert!(htpasswd.success());
        std::fs::write(
            dir.join("config.yml"),
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
                 http:\n  addr: 127.0.0.1:{port}\nauth:\n  htpasswd:\n    realm: fixtures\n    path: {}\n",
                dir.join("data").display(),
                dir.join("htpasswd").display()
            ),
        )
        .expect("the registry's configuration");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry runs");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(30), "the registry never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry { dir, port, child }
    }

    fn image(&self, tag: &str) -> String {
        format!("127.0.0.1:{}/fixtures-test/private:{tag}", self.port)
    }

    /// The docker CLI on the machine's Docker, with the test's own login folder.
    fn docker(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker")
            .env_remove("DOCKER_HOST")
            .env("DOCKER_CONFIG", self.dir.join("docker"))
            .args(args)
            .output()
            .expect("docker runs")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The tag only, not by force: the image is the test services image under another name.
        for tag in TAGS {
            let _ = self.docker(&["rmi", &self.image(tag)]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ok(out: std::process::Output, what: &str) {
    assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Pulls `image` with the library, on the engine under test; its tag is taken off afterwards.
/// Each pull names a tag of its own: a process keeps what it pulled by reference. Only the tag: the image is the test
/// services image under another name, which other tests use.
async fn pull(image: &str) -> fixtures::Result<()> {
    let env = test_support::base_env().with("private", fetch(image));
    let t = env.start("registry_login::pull").await?;
    let pulled = t.image("private").await.map(drop);
    t.finish().await?;
    pulled?;
    test_support::runtime().await.remove_image(image, false).await?;
    Ok(())
}

fn write_config(registry: &Registry, json: &str) {
    std::fs::write(registry.dir.join("docker/config.json"), json).expect("the login file");
}

#[tokio::test]
async fn a_login_of_the_users_tools_is_enough_to_pull() {
    if !test_support::has(&[test_support::Need::PrivateRegistry]) {
        return;
    }
    let registry = Registry::start();
    // SAFETY: this binary's only test sets them before it starts anything that reads the
    // environment on another thread; the library reads the logins when it pulls.
    unsafe {
        std::env::set_var("DOCKER_CONFIG", registry.dir.join("docker"));
        std::env::remove_var("DOCKER_AUTH_CONFIG");
        std::env::remove_var("REGISTRY_AUTH_FILE");
        std::env::set_var("XDG_RUNTIME_DIR", registry.dir.join("no-runtime-dir"));
    }
    let host = format!("127.0.0.1:{}", registry.port);
    let login = Command::new("docker")
        .env_remove("DOCKER_HOST")
        .env("DOCKER_CONFIG", registry.dir.join("docker"))
        .args(["login", "--username", "fx", "--password-stdin", &host])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("docker login runs");
    {
        use std::io::Write;
        let mut child = login;
        child.stdin.take().expect("stdin").write_all(PASSWORD.as_bytes()).expect("the password");
        ok(child.wait_with_output().expect("docker login ends"), "docker login");
    }
    for tag in TAGS {
        let image = registry.image(tag);
        ok(registry.docker(&["tag", test_support::SERVICES_IMAGE, &image]), "docker tag");
        ok(registry.docker(&["push", &image]), "docker push");
        ok(registry.docker(&["rmi", &image]), "docker rmi");
    }
    // `docker login` wrote `auths` with the user and password: enough for the library.
    let config = std::fs::read_to_string(registry.dir.join("docker/config.json")).expect("docker login's file");
    assert!(config.contains(&host), "docker login kept the login: {config}");
    pull(&registry.image("login")).await.expect("the pull finds the login `docker login` kept");

    // No login: the registry refuses, and the message shows no secret.
    write_config(&registry, "{}");
    let err = pull(&registry.image("nologin")).await.expect_err("the registry wants a login");
    let report = format!("{err:?}");
    assert_eq!(err.kind(), fixtures::ErrorKind::Pull, "{report}");
    let said = report.to_ascii_lowercase();
    assert!(
        said.contains("unauthorized") || said.contains("authentication required") || said.contains("no basic auth"),
        "{report}"
    );
    assert!(!report.contains(PASSWORD), "no secret in the report: {report}");

    // A credential helper of the test's own, as `credHelpers` names it.
    let bin = registry.dir.join("bin");
    std::fs::create_dir_all(&bin).expect("a folder for the helper");
    let helper = bin.join("docker-credential-fxtest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\necho \"$server\" >> {}\n\
             printf '{{\"ServerURL\":\"%s\",\"Username\":\"fx\",\"Secret\":\"{PASSWORD}\"}}' \"$server\"\n",
            registry.dir.join("helper.log").display()
        ),
    )
    .expect("the helper");
    executable(&helper);
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path = std::env::join_paths(std::iter::once(bin.clone()).chain(std::env::split_paths(&path))).expect("PATH");
    // SAFETY: as above.
    unsafe { std::env::set_var("PATH", path) };
    write_config(&registry, &format!("{{\"credHelpers\": {{\"{host}\": \"fxtest\"}}}}"));
    pull(&registry.image("helper")).await.expect("the pull asks the helper");
    let asked = std::fs::read_to_string(registry.dir.join("helper.log")).unwrap_or_default();
    assert_eq!(asked.trim(), host, "the helper was asked for the registry");
}

fn executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}
