//! Compose files read into environments: every supported key mapped (the specs, snapshot),
//! and each kind of mistake with its message (snapshots). No engine is needed.

use fixtures_compose::Compose;
use fixtures_core::env::Node;
use fixtures_core::{Env, Scope};

/// The message `Compose::load` gives for `tests/files/<name>.yml`.
fn message(name: &str) -> String {
    match Compose::new(format!("tests/files/{name}.yml")).load() {
        Ok(env) => panic!("`{name}.yml` loaded: {env:?}"),
        Err(e) => e.message().to_owned(),
    }
}

macro_rules! bad_file {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            insta::assert_snapshot!(message(stringify!($name)));
        }
    )*};
}

bad_file!(
    unsupported_key,
    misspelt_key,
    yaml_syntax,
    unknown_dependency,
    cycle,
    bad_port,
    bad_condition,
    required_variable,
    undeclared_volume,
    healthcheck_key,
    no_image,
    top_level_key,
    duplicate_key,
    bad_service_name,
    name_collision,
    bad_volume_name,
    unknown_network_mode_service,
    mistake_after_a_variable,
    nested_mistake_after_a_variable,
    top_level_mistake_after_a_variable,
);

#[test]
fn a_file_that_does_not_load_fails_validation_with_its_message() {
    let env: Env = fixtures_compose::env("tests/files/cycle.yml");
    let err = env.validate().expect_err("the file has a cycle");
    assert_eq!(err.message(), message("cycle"));
    let err = Compose::new("tests/files/missing.yml").env().validate().expect_err("no such file");
    assert!(err.message().starts_with("cannot read compose file `tests/files/missing.yml`"), "{err}");
}

/// Keys of real files, every one of which loads; what they become, where it is visible in the
/// specs: `container_name` and `links` aliases, `extends`, limits, YAML 1.2 text (`no`).
#[test]
fn everyday_keys_load() {
    let env = Compose::new("tests/files/everyday_keys.yml").var("TLS_KEY", "k").load().expect("everyday keys load");
    let web = format!("{:?}", env.node("web").expect("web"));
    for part in
        ["\"shop-web\"", "\"www\"", "tty: true", "open_stdin: true", "pid_mode: Some(", "\"/usr/share/nginx/html\""]
    {
        assert!(web.contains(part), "{part} in {web}");
    }
    let api = format!("{:?}", env.node("api").expect("api"));
    for part in ["\"backend\"", "\"NODE_ENV\": \"production\"", "\"VERBOSE\": \"no\"", "working_dir: Some(\"/srv\")"] {
        assert!(api.contains(part), "{part} in {api}");
    }
}

#[test]
fn a_scope_for_an_unknown_service_is_an_error() {
    let err = Compose::new("tests/files/full/docker-compose.yml").scope("dbb", Scope::Module).load().unwrap_err();
    insta::assert_snapshot!(err.message());
}

fn full() -> Env {
    Compose::new("tests/files/full/docker-compose.yml")
        .var("FROM_ENV", "from the caller")
        .var("PORT", "8081")
        .load()
        .expect("the full file loads")
}

/// Paths on this machine out of a snapshot.
fn portable(text: String) -> String {
    text.replace(env!("CARGO_MANIFEST_DIR"), "<crate>")
}

#[test]
fn every_supported_key_is_mapped() {
    let env = full();
    let names: Vec<&str> = env.names().collect();
    assert_eq!(
        names,
        [
            "back-network",
            "data-volume",
            "db",
            "db-image",
            "front-network",
            "migrate",
            "migrate-image",
            "web",
            "web-anonymous-1-volume",
            "web-image",
        ],
        "`debug` is in an inactive profile"
    );
    env.validate().expect("the environment is valid");
    for name in ["web", "db", "migrate", "web-image", "db-image", "back-network", "data-volume"] {
        let node = env.node(name).expect("declared");
        insta::assert_snapshot!(name, portable(format!("{node:#?}")));
    }
}

#[test]
fn profiles_and_overrides() {
    let env = Compose::new("tests/files/full/docker-compose.yml").profile("debug").load().expect("loads");
    assert!(env.node("debug").is_some(), "the debug profile is active");
    let env = Compose::new("tests/files/full/docker-compose.yml")
        .file("tests/files/full/override.yml")
        .load()
        .expect("loads with the override");
    let Some(Node::Container(web)) = env.node("web") else { panic!("web is a container") };
    insta::assert_snapshot!("override", portable(format!("{web:#?}")));
}
