//! Custom fixtures as user code writes them: `?` on any error type, with the error naming the
//! fixture and keeping its cause; types that are not `Clone`, taken by reference; panics in
//! fixture code reported as the fixture's failure.

use std::error::Error as _;

use fixtures::{Container, Env, ErrorKind, Result, TestId, container, fixture, image, value_fn};
use test_support::SERVICES_IMAGE;

/// Not `Clone` (it holds a mutex): a test takes it as `&NotClone`.
#[derive(Debug)]
pub struct NotClone {
    port: u16,
    _private: std::sync::Mutex<Vec<u8>>,
}

fn env() -> Env {
    test_support::base_env()
        .with("services", image(SERVICES_IMAGE))
        .with("echo", container().image("{services.id}").command(["echo"]).port("7000/tcp"))
        .with(
            "not_clone",
            fixture(["echo"], |r| async move {
                Ok(NotClone { port: r.container("echo")?.addr("7000/tcp")?.port(), _private: Default::default() })
            }),
        )
        .with(
            "parsed_port",
            fixture([] as [&str; 0], |_| async {
                // A driver's own error type, with `?` and no conversion by hand.
                let port: u16 = "eighty".parse()?;
                Ok(port)
            }),
        )
        .with(
            "refused",
            fixture([] as [&str; 0], |_| async {
                // Port 9 on loopback: nothing listens, connecting is refused.
                let stream = tokio::net::TcpStream::connect(("127.0.0.1", 9)).await?;
                Ok(stream)
            }),
        )
        .with(
            "panicking",
            fixture([] as [&str; 0], |_| async {
                if std::hint::black_box(true) {
                    panic!("the fixture's code panics");
                }
                Ok(0_u8)
            }),
        )
        .with(
            "computed",
            value_fn([] as [&str; 0], |_| {
                let n: i64 = "forty-two".parse()?;
                Ok(n.into())
            }),
        )
        .with(
            "checked",
            container().image("{services.id}").command(["sleep"]).ready_when(
                "a readiness check with `?`",
                |_c| async {
                    let _: u16 = "not a port".parse()?;
                    Ok(true)
                },
            ),
        )
}

#[fixtures::test(env = env())]
async fn a_fixture_that_is_not_clone_is_taken_by_reference(not_clone: &NotClone, echo: &Container) -> Result<()> {
    assert_eq!(not_clone.port, echo.addr("7000/tcp")?.port());
    Ok(())
}

#[tokio::test]
async fn question_marks_on_other_errors_name_the_fixture_and_keep_the_cause() -> Result<()> {
    let t = env().start(TestId::new(module_path!(), "question_marks")).await?;
    let check = |name: &str, err: fixtures::Error, cause: &str| {
        assert_eq!(err.kind(), ErrorKind::Fixture, "{name}: {err:?}");
        assert_eq!(err.fixture(), Some(name), "{err:?}");
        let causes: Vec<String> =
            std::iter::successors(err.source(), |e| (*e).source()).map(ToString::to_string).collect();
        assert!(causes.iter().any(|c| c.contains(cause)), "{name}: the cause `{cause}` is kept: {causes:?}");
        let report = format!("{err:?}");
        assert!(report.contains("a fixture's own code failed") && report.contains(cause), "{report}");
    };
    check("parsed_port", t.get::<u16>("parsed_port").await.expect_err("not a number"), "invalid digit");
    check("refused", t.shared::<tokio::net::TcpStream>("refused").await.expect_err("refused"), "refused");
    check("computed", t.get::<i64>("computed").await.expect_err("not a number"), "invalid digit");
    let err = t.container("checked").await.expect_err("its check fails");
    check("checked", err, "invalid digit");

    let err = t.get::<u8>("panicking").await.expect_err("it panics");
    assert_eq!(err.kind(), ErrorKind::Fixture, "{err:?}");
    assert_eq!(err.to_string(), "fixture `panicking`: its code panicked: the fixture's code panics");
    t.finish().await
}
