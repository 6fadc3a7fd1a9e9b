//! Overloading: a test module replaces one fixture of the shared environment and
//! everything that depends on it uses the replacement.

mod common;

mod replacing_a_container {
    use fixtures::{Env, container};
    use test_support::HttpClient;

    fn env() -> Env {
        super::common::env().with(
            "fakedns",
            container().image("{fakedns_image.id}").env("DNS_EXAMPLE_COM__A", "192.168.192.168").expose("53/udp"),
        )
    }

    #[fixtures::test(env = env())]
    async fn api_server(apiclient: &HttpClient) -> std::io::Result<()> {
        let (status, body) = apiclient.get("/").await?;
        assert_eq!(status, 200);
        let json: serde_json::Value = serde_json::from_str(&body)?;
        assert_eq!(json["result"], "192.168.192.168");
        Ok(())
    }
}

mod injecting_a_value {
    use fixtures::{Env, value};
    use test_support::HttpClient;

    fn env() -> Env {
        super::common::env().with("example_com_a", value("192.168.192.168"))
    }

    #[fixtures::test(env = env())]
    async fn api_server(apiclient: &HttpClient) -> std::io::Result<()> {
        let (status, body) = apiclient.get("/").await?;
        assert_eq!(status, 200);
        let json: serde_json::Value = serde_json::from_str(&body)?;
        assert_eq!(json["result"], "192.168.192.168");
        Ok(())
    }
}
