//! Specs → libpod requests.
//!
//! The container create body is libpod's `SpecGenerator` as JSON, built here and
//! sent as it is (a spec's `raw` fields are merged into it, in libpod's field names),
//! so what is sent is what the snapshots show. Networks and volumes go through
//! podman-api's option builders; their snapshots are the builders' serialisation.

use std::time::Duration;

use fixtures_core::spec::{ContainerSpec, Healthcheck, Mount, NetworkSpec, VolumeSpec};
use fixtures_core::{Error, ErrorKind, Result};
use fixtures_engine_api::request::{merge, nanos, put_unless_empty as put};
use podman_api::opts::{NetworkCreateOpts, VolumeCreateOpts};
use serde_json::{Map, Value, json};

pub(crate) use fixtures_engine_api::podman::network_for_podman as network_name;

/// The number of a signal named `SIGTERM`, `TERM` or `15` (libpod takes numbers).
pub(crate) fn signal_number(name: &str) -> Option<i64> {
    if let Ok(n) = name.trim().parse::<i64>() {
        return Some(n);
    }
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    let n = match bare {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "TRAP" => 5,
        "ABRT" | "IOT" => 6,
        "BUS" => 7,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "USR2" => 12,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        "STKFLT" => 16,
        "CHLD" => 17,
        "CONT" => 18,
        "STOP" => 19,
        "TSTP" => 20,
        "TTIN" => 21,
        "TTOU" => 22,
        "URG" => 23,
        "XCPU" => 24,
        "XFSZ" => 25,
        "VTALRM" => 26,
        "PROF" => 27,
        "WINCH" => 28,
        "IO" | "POLL" => 29,
        "PWR" => 30,
        "SYS" => 31,
        _ => {
            let rt = bare.strip_prefix("RTMIN")?;
            let offset = if rt.is_empty() { 0 } else { rt.strip_prefix('+')?.parse::<i64>().ok()? };
            34 + offset
        }
    };
    Some(n)
}

/// Docker's defaults for what a health check leaves out; libpod's API has none (a missing
/// timeout is a timeout of 0 s, which every check exceeds).
const HEALTH_INTERVAL: Duration = Duration::from_secs(30);
const HEALTH_TIMEOUT: Duration = Duration::from_secs(30);
const HEALTH_RETRIES: u32 = 3;

fn healthcheck(h: &Healthcheck) -> Value {
    let mut m = Map::new();
    m.insert("Test".into(), json!(h.test));
    m.insert("Interval".into(), json!(nanos(h.interval.unwrap_or(HEALTH_INTERVAL))));
    m.insert("Timeout".into(), json!(nanos(h.timeout.unwrap_or(HEALTH_TIMEOUT))));
    m.insert("Retries".into(), json!(h.retries.unwrap_or(HEALTH_RETRIES)));
    if let Some(d) = h.start_period {
        m.insert("StartPeriod".into(), json!(nanos(d)));
    }
    Value::Object(m)
}

/// libpod's namespace setting for a Docker-style PID or IPC mode (`host`, `container:<id>`, ...).
fn namespace(mode: &str) -> Value {
    match mode.strip_prefix("container:") {
        Some(other) => json!({"nsmode": "container", "value": other}),
        None => json!({"nsmode": mode}),
    }
}

/// Docker's `--security-opt` words in libpod's fields.
fn security(body: &mut Map<String, Value>, options: &[String]) {
    let mut selinux = Vec::new();
    for option in options {
        let (key, value) = option.split_once(['=', ':']).unwrap_or((option.as_str(), ""));
        match key {
            "label" => selinux.push(value.to_owned()),
            "apparmor" => {
                body.insert("apparmor_profile".into(), json!(value));
            }
            "seccomp" => {
                body.insert("seccomp_profile_path".into(), json!(value));
            }
            "no-new-privileges" => {
                body.insert("no_new_privileges".into(), json!(value != "false"));
            }
            "mask" => {
                body.insert("mask".into(), json!(value.split(':').collect::<Vec<_>>()));
            }
            "unmask" => {
                body.insert("unmask".into(), json!(value.split(':').collect::<Vec<_>>()));
            }
            _ => {}
        }
    }
    put(body, "selinux_opts", json!(selinux));
}

/// libpod's network namespace setting for a Docker-style network mode.
fn netns(mode: &str) -> (Value, Option<String>) {
    match mode {
        "host" | "none" | "private" => (json!({"nsmode": mode}), None),
        "bridge" | "default" => (json!({"nsmode": "bridge"}), None),
        m => match m.strip_prefix("container:") {
            Some(other) => (json!({"nsmode": "container", "value": other}), None),
            // Docker takes a network's name as a mode: join that network.
            None => (json!({"nsmode": "bridge"}), Some(network_name(m).to_owned())),
        },
    }
}

/// The body of `POST /libpod/containers/create` for `spec`.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] for a stop signal that has no number.
pub(crate) fn container_create(spec: &ContainerSpec) -> Result<Value> {
    let mut body = Map::new();
    if let Some(name) = &spec.name {
        body.insert("name".into(), json!(name));
    }
    body.insert("image".into(), json!(spec.image));
    if let Some(cmd) = &spec.command {
        body.insert("command".into(), json!(cmd));
    }
    if let Some(ep) = &spec.entrypoint {
        body.insert("entrypoint".into(), json!(ep));
    }
    put(&mut body, "env", json!(spec.env));
    put(&mut body, "labels", json!(spec.labels));

    let mappings: Vec<Value> = spec
        .ports
        .iter()
        .map(|b| {
            let mut m = Map::new();
            m.insert("container_port".into(), json!(b.port.number));
            m.insert("protocol".into(), json!(b.port.protocol.as_str()));
            // No host port: libpod picks a free one, as Docker does.
            if let Some(p) = b.host_port {
                m.insert("host_port".into(), json!(p));
            }
            if let Some(ip) = b.host_ip.as_ref().filter(|ip| !ip.is_empty()) {
                m.insert("host_ip".into(), json!(ip));
            }
            Value::Object(m)
        })
        .collect();
    put(&mut body, "portmappings", Value::Array(mappings));
    let mut expose = Map::new();
    for p in &spec.expose {
        expose.insert(p.number.to_string(), json!(p.protocol.as_str()));
    }
    put(&mut body, "expose", Value::Object(expose));

    let mut volumes = Vec::new();
    let mut mounts = Vec::new();
    for m in &spec.mounts {
        match m {
            Mount::Volume { name, target, read_only } => {
                let options: Vec<&str> = if *read_only { vec!["ro"] } else { vec![] };
                volumes.push(json!({"Name": name, "Dest": target, "Options": options}));
            }
            Mount::Bind { source, target, read_only } => {
                let mut options = vec!["rbind"];
                if *read_only {
                    options.push("ro");
                }
                mounts.push(json!({"type": "bind", "source": source, "destination": target, "options": options}));
            }
            Mount::Tmpfs { target, size } => {
                let options: Vec<String> = size.iter().map(|s| format!("size={s}")).collect();
                mounts.push(json!({"type": "tmpfs", "source": "tmpfs", "destination": target, "options": options}));
            }
            _ => {}
        }
    }
    put(&mut body, "volumes", Value::Array(volumes));
    put(&mut body, "mounts", Value::Array(mounts));

    put(&mut body, "dns_server", json!(spec.dns));
    put(&mut body, "dns_search", json!(spec.dns_search));
    put(&mut body, "dns_option", json!(spec.dns_options));
    if spec.tty {
        body.insert("terminal".into(), json!(true));
    }
    if spec.open_stdin {
        body.insert("stdin".into(), json!(true));
    }
    if let Some(mode) = &spec.pid_mode {
        body.insert("pidns".into(), namespace(mode));
    }
    if let Some(mode) = &spec.ipc_mode {
        body.insert("ipcns".into(), namespace(mode));
    }
    let devices: Vec<Value> = spec.devices.iter().map(|d| json!({"path": d})).collect();
    put(&mut body, "devices", Value::Array(devices));
    put(&mut body, "groups", json!(spec.group_add));
    security(&mut body, &spec.security_opt);
    put(&mut body, "hostadd", json!(spec.extra_hosts));
    if let Some(v) = &spec.hostname {
        body.insert("hostname".into(), json!(v));
    }
    if let Some(v) = &spec.user {
        body.insert("user".into(), json!(v));
    }
    if let Some(v) = &spec.working_dir {
        body.insert("work_dir".into(), json!(v));
        // Docker makes a missing working directory; libpod only when asked.
        body.insert("create_working_dir".into(), json!(true));
    }
    put(&mut body, "privileged", json!(spec.privileged));
    put(&mut body, "cap_add", json!(spec.cap_add));
    put(&mut body, "cap_drop", json!(spec.cap_drop));
    put(&mut body, "read_only_filesystem", json!(spec.read_only));
    put(&mut body, "init", json!(spec.init));
    if let Some(sig) = &spec.stop_signal {
        let n = signal_number(sig).ok_or_else(|| {
            Error::new(ErrorKind::InvalidInput, format!("stop signal `{sig}` is not a signal this backend knows"))
        })?;
        body.insert("stop_signal".into(), json!(n));
    }
    if let Some(v) = spec.stop_timeout {
        body.insert("stop_timeout".into(), json!(v.max(0)));
    }
    if let Some(h) = &spec.healthcheck {
        body.insert("healthconfig".into(), healthcheck(h));
    }

    let r = &spec.resources;
    let mut limits = Map::new();
    let mut memory = Map::new();
    if let Some(v) = r.memory {
        memory.insert("limit".into(), json!(v));
    }
    if let Some(v) = r.memory_reservation {
        memory.insert("reservation".into(), json!(v));
    }
    if let Some(v) = r.memory_swap {
        memory.insert("swap".into(), json!(v));
    }
    put(&mut limits, "memory", Value::Object(memory));
    if let Some(n) = r.nano_cpus {
        // CFS quota per 100 ms period, as Docker's NanoCpus is applied.
        limits.insert("cpu".into(), json!({"period": 100_000, "quota": n / 10_000}));
    }
    if let Some(v) = r.pids_limit {
        limits.insert("pids".into(), json!({"limit": v}));
    }
    put(&mut body, "resource_limits", Value::Object(limits));
    let rlimits: Vec<Value> =
        r.ulimits.iter().map(|u| json!({"type": u.name, "soft": u.soft, "hard": u.hard})).collect();
    put(&mut body, "r_limits", Value::Array(rlimits));
    put(&mut body, "sysctl", json!(spec.sysctls));
    if let Some(v) = r.shm_size {
        body.insert("shm_size".into(), json!(v));
    }

    let mut networks = Map::new();
    for attachment in &spec.networks {
        let mut options = Map::new();
        put(&mut options, "aliases", json!(attachment.aliases));
        networks.insert(network_name(&attachment.network).to_owned(), Value::Object(options));
    }
    match (&spec.network_mode, networks.is_empty()) {
        (_, false) => {
            body.insert("netns".into(), json!({"nsmode": "bridge"}));
        }
        (Some(mode), true) => {
            let (ns, network) = netns(mode);
            body.insert("netns".into(), ns);
            if let Some(network) = network {
                networks.insert(network, json!({}));
            }
        }
        // Rootless Podman would put it on slirp4netns, where it has no address and reaches no
        // other container: the default network, as rootful Podman and Docker do.
        (None, true) => {
            body.insert("netns".into(), json!({"nsmode": "bridge"}));
        }
    }
    put(&mut body, "Networks", Value::Object(networks));

    let mut body = Value::Object(body);
    if let Some(raw) = &spec.raw {
        merge(&mut body, raw);
    }
    Ok(body)
}

/// Docker's bridge options in libpod's terms: `enable_icc=true` is what libpod always
/// does, the MTU and interface name have libpod names; anything else is passed on.
///
/// # Errors
/// [`ErrorKind::Unsupported`] for `enable_icc=false`, which libpod cannot do.
fn network_options(spec: &NetworkSpec) -> Result<(std::collections::BTreeMap<String, String>, Option<String>)> {
    let mut options = std::collections::BTreeMap::new();
    let mut interface = None;
    for (key, value) in &spec.options {
        match key.as_str() {
            "com.docker.network.bridge.enable_icc" => {
                if value != "true" {
                    return Err(Error::new(
                        ErrorKind::Unsupported,
                        format!(
                            "network option {key}={value}: Podman always lets containers of one network talk to each other"
                        ),
                    ));
                }
            }
            "com.docker.network.driver.mtu" => {
                options.insert("mtu".to_owned(), value.clone());
            }
            "com.docker.network.bridge.name" => interface = Some(value.clone()),
            _ => {
                options.insert(key.clone(), value.clone());
            }
        }
    }
    Ok((options, interface))
}

/// The options of `POST /libpod/networks/create`.
///
/// # Errors
/// As [`network_options`].
pub(crate) fn network_create(spec: &NetworkSpec) -> Result<NetworkCreateOpts> {
    let (options, interface) = network_options(spec)?;
    let mut opts = NetworkCreateOpts::builder()
        .name(&spec.name)
        .driver(spec.driver.as_deref().unwrap_or("bridge"))
        .internal(spec.internal)
        .ipv6_enabled(spec.enable_ipv6)
        // Containers find each other by name and alias, as on Docker's user networks.
        .dns_enabled(true);
    if !options.is_empty() {
        opts = opts.options(options);
    }
    if !spec.labels.is_empty() {
        opts = opts.labels(spec.labels.clone());
    }
    if let Some(interface) = interface {
        opts = opts.network_interface(interface);
    }
    Ok(opts.build())
}

/// The options of `POST /libpod/volumes/create`.
pub(crate) fn volume_create(spec: &VolumeSpec) -> VolumeCreateOpts {
    let mut opts = VolumeCreateOpts::builder().name(&spec.name).driver(spec.driver.as_deref().unwrap_or("local"));
    if !spec.labels.is_empty() {
        opts = opts.labels(spec.labels.clone());
    }
    if !spec.driver_opts.is_empty() {
        opts = opts.options(spec.driver_opts.clone());
    }
    opts.build()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use fixtures_core::spec::{NetworkAttachment, Port, PortBinding, Resources, Ulimit};
    use podman_api::models::{ContainerMount, SpecGenerator};

    use super::*;

    /// The body, checked to be one libpod reads: every key is a `SpecGenerator` field
    /// (mounts are OCI mounts, which podman-api models as `ContainerMount`; its
    /// `SpecGenerator` has Docker's mount type there, see containers/podman#13717).
    fn checked(body: Value) -> Value {
        let mut rest = body.clone();
        if let Some(mounts) = rest.as_object_mut().and_then(|m| m.remove("mounts")) {
            for mount in mounts.as_array().expect("a list") {
                let typed: ContainerMount = serde_json::from_value(mount.clone()).expect("an OCI mount");
                assert_eq!(
                    &serde_json::to_value(typed).expect("serialise"),
                    mount,
                    "every mount field is one libpod knows"
                );
            }
        }
        let typed: SpecGenerator = serde_json::from_value(rest.clone()).expect("libpod's SpecGenerator reads the body");
        let mut back = serde_json::to_value(typed).expect("serialise");
        strip_nulls(&mut back);
        assert_eq!(back, rest, "every field is one libpod knows");
        body
    }

    fn strip_nulls(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.retain(|_, v| !v.is_null());
                m.values_mut().for_each(strip_nulls);
            }
            Value::Array(a) => a.iter_mut().for_each(strip_nulls),
            _ => {}
        }
    }

    fn json_of(serialized: podman_api::Result<String>) -> Value {
        serde_json::from_str(&serialized.expect("serialise")).expect("json")
    }

    #[test]
    fn minimal_container() {
        let spec = ContainerSpec { image: "sha256:abc".into(), ..ContainerSpec::default() };
        insta::assert_json_snapshot!(checked(container_create(&spec).expect("body")), @r#"
        {
          "image": "sha256:abc",
          "netns": {
            "nsmode": "bridge"
          }
        }
        "#);
    }

    #[test]
    fn full_container() {
        let mut env = BTreeMap::new();
        env.insert("DNS_EXAMPLE_COM__A".to_owned(), "127.0.0.1".to_owned());
        let mut labels = BTreeMap::new();
        labels.insert("fixtures.managed".to_owned(), "true".to_owned());
        let spec = ContainerSpec {
            name: Some("fx-apiserver".into()),
            image: "sha256:abc".into(),
            command: Some(vec!["api".into()]),
            entrypoint: Some(vec!["/test-services".into()]),
            env,
            ports: vec![
                PortBinding { port: Port::tcp(8080), host_ip: None, host_port: None },
                PortBinding { port: Port::udp(53), host_ip: Some("127.0.0.1".into()), host_port: Some(5353) },
            ],
            expose: vec![Port::tcp(9000)],
            mounts: vec![
                Mount::Volume { name: "fx-data".into(), target: "/data".into(), read_only: false },
                Mount::Volume { name: "fx-conf".into(), target: "/conf".into(), read_only: true },
                Mount::Bind { source: "/srv/www".into(), target: "/www".into(), read_only: true },
                Mount::Tmpfs { target: "/tmp".into(), size: Some(1 << 20) },
            ],
            networks: vec![
                NetworkAttachment { network: "fx-backend".into(), aliases: vec!["api".into()] },
                NetworkAttachment { network: "bridge".into(), aliases: vec![] },
            ],
            dns: vec!["172.18.0.2".into()],
            extra_hosts: vec!["db:10.0.0.1".into()],
            hostname: Some("api".into()),
            user: Some("1000:1000".into()),
            working_dir: Some("/srv".into()),
            labels,
            cap_add: vec!["NET_ADMIN".into()],
            read_only: true,
            init: true,
            stop_signal: Some("SIGINT".into()),
            stop_timeout: Some(3),
            healthcheck: Some(Healthcheck {
                test: vec!["CMD".into(), "/test-services".into(), "cat".into(), "/ready".into()],
                interval: Some(Duration::from_millis(100)),
                timeout: None,
                retries: Some(3),
                start_period: None,
            }),
            resources: Resources {
                memory: Some(64 << 20),
                nano_cpus: Some(500_000_000),
                pids_limit: Some(100),
                shm_size: Some(1 << 20),
                ulimits: vec![Ulimit { name: "nofile".into(), soft: 1024, hard: 4096 }],
                ..Resources::default()
            },
            sysctls: [("net.core.somaxconn".to_owned(), "1024".to_owned())].into(),
            ..ContainerSpec::default()
        };
        insta::assert_json_snapshot!(checked(container_create(&spec).expect("body")));
    }

    #[test]
    fn raw_fields_are_merged_in_libpod_terms() {
        let spec = ContainerSpec {
            image: "img".into(),
            network_mode: Some("none".into()),
            raw: Some(json!({"sysctl": {"net.ipv4.ip_forward": "1"}, "netns": {"nsmode": "host"}})),
            ..ContainerSpec::default()
        };
        insta::assert_json_snapshot!(checked(container_create(&spec).expect("body")), @r#"
        {
          "image": "img",
          "netns": {
            "nsmode": "host"
          },
          "sysctl": {
            "net.ipv4.ip_forward": "1"
          }
        }
        "#);
    }

    #[test]
    fn network_modes() {
        let body = |mode: &str| {
            let spec =
                ContainerSpec { image: "img".into(), network_mode: Some(mode.into()), ..ContainerSpec::default() };
            let body = checked(container_create(&spec).expect("body"));
            (body["netns"].clone(), body.get("Networks").cloned().unwrap_or(Value::Null))
        };
        assert_eq!(body("none"), (json!({"nsmode": "none"}), Value::Null));
        assert_eq!(body("host"), (json!({"nsmode": "host"}), Value::Null));
        assert_eq!(body("bridge"), (json!({"nsmode": "bridge"}), Value::Null));
        assert_eq!(body("container:abc"), (json!({"nsmode": "container", "value": "abc"}), Value::Null));
        assert_eq!(body("fx-net"), (json!({"nsmode": "bridge"}), json!({"fx-net": {}})));
    }

    #[test]
    fn signals_have_numbers() {
        assert_eq!(signal_number("SIGKILL"), Some(9));
        assert_eq!(signal_number("term"), Some(15));
        assert_eq!(signal_number("HUP"), Some(1));
        assert_eq!(signal_number("10"), Some(10));
        assert_eq!(signal_number("SIGRTMIN+2"), Some(36));
        assert_eq!(signal_number("SIGNOPE"), None);
        let spec = ContainerSpec { image: "img".into(), stop_signal: Some("NOPE".into()), ..ContainerSpec::default() };
        assert_eq!(container_create(&spec).expect_err("unknown").kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn networks_and_volumes() {
        let mut spec = NetworkSpec { name: "fx-net".into(), internal: true, ..NetworkSpec::default() };
        spec.options.insert("com.docker.network.bridge.enable_icc".into(), "true".into());
        spec.options.insert("com.docker.network.driver.mtu".into(), "1400".into());
        spec.labels.insert("fixtures.managed".into(), "true".into());
        insta::assert_json_snapshot!(json_of(network_create(&spec).expect("opts").serialize()), @r#"
        {
          "dns_enabled": true,
          "driver": "bridge",
          "internal": true,
          "ipv6_enabled": false,
          "labels": {
            "fixtures.managed": "true"
          },
          "name": "fx-net",
          "options": {
            "mtu": "1400"
          }
        }
        "#);
        spec.options.insert("com.docker.network.bridge.enable_icc".into(), "false".into());
        assert_eq!(network_create(&spec).expect_err("icc off").kind(), ErrorKind::Unsupported);

        let spec = VolumeSpec { name: "fx-vol".into(), ..VolumeSpec::default() };
        insta::assert_json_snapshot!(json_of(volume_create(&spec).serialize()), @r#"
        {
          "Driver": "local",
          "Name": "fx-vol"
        }
        "#);
    }
}
