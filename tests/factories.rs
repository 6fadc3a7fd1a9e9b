//! The reference's factories: containers (timeout, in-code Dockerfile, IP addresses,
//! ports, logs), images (fetch, build, image), networks, volumes, the runtime and its
//! raw client, and `addr()`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fixtures::{
    Container, Env, ErrorKind, Image, Network, Result, Runtime, build, container, fetch, image, network, volume,
};
use test_support::{BUSYBOX_IMAGE, Need, REGISTRY_IMAGE, SERVICES_IMAGE};

fn env() -> Env {
    test_support::base_env()
        .with("services", image(SERVICES_IMAGE))
        .with("pulled", fetch(REGISTRY_IMAGE))
        .with(
            "http",
            container().image("{services.id}").command(["http"]).port("8080/tcp").timeout(Duration::from_secs(30)),
        )
        .with("from_registry", container().image("{pulled.id}").command(["echo"]).port("7000/tcp"))
        .with(
            "inline_image",
            build().dockerfile_text(format!(
                "FROM {BUSYBOX_IMAGE}\nRUN echo built in code > /built\nCMD [\"sleep\", \"300\"]\n"
            )),
        )
        .with("inline", container().image("{inline_image.id}").stop_signal("SIGKILL"))
        .with("backend_network", network())
        .with("on_network", container().image("{services.id}").command(["sleep"]).network("{backend_network.name}"))
        .with(
            "minio_volume",
            volume().initial_content([("bucket-1", None), ("bucket-2/example.txt", Some(b"Test file 1".to_vec()))]),
        )
        .with(
            "minio",
            container()
                .image("{services.id}")
                .command(["sleep"])
                .volume("{minio_volume.name}", "/data")
                .env("MINIO_ACCESS_KEY", "minio"),
        )
        .with(
            "never_listens",
            container()
                .image("{services.id}")
                .command(["http"])
                .env("LISTEN_DELAY_MS", "600000")
                .port("8080/tcp")
                .timeout(Duration::from_secs(1)),
        )
}

#[fixtures::test(env = env())]
async fn container_starts_within_its_timeout(http: &Container) -> Result<()> {
    assert_eq!(http.status().await?, "running");
    Ok(())
}

#[tokio::test]
async fn a_container_that_never_gets_ready_times_out_and_says_what_it_awaited() -> Result<()> {
    let t = env().start("factories::timeout").await?;
    let started = Instant::now();
    let err = t.container("never_listens").await.expect_err("never ready");
    assert!(started.elapsed() < Duration::from_secs(5), "gave up at the 1 s timeout: {:?}", started.elapsed());
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err:?}");
    assert_eq!(err.fixture(), Some("never_listens"));
    let report = format!("{err:?}");
    assert!(report.contains("waiting for: port 8080/tcp to listen"), "{report}");
    let id = err.container().expect("the error names the container").to_owned();
    let runtime = t.runtime().clone();
    assert_eq!(runtime.inspect_container(&id).await?.status, fixtures::ContainerStatus::Running);
    t.finish().await.expect("torn down");
    let gone = runtime.inspect_container(&id).await.expect_err("removed with the test");
    assert_eq!(gone.kind(), ErrorKind::NotFound, "a fixture that failed is removed too");
    Ok(())
}

#[fixtures::test(env = env())]
async fn container_from_an_in_code_dockerfile(inline: &Container) -> Result<()> {
    assert_eq!(inline.status().await?, "running");
    assert_eq!(inline.get_text("/built").await?, "built in code\n");
    Ok(())
}

#[fixtures::test(env = env())]
async fn ip_addresses_primary_and_by_network(on_network: &Container, backend_network: &Network) -> Result<()> {
    let primary: IpAddr = on_network.ips().primary().expect("an address");
    assert_eq!(on_network.ips()[backend_network], primary);
    assert_eq!(on_network.ips().get(backend_network.name()), Some(primary));
    assert_eq!(on_network.ips().iter().count(), 1, "only on the backend network");
    Ok(())
}

#[fixtures::test(env = env())]
async fn ports_are_ephemeral_host_ports(http: &Container) -> Result<()> {
    let host_port = http.ports()["8080/tcp"][0];
    assert_ne!(host_port, 8080);
    let addr = http.addr("8080/tcp")?;
    assert!(addr.ip().is_loopback(), "the engine runs here: reach it on loopback ({addr})");
    assert_eq!(addr.port(), host_port);
    let (status, body) = test_support::HttpClient::new(addr).get("/").await?;
    assert_eq!((status, body.as_str()), (200, "hello\n"));
    Ok(())
}

#[fixtures::test(env = env())]
async fn logs_show_the_service_starting(http: &Container) -> Result<()> {
    assert!(test_support::logs_come_to_contain(http, "http: listening on 0.0.0.0:8080").await?);
    Ok(())
}

#[tokio::test]
async fn fetched_built_and_existing_images() -> Result<()> {
    if !test_support::has(&[Need::Registry]) {
        return Ok(());
    }
    let test = env().start("fetched_built_and_existing_images").await?;
    let (pulled, services) = (&test.image("pulled").await?, &test.image("services").await?);
    let from_registry = &test.container("from_registry").await?;
    // The registry holds the services image as one of the engines pushed it (`cargo xtask
    // images`): its id differs between engines for the same build, its inputs' label does not.
    let inputs = |image: &Image| image.info().labels.get(test_support::INPUTS_LABEL).cloned();
    assert!(inputs(services).is_some(), "the services image carries its inputs' label");
    assert_eq!(inputs(pulled), inputs(services), "the registry holds the services image");
    assert!(pulled.tags().iter().any(|t| t == REGISTRY_IMAGE), "{:?}", pulled.tags());
    assert_eq!(pulled.attrs()["Os"], "linux");
    assert_eq!(from_registry.status().await?, "running");
    test.finish().await
}

#[fixtures::test(env = env())]
async fn volume_is_seeded_without_a_shell(minio: &Container) -> Result<()> {
    let files = minio.get_files("/data").await?;
    assert_eq!(files["data/bucket-2/example.txt"], Some(b"Test file 1".to_vec()));
    assert_eq!(files["data/bucket-1"], None);
    Ok(())
}

#[tokio::test]
async fn volume_content_paths_must_stay_inside() -> Result<()> {
    let env = env().with("bad_volume", volume().initial_content([("../escape", Some(vec![1u8]))]));
    let t = env.start("factories::bad_volume").await?;
    let err = t.volume("bad_volume").await.expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(
        err.to_string(),
        "fixture `bad_volume`: path `../escape` contains `..`: paths must stay inside the target folder"
    );
    t.finish().await.expect("torn down");
    Ok(())
}

#[fixtures::test(env = env())]
async fn the_runtime_and_its_raw_client(runtime: &Arc<dyn Runtime>, http: &Container) -> Result<()> {
    let listed = runtime.list_containers(&fixtures::spec::LabelFilter::has("fixtures.managed")).await?;
    assert!(listed.iter().any(|c| c.id == http.id()), "our container is listed");
    let raw_id = match runtime.name() {
        "docker" => {
            let docker = runtime.as_any().downcast_ref::<fixtures_docker::DockerRuntime>().expect("docker");
            let raw = docker
                .client()
                .inspect_container(http.id(), None::<bollard::query_parameters::InspectContainerOptions>)
                .await;
            raw.ok().and_then(|c| c.id)
        }
        "podman" => {
            let podman = runtime.as_any().downcast_ref::<fixtures_podman::PodmanRuntime>().expect("podman");
            podman.client().containers().get(http.id()).inspect().await.ok().and_then(|c| c.id)
        }
        other => panic!("no raw client known for runtime `{other}`"),
    };
    assert_eq!(raw_id.as_deref(), Some(http.id()));
    Ok(())
}
