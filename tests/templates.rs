//! Every string of a container's declaration is a template, and each reference in one is a
//! dependency: `network_mode("container:{db.id}")` makes `db` first and puts the sidecar in
//! its network namespace.

use fixtures::{Container, Env, Result, container, image};
use test_support::{BUSYBOX_IMAGE, SERVICES_IMAGE};

fn env() -> Env {
    test_support::base_env()
        .with("services", image(SERVICES_IMAGE))
        .with("busybox", image(BUSYBOX_IMAGE))
        .with("db", container().image("{services.id}").command(["memcached"]).expose("11211/tcp"))
        .with(
            "sidecar",
            container()
                .image("{busybox.id}")
                .command(["sleep", "600"])
                .network_mode("container:{db.id}")
                .working_dir("/{db.name}-work")
                .label("peer", "{db.name}"),
        )
}

/// Whether `/proc/net/tcp*` text shows a socket listening (state 0A) on `port`.
fn listens(proc_net_tcp: &str, port: u16) -> bool {
    let local = format!(":{port:04X}");
    proc_net_tcp.lines().skip(1).any(|l| {
        let fields: Vec<&str> = l.split_whitespace().collect();
        fields.get(1).is_some_and(|a| a.ends_with(&local)) && fields.get(3) == Some(&"0A")
    })
}

#[fixtures::test(env = env())]
async fn a_container_joins_another_ones_network_namespace(sidecar: &Container, db: &Container) -> Result<()> {
    // Only `sidecar` was asked for by the template: `db` came first, as its dependency.
    let out = sidecar.exec(["cat", "/proc/net/tcp", "/proc/net/tcp6"]).await?;
    assert_eq!(out.exit_code, 0, "{out:?}");
    assert!(
        listens(&String::from_utf8_lossy(&out.stdout), 11211),
        "the sidecar sees db's memcached listening on its own loopback: {out:?}"
    );
    let pwd = sidecar.exec(["pwd"]).await?;
    assert_eq!(String::from_utf8_lossy(&pwd.stdout).trim(), format!("/{}-work", db.name()));
    let info = sidecar.runtime().inspect_container(sidecar.id()).await?;
    assert_eq!(info.labels.get("peer").map(String::as_str), Some(db.name()));
    Ok(())
}
