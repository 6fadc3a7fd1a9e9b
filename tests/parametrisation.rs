//! Parametrisation: `fakedns` is one of two fake servers, so every test that needs it,
//! directly or through `apiclient`, runs once per alternative.
//!
//! This file runs under the library's harness (`harness = false`): each case is a test of
//! its own, `api_server[fakedns=fakedns_alternate]` and `api_server[fakedns=fakedns_localhost]`.

fixtures::main!();

mod common;

use std::net::IpAddr;

use fixtures::{Env, Result, alternatives, container};
use test_support::HttpClient;

fn env() -> Env {
    common::env()
        .with(
            "fakedns_localhost",
            container().image("{fakedns_image.id}").env("DNS_EXAMPLE_COM__A", "127.0.0.1").expose("53/udp"),
        )
        .with(
            "fakedns_alternate",
            container().image("{fakedns_image.id}").env("DNS_EXAMPLE_COM__A", "192.168.192.168").expose("53/udp"),
        )
        .with("fakedns", alternatives(["fakedns_localhost", "fakedns_alternate"]))
}

#[fixtures::test(env = env())]
async fn api_server(apiclient: &HttpClient) -> Result<()> {
    let (status, body) = apiclient.get("/").await?;
    assert_eq!(status, 200);
    let json: serde_json::Value =
        serde_json::from_str(&body).map_err(|e| fixtures::Error::invalid_input(e.to_string()))?;
    json["result"]
        .as_str()
        .unwrap_or_default()
        .parse::<IpAddr>()
        .map_err(|e| fixtures::Error::invalid_input(e.to_string()))?;
    Ok(())
}

#[fixtures::test(env = env())]
async fn each_alternative_is_its_own_case() -> Result<()> {
    let env = env();
    let cases = env.cases(&["apiclient"])?;
    let names: Vec<String> = cases.iter().map(ToString::to_string).collect();
    assert_eq!(names, ["fakedns=fakedns_alternate", "fakedns=fakedns_localhost"]);
    let mut answers = Vec::new();
    for case in cases {
        let t = env.start_case("parametrisation::each_alternative_is_its_own_case", case).await?;
        let client: HttpClient = t.get("apiclient").await?;
        let (_, body) = client.get("/").await?;
        answers.push(body);
        t.finish().await.expect("torn down");
    }
    assert_eq!(answers, [r#"{"result": "192.168.192.168"}"#, r#"{"result": "127.0.0.1"}"#]);
    Ok(())
}

#[fixtures::test(env = env())]
async fn asking_for_an_undecided_alternative_is_a_clear_error() -> Result<()> {
    let t = env().start("parametrisation::undecided").await?;
    let err = t.container("fakedns").await.expect_err("no case chosen");
    assert_eq!(err.kind(), fixtures::ErrorKind::Graph);
    assert!(err.to_string().contains("stands for one of [fakedns_localhost, fakedns_alternate]"), "{err}");
    t.finish().await.expect("torn down");
    Ok(())
}
