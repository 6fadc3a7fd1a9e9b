//! Graph validation and case expansion, no engine needed.

use super::*;

fn resolver_env() -> Env {
    Env::new()
        .with("fakedns_image", build().path("examples/resolver-service/dns"))
        .with("example_com_a", value("127.0.0.1"))
        .with("fakedns", container().image("{fakedns_image.id}").env("DNS_EXAMPLE_COM__A", "{example_com_a}"))
        .with("apiserver_image", build().path("examples/resolver-service/api"))
        .with("apiserver", container().image("{apiserver_image.id}").port("8080/tcp").dns("{fakedns.ips.primary}"))
}

fn problems(env: &Env) -> String {
    match env.validate() {
        Ok(()) => "ok".to_owned(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_valid_environment_validates() {
    assert_eq!(problems(&resolver_env()), "ok");
}

#[test]
fn graph_errors_are_reported_before_anything_is_made() {
    let env = resolver_env()
        .with("apiserver", container().image("{apiserver_imag.id}").port("8080/tcp").port("http").dns("{fakedns.ips.primery}"))
        .with("loop_a", container().image("{loop_b.id}"))
        .with("loop_b", container().image("{loop_a.id}"))
        .with("bad_template", container().image("{fakedns_image.id"))
        .with("session_box", container().image("{fakedns_image.id}").env("PEER", "{fakedns.name}").scope(Scope::Session))
        .with("noimage", container())
        .with("net_user", container().image("img").network("{fakedns_image.name}").env("X", "{example_com_a.deep.path}"))
        .with("client", fixture(["apiserver"], |_r| async { Ok(1u8) }))
        .with("uses_client", container().image("{client.id}"));
    insta::assert_snapshot!(problems(&env));
}

#[test]
fn one_problem_is_one_line() {
    let env = resolver_env().with("fakedns", container().image("{fakedns_imge.id}"));
    insta::assert_snapshot!(problems(&env), @"fixture `fakedns`: references unknown fixture `fakedns_imge`; did you mean `fakedns_image`? (known: apiserver, apiserver_image, example_com_a, fakedns, fakedns_image)");
}

fn parametrised() -> Env {
    resolver_env()
        .with("fakedns_localhost", container().image("{fakedns_image.id}").env("DNS_EXAMPLE_COM__A", "127.0.0.1"))
        .with("fakedns_alternate", container().image("{fakedns_image.id}").env("DNS_EXAMPLE_COM__A", "192.168.192.168"))
        .with("fakedns", alternatives(["fakedns_localhost", "fakedns_alternate"]))
        .with("proto", alternatives(["v4", "v6"]))
        .with("v4", value("4"))
        .with("v6", value("6"))
        .with("client", fixture(["apiserver", "proto"], |_r| async { Ok(()) }))
}

fn case_names(env: &Env, requested: &[&str]) -> Vec<String> {
    env.cases(requested).expect("cases").iter().map(ToString::to_string).collect()
}

#[test]
fn alternatives_expand_into_cases() {
    let env = parametrised();
    assert_eq!(case_names(&env, &["fakedns_image"]), [""], "no alternatives needed: one case");
    assert_eq!(case_names(&env, &["apiserver"]), ["fakedns=fakedns_alternate", "fakedns=fakedns_localhost"]);
    assert_eq!(
        case_names(&env, &["client"]),
        [
            "fakedns=fakedns_alternate,proto=v4",
            "fakedns=fakedns_alternate,proto=v6",
            "fakedns=fakedns_localhost,proto=v4",
            "fakedns=fakedns_localhost,proto=v6"
        ]
    );
    let err = env.cases(&["nope"]).expect_err("unknown");
    assert!(err.to_string().contains("unknown fixture `nope`"), "{err}");
}

#[test]
fn overloading_replaces_one_node() {
    let env = resolver_env().with("example_com_a", value("192.168.192.168"));
    let Some(Node::Value(v)) = env.node("example_com_a") else { panic!("a value") };
    assert_eq!(v.value, Some(serde_json::json!("192.168.192.168")));
    assert!(matches!(env.node("fakedns"), Some(Node::Container(_))), "dependents are untouched");
    assert_eq!(problems(&env), "ok");
}

#[test]
fn scopes_default_by_kind() {
    let env = resolver_env().with("net", network()).with("vol", volume()).with("mod", container().image("x").scope(Scope::Module));
    let scope = |n: &str| env.node(n).map(Node::scope);
    assert_eq!(scope("fakedns_image"), Some(Scope::Session));
    assert_eq!(scope("fakedns"), Some(Scope::Function));
    assert_eq!(scope("net"), Some(Scope::Function));
    assert_eq!(scope("vol"), Some(Scope::Function));
    assert_eq!(scope("mod"), Some(Scope::Module));
    assert_eq!(scope("example_com_a"), Some(Scope::Session));
}
