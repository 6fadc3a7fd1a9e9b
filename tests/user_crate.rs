//! A user's own crate, as the README's quick start has it: it depends on `fixtures` alone
//! (here under another name, `fx`), declares `Env::new()` with no backend line, and its
//! fixture test gets a container on the engine under test. Built in a folder of its own, with
//! this repository's lock file and target folder (so only the crate itself is compiled), and
//! run once under libtest's harness and once under the library's.

use std::path::Path;
use std::process::Command;

const MANIFEST: &str = r#"[package]
name = "user-crate"
version = "0.1.0"
edition = "2024"
publish = false

[dev-dependencies]
fx = { package = "fixtures", path = "ROOT", features = ["podman"] }
tokio = { version = "1", features = ["net"] }

[[test]]
name = "harnessed"
harness = false

[profile.dev]
debug = "line-tables-only"

[profile.dev.package."*"]
debug = false

[workspace]
"#;

const SMOKE: &str = r#"
use fx::{Container, Env, Result, image, container};

pub fn env() -> Env {
    Env::new()
        .with("services", image("fixtures-test/services:latest"))
        .with("web", container().image("{services.id}").command(["http"]).port("8080/tcp"))
}

#[fx::test(env = env())]
async fn web_answers(web: &Container) -> Result<()> {
    tokio::net::TcpStream::connect(web.addr("8080/tcp")?).await?;
    Ok(())
}
"#;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("a folder")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

#[test]
fn a_crate_that_depends_on_fixtures_alone_runs_its_fixture_tests() {
    let root = test_support::workspace_root().canonicalize().expect("root");
    let dir = std::env::temp_dir().join(format!("fixtures-user-crate-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    write(&dir.join("Cargo.toml"), &MANIFEST.replace("ROOT", &root.display().to_string()));
    write(&dir.join("src/lib.rs"), "");
    write(&dir.join("tests/plain.rs"), SMOKE);
    write(&dir.join("tests/harnessed.rs"), &format!("{SMOKE}\nfx::main!();\n"));
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).expect("lock file");

    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", root.join("target"))
        .args(["test", "--offline", "--color", "never"])
        .output()
        .expect("cargo runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "the user's crate builds and passes:\n{}", test_support::quoted(&text));
    let passed = text.lines().filter(|l| l.starts_with("test web_answers ... ok")).count();
    assert_eq!(passed, 2, "the fixture test ran under both harnesses:\n{}", test_support::quoted(&text));
}
