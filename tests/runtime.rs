//! Every `Runtime` method and every handle method, against the real engine.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fixtures::archive::Files;
use fixtures::runtime::{EventAction, Stream};
use fixtures::spec::{
    BuildContext, BuildSpec, ExecSpec, LogsSpec, Mount, NetworkAttachment, NetworkSpec, Port, PortBinding, VolumeSpec,
};
use fixtures::{Container, ContainerStatus, ErrorKind, Readiness, Result};
use futures_util::StreamExt;
use test_support::{BUSYBOX_IMAGE, SERVICES_IMAGE, Scratch, runtime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn publish(port: Port) -> PortBinding {
    PortBinding { port, host_ip: Some("127.0.0.1".into()), host_port: None }
}

async fn handle(scratch: &Scratch, id: &str) -> Result<Container> {
    let c = Container::attach(scratch.runtime().clone(), "test", id, None, Readiness::default()).await?;
    c.wait_ready().await?;
    Ok(c)
}

#[tokio::test]
async fn ping_and_version() -> Result<()> {
    let rt = runtime().await;
    rt.ping().await?;
    let v = rt.version().await?;
    assert_eq!(v.runtime, rt.name());
    assert!(!v.version.is_empty(), "{v:?}");
    assert!(v.api_version.starts_with("1."), "{v:?}");
    assert_eq!(v.platform, "linux/amd64");
    Ok(())
}

#[tokio::test]
async fn build_inspect_tag_list_and_remove_images() -> Result<()> {
    let rt = runtime().await;
    let tag = format!("fixtures-it/build-{}:v1", std::process::id());
    let dockerfile = format!(
        "FROM {SERVICES_IMAGE} AS base\nARG GREETING=none\nLABEL greeting=$GREETING\n\
         FROM base AS final\nLABEL stage=final\n"
    );
    let mut spec = BuildSpec::new(BuildContext::Dockerfile(dockerfile));
    spec.tags = vec![tag.clone(), format!("fixtures-it/build-{}:also", std::process::id())];
    spec.build_args.insert("GREETING".into(), "hello".into());
    spec.target = Some("base".into());
    spec.labels.insert("fixtures.it".into(), std::process::id().to_string());
    let lines = std::sync::Mutex::new(Vec::new());
    let id = rt
        .build_image(&spec, &|p| {
            lines.lock().expect("not poisoned").push(p.message.clone());
        })
        .await?;
    let lines = lines.into_inner().expect("not poisoned");
    assert!(!lines.is_empty(), "build progress streamed");
    let v = rt.version().await?;
    if v.runtime == "docker" && v.engine == "docker" {
        // BuildKit reports `[internal] load ...` vertices and `[stage n/m] INSTRUCTION` steps (the
        // stage name is another build's when concurrent builds share a step); the classic
        // builder `Step n/m : INSTRUCTION`.
        assert!(
            lines.iter().any(|l| l.starts_with("[internal] ")) && !lines.iter().any(|l| l.starts_with("Step ")),
            "built by BuildKit: {lines:?}"
        );
    }
    let info = rt.inspect_image(&tag).await?;
    assert_eq!(info.id, id);
    assert_eq!(info.labels["greeting"], "hello", "build arg applied");
    assert!(!info.labels.contains_key("stage"), "stopped at the target stage");
    assert_eq!(info.labels["fixtures.it"], std::process::id().to_string());
    assert!(info.tags.contains(&tag), "{:?}", info.tags);
    assert_eq!(info.tags.len(), 2, "both tags: {:?}", info.tags);

    rt.tag_image(&id, "fixtures-it/retagged", &std::process::id().to_string()).await?;
    let filter = fixtures::spec::LabelFilter::eq("fixtures.it", std::process::id().to_string());
    let listed = rt.list_images(&filter).await?;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].tags.len(), 3);

    rt.remove_image(&id, true).await?;
    let gone = rt.inspect_image(&tag).await.expect_err("removed");
    assert_eq!(gone.kind(), ErrorKind::NotFound);
    Ok(())
}

#[tokio::test]
async fn build_from_a_context_folder_and_report_failures() -> Result<()> {
    let rt = runtime().await;
    let dir = std::env::temp_dir().join(format!("fixtures-it-ctx-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("ignored"))?;
    std::fs::write(
        dir.join("Dockerfile"),
        format!("FROM {SERVICES_IMAGE}\nCOPY greeting.txt /greeting.txt\nCOPY . /ctx/\n"),
    )?;
    std::fs::write(dir.join("greeting.txt"), "from the context")?;
    std::fs::write(dir.join("ignored/big.bin"), "x")?;
    std::fs::write(dir.join(".dockerignore"), "ignored\n")?;
    let id = rt.build_image(&BuildSpec::new(BuildContext::Dir(dir.clone())), &|_| {}).await?;

    let scratch = Scratch::new(rt.clone(), "ctx");
    let mut spec = scratch.container("reader", &id);
    spec.command = Some(vec!["sleep".into()]);
    let c = handle(&scratch, &scratch.start(&spec).await?).await?;
    assert_eq!(c.get_text("/greeting.txt").await?, "from the context");
    let ctx = c.get_files("/ctx").await?;
    assert!(ctx.contains_key("ctx/Dockerfile"), "{:?}", ctx.keys());
    assert!(!ctx.keys().any(|k| k.contains("ignored")), ".dockerignore honoured: {:?}", ctx.keys());
    scratch.clean().await?;
    rt.remove_image(&id, true).await?;

    // A failing step reports the engine's message and the build's last lines.
    let bad = BuildSpec::new(BuildContext::Dockerfile(format!("FROM {SERVICES_IMAGE}\nCOPY missing.txt /\n")));
    let err = rt.build_image(&bad, &|_| {}).await.expect_err("missing file");
    assert_eq!(err.kind(), ErrorKind::Build, "{err:?}");
    assert!(format!("{err:?}").contains("missing.txt"), "{err:?}");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[tokio::test]
async fn scratch_container_lifecycle() -> Result<()> {
    let rt = runtime().await;
    let scratch = Scratch::new(rt.clone(), "life");
    let mut spec = scratch.container("echo", SERVICES_IMAGE);
    spec.command = Some(vec!["echo".into()]);
    spec.env.insert("GREETING".into(), "hi".into());
    spec.ports = vec![publish(Port::tcp(7000))];
    let id = rt.create_container(&spec).await?;
    assert_eq!(rt.inspect_container(&id).await?.status, ContainerStatus::Created);
    rt.start_container(&id).await?;
    let c = handle(&scratch, &id).await?;

    assert_eq!(c.status().await?, ContainerStatus::Running);
    assert_eq!(c.status().await?, "running");
    assert_eq!(c.name(), scratch.name("echo"));
    assert_eq!(c.env()["GREETING"], "hi");
    assert!(c.attrs()["Config"]["Image"].as_str().is_some());
    let ip = c.ips().primary().expect("an address on the default network");
    assert_eq!(c.ips().get("bridge"), Some(ip));
    let host_port = c.ports()["7000/tcp"][0];
    assert_ne!(host_port, 7000);
    assert_eq!(c.ports().host_port("7000")?, host_port);
    let missing = c.ports().host_port("9/tcp").expect_err("not published");
    assert!(missing.to_string().contains("published: [7000/tcp]"), "{missing}");

    // Ready means listening: the first connection is answered.
    let mut sock = tokio::net::TcpStream::connect(c.addr("7000/tcp")?).await?;
    sock.write_all(b"ping").await?;
    let mut buf = [0u8; 4];
    sock.read_exact(&mut buf).await?;
    assert_eq!(&buf, b"ping");
    drop(sock);

    // Listed by label.
    let listed = rt.list_containers(&scratch.filter()).await?;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, id);

    // Pause and unpause (which a rootless engine on cgroups v1 cannot do, and says so).
    if test_support::rootless_on_cgroups_v1(rt.as_ref()) {
        let refused = c.pause().await.expect_err("no freezer for rootless containers on cgroups v1");
        assert_eq!(refused.kind(), ErrorKind::Unsupported, "{refused:?}");
    } else {
        c.pause().await?;
        assert_eq!(c.status().await?, ContainerStatus::Paused);
        c.unpause().await?;
    }
    assert_eq!(c.status().await?, ContainerStatus::Running);

    // Restart waits until it listens again.
    c.restart().await?;
    let mut sock = tokio::net::TcpStream::connect(c.addr("7000/tcp")?).await?;
    sock.write_all(b"pong").await?;
    sock.read_exact(&mut buf).await?;
    assert_eq!(&buf, b"pong");

    // Stop: the service exits 0 on SIGTERM, promptly.
    let started = std::time::Instant::now();
    c.stop(10).await?;
    assert!(started.elapsed() < Duration::from_secs(5), "SIGTERM honoured");
    assert_eq!(c.wait().await?, 0);
    rt.start_container(&id).await?;
    c.wait_ready().await?;

    // SIGKILL.
    c.kill("SIGKILL").await?;
    assert_eq!(c.wait().await?, 137);
    let info = c.refresh().await?;
    assert_eq!(info.status, ContainerStatus::Exited);
    assert_eq!(info.exit_code, Some(137));

    rt.remove_container(&id, false).await?;
    let gone = rt.inspect_container(&id).await.expect_err("removed");
    assert_eq!(gone.kind(), ErrorKind::NotFound);
    scratch.clean().await
}

#[tokio::test]
async fn logs_keep_stdout_and_stderr_apart_and_follow() -> Result<()> {
    let rt = runtime().await;
    let scratch = Scratch::new(rt.clone(), "logs");
    let mut spec = scratch.container("exit", SERVICES_IMAGE);
    spec.command = Some(
        [
            "exit",
            "--stdout",
            "out one",
            "--stderr",
            "err one",
            "--stdout",
            "out two",
            "--delay-ms",
            "300",
            "--code",
            "4",
        ]
        .map(String::from)
        .to_vec(),
    );
    let id = scratch.start(&spec).await?;
    // Follow from the start: the stream ends when the container does.
    let follow = LogsSpec { follow: true, ..LogsSpec::default() };
    let chunks: Vec<_> = rt.logs(&id, &follow).collect().await;
    let mut stdout = String::new();
    let mut stderr = String::new();
    for chunk in chunks {
        let chunk = chunk?;
        let text = String::from_utf8_lossy(&chunk.bytes).into_owned();
        match chunk.stream {
            Stream::Stdout => stdout.push_str(&text),
            Stream::Stderr => stderr.push_str(&text),
        }
    }
    assert_eq!(stdout, "out one\nout two\n");
    assert_eq!(stderr, "err one\n");
    assert_eq!(rt.wait_container(&id).await?, 4);

    let c = Container::attach(rt.clone(), "exit", &id, None, Readiness::default()).await?;
    let (out, err) = c.logs_split().await?;
    assert_eq!((out.as_str(), err.as_str()), ("out one\nout two\n", "err one\n"));
    assert!(c.logs().await?.contains("err one"));
    // The tail counts lines of both streams (their order across the two pipes is not fixed).
    let tail: Vec<_> = rt.logs(&id, &LogsSpec { tail: Some(1), ..LogsSpec::default() }).collect().await;
    assert_eq!(tail.len(), 1, "{tail:?}");
    scratch.clean().await
}

#[tokio::test]
async fn exec_reports_exit_codes_and_output() -> Result<()> {
    let rt = runtime().await;
    let scratch = Scratch::new(rt.clone(), "exec");
    let mut spec = scratch.container("box", BUSYBOX_IMAGE);
    spec.command = Some(vec!["sleep".into(), "300".into()]);
    spec.stop_signal = Some("SIGKILL".into());
    let boxed = handle(&scratch, &scratch.start(&spec).await?).await?;
    let out = boxed.exec(["sh", "-c", "echo out; echo err >&2; exit 7"]).await?;
    assert_eq!(out.exit_code, 7);
    assert_eq!(out.stdout_text(), "out\n");
    assert_eq!(out.stderr_text(), "err\n");
    let mut with_env = ExecSpec::new(["sh", "-c", "echo $NAME in $(pwd) as $(id -u)"]);
    with_env.env.insert("NAME".into(), "exec".into());
    with_env.working_dir = Some("/bin".into());
    with_env.user = Some("1234".into());
    let out = boxed.exec_with(&with_env).await?;
    assert!(out.success());
    assert_eq!(out.stdout_text(), "exec in /bin as 1234\n");

    // A scratch image has no shell: exec of the service binary works, `sh` does not.
    let mut spec = scratch.container("bare", SERVICES_IMAGE);
    spec.command = Some(vec!["sleep".into()]);
    let bare = handle(&scratch, &scratch.start(&spec).await?).await?;
    let out = bare.exec(["/test-services", "cat", "/nope"]).await?;
    assert_eq!(out.exit_code, 1);
    assert!(out.stderr_text().contains("/nope"), "{out:?}");
    let out = bare.exec(["/test-services", "write", "/tmp/x", "written"]).await?;
    assert!(out.success(), "{out:?}");
    assert_eq!(bare.exec(["/test-services", "cat", "/tmp/x"]).await?.stdout_text(), "written");
    match bare.exec(["sh", "-c", "true"]).await {
        Ok(out) => assert_ne!(out.exit_code, 0, "no shell in a scratch image: {out:?}"),
        Err(e) => assert_eq!(e.kind(), ErrorKind::Engine, "{e:?}"),
    }
    scratch.clean().await
}

#[tokio::test]
async fn files_in_and_out() -> Result<()> {
    let rt = runtime().await;
    let scratch = Scratch::new(rt.clone(), "files");
    let mut spec = scratch.container("bare", SERVICES_IMAGE);
    spec.command = Some(vec!["sleep".into()]);
    spec.mounts = vec![Mount::Tmpfs { target: "/data".into(), size: None }];
    let c = handle(&scratch, &scratch.start(&spec).await?).await?;
    let mut files = Files::new();
    files.insert("bucket-1".into(), None);
    files.insert("bucket-2/example.txt".into(), Some(b"Test file 1".to_vec()));
    // A tmpfs can't be written by the archive API on every engine; use the root filesystem.
    c.put_files("/", &{
        let mut f = Files::new();
        for (k, v) in &files {
            f.insert(format!("data2/{k}"), v.clone());
        }
        f
    })
    .await?;
    let got = c.get_files("/data2").await?;
    assert_eq!(got.get("data2/bucket-2/example.txt"), Some(&Some(b"Test file 1".to_vec())));
    assert_eq!(got.get("data2/bucket-1"), Some(&None));
    assert_eq!(got.get("data2"), Some(&None));
    assert_eq!(c.get_text("/data2/bucket-2/example.txt").await?, "Test file 1");

    let missing = c.get_files("/nowhere").await.expect_err("missing");
    assert_eq!(missing.kind(), ErrorKind::NotFound, "{missing:?}");
    let mut bad = Files::new();
    bad.insert("../escape".into(), Some(vec![]));
    assert_eq!(c.put_files("/", &bad).await.expect_err("refused").kind(), ErrorKind::InvalidInput);
    scratch.clean().await
}

#[tokio::test]
async fn two_containers_reach_each_other_by_alias() -> Result<()> {
    let rt = runtime().await;
    let scratch = Scratch::new(rt.clone(), "net");
    let mut net = NetworkSpec { name: scratch.name("backend"), labels: scratch.labels(), ..NetworkSpec::default() };
    net.options.insert("com.docker.network.bridge.enable_icc".into(), "true".into());
    let net_id = rt.create_network(&net).await?;
    let info = rt.inspect_network(&net.name).await?;
    assert_eq!((info.id.as_str(), info.name.as_str()), (net_id.as_str(), net.name.as_str()));
    assert_eq!(info.labels, scratch.labels());
    assert_eq!(rt.list_networks(&scratch.filter()).await?.len(), 1);

    let mut server = scratch.container("server", SERVICES_IMAGE);
    server.command = Some(vec!["echo".into()]);
    server.networks = vec![NetworkAttachment { network: net.name.clone(), aliases: vec!["echo-server".into()] }];
    server.expose = vec![Port::tcp(7000)];
    let server = handle(&scratch, &scratch.start(&server).await?).await?;
    let server_ip = server.ips().get(&net.name).expect("address on the network");
    assert_eq!(server.ips()[net.name.as_str()], server_ip);
    assert_eq!(server.ips().on(&fixtures::Network::new(net.name.clone(), net_id.clone())), Some(server_ip));

    let mut client = scratch.container("client", BUSYBOX_IMAGE);
    client.command = Some(vec!["sleep".into(), "300".into()]);
    client.stop_signal = Some("SIGKILL".into());
    client.networks = vec![NetworkAttachment { network: net.name.clone(), aliases: vec![] }];
    let client = handle(&scratch, &scratch.start(&client).await?).await?;
    let talk = ["sh", "-c", "echo hello | nc -w 2 echo-server 7000"];
    let out = client.exec(talk).await?;
    assert_eq!((out.exit_code, out.stdout_text().as_str()), (0, "hello\n"), "{out:?}");

    // Cut the server off, then bring it back.
    server.disconnect(&net.name).await?;
    assert_eq!(server.ips().get(&net.name), None);
    let out = client.exec(talk).await?;
    assert_ne!(out.stdout_text(), "hello\n", "disconnected: {out:?}");
    server.connect(&net.name, &["echo-server".to_owned()]).await?;
    // On Podman 4.3 (netavark 1.4) the bridge changes its MAC address when an interface leaves
    // it, and containers already on the network keep the old one for the gateway, so their DNS
    // goes nowhere for a long while. Ask from a container that joins now there.
    let asker = if rt.version().await?.engine == "podman" {
        let mut late = scratch.container("late-client", BUSYBOX_IMAGE);
        late.command = Some(vec!["sleep".into(), "300".into()]);
        late.stop_signal = Some("SIGKILL".into());
        late.networks = vec![NetworkAttachment { network: net.name.clone(), aliases: vec![] }];
        handle(&scratch, &scratch.start(&late).await?).await?
    } else {
        client
    };
    let out = asker.exec(talk).await?;
    assert_eq!(out.stdout_text(), "hello\n", "reconnected: {out:?}");

    scratch.clean().await?;
    assert_eq!(rt.inspect_network(&net_id).await.expect_err("removed").kind(), ErrorKind::NotFound);
    Ok(())
}

#[tokio::test]
async fn a_volume_written_by_one_container_is_read_by_another() -> Result<()> {
    let rt = runtime().await;
    let scratch = Scratch::new(rt.clone(), "vol");
    let spec = VolumeSpec { name: scratch.name("data"), labels: scratch.labels(), ..VolumeSpec::default() };
    let created = rt.create_volume(&spec).await?;
    assert_eq!(created.name, spec.name);
    assert_eq!(rt.inspect_volume(&spec.name).await?.labels, scratch.labels());
    assert_eq!(rt.list_volumes(&scratch.filter()).await?.len(), 1);
    let mount = Mount::Volume { name: spec.name.clone(), target: "/data".into(), read_only: false };

    let mut writer = scratch.container("writer", SERVICES_IMAGE);
    writer.command = Some(["write", "/data/greeting", "hello from the writer"].map(String::from).to_vec());
    writer.mounts = vec![mount.clone()];
    let id = scratch.start(&writer).await?;
    assert_eq!(rt.wait_container(&id).await?, 0);

    let mut reader = scratch.container("reader", SERVICES_IMAGE);
    reader.command = Some(["cat", "/data/greeting"].map(String::from).to_vec());
    reader.mounts = vec![Mount::Volume { name: spec.name.clone(), target: "/data".into(), read_only: true }];
    let id = scratch.start(&reader).await?;
    assert_eq!(rt.wait_container(&id).await?, 0);
    let c = Container::attach(rt.clone(), "reader", &id, None, Readiness::default()).await?;
    assert_eq!(c.logs().await?, "hello from the writer");

    scratch.clean().await?;
    assert_eq!(rt.inspect_volume(&spec.name).await.expect_err("removed").kind(), ErrorKind::NotFound);
    Ok(())
}

/// A listing by several labels holds only what carries every one of them: removals are
/// chosen by listings, and Podman's Docker-compatible API ORs label filters of volumes.
#[tokio::test]
async fn listings_match_every_label() -> Result<()> {
    let rt = runtime().await;
    let scratch = Scratch::new(rt.clone(), "every-label");
    let mut mine = scratch.labels();
    mine.insert("fixtures.it.part".into(), "mine".into());
    let mut other = scratch.labels();
    other.insert("fixtures.it.part".into(), "other".into());
    for (what, labels) in [("mine", &mine), ("other", &other)] {
        let volume = VolumeSpec { name: scratch.name(what), labels: labels.clone(), ..VolumeSpec::default() };
        rt.create_volume(&volume).await?;
        let network = NetworkSpec { name: scratch.name(what), labels: labels.clone(), ..NetworkSpec::default() };
        rt.create_network(&network).await?;
        let mut container = scratch.container(what, SERVICES_IMAGE);
        container.labels = labels.clone();
        rt.create_container(&container).await?;
    }
    let only_mine = scratch.filter().and_eq("fixtures.it.part", "mine");
    let volumes: Vec<String> = rt.list_volumes(&only_mine).await?.into_iter().map(|v| v.name).collect();
    assert_eq!(volumes, [scratch.name("mine")]);
    let networks: Vec<String> = rt.list_networks(&only_mine).await?.into_iter().map(|n| n.name).collect();
    assert_eq!(networks, [scratch.name("mine")]);
    let containers: Vec<String> = rt.list_containers(&only_mine).await?.into_iter().flat_map(|c| c.names).collect();
    assert_eq!(containers, [scratch.name("mine")]);
    assert_eq!(rt.list_volumes(&scratch.filter()).await?.len(), 2, "both carry the scratch labels");
    scratch.clean().await
}

#[tokio::test]
async fn events_are_filtered_by_label() -> Result<()> {
    let rt = runtime().await;
    let scratch = Scratch::new(rt.clone(), "events");
    let mut events = rt.events(&scratch.filter());
    let mut spec = scratch.container("short", SERVICES_IMAGE);
    spec.command = Some(["exit", "--code", "2"].map(String::from).to_vec());
    let id = scratch.start(&spec).await?;
    let mut seen = Vec::new();
    let deadline = tokio::time::sleep(Duration::from_secs(10));
    tokio::pin!(deadline);
    while !seen.contains(&EventAction::Die) {
        tokio::select! {
            event = events.next() => {
                let event = event.expect("the event stream stays open")?;
                assert_eq!(event.id, id, "only our container's events: {event:?}");
                seen.push(event.action);
            }
            () = &mut deadline => panic!("no die event within 10 s; saw {seen:?}"),
        }
    }
    assert!(seen.contains(&EventAction::Create) && seen.contains(&EventAction::Start), "{seen:?}");
    scratch.clean().await
}

#[tokio::test]
async fn errors_map_engine_statuses() -> Result<()> {
    let rt = runtime().await;
    let scratch = Scratch::new(rt.clone(), "errs");
    assert_eq!(rt.inspect_container("fixtures-it-no-such").await.expect_err("404").kind(), ErrorKind::NotFound);
    let mut spec = scratch.container("dup", SERVICES_IMAGE);
    spec.command = Some(vec!["sleep".into()]);
    rt.create_container(&spec).await?;
    let dup = rt.create_container(&spec).await.expect_err("same name");
    assert_eq!(dup.kind(), ErrorKind::Conflict, "{dup:?}");
    let no_image =
        rt.create_container(&scratch.container("noimg", "fixtures-it/no-such-image:1")).await.expect_err("no image");
    assert_eq!(no_image.kind(), ErrorKind::NotFound, "{no_image:?}");
    assert!(format!("{no_image:?}").contains("fixtures-it/no-such-image:1"), "{no_image:?}");
    scratch.clean().await
}

#[tokio::test]
async fn readiness_fails_fast_when_the_container_exits() -> Result<()> {
    let rt = runtime().await;
    let scratch = Scratch::new(rt.clone(), "fast");
    let mut spec = scratch.container("dies", SERVICES_IMAGE);
    spec.command =
        Some(["exit", "--stderr", "fatal: no config", "--delay-ms", "100", "--code", "3"].map(String::from).to_vec());
    spec.ports = vec![publish(Port::tcp(8080))];
    let id = scratch.start(&spec).await?;
    let started = std::time::Instant::now();
    let readiness = Readiness::default();
    let timeout = readiness.timeout;
    let c = Container::attach(rt.clone(), "dies", &id, None, readiness).await?;
    let err = c.wait_ready().await.expect_err("it exits");
    // Failing fast means at the exit, not at the readiness timeout: a bound taken from the
    // library's own timeout, not from how fast an idle machine is.
    assert!(started.elapsed() < timeout / 3, "failed fast: {:?} (timeout {timeout:?})", started.elapsed());
    assert_eq!(err.kind(), ErrorKind::Exited);
    assert_eq!(err.exit_code(), Some(3));
    assert_eq!(err.fixture(), Some("dies"));
    assert!(err.logs_tail().unwrap_or_default().contains("fatal: no config"), "{err:?}");
    scratch.clean().await
}

#[tokio::test]
async fn restart_waits_for_a_slow_listener() -> Result<()> {
    let rt = runtime().await;
    let scratch = Scratch::new(rt.clone(), "slow");
    let mut spec = scratch.container("slow", SERVICES_IMAGE);
    spec.command = Some(vec!["http".into()]);
    spec.env.insert("LISTEN_DELAY_MS".into(), "400".into());
    spec.ports = vec![publish(Port::tcp(8080))];
    // From before the start: the server listens 400 ms after its process starts, so however
    // long starting and attaching take, ready cannot come sooner than that.
    let started = std::time::Instant::now();
    let id = scratch.start(&spec).await?;
    let c = Container::attach(rt.clone(), "slow", &id, None, Readiness::default()).await?;
    c.wait_ready().await?;
    assert!(started.elapsed() >= Duration::from_millis(400), "waited for the listener: {:?}", started.elapsed());
    assert!(test_support::logs_come_to_contain(&c, "listening").await?, "it did start listening");
    let mut sock = tokio::net::TcpStream::connect(c.addr("8080")?).await?;
    sock.write_all(b"GET / HTTP/1.0\r\n\r\n").await?;
    let mut body = String::new();
    sock.read_to_string(&mut body).await?;
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    scratch.clean().await
}

#[tokio::test]
async fn the_raw_client_sees_our_containers() -> Result<()> {
    // The reference's `docker_client` fixture: the runtime, and behind it the backend's own client.
    fn assert_send_sync<T: Send + Sync + ?Sized>(_: &T) {}
    let rt: Arc<dyn fixtures::Runtime> = runtime().await;
    assert_send_sync(rt.as_ref());
    let scratch = Scratch::new(rt.clone(), "raw");
    let mut spec = scratch.container("seen", SERVICES_IMAGE);
    spec.command = Some(vec!["sleep".into()]);
    let id = scratch.start(&spec).await?;
    let listed: Vec<Option<String>> = match rt.name() {
        "docker" => {
            let docker = rt.as_any().downcast_ref::<fixtures_docker::DockerRuntime>().expect("the Docker backend");
            // Only this test's: bollard's models reject the `stopped` state of other tests'
            // containers on Podman's Docker API.
            let options = bollard::query_parameters::ListContainersOptions {
                all: true,
                filters: Some([("label".to_owned(), scratch.filter().to_query())].into()),
                ..Default::default()
            };
            docker.client().list_containers(Some(options)).await.expect("raw list").into_iter().map(|c| c.id).collect()
        }
        "podman" => {
            let podman = rt.as_any().downcast_ref::<fixtures_podman::PodmanRuntime>().expect("the Podman backend");
            let options = podman_api::opts::ContainerListOpts::builder().all(true).build();
            podman.client().containers().list(&options).await.expect("raw list").into_iter().map(|c| c.id).collect()
        }
        other => panic!("no raw client known for runtime `{other}`"),
    };
    assert!(listed.iter().any(|c| c.as_deref() == Some(id.as_str())), "our container is listed");
    let _ = BTreeMap::<String, String>::new();
    scratch.clean().await
}

#[tokio::test]
async fn pull_from_the_local_registry() -> Result<()> {
    if !test_support::has(&[test_support::Need::Registry]) {
        return Ok(());
    }
    let rt = runtime().await;
    let reference = test_support::REGISTRY_IMAGE;
    // Drop the local tag (the layers stay, shared with the services image), then pull it back.
    match rt.remove_image(reference, false).await {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    assert_eq!(rt.inspect_image(reference).await.expect_err("untagged").kind(), ErrorKind::NotFound);
    let lines = AtomicUsize::new(0);
    let spec = fixtures::spec::PullSpec::new(reference);
    let id = rt
        .pull_image(&spec, &|_| {
            lines.fetch_add(1, Ordering::Relaxed);
        })
        .await?;
    assert!(lines.load(Ordering::Relaxed) > 0, "pull progress streamed");
    // The registry holds the services image as one engine pushed it (`cargo xtask images`); an
    // image's id differs between engines for the same build, its inputs' label does not.
    let inputs = |info: fixtures::runtime::ImageInfo| info.labels.get(test_support::INPUTS_LABEL).cloned();
    let local = inputs(rt.inspect_image(SERVICES_IMAGE).await?);
    assert!(local.is_some(), "the services image carries its inputs' label");
    assert_eq!(inputs(rt.inspect_image(&id).await?), local, "the same image came back");

    let missing = fixtures::spec::PullSpec::new("127.0.0.1:5000/fixtures-test/no-such-image:1");
    let err = rt.pull_image(&missing, &|_| {}).await.expect_err("not in the registry");
    assert_eq!(err.kind(), ErrorKind::Pull, "{err:?}");
    assert!(format!("{err:?}").contains("no-such-image"), "{err:?}");
    Ok(())
}
