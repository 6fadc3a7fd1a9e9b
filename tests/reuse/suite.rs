//! Fixtures for the reuse checks (`tests/reuse.rs` runs this binary with `FIXTURE_REUSE=1`).
//! Not part of the normal run (`test = false`).

use fixtures::{Container, Env, Result, container, image, network, value_fn, volume};
use test_support::{BUSYBOX_IMAGE, SERVICES_IMAGE};

fn env() -> Env {
    test_support::base_env()
        .with("services", image(SERVICES_IMAGE))
        .with("busybox", image(BUSYBOX_IMAGE))
        .with(
            "version",
            value_fn(Vec::<String>::new(), |_| Ok(std::env::var("REUSE_VERSION").unwrap_or_default().into())),
        )
        .with("reused_net", network().name("fx-reuse-net"))
        .with("reused_vol", volume().name("fx-reuse-vol").initial_content([("seed.txt", Some(b"seed".to_vec()))]))
        .with(
            "reused_db",
            container()
                .name("fx-reuse-db")
                .image("{services.id}")
                .command(["memcached"])
                .port("11211/tcp")
                .network("{reused_net.name}")
                .volume("{reused_vol.name}", "/data"),
        )
        .with(
            "reused_web",
            container()
                .name("fx-reuse-web")
                .image("{services.id}")
                .command(["http"])
                .port("8080/tcp")
                .env("VERSION", "{version}"),
        )
        .with("decoy_box", container().name("fx-reuse-decoy").image("{services.id}").command(["sleep"]))
        .with("decoy_net", network().name("fx-reuse-decoy-net"))
        .with("decoy_vol", volume().name("fx-reuse-decoy-vol"))
        .with(
            "net_user",
            container().name("fx-reuse-net-user").image("{services.id}").command(["sleep"]).network("{decoy_net.name}"),
        )
        .with(
            "vol_user",
            container()
                .name("fx-reuse-vol-user")
                .image("{services.id}")
                .command(["sleep"])
                .volume("{decoy_vol.name}", "/v"),
        )
        .with("unnamed", container().image("{busybox.id}").command(["sleep", "300"]))
}

#[fixtures::test(env = env())]
async fn uses_reused_fixtures(reused_db: &Container, reused_web: &Container) -> Result<()> {
    assert_eq!(reused_db.status().await?, "running");
    assert_eq!(reused_web.env()["VERSION"], std::env::var("REUSE_VERSION").unwrap_or_default());
    assert_eq!(reused_db.get_text("/data/seed.txt").await?, "seed");
    Ok(())
}

#[fixtures::test(env = env())]
async fn decoy_container(decoy_box: &Container) -> Result<()> {
    unreachable!("{} must be refused", decoy_box.name())
}

#[fixtures::test(env = env())]
async fn decoy_network(net_user: &Container) -> Result<()> {
    unreachable!("{} must be refused", net_user.name())
}

#[fixtures::test(env = env())]
async fn decoy_volume(vol_user: &Container) -> Result<()> {
    unreachable!("{} must be refused", vol_user.name())
}

#[fixtures::test(env = env())]
async fn unnamed_fixture(unnamed: &Container) -> Result<()> {
    unreachable!("{} has no name", unnamed.name())
}
