//! The reference's first example: a fake DNS server, an API server that resolves
//! through it, and tests that reach the API on an ephemeral port.
//!
//! `cargo xtask demo` runs this file.

mod common;

use fixtures::{Container, Result};
use test_support::HttpClient;

#[fixtures::test(env = common::env())]
async fn my_frobulator(apiserver: &Container) -> Result<()> {
    let port = apiserver.ports()["8080/tcp"][0];
    tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    Ok(())
}

#[fixtures::test(env = common::env())]
async fn my_frobulator_works_after_restart(apiserver: &Container) -> Result<()> {
    apiserver.restart().await?;
    tokio::net::TcpStream::connect(apiserver.addr("8080/tcp")?).await?;
    Ok(())
}

#[fixtures::test(env = common::env())]
async fn api_server(apiclient: &HttpClient) -> std::io::Result<()> {
    let (status, body) = apiclient.get("/").await?;
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(json, serde_json::json!({"result": "127.0.0.1"}));
    Ok(())
}
