//! Specs → Docker Engine API request bodies, as JSON.
//!
//! Bodies are built as JSON in the API's own field names and then read into
//! bollard's types, so what is sent can be snapshot-tested and a spec's `raw`
//! extra fields can be merged in without a case per field.

use fixtures_core::spec::{ContainerSpec, Healthcheck, Mount, NetworkSpec, VolumeSpec};
use fixtures_engine_api::request::{merge, nanos, put_unless_empty as put};
use serde_json::{Map, Value, json};

fn healthcheck(h: &Healthcheck) -> Value {
    let mut m = Map::new();
    m.insert("Test".into(), json!(h.test));
    if let Some(d) = h.interval {
        m.insert("Interval".into(), json!(nanos(d)));
    }
    if let Some(d) = h.timeout {
        m.insert("Timeout".into(), json!(nanos(d)));
    }
    if let Some(r) = h.retries {
        m.insert("Retries".into(), json!(r));
    }
    if let Some(d) = h.start_period {
        m.insert("StartPeriod".into(), json!(nanos(d)));
    }
    Value::Object(m)
}

fn mount(m: &Mount) -> Value {
    match m {
        Mount::Volume { name, target, read_only } => {
            json!({"Type": "volume", "Source": name, "Target": target, "ReadOnly": read_only})
        }
        Mount::Bind { source, target, read_only } => {
            json!({"Type": "bind", "Source": source, "Target": target, "ReadOnly": read_only})
        }
        Mount::Tmpfs { target, size } => {
            let mut v = json!({"Type": "tmpfs", "Target": target});
            if let Some(size) = size {
                v["TmpfsOptions"] = json!({"SizeBytes": size});
            }
            v
        }
        _ => Value::Null,
    }
}

/// The body of `POST /containers/create` for `spec`.
pub(crate) fn container_create(spec: &ContainerSpec) -> Value {
    let mut body = Map::new();
    body.insert("Image".into(), json!(spec.image));
    if let Some(cmd) = &spec.command {
        body.insert("Cmd".into(), json!(cmd));
    }
    if let Some(ep) = &spec.entrypoint {
        body.insert("Entrypoint".into(), json!(ep));
    }
    put(&mut body, "Env", json!(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>()));
    let mut exposed = Map::new();
    for p in spec.ports.iter().map(|b| b.port).chain(spec.expose.iter().copied()) {
        exposed.insert(p.to_string(), json!({}));
    }
    put(&mut body, "ExposedPorts", Value::Object(exposed));
    put(&mut body, "Labels", json!(spec.labels));
    if let Some(v) = &spec.hostname {
        body.insert("Hostname".into(), json!(v));
    }
    if let Some(v) = &spec.user {
        body.insert("User".into(), json!(v));
    }
    if let Some(v) = &spec.working_dir {
        body.insert("WorkingDir".into(), json!(v));
    }
    if let Some(v) = &spec.stop_signal {
        body.insert("StopSignal".into(), json!(v));
    }
    if let Some(v) = spec.stop_timeout {
        body.insert("StopTimeout".into(), json!(v));
    }
    if let Some(h) = &spec.healthcheck {
        body.insert("Healthcheck".into(), healthcheck(h));
    }
    if spec.tty {
        body.insert("Tty".into(), json!(true));
    }
    if spec.open_stdin {
        body.insert("OpenStdin".into(), json!(true));
    }

    let mut host = Map::new();
    let mut bindings = Map::new();
    for b in &spec.ports {
        let entry = bindings.entry(b.port.to_string()).or_insert_with(|| json!([]));
        if let Value::Array(list) = entry {
            list.push(json!({
                "HostIp": b.host_ip.clone().unwrap_or_default(),
                "HostPort": b.host_port.map(|p| p.to_string()).unwrap_or_default(),
            }));
        }
    }
    put(&mut host, "PortBindings", Value::Object(bindings));
    put(&mut host, "Mounts", Value::Array(spec.mounts.iter().map(mount).collect()));
    put(&mut host, "Dns", json!(spec.dns));
    put(&mut host, "DnsSearch", json!(spec.dns_search));
    put(&mut host, "DnsOptions", json!(spec.dns_options));
    if let Some(v) = &spec.pid_mode {
        host.insert("PidMode".into(), json!(v));
    }
    if let Some(v) = &spec.ipc_mode {
        host.insert("IpcMode".into(), json!(v));
    }
    let devices: Vec<Value> = spec
        .devices
        .iter()
        .map(|d| {
            let mut parts = d.splitn(3, ':');
            let on_host = parts.next().unwrap_or_default();
            let inside = parts.next().filter(|p| !p.is_empty()).unwrap_or(on_host);
            let permissions = parts.next().unwrap_or("rwm");
            json!({"PathOnHost": on_host, "PathInContainer": inside, "CgroupPermissions": permissions})
        })
        .collect();
    put(&mut host, "Devices", Value::Array(devices));
    put(&mut host, "GroupAdd", json!(spec.group_add));
    put(&mut host, "SecurityOpt", json!(spec.security_opt));
    put(&mut host, "ExtraHosts", json!(spec.extra_hosts));
    put(&mut host, "Privileged", json!(spec.privileged));
    put(&mut host, "CapAdd", json!(spec.cap_add));
    put(&mut host, "CapDrop", json!(spec.cap_drop));
    put(&mut host, "ReadonlyRootfs", json!(spec.read_only));
    if spec.init {
        host.insert("Init".into(), json!(true));
    }
    let r = &spec.resources;
    for (key, value) in [
        ("Memory", r.memory),
        ("MemoryReservation", r.memory_reservation),
        ("MemorySwap", r.memory_swap),
        ("NanoCpus", r.nano_cpus),
        ("PidsLimit", r.pids_limit),
        ("ShmSize", r.shm_size),
    ] {
        if let Some(v) = value {
            host.insert(key.into(), json!(v));
        }
    }
    let ulimits: Vec<Value> =
        r.ulimits.iter().map(|u| json!({"Name": u.name, "Soft": u.soft, "Hard": u.hard})).collect();
    put(&mut host, "Ulimits", Value::Array(ulimits));
    put(&mut host, "Sysctls", json!(spec.sysctls));
    match (spec.networks.first(), &spec.network_mode) {
        (Some(first), _) => {
            host.insert("NetworkMode".into(), json!(first.network));
            let mut endpoint = Map::new();
            put(&mut endpoint, "Aliases", json!(first.aliases));
            body.insert(
                "NetworkingConfig".into(),
                json!({"EndpointsConfig": {first.network.clone(): Value::Object(endpoint)}}),
            );
        }
        (None, Some(mode)) => {
            host.insert("NetworkMode".into(), json!(mode));
        }
        (None, None) => {}
    }
    put(&mut body, "HostConfig", Value::Object(host));

    let mut body = Value::Object(body);
    if let Some(raw) = &spec.raw {
        merge(&mut body, raw);
    }
    body
}

/// The body of `POST /networks/create`.
pub(crate) fn network_create(spec: &NetworkSpec) -> Value {
    let mut body = Map::new();
    body.insert("Name".into(), json!(spec.name));
    body.insert("Driver".into(), json!(spec.driver.clone().unwrap_or_else(|| "bridge".into())));
    body.insert("CheckDuplicate".into(), json!(true));
    put(&mut body, "Internal", json!(spec.internal));
    put(&mut body, "EnableIPv6", json!(spec.enable_ipv6));
    if !spec.subnets.is_empty() {
        let config: Vec<Value> = spec.subnets.iter().map(|s| json!({"Subnet": s})).collect();
        body.insert("IPAM".into(), json!({"Driver": "default", "Config": config}));
    }
    put(&mut body, "Options", json!(spec.options));
    put(&mut body, "Labels", json!(spec.labels));
    Value::Object(body)
}

/// The body of `POST /volumes/create`.
pub(crate) fn volume_create(spec: &VolumeSpec) -> Value {
    let mut body = Map::new();
    body.insert("Name".into(), json!(spec.name));
    body.insert("Driver".into(), json!(spec.driver.clone().unwrap_or_else(|| "local".into())));
    put(&mut body, "DriverOpts", json!(spec.driver_opts));
    put(&mut body, "Labels", json!(spec.labels));
    Value::Object(body)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use bollard::models::ContainerCreateBody;
    use std::time::Duration;

    use fixtures_core::spec::{NetworkAttachment, Port, PortBinding, Resources, Ulimit};

    use super::*;

    /// The body as bollard will send it: read into its type and written back.
    fn sent(body: Value) -> Value {
        let typed: ContainerCreateBody = serde_json::from_value(body).expect("bollard reads the body");
        serde_json::to_value(typed).expect("serialise")
    }

    #[test]
    fn minimal_container() {
        let spec = ContainerSpec { image: "sha256:abc".into(), ..ContainerSpec::default() };
        insta::assert_json_snapshot!(sent(container_create(&spec)), @r#"
        {
          "Image": "sha256:abc"
        }
        "#);
    }

    #[test]
    fn full_container() {
        let mut env = BTreeMap::new();
        env.insert("DNS_EXAMPLE_COM__A".to_owned(), "127.0.0.1".to_owned());
        let mut labels = BTreeMap::new();
        labels.insert("fixtures.managed".to_owned(), "true".to_owned());
        let mut spec = ContainerSpec {
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
                Mount::Tmpfs { target: "/tmp".into(), size: Some(1 << 20) },
            ],
            networks: vec![
                NetworkAttachment { network: "fx-backend".into(), aliases: vec!["api".into()] },
                NetworkAttachment { network: "fx-frontend".into(), aliases: vec![] },
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
            healthcheck: Some(Healthcheck {
                test: vec!["CMD".into(), "/test-services".into(), "cat".into(), "/ready".into()],
                interval: Some(Duration::from_millis(100)),
                timeout: None,
                retries: Some(3),
                start_period: None,
            }),
            resources: Resources {
                memory: Some(64 << 20),
                ulimits: vec![Ulimit { name: "nofile".into(), soft: 1024, hard: 4096 }],
                ..Resources::default()
            },
            sysctls: [("net.core.somaxconn".to_owned(), "1024".to_owned())].into(),
            ..ContainerSpec::default()
        };
        spec.raw = Some(json!({"HostConfig": {"Sysctls": {"net.ipv4.ip_forward": "1"}}}));
        insta::assert_json_snapshot!(sent(container_create(&spec)));
    }

    #[test]
    fn networks_and_volumes() {
        let spec = NetworkSpec { name: "fx-net".into(), internal: true, ..NetworkSpec::default() };
        insta::assert_json_snapshot!(network_create(&spec), @r#"
        {
          "CheckDuplicate": true,
          "Driver": "bridge",
          "Internal": true,
          "Name": "fx-net"
        }
        "#);
        let spec = VolumeSpec { name: "fx-vol".into(), ..VolumeSpec::default() };
        insta::assert_json_snapshot!(volume_create(&spec), @r#"
        {
          "Driver": "local",
          "Name": "fx-vol"
        }
        "#);
    }
}
