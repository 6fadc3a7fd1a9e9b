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
        .with(
            "apiserver",
            container().image("{apiserver_imag.id}").port("8080/tcp").port("http").dns("{fakedns.ips.primery}"),
        )
        .with("loop_a", container().image("{loop_b.id}"))
        .with("loop_b", container().image("{loop_a.id}"))
        .with("bad_template", container().image("{fakedns_image.id"))
        .with(
            "session_box",
            container().image("{fakedns_image.id}").env("PEER", "{fakedns.name}").scope(Scope::Session),
        )
        .with("noimage", container())
        .with(
            "net_user",
            container().image("img").network("{fakedns_image.name}").env("X", "{example_com_a.deep.path}"),
        )
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
fn a_container_is_edited_in_place_and_a_bad_edit_is_reported() {
    let env = resolver_env().edit_container("fakedns", |c| c.env("EXTRA", "1").scope(Scope::Module));
    let Some(Node::Container(c)) = env.node("fakedns") else { panic!("still a container") };
    assert_eq!(c.spec.env.get("EXTRA").map(String::as_str), Some("1"));
    assert_eq!(c.spec.env.get("DNS_EXAMPLE_COM__A").map(String::as_str), Some("{example_com_a}"), "kept");
    assert_eq!(c.scope, Some(Scope::Module));
    let env = resolver_env().edit_container("fakedsn", |c| c).edit_container("example_com_a", |c| c);
    assert_eq!(
        problems(&env),
        "the environment has 2 problems:\n  \
         - `edit_container(\"fakedsn\", ..)`: no fixture `fakedsn`; did you mean `fakedns`?\n  \
         - `edit_container(\"example_com_a\", ..)`: `example_com_a` is a value, not a container"
    );
    let env = resolver_env().invalid("compose file `x.yml`: line 1 column 1: bad");
    assert_eq!(problems(&env), "compose file `x.yml`: line 1 column 1: bad");
}

#[test]
fn scopes_default_by_kind() {
    let env = resolver_env()
        .with("net", network())
        .with("vol", volume())
        .with("mod", container().image("x").scope(Scope::Module));
    let scope = |n: &str| env.node(n).map(Node::scope);
    assert_eq!(scope("fakedns_image"), Some(Scope::Session));
    assert_eq!(scope("fakedns"), Some(Scope::Function));
    assert_eq!(scope("net"), Some(Scope::Function));
    assert_eq!(scope("vol"), Some(Scope::Function));
    assert_eq!(scope("mod"), Some(Scope::Module));
    assert_eq!(scope("example_com_a"), Some(Scope::Session));
}

/// A runtime that records what it is asked, for the resolver's logic. Builds take 50 ms.
mod fake {
    use std::any::Any;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use bytes::Bytes;
    use futures_util::stream::BoxStream;

    use crate::error::{Error, ErrorKind, Result};
    use crate::runtime::*;
    use crate::spec::*;

    #[derive(Debug, Default)]
    pub(super) struct Fake {
        pub(super) name: &'static str,
        pub(super) calls: Mutex<Vec<String>>,
        pub(super) building: AtomicUsize,
        pub(super) max_building: AtomicUsize,
        pub(super) fail_start: bool,
        /// Starts that fail as Podman's do when a chosen host port was taken meanwhile.
        pub(super) port_clashes: AtomicUsize,
        /// Containers exit with code 3 this long after they are created, saying `boom`;
        /// the engine's events never tell (as when Podman's event log rotates).
        pub(super) exit_after: Option<std::time::Duration>,
        pub(super) created_at: Mutex<Option<std::time::Instant>>,
    }

    impl Fake {
        pub(super) fn new(name: &'static str) -> Self {
            Fake { name, ..Fake::default() }
        }

        fn call(&self, what: String) {
            self.calls.lock().expect("calls").push(what);
        }

        fn exits_at(&self) -> Option<std::time::Instant> {
            Some(*self.created_at.lock().expect("created_at").as_ref()? + self.exit_after?)
        }

        pub(super) fn calls(&self, prefix: &str) -> Vec<String> {
            self.calls.lock().expect("calls").iter().filter(|c| c.starts_with(prefix)).cloned().collect()
        }
    }

    fn unsupported<T>() -> Result<T> {
        Err(Error::new(ErrorKind::Unsupported, "not in the fake"))
    }

    #[async_trait]
    impl Runtime for Fake {
        fn name(&self) -> &str {
            self.name
        }
        fn as_any(&self) -> &dyn Any {
            self
        }
        async fn ping(&self) -> Result<()> {
            self.call(format!("ping on the library's runtime: {}", crate::executor::is_current()));
            Ok(())
        }
        async fn version(&self) -> Result<VersionInfo> {
            Ok(VersionInfo::new(self.name, "0", "0", "linux/amd64"))
        }
        async fn build_image(&self, spec: &BuildSpec, _: ProgressSink<'_>) -> Result<String> {
            let now = self.building.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_building.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            self.building.fetch_sub(1, Ordering::SeqCst);
            let BuildContext::Dockerfile(text) = &spec.context else { return unsupported() };
            self.call(format!("build {}", text.trim()));
            Ok(format!("sha256:{}", text.trim().replace(' ', "-")))
        }
        async fn pull_image(&self, _: &PullSpec, _: ProgressSink<'_>) -> Result<String> {
            unsupported()
        }
        async fn inspect_image(&self, reference: &str) -> Result<ImageInfo> {
            Ok(ImageInfo { id: reference.to_owned(), os: "linux".to_owned(), ..ImageInfo::default() })
        }
        async fn list_images(&self, _: &LabelFilter) -> Result<Vec<ImageInfo>> {
            Ok(Vec::new())
        }
        async fn tag_image(&self, _: &str, _: &str, _: &str) -> Result<()> {
            Ok(())
        }
        async fn remove_image(&self, _: &str, _: bool) -> Result<()> {
            Ok(())
        }
        async fn create_container(&self, spec: &ContainerSpec) -> Result<String> {
            let id = spec.name.clone().unwrap_or_default();
            self.call(format!("create {id} from {}", spec.image));
            *self.created_at.lock().expect("created_at") = Some(std::time::Instant::now());
            Ok(id)
        }
        async fn start_container(&self, id: &str) -> Result<()> {
            self.call(format!("start {id}"));
            if self.port_clashes.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    "the engine answered 500: cannot listen on the TCP port: listen tcp4 127.0.0.1:45355: bind: address already in use",
                ));
            }
            if self.fail_start { Err(Error::new(ErrorKind::Engine, "start refused")) } else { Ok(()) }
        }
        async fn inspect_container(&self, id: &str) -> Result<ContainerInfo> {
            let mut info = ContainerInfo::default();
            (info.id, info.name, info.image_id) = (id.to_owned(), id.to_owned(), "img".to_owned());
            match self.exits_at() {
                Some(at) if std::time::Instant::now() >= at => {
                    (info.status, info.exit_code) = (ContainerStatus::Exited, Some(3));
                }
                _ => info.status = ContainerStatus::Running,
            }
            let bridge = crate::runtime::NetworkEndpoint {
                network: "bridge".to_owned(),
                ipv4: "172.17.0.9".parse().ok(),
                gateway: "172.17.0.1".parse().ok(),
                ..Default::default()
            };
            info.networks.insert("bridge".to_owned(), bridge);
            Ok(info)
        }
        async fn list_containers(&self, _: &LabelFilter) -> Result<Vec<ContainerSummary>> {
            Ok(Vec::new())
        }
        async fn stop_container(&self, _: &str, _: i64) -> Result<()> {
            Ok(())
        }
        async fn kill_container(&self, _: &str, _: &str) -> Result<()> {
            Ok(())
        }
        async fn restart_container(&self, _: &str, _: i64) -> Result<()> {
            Ok(())
        }
        async fn pause_container(&self, _: &str) -> Result<()> {
            Ok(())
        }
        async fn unpause_container(&self, _: &str) -> Result<()> {
            Ok(())
        }
        async fn wait_container(&self, _: &str) -> Result<i64> {
            Ok(0)
        }
        async fn remove_container(&self, id: &str, _: bool) -> Result<()> {
            self.call(format!("remove {id}"));
            Ok(())
        }
        fn logs(&self, _: &str, spec: &LogsSpec) -> BoxStream<'static, Result<LogChunk>> {
            let Some(at) = self.exits_at() else { return Box::pin(futures_util::stream::empty()) };
            let follow = spec.follow;
            Box::pin(futures_util::stream::once(async move {
                if follow {
                    tokio::time::sleep_until(at.into()).await;
                }
                Ok(LogChunk { stream: crate::runtime::Stream::Stdout, bytes: Bytes::from_static(b"boom\n") })
            }))
        }
        async fn exec(&self, _: &str, _: &ExecSpec) -> Result<ExecOutput> {
            unsupported()
        }
        async fn put_archive(&self, _: &str, _: &str, _: Bytes) -> Result<()> {
            Ok(())
        }
        async fn get_archive(&self, _: &str, _: &str) -> Result<Bytes> {
            unsupported()
        }
        async fn create_network(&self, spec: &NetworkSpec) -> Result<String> {
            self.call(format!("create network {}", spec.name));
            Ok(spec.name.clone())
        }
        async fn inspect_network(&self, _: &str) -> Result<NetworkInfo> {
            unsupported()
        }
        async fn list_networks(&self, _: &LabelFilter) -> Result<Vec<NetworkInfo>> {
            Ok(Vec::new())
        }
        async fn remove_network(&self, id: &str) -> Result<()> {
            self.call(format!("remove network {id}"));
            Ok(())
        }
        async fn connect_network(&self, _: &str, _: &str, _: &[String]) -> Result<()> {
            Ok(())
        }
        async fn disconnect_network(&self, _: &str, _: &str, _: bool) -> Result<()> {
            Ok(())
        }
        async fn create_volume(&self, spec: &VolumeSpec) -> Result<VolumeInfo> {
            Ok(VolumeInfo { name: spec.name.clone(), ..VolumeInfo::default() })
        }
        async fn inspect_volume(&self, _: &str) -> Result<VolumeInfo> {
            unsupported()
        }
        async fn list_volumes(&self, _: &LabelFilter) -> Result<Vec<VolumeInfo>> {
            Ok(Vec::new())
        }
        async fn remove_volume(&self, _: &str, _: bool) -> Result<()> {
            Ok(())
        }
        fn events(&self, _: &LabelFilter) -> BoxStream<'static, Result<Event>> {
            Box::pin(futures_util::stream::pending())
        }
    }
}

fn fake_env(fake: &Arc<fake::Fake>, env: Env, test: &str) -> TestEnv {
    TestEnv::new(Arc::new(env), fake.clone(), TestId::new("tests", test), Case::default())
}

fn two_images() -> Env {
    Env::new()
        .with("image_a", build().dockerfile_text("FROM a"))
        .with("image_b", build().dockerfile_text("FROM b"))
        .with("a", container().image("{image_a.id}"))
        .with("b", container().image("{image_b.id}"))
        .with("both", fixture(["a", "b"], |_r| async { Ok(()) }))
        .with("unused", container().image("{image_b.id}"))
}

#[tokio::test]
async fn independent_fixtures_are_made_concurrently() {
    let fake = Arc::new(fake::Fake::new("fake-concurrent"));
    let t = fake_env(&fake, two_images(), "concurrent");
    t.prepare(&["both"]).await.expect("made");
    assert_eq!(fake.max_building.load(std::sync::atomic::Ordering::SeqCst), 2, "the two builds overlapped");
    assert_eq!(fake.calls("create").len(), 2);
    t.finish().await.expect("torn down");
    assert_eq!(fake.calls("remove").len(), 2, "both containers removed");
}

#[tokio::test]
async fn only_what_is_asked_for_is_made_and_sessions_are_shared() {
    let fake = Arc::new(fake::Fake::new("fake-lazy"));
    let first = fake_env(&fake, two_images(), "lazy_1");
    first.container("a").await.expect("a");
    assert_eq!(fake.calls("build"), ["build FROM a"], "image_b is not needed");
    assert_eq!(fake.calls("create").len(), 1);
    let second = fake_env(&fake, two_images(), "lazy_2");
    second.container("a").await.expect("a again");
    assert_eq!(fake.calls("build").len(), 1, "the session image is built once");
    assert_eq!(fake.calls("create").len(), 2, "each test gets its own function-scoped container");
    first.finish().await.expect("torn down");
    second.finish().await.expect("torn down");
}

#[tokio::test]
async fn what_was_created_before_a_failure_is_removed() {
    let fake = Arc::new(fake::Fake { fail_start: true, ..fake::Fake::new("fake-failing") });
    let env = Env::new().with("net", network()).with("c", container().image("img").network("{net.name}"));
    let t = fake_env(&fake, env, "failing");
    let err = t.container("c").await.expect_err("start fails");
    assert_eq!(err.fixture(), Some("c"));
    assert_eq!(err.kind(), crate::ErrorKind::Engine);
    t.finish().await.expect("torn down");
    let created = fake.calls("create ");
    let removed = fake.calls("remove");
    assert_eq!(created.len(), 2, "{created:?}");
    assert_eq!(removed.len(), 2, "the container and then the network: {removed:?}");
    assert!(removed[0].starts_with("remove fx-c-") && removed[1].starts_with("remove network fx-net-"), "{removed:?}");
}

#[tokio::test]
async fn an_exit_the_events_never_tell_is_seen_when_the_output_ends() {
    use crate::Runtime;
    use crate::readiness::{Readiness, WaitFor};
    use crate::spec::ContainerSpec;
    let fake = Arc::new(fake::Fake {
        exit_after: Some(std::time::Duration::from_millis(100)),
        ..fake::Fake::new("fake-exit")
    });
    fake.create_container(&ContainerSpec { name: Some("c".into()), ..ContainerSpec::default() })
        .await
        .expect("created");
    let never: crate::readiness::ReadyFn = Arc::new(|_| Box::pin(async { Ok(false) }));
    let readiness = Readiness {
        timeout: std::time::Duration::from_secs(20),
        ports: false,
        wait_for: vec![WaitFor::Custom("never".into(), never)],
        ..Readiness::default()
    };
    let c = crate::Container::attach(fake.clone(), "c", "c", None, readiness).await.expect("attached");
    let err = c.wait_ready().await.expect_err("it exits");
    assert_eq!(err.kind(), crate::ErrorKind::Exited, "{err:?}");
    assert!(err.logs_tail().is_some_and(|tail| tail.contains("boom")), "{err:?}");
}

#[tokio::test]
async fn a_host_port_taken_before_the_start_gets_a_new_container() {
    let fake = Arc::new(fake::Fake::new("fake-port-clash"));
    fake.port_clashes.store(2, std::sync::atomic::Ordering::SeqCst);
    let env = Env::new().with("c", container().image("img").port("8080/tcp"));
    let t = fake_env(&fake, env.clone(), "port_clash");
    t.container("c").await.expect("started on the third try");
    assert_eq!(fake.calls("create ").len(), 3);
    assert_eq!(fake.calls("remove").len(), 2, "the two that could not start are gone at once");
    t.finish().await.expect("torn down");
    assert_eq!(fake.calls("remove").len(), 3);

    // A port the test fixed is not the engine's choice: the clash is the test's to fix.
    fake.port_clashes.store(1, std::sync::atomic::Ordering::SeqCst);
    let fixed = Env::new().with("c", container().image("img").port_on("8080/tcp", "127.0.0.1", Some(18080)));
    let t = fake_env(&fake, fixed, "port_fixed");
    let err = t.container("c").await.expect_err("no retry");
    assert!(err.to_string().contains("address already in use"), "{err}");
    t.finish().await.expect("torn down");
}

#[test]
fn engine_calls_from_a_tests_runtime_run_on_the_librarys() {
    use crate::runtime::Runtime as _;
    let fake = Arc::new(fake::Fake::new("fake-hop"));
    let wrapped = crate::executor::OnLibraryRuntime(fake.clone());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    rt.block_on(wrapped.ping()).expect("pinged");
    drop(rt);
    crate::executor::block_on(wrapped.ping()).expect("runs").expect("pinged");
    assert_eq!(fake.calls("ping"), vec!["ping on the library's runtime: true"; 2]);
}

#[test]
fn every_attribute_of_the_table_validates_and_bad_ones_say_what_there_is() {
    let env = |template: &str| {
        Env::new()
            .with("img", image("x"))
            .with("net", network())
            .with("c", container().image("{img.id}").network("{net.name}"))
            .with("d", container().image("{img.name}").env("V", template))
    };
    for ok in
        ["{c}", "{c.id}", "{c.name}", "{c.ips.primary}", "{c.ips[net]}", "{c.ports[80/tcp]}", "{c.env[X]}", "{net.id}"]
    {
        assert!(env(ok).validate().is_ok(), "{ok}: {:?}", env(ok).validate());
    }
    let bad_port = env("{c.ports[http]}").validate().expect_err("not a port").to_string();
    assert!(bad_port.contains("`ports[http]`"), "{bad_port}");
    let unknown = env("{net.subnet}").validate().expect_err("no such attribute").to_string();
    assert!(unknown.contains("a network has no attribute `.subnet`; it has `id`, `name`"), "{unknown}");
}

#[test]
fn image_builders_report_their_mistakes_at_validation() {
    let err = Env::new().with("pulled", fetch(" ")).with("there", image("")).validate().expect_err("two mistakes");
    let text = err.to_string();
    assert!(text.contains("fixture `pulled`: has no repository to pull"), "{text}");
    assert!(text.contains("fixture `there`: names no image"), "{text}");
    assert!(
        Env::new()
            .with("built", build())
            .validate()
            .expect_err("no context")
            .to_string()
            .contains("has no build context"),
        "a build with no context"
    );
}
