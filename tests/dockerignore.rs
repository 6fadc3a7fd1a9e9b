//! A build context with a `.dockerignore` as people write them (dependencies and build output,
//! logs at any depth with one kept, documentation but the README, drafts deep in `docs`, local
//! environment files but the example, and the Dockerfile itself), built with the docker CLI
//! (on the machine's Docker) and with this library (on the engine under test): the image
//! receives the same files.

use std::path::{Path, PathBuf};
use std::process::Command;

use fixtures::{Result, build, container};

const DOCKERIGNORE: &str = "\
# dependencies and build output
node_modules
/target/
**/*.log
!important.log
.git
*.md
!README.md
docs/**/draft-*.md
.env*
!.env.example
# the engine still gets these
Dockerfile
.dockerignore
";

const FILES: &[&str] = &[
    "src/main.rs",
    "src/lib.rs",
    "src/nested/app.log",
    "node_modules/left-pad/index.js",
    "target/debug/app",
    "app.log",
    "logs/deep/trace.log",
    "important.log",
    ".git/HEAD",
    "README.md",
    "CHANGELOG.md",
    "docs/guide/draft-1.md",
    "docs/guide/final.txt",
    "docs/draft-2.md",
    ".env",
    ".env.local",
    ".env.example",
    "Cargo.toml",
];

/// The context: the files above, the `.dockerignore`, and a Dockerfile that lists what it got.
fn context() -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!("fixtures-dockerignore-{}-{nanos}", std::process::id()));
    for file in FILES {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().expect("a folder")).expect("folders");
        std::fs::write(&path, file).expect("a file");
    }
    std::fs::write(dir.join(".dockerignore"), DOCKERIGNORE).expect("the .dockerignore");
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM {}\nCOPY . /ctx\nCMD [\"sh\", \"-c\", \"cd /ctx && find . -type f | sort\"]\n",
            test_support::BUSYBOX_IMAGE
        ),
    )
    .expect("the Dockerfile");
    dir
}

/// What `docker build` sends, as the image lists it.
fn with_the_docker_cli(dir: &Path) -> String {
    let tag = format!("fixtures-test/dockerignore:{}", std::process::id());
    let docker = |args: &[&str]| {
        let out = Command::new("docker").env_remove("DOCKER_HOST").args(args).output().expect("docker runs");
        assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    docker(&["build", "-q", "-t", &tag, &dir.to_string_lossy()]);
    let listed = docker(&["run", "--rm", &tag]);
    docker(&["rmi", "-f", &tag]);
    listed
}

#[tokio::test]
async fn the_image_receives_what_docker_build_sends() -> Result<()> {
    let dir = context();
    let theirs = with_the_docker_cli(&dir);
    let env = test_support::base_env()
        .with("image", build().path(dir.to_string_lossy()))
        .with("lister", container().image("{image.id}").runs_to_completion());
    let t = env.start("dockerignore").await?;
    let ours = t.container("lister").await?.logs().await?;
    t.finish().await?;
    std::fs::remove_dir_all(&dir)?;
    let expected = [
        "./.env.example",
        "./Cargo.toml",
        "./README.md",
        "./docs/guide/final.txt",
        "./important.log",
        "./src/lib.rs",
        "./src/main.rs",
    ];
    assert_eq!(theirs.lines().collect::<Vec<_>>(), expected, "what docker build sends");
    assert_eq!(ours, theirs, "the library's context, against docker build's");
    Ok(())
}
