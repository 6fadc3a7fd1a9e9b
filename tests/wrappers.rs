//! Wrapper types: a user type around a container, with helper methods and its own
//! readiness check (the reference's `wrapper_class`).

mod common;

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use fixtures::{Container, Env, Result, Wrapper, container};
use test_support::HttpClient;

static READY_CALLS: AtomicUsize = AtomicUsize::new(0);

#[derive(Clone)]
struct ApiServer(Container);

impl Wrapper for ApiServer {
    fn wrap(container: Container) -> Self {
        ApiServer(container)
    }

    /// Ready on the third look (the default checks have passed already).
    async fn ready(&self) -> Result<bool> {
        Ok(READY_CALLS.fetch_add(1, Ordering::SeqCst) >= 2)
    }
}

impl ApiServer {
    fn client(&self) -> Result<HttpClient> {
        Ok(HttpClient::new(self.0.addr("8080/tcp")?))
    }
}

fn env() -> Env {
    common::env().with(
        "apiserver",
        container().image("{apiserver_image.id}").port("8080/tcp").dns("{fakedns.ips.primary}").wrapper::<ApiServer>(),
    )
}

#[fixtures::test(env = env())]
async fn container_wrapper_class(apiserver: &ApiServer) -> Result<()> {
    assert!(READY_CALLS.load(Ordering::SeqCst) >= 3, "the wrapper's readiness was awaited");
    let (status, body) = apiserver.client()?.get("/").await?;
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
async fn the_plain_container_is_still_there(apiserver: &Container) -> Result<()> {
    assert_eq!(apiserver.status().await?, "running");
    Ok(())
}
