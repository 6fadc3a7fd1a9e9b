//! libpod's own API's answers in the shape [`crate::document`] reads.
//!
//! libpod's inspect documents keep the Docker Engine API's field names, with a few
//! differences that are smoothed here (the engine's own answer stays in `raw`):
//!
//! - image ids come bare (`0c38…`), Docker's carry `sha256:`;
//! - `Config.ExposedPorts` is null; exposed ports are the keys of `NetworkSettings.Ports`;
//! - networks are described in libpod's own lower-case schema;
//! - and what Podman answers differently through either API (the default network's
//!   name, `localhost/` names): [`super`].

use serde_json::{Map, Value, json};

use crate::podman;

/// `sha256:<hex>` for a bare image id; anything else unchanged.
pub fn image_id(id: &str) -> String {
    let bare = id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
    if bare { format!("sha256:{id}") } else { id.to_owned() }
}

fn set_image_id(doc: &mut Value, key: &str) {
    if let Some(id) = doc.get(key).and_then(Value::as_str).map(image_id) {
        doc[key] = json!(id);
    }
}

/// An image document (inspect or listing) as Docker describes images.
pub fn image(mut doc: Value) -> Value {
    set_image_id(&mut doc, "Id");
    doc
}

/// A container inspect document as Docker describes containers.
pub fn container(mut doc: Value) -> Value {
    set_image_id(&mut doc, "Image");
    let ports: Option<Map<String, Value>> = doc
        .pointer("/NetworkSettings/Ports")
        .and_then(Value::as_object)
        .map(|m| m.keys().map(|k| (k.clone(), json!({}))).collect());
    if let (Some(ports), Some(config)) = (ports, doc.get_mut("Config").and_then(Value::as_object_mut)) {
        let missing = config.get("ExposedPorts").is_none_or(|v| v.as_object().is_none_or(Map::is_empty));
        if missing && !ports.is_empty() {
            config.insert("ExposedPorts".into(), Value::Object(ports));
        }
    }
    podman::rename_default_network(&mut doc);
    doc
}

/// A network in libpod's schema (`name`, `id`, `driver`, `labels`) as Docker's
/// (`Name`, `Id`, `Driver`, `Labels`, `Containers`), with the ids of the containers on it.
pub fn network(doc: &Value, containers: &[String]) -> Value {
    let text = |key: &str| doc.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
    let name = podman::network_for_docker(&text("name")).to_owned();
    let attached: Map<String, Value> = containers.iter().map(|id| (id.clone(), json!({}))).collect();
    json!({
        "Name": name,
        "Id": text("id"),
        "Driver": text("driver"),
        "Labels": doc.get("labels").cloned().unwrap_or(Value::Null),
        "Internal": doc.get("internal").cloned().unwrap_or(Value::Bool(false)),
        "EnableIPv6": doc.get("ipv6_enabled").cloned().unwrap_or(Value::Bool(false)),
        "Containers": attached,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0c384667235add0c85a9b89b30c1ddcd4282f9b9617738aed24cc82712cf8b92";

    #[test]
    fn image_ids_and_tags_read_as_docker_writes_them() {
        assert_eq!(image_id(HEX), format!("sha256:{HEX}"));
        assert_eq!(image_id(&format!("sha256:{HEX}")), format!("sha256:{HEX}"));
        assert_eq!(image_id("app:1"), "app:1");
        let doc = image(json!({"Id": HEX, "RepoTags": ["localhost/app:1", "127.0.0.1:5000/app:1"]}));
        let info = crate::document::image_info(doc);
        assert_eq!(info.id, format!("sha256:{HEX}"));
        assert_eq!(info.tags, ["app:1", "127.0.0.1:5000/app:1"]);
    }

    #[test]
    fn libpod_container_documents_are_read() {
        // Shape of Podman 4.3.1's GET /libpod/containers/{id}/json.
        let doc = container(json!({
            "Id": "479a", "Name": "fx-echo", "Image": HEX,
            "State": {"Status": "running", "Pid": 28026, "ExitCode": 0, "OOMKilled": false, "Error": "",
                      "Health": {"Status": "", "FailingStreak": 0, "Log": null}},
            "Config": {"Env": ["GREETING=hi"], "Labels": {"a": "b"}, "ExposedPorts": null},
            "NetworkSettings": {
                "Ports": {"7000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "39219"}], "9000/tcp": null},
                "Networks": {
                    "podman": {"NetworkID": "podman", "IPAddress": "10.88.0.5", "Gateway": "10.88.0.1",
                               "GlobalIPv6Address": "", "Aliases": ["479a"]},
                    "fx-net": {"NetworkID": "fx-net", "IPAddress": "10.89.0.2", "Gateway": "10.89.0.1",
                               "Aliases": ["probe", "479a"]}
                }
            }
        }));
        let info = crate::document::container_info(doc);
        assert_eq!(info.image_id, format!("sha256:{HEX}"));
        assert_eq!(info.pid, Some(28026));
        assert_eq!(info.exit_code, None);
        assert_eq!(info.health, fixtures_core::runtime::Health::None);
        assert_eq!(info.env["GREETING"], "hi");
        assert_eq!(info.networks.keys().collect::<Vec<_>>(), ["bridge", "fx-net"]);
        assert_eq!(info.networks["bridge"].ipv4, Some("10.88.0.5".parse().expect("ip")));
        assert_eq!(info.networks["fx-net"].aliases, ["probe", "479a"]);
        assert_eq!(info.ports.len(), 1);
        let exposed: Vec<String> = info.exposed.iter().map(ToString::to_string).collect();
        assert_eq!(exposed, ["7000/tcp", "9000/tcp"]);
    }

    #[test]
    fn libpod_networks_are_read() {
        let doc = json!({"name": "fx-net", "id": "2f25", "driver": "bridge", "labels": {"fixtures.managed": "true"},
                         "internal": false, "dns_enabled": true});
        let info = crate::document::network_info(&network(&doc, &["c1".to_owned()]));
        assert_eq!((info.name.as_str(), info.id.as_str(), info.driver.as_str()), ("fx-net", "2f25", "bridge"));
        assert_eq!(info.labels["fixtures.managed"], "true");
        assert_eq!(info.containers, ["c1"]);
        let default = crate::document::network_info(&network(&json!({"name": "podman", "id": "2f"}), &[]));
        assert_eq!(default.name, "bridge");
    }
}
