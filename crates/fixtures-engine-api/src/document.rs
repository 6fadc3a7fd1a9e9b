//! The Docker Engine API's JSON documents read into fixtures-core's types.
//!
//! Docker and Podman (libpod's inspect output keeps the same field names) describe
//! containers, images, networks, volumes and events in the same shape, so backends
//! hand the engine's answer here as JSON instead of each mapping it by hand.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::Value;

use fixtures_core::runtime::{
    ContainerInfo, ContainerStatus, ContainerSummary, Event, EventAction, EventObject, Health, HostBinding, ImageInfo,
    NetworkEndpoint, NetworkInfo, VolumeInfo,
};
use fixtures_core::spec::{Labels, Port};

use crate::podman;

fn s(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn labels(v: Option<&Value>) -> Labels {
    v.and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
        .unwrap_or_default()
}

fn ip(v: &Value, key: &str) -> Option<IpAddr> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).and_then(|s| s.parse().ok())
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// A container from an inspect document (`GET /containers/{id}/json`).
pub fn container_info(raw: Value) -> ContainerInfo {
    let state = raw.get("State").cloned().unwrap_or(Value::Null);
    let config = raw.get("Config").cloned().unwrap_or(Value::Null);
    let net = raw.get("NetworkSettings").cloned().unwrap_or(Value::Null);

    let status = ContainerStatus::parse(&s(&state, "Status"));
    let health = match state.get("Health").and_then(|h| h.get("Status")).and_then(Value::as_str) {
        Some("starting") => Health::Starting,
        Some("healthy") => Health::Healthy,
        Some("unhealthy") => Health::Unhealthy,
        _ => Health::None,
    };
    let pid = state.get("Pid").and_then(Value::as_u64).filter(|p| *p > 0).map(|p| p as u32);
    let exit_code = match status {
        ContainerStatus::Exited | ContainerStatus::Dead => state.get("ExitCode").and_then(Value::as_i64),
        _ => None,
    };
    let env = strings(config.get("Env"))
        .into_iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (kv, String::new()),
        })
        .collect();

    let networks = net
        .get("Networks")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(name, n)| {
                    let mut endpoint = NetworkEndpoint::default();
                    endpoint.network = name.clone();
                    endpoint.network_id = s(n, "NetworkID");
                    endpoint.ipv4 = ip(n, "IPAddress");
                    endpoint.ipv6 = ip(n, "GlobalIPv6Address");
                    endpoint.gateway = ip(n, "Gateway");
                    endpoint.aliases = strings(n.get("Aliases"));
                    (name.clone(), endpoint)
                })
                .collect()
        })
        .unwrap_or_default();

    let mut ports: BTreeMap<Port, Vec<HostBinding>> = BTreeMap::new();
    if let Some(map) = net.get("Ports").and_then(Value::as_object) {
        for (key, bindings) in map {
            let Ok(port) = Port::parse(key) else { continue };
            let hosts: Vec<HostBinding> = bindings
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|b| {
                            let host_port = s(b, "HostPort").parse::<u16>().ok()?;
                            Some(HostBinding { host_ip: s(b, "HostIp"), host_port })
                        })
                        .collect()
                })
                .unwrap_or_default();
            if !hosts.is_empty() {
                ports.insert(port, hosts);
            }
        }
    }
    let exposed = config
        .get("ExposedPorts")
        .and_then(Value::as_object)
        .map(|m| m.keys().filter_map(|k| Port::parse(k).ok()).collect())
        .unwrap_or_default();

    let time = |key: &str| Some(s(&state, key)).filter(|t| !t.is_empty() && !t.starts_with("0001-"));
    let restart_policy = raw.pointer("/HostConfig/RestartPolicy/Name").and_then(Value::as_str);

    let mut info = ContainerInfo::default();
    info.id = s(&raw, "Id");
    info.name = s(&raw, "Name").trim_start_matches('/').to_owned();
    info.image_id = s(&raw, "Image");
    info.status = status;
    info.health = health;
    info.pid = pid;
    info.exit_code = exit_code;
    info.started_at = time("StartedAt");
    info.finished_at = time("FinishedAt");
    info.restarts = !matches!(restart_policy, None | Some("" | "no"));
    info.oom_killed = state.get("OOMKilled").and_then(Value::as_bool).unwrap_or(false);
    info.error = Some(s(&state, "Error")).filter(|e| !e.is_empty());
    info.env = env;
    info.labels = labels(config.get("Labels"));
    info.networks = networks;
    info.ports = ports;
    info.exposed = exposed;
    info.raw = raw;
    info
}

/// A container from a listing (`GET /containers/json`).
pub fn container_summary(raw: &Value) -> ContainerSummary {
    let mut summary = ContainerSummary::default();
    summary.id = s(raw, "Id");
    summary.names = strings(raw.get("Names")).into_iter().map(|n| n.trim_start_matches('/').to_owned()).collect();
    summary.status = ContainerStatus::parse(&s(raw, "State"));
    summary.labels = labels(raw.get("Labels"));
    summary
}

/// An image from an inspect document (`GET /images/{name}/json`) or a listing.
pub fn image_info(raw: Value) -> ImageInfo {
    let config = raw.get("Config").cloned().unwrap_or(Value::Null);
    let image_labels = match raw.get("Labels") {
        Some(l) if l.is_object() => labels(Some(l)),
        _ => labels(config.get("Labels")),
    };
    let mut image = ImageInfo::default();
    image.id = s(&raw, "Id");
    image.tags = strings(raw.get("RepoTags"))
        .iter()
        .filter(|t| *t != "<none>:<none>")
        .map(|t| podman::short_tag(t).to_owned())
        .collect();
    image.labels = image_labels;
    image.os = s(&raw, "Os");
    image.architecture = s(&raw, "Architecture");
    image.raw = raw;
    image
}

/// A network from an inspect document or a listing.
pub fn network_info(raw: &Value) -> NetworkInfo {
    let mut network = NetworkInfo::default();
    network.id = s(raw, "Id");
    network.name = s(raw, "Name");
    network.driver = s(raw, "Driver");
    network.labels = labels(raw.get("Labels"));
    network.containers =
        raw.get("Containers").and_then(Value::as_object).map(|m| m.keys().cloned().collect()).unwrap_or_default();
    network
}

/// A volume from an inspect document or a listing.
pub fn volume_info(raw: &Value) -> VolumeInfo {
    let mut volume = VolumeInfo::default();
    volume.name = s(raw, "Name");
    volume.driver = s(raw, "Driver");
    volume.mountpoint = s(raw, "Mountpoint");
    volume.labels = labels(raw.get("Labels"));
    volume
}

/// An event (`GET /events`), with Podman's action names mapped to Docker's.
pub fn event(raw: &Value) -> Event {
    let object = match s(raw, "Type").as_str() {
        "container" => EventObject::Container,
        "image" => EventObject::Image,
        "network" => EventObject::Network,
        "volume" => EventObject::Volume,
        _ => EventObject::Other,
    };
    let action_word = s(raw, "Action");
    let action = match action_word.as_str() {
        "create" => EventAction::Create,
        "start" => EventAction::Start,
        "die" | "died" => EventAction::Die,
        "oom" => EventAction::Oom,
        "destroy" | "remove" => EventAction::Destroy,
        a => match a.strip_prefix("health_status") {
            Some(rest) => EventAction::HealthStatus(rest.trim_start_matches(':').trim().to_owned()),
            None => EventAction::Other(action_word.clone()),
        },
    };
    let actor = raw.get("Actor").cloned().unwrap_or(Value::Null);
    let attributes = labels(actor.get("Attributes"));
    let id = match s(&actor, "ID") {
        id if id.is_empty() => s(raw, "id"),
        id => id,
    };
    let mut event = Event::default();
    // Docker's `exitCode`, libpod's `containerExitCode`.
    event.exit_code =
        attributes.get("exitCode").or_else(|| attributes.get("containerExitCode")).and_then(|c| c.parse().ok());
    event.object = object;
    event.action = action;
    event.id = id;
    event.attributes = attributes;
    event.time_nanos = raw.get("timeNano").and_then(Value::as_i64).map(i128::from);
    event.time_secs = raw.get("time").and_then(Value::as_i64);
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn container_documents_are_read() {
        let info = container_info(json!({
            "Id": "abc",
            "Name": "/fx-apiserver",
            "Image": "sha256:1",
            "State": {"Status": "exited", "Pid": 0, "ExitCode": 3, "OOMKilled": true, "Error": ""},
            "Config": {"Env": ["A=1", "B=x=y", "C"], "Labels": {"fixtures.node": "apiserver"},
                       "ExposedPorts": {"8080/tcp": {}}},
            "NetworkSettings": {
                "Networks": {"bridge": {"NetworkID": "n1", "IPAddress": "172.17.0.2", "Gateway": "172.17.0.1",
                                        "GlobalIPv6Address": "", "Aliases": null}},
                "Ports": {"8080/tcp": [{"HostIp": "0.0.0.0", "HostPort": "49153"},
                                       {"HostIp": "::", "HostPort": "49153"}],
                          "9000/tcp": null}
            }
        }));
        assert_eq!(info.name, "fx-apiserver");
        assert_eq!(info.status, ContainerStatus::Exited);
        assert_eq!((info.exit_code, info.oom_killed, info.pid), (Some(3), true, None));
        assert_eq!(info.env["B"], "x=y");
        assert_eq!(info.env["C"], "");
        assert_eq!(info.networks["bridge"].ipv4, Some("172.17.0.2".parse().expect("ip")));
        assert_eq!(info.networks["bridge"].ipv6, None);
        assert_eq!(info.ports.len(), 1, "unpublished ports are left out");
        assert_eq!(info.ports[&Port::tcp(8080)][0].host_port, 49153);
        assert_eq!(info.exposed, vec![Port::tcp(8080)]);
    }

    #[test]
    fn podman_event_names_are_docker_names() {
        let e = event(&json!({"Type": "container", "Action": "died",
            "Actor": {"ID": "c1", "Attributes": {"exitCode": "1"}}}));
        assert_eq!((e.object, e.action, e.id.as_str()), (EventObject::Container, EventAction::Die, "c1"));
        let e = event(&json!({"Type": "container", "Action": "health_status: healthy", "Actor": {"ID": "c1"}}));
        assert_eq!(e.action, EventAction::HealthStatus("healthy".into()));
    }
}
