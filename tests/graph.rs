//! The environment graph against the engine: blocking and synchronous tests, typed and
//! computed values, build stages, user labels, IPv6 networks, and references between
//! containers.

use fixtures::{Container, Env, ErrorKind, Image, Network, Result, build, container, image, network, value, value_fn};
use test_support::{BUSYBOX_IMAGE, SERVICES_IMAGE};

fn env() -> Env {
    test_support::base_env()
        .with("services", image(SERVICES_IMAGE))
        .with("http_port", value(9090))
        .with("greeting", value(serde_json::json!({"text": "hello from a value", "lines": ["a", "b"]})))
        .with(
            "computed",
            value_fn(["http_port", "greeting"], |r| {
                Ok(serde_json::json!(format!(
                    "{}:{}",
                    r.value("greeting")?["text"].as_str().unwrap_or_default(),
                    r.value("http_port")?
                )))
            }),
        )
        .with(
            "http",
            container()
                .image("{services.id}")
                .command(["http"])
                .env("PORT", "{http_port}")
                .env("COMPUTED", "{computed}")
                .env("FIRST_LINE", "{greeting.lines[0]}")
                .env("LITERAL", "{{not a reference}}")
                .label("team", "payments")
                .configure(["http_port"], |spec, r| {
                    // A typed reference: the port as a number, not a string.
                    let port = r.value("http_port")?.as_u64().unwrap_or_default() as u16;
                    spec.ports.push(fixtures::spec::PortBinding {
                        port: fixtures::spec::Port::tcp(port),
                        host_ip: Some("127.0.0.1".into()),
                        host_port: None,
                    });
                    Ok(())
                }),
        )
        .with(
            "peer",
            container()
                .image("{services.id}")
                .command(["sleep"])
                .env("HTTP_NAME", "{http.name}")
                .env("HTTP_ID", "{http.id}")
                .env("HTTP_IP", "{http.ips.primary}")
                .env("HTTP_HOST_PORT", "{http.ports[9090/tcp]}")
                .env("HTTP_COMPUTED", "{http.env[COMPUTED]}"),
        )
        .with(
            "staged_image",
            build()
                .dockerfile_text(format!(
                    "FROM {BUSYBOX_IMAGE} AS builder\nRUN echo from the builder > /artifact\n\
                     FROM {SERVICES_IMAGE}\nCOPY --from=builder /artifact /artifact\n"
                ))
                .stages(["builder"])
                .label("team", "payments"),
        )
        .with("v6", network().ipv6().label("team", "payments"))
        .with("on_v6", container().image("{services.id}").command(["sleep"]).network("{v6.name}"))
}

#[test]
fn plain_test_with_the_blocking_api() -> Result<()> {
    let t = env().start_blocking("graph::plain_test_with_the_blocking_api")?;
    let http = t.container("http")?;
    let (status, body) = t.block_on(test_support::HttpClient::new(http.addr("9090/tcp")?).get("/env/COMPUTED"))?;
    assert_eq!((status, body.as_str()), (200, "hello from a value:9090"));
    t.finish().expect("torn down");
    Ok(())
}

#[tokio::test]
async fn the_blocking_api_refuses_to_run_inside_a_runtime() {
    let err = env().start_blocking("graph::inside").expect_err("inside a runtime");
    assert_eq!(err.kind(), ErrorKind::Config);
    assert_eq!(err.to_string(), "the blocking API was called inside an async runtime");
    assert!(format!("{err:?}").contains("use `env.start(..).await` instead"));
}

#[fixtures::test(env = env())]
fn synchronous_test_body(http: &Container) {
    // A non-async body may block, and reach async handle methods through the runtime.
    let listening = tokio::runtime::Handle::current()
        .block_on(test_support::logs_come_to_contain(http, "listening on 0.0.0.0:9090"))
        .expect("logs");
    assert!(listening);
}

#[fixtures::test(env = env())]
async fn values_typed_references_and_literal_braces(http: &Container) -> Result<()> {
    let env = http.env();
    assert_eq!(env["PORT"], "9090");
    assert_eq!(env["COMPUTED"], "hello from a value:9090");
    assert_eq!(env["FIRST_LINE"], "a");
    assert_eq!(env["LITERAL"], "{not a reference}");
    assert!(http.ports().get("9090/tcp").is_some(), "published through `configure`");
    Ok(())
}

#[fixtures::test(env = env())]
async fn containers_reference_each_other(peer: &Container, http: &Container) -> Result<()> {
    let env = peer.env();
    assert_eq!(env["HTTP_NAME"], http.name());
    assert_eq!(env["HTTP_ID"], http.id());
    assert_eq!(env["HTTP_IP"], http.ips().primary().expect("ip").to_string());
    assert_eq!(env["HTTP_HOST_PORT"], http.ports()["9090/tcp"][0].to_string());
    assert_eq!(env["HTTP_COMPUTED"], "hello from a value:9090");
    Ok(())
}

#[fixtures::test(env = env())]
async fn user_labels_are_kept_beside_ours(http: &Container, v6: &Network, staged_image: &Image) -> Result<()> {
    let labels = http.info().labels;
    assert_eq!(labels["team"], "payments");
    assert_eq!(labels["fixtures.managed"], "true");
    assert_eq!(labels["fixtures.node"], "http");
    let net = http.runtime().inspect_network(v6.id()).await?;
    assert_eq!(net.labels["team"], "payments");
    assert_eq!(net.labels["fixtures.node"], "v6");
    assert_eq!(staged_image.info().labels["team"], "payments");
    assert_eq!(staged_image.info().labels["fixtures.node"], "staged_image");
    Ok(())
}

#[fixtures::test(env = env())]
async fn build_stages_are_built_and_tagged_first(
    staged_image: &Image,
    runtime: &std::sync::Arc<dyn fixtures::Runtime>,
) -> Result<()> {
    let sig = &staged_image.info().labels["fixtures.signature"];
    let stage = runtime.inspect_image(&format!("fixtures-stage/staged_image:builder-{sig}")).await?;
    assert_ne!(stage.id, staged_image.id(), "the stage is an image of its own");
    let services = runtime.inspect_image(SERVICES_IMAGE).await?;
    assert_ne!(staged_image.id(), services.id);
    Ok(())
}

#[fixtures::test(env = env())]
async fn an_ipv6_network_gives_ipv6_addresses(on_v6: &Container, v6: &Network) -> Result<()> {
    let ip = on_v6.ips().ipv6(v6.name()).expect("an IPv6 address on the IPv6 network");
    assert!(ip.is_ipv6());
    assert!(on_v6.ips().get(v6.name()).is_some());
    Ok(())
}
