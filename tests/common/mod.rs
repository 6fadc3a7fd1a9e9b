//! The shared environment of the resolver-service examples: this file plays the
//! part of the reference's `conftest.py`.

#![allow(dead_code)]

use fixtures::{Env, Result, build, container, fixture, value};
use test_support::HttpClient;

/// The fake DNS server and the API server that resolves `example.com` through it.
pub(crate) fn env() -> Env {
    test_support::base_env()
        .with("fakedns_image", build().path("examples/resolver-service/dns"))
        .with("example_com_a", value("127.0.0.1"))
        .with(
            "fakedns",
            container().image("{fakedns_image.id}").env("DNS_EXAMPLE_COM__A", "{example_com_a}").expose("53/udp"),
        )
        .with("apiserver_image", build().path("examples/resolver-service/api"))
        .with("apiserver", container().image("{apiserver_image.id}").port("8080/tcp").dns("{fakedns.ips.primary}"))
        .with("apiclient", fixture(["apiserver"], |r| async move { Ok(api_client(&r.container("apiserver")?)?) }))
}

/// A client of the API server (the reference's `apiclient` fixture).
pub(crate) fn api_client(apiserver: &fixtures::Container) -> Result<HttpClient> {
    Ok(HttpClient::new(apiserver.addr("8080/tcp")?))
}
