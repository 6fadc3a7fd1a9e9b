//! A compose file as read: every key of the Compose specification that docker-compose takes,
//! each in the shapes Compose accepts (a string or a list, a map or a list of `KEY=value`,
//! short or long syntax), read from the interpolated tree of [`crate::tree`]. Keys with a
//! meaning in a test are kept; keys that have none (`logging`, `deploy.replicas`, ...) are
//! accepted and listed in [`ACCEPTED`]; the few Compose keys a test cannot honour are errors
//! saying what to write instead; anything else is an error at its line. `x-` keys are
//! extensions and skipped.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::values;

/// One compose file.
#[derive(Debug, Default, Clone)]
pub(crate) struct File {
    pub(crate) name: Option<String>,
    pub(crate) services: BTreeMap<String, Service>,
    pub(crate) networks: BTreeMap<String, NetworkDef>,
    pub(crate) volumes: BTreeMap<String, VolumeDef>,
    pub(crate) secrets: BTreeMap<String, SecretDef>,
    pub(crate) configs: BTreeMap<String, SecretDef>,
    pub(crate) include: Vec<Include>,
}

/// Keys of a mapping with null values read as their defaults.
fn defs<'de, A: MapAccess<'de>, T: Deserialize<'de> + Default>(map: &mut A) -> Result<BTreeMap<String, T>, A::Error> {
    Ok(map
        .next_value::<Option<BTreeMap<String, Option<T>>>>()?
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect())
}

impl<'de> Deserialize<'de> for File {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = File;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a compose file: a mapping with `services`")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<File, A::Error> {
                let mut file = File::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "version" => {
                            map.next_value::<IgnoredAny>()?;
                        }
                        "name" => file.name = Some(map.next_value()?),
                        "services" => file.services = map.next_value_seed(Services)?,
                        "networks" => file.networks = defs(&mut map)?,
                        "volumes" => file.volumes = defs(&mut map)?,
                        "secrets" => file.secrets = defs(&mut map)?,
                        "configs" => file.configs = defs(&mut map)?,
                        "include" => file.include = map.next_value::<Vec<Include>>()?,
                        k if k.starts_with("x-") => {
                            map.next_value::<IgnoredAny>()?;
                        }
                        other => {
                            return Err(de::Error::custom(format!(
                                "unknown top-level key `{other}` (Compose's are services, networks, volumes, \
                                 secrets, configs, include, name, version, and `x-` extensions)"
                            )));
                        }
                    }
                }
                Ok(file)
            }
        }
        d.deserialize_map(V)
    }
}

/// A file `include`d: its path (or paths, merged as override files), and where its relative
/// paths are read from.
#[derive(Debug, Clone, Default)]
pub(crate) struct Include {
    pub(crate) path: Vec<String>,
    pub(crate) project_directory: Option<String>,
    pub(crate) env_file: Vec<String>,
}

impl<'de> Deserialize<'de> for Include {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Long {
            path: OneOrMany,
            project_directory: Option<String>,
            #[serde(default)]
            env_file: Option<OneOrMany>,
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Include;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a compose file's path, or a mapping with `path`")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Include, E> {
                Ok(Include { path: vec![text.to_owned()], ..Include::default() })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Include, A::Error> {
                let long = Long::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(Include {
                    path: long.path.0,
                    project_directory: long.project_directory,
                    env_file: long.env_file.map(|e| e.0).unwrap_or_default(),
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// A top-level secret or config: from a file, from a variable of the caller's environment,
/// or (configs) written inline.
#[allow(dead_code)] // Keys accepted and not applied are read, to check their shape, and dropped.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SecretDef {
    pub(crate) file: Option<String>,
    pub(crate) environment: Option<String>,
    pub(crate) content: Option<String>,
    #[serde(default)]
    pub(crate) external: External,
    pub(crate) name: Option<String>,
    #[serde(default)]
    pub(crate) labels: KeyValues,
    pub(crate) driver: Option<String>,
    #[serde(default)]
    pub(crate) driver_opts: KeyValues,
    pub(crate) template_driver: Option<String>,
}

struct Services;

impl<'de> DeserializeSeed<'de> for Services {
    type Value = BTreeMap<String, Service>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Services {
    type Value = BTreeMap<String, Service>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping of service names to services")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(BTreeMap::new())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut services = BTreeMap::new();
        while let Some(name) = map.next_key::<String>()? {
            if let Some(problem) = values::bad_service_name(&name) {
                return Err(de::Error::custom(problem));
            }
            let service: Service = map.next_value::<Option<Service>>()?.unwrap_or_default();
            services.insert(name, service);
        }
        Ok(services)
    }
}

/// A service, every key optional (so that an override file can set a few).
#[derive(Debug, Default, Clone)]
pub(crate) struct Service {
    pub(crate) image: Option<String>,
    pub(crate) build: Option<Build>,
    pub(crate) command: Option<Vec<String>>,
    pub(crate) entrypoint: Option<Vec<String>>,
    pub(crate) environment: BTreeMap<String, Option<String>>,
    pub(crate) env_file: Vec<EnvFile>,
    pub(crate) ports: Vec<values::PortMapping>,
    pub(crate) expose: Vec<fixtures_core::spec::Port>,
    pub(crate) volumes: Vec<ServiceVolume>,
    pub(crate) tmpfs: Vec<values::TmpfsMount>,
    pub(crate) networks: Option<BTreeMap<String, Attachment>>,
    pub(crate) network_mode: Option<String>,
    pub(crate) depends_on: BTreeMap<String, Dependency>,
    pub(crate) healthcheck: Option<Healthcheck>,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) user: Option<String>,
    pub(crate) working_dir: Option<String>,
    pub(crate) hostname: Option<String>,
    pub(crate) dns: Vec<String>,
    pub(crate) dns_search: Vec<String>,
    pub(crate) dns_opt: Vec<String>,
    pub(crate) extra_hosts: BTreeMap<String, String>,
    pub(crate) cap_add: Vec<String>,
    pub(crate) cap_drop: Vec<String>,
    pub(crate) privileged: Option<bool>,
    pub(crate) read_only: Option<bool>,
    pub(crate) init: Option<bool>,
    pub(crate) stop_signal: Option<String>,
    pub(crate) stop_grace_period: Option<Duration>,
    pub(crate) shm_size: Option<i64>,
    pub(crate) mem_limit: Option<i64>,
    pub(crate) mem_reservation: Option<i64>,
    pub(crate) cpus: Option<f64>,
    pub(crate) pids_limit: Option<i64>,
    pub(crate) ulimits: BTreeMap<String, (i64, i64)>,
    pub(crate) sysctls: BTreeMap<String, String>,
    pub(crate) profiles: Option<Vec<String>>,
    pub(crate) container_name: Option<String>,
    pub(crate) restart: Option<String>,
    pub(crate) secrets: Vec<SecretRef>,
    pub(crate) configs: Vec<SecretRef>,
    pub(crate) platform: Option<String>,
    pub(crate) stdin_open: Option<bool>,
    pub(crate) tty: Option<bool>,
    pub(crate) pull_policy: Option<String>,
    /// `links`: service and the alias it is reached by.
    pub(crate) links: BTreeMap<String, String>,
    pub(crate) extends: Option<Extends>,
    pub(crate) pid: Option<String>,
    pub(crate) ipc: Option<String>,
    pub(crate) devices: Vec<String>,
    pub(crate) group_add: Vec<String>,
    pub(crate) security_opt: Vec<String>,
    /// GPUs asked for (`gpus`, or a device reservation with the `gpu` capability).
    pub(crate) gpus: bool,
}

/// `extends:` of a service: another service, of this file or of another.
#[derive(Debug, Clone)]
pub(crate) struct Extends {
    pub(crate) service: String,
    pub(crate) file: Option<String>,
}

impl<'de> Deserialize<'de> for Extends {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Long {
            service: String,
            file: Option<String>,
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Extends;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a service's name, or a mapping with `service` and `file`")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Extends, E> {
                Ok(Extends { service: text.to_owned(), file: None })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Extends, A::Error> {
                let long = Long::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(Extends { service: long.service, file: long.file })
            }
        }
        d.deserialize_any(V)
    }
}

/// A `secrets` or `configs` entry of a service: which one, where, and with what mode.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SecretRef {
    pub(crate) source: String,
    pub(crate) target: Option<String>,
    pub(crate) mode: Option<u32>,
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Long {
            source: String,
            target: Option<String>,
            uid: Option<Scalar>,
            gid: Option<Scalar>,
            mode: Option<Mode>,
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SecretRef;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a secret's name, or a mapping with `source`, `target` and `mode`")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<SecretRef, E> {
                Ok(SecretRef { source: text.to_owned(), target: None, mode: None })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<SecretRef, A::Error> {
                let long = Long::deserialize(de::value::MapAccessDeserializer::new(map))?;
                let _ = (long.uid, long.gid);
                Ok(SecretRef { source: long.source, target: long.target, mode: long.mode.map(|m| m.0) })
            }
        }
        d.deserialize_any(V)
    }
}

/// A file mode: `0440` (octal, as written in a string or as YAML 1.1 reads it) or a number.
struct Mode(u32);

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Scalar::deserialize(d)?.0.unwrap_or_default();
        let parsed = match text.strip_prefix("0o").or_else(|| text.strip_prefix('0').filter(|r| !r.is_empty())) {
            Some(octal) => u32::from_str_radix(octal, 8).ok(),
            None => text.parse::<u32>().ok(),
        };
        parsed
            .filter(|m| *m <= 0o7777)
            .map(Mode)
            .ok_or_else(|| de::Error::custom(format!("`{text}` is not a file mode")))
    }
}

/// An `env_file` entry: its path, and whether a missing file is an error.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EnvFile {
    pub(crate) path: String,
    pub(crate) required: bool,
}

struct EnvFiles(Vec<EnvFile>);

impl<'de> Deserialize<'de> for EnvFiles {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Long {
            path: String,
            #[serde(default = "yes")]
            required: bool,
            format: Option<String>,
        }
        struct Entry(EnvFile);
        impl<'de> Deserialize<'de> for Entry {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = Entry;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a file's path, or a mapping with `path` and `required`")
                    }
                    fn visit_str<E: de::Error>(self, text: &str) -> Result<Entry, E> {
                        Ok(Entry(EnvFile { path: text.to_owned(), required: true }))
                    }
                    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Entry, A::Error> {
                        let long = Long::deserialize(de::value::MapAccessDeserializer::new(map))?;
                        let _ = long.format;
                        Ok(Entry(EnvFile { path: long.path, required: long.required }))
                    }
                }
                d.deserialize_any(V)
            }
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = EnvFiles;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a file's path, or a list of them")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<EnvFiles, E> {
                Ok(EnvFiles(vec![EnvFile { path: text.to_owned(), required: true }]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<EnvFiles, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = seq.next_element::<Entry>()? {
                    out.push(entry.0);
                }
                Ok(EnvFiles(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// `links:` entries, `service` or `service:alias`.
struct Links(BTreeMap<String, String>);

impl<'de> Deserialize<'de> for Links {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let list = Vec::<String>::deserialize(d)?;
        Ok(Links(
            list.into_iter()
                .map(|l| match l.split_once(':') {
                    Some((s, a)) => (s.to_owned(), a.to_owned()),
                    None => (l.clone(), l),
                })
                .collect(),
        ))
    }
}

/// `deploy:`, of which resources have a meaning on one engine.
#[allow(dead_code)] // Keys accepted and not applied are read, to check their shape, and dropped.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Deploy {
    #[serde(default)]
    resources: DeployResources,
    mode: Option<IgnoredAny>,
    replicas: Option<IgnoredAny>,
    labels: Option<IgnoredAny>,
    placement: Option<IgnoredAny>,
    endpoint_mode: Option<IgnoredAny>,
    restart_policy: Option<IgnoredAny>,
    update_config: Option<IgnoredAny>,
    rollback_config: Option<IgnoredAny>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeployResources {
    limits: Option<ResourceSet>,
    reservations: Option<ResourceSet>,
}

#[allow(dead_code)] // Keys accepted and not applied are read, to check their shape, and dropped.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceSet {
    cpus: Option<Scalar>,
    memory: Option<Bytes>,
    pids: Option<i64>,
    #[serde(default)]
    devices: Vec<DeviceRequest>,
    generic_resources: Option<IgnoredAny>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceRequest {
    #[serde(default)]
    capabilities: Vec<String>,
    driver: Option<String>,
    count: Option<Scalar>,
    device_ids: Option<Vec<String>>,
    options: Option<IgnoredAny>,
}

/// A positive number of CPUs.
fn cpus<E: de::Error>(text: &str) -> Result<f64, E> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|c| c.is_finite() && *c > 0.0)
        .ok_or_else(|| E::custom(format!("`cpus: {text}` is not a positive number")))
}

/// Compose keys of a service that this library accepts and does not apply: a test's
/// containers run on one engine, for one test, and report what went wrong rather than
/// recover from it. The README's table says why for each.
pub(crate) const ACCEPTED: &[&str] = &[
    "annotations",
    "attach",
    "blkio_config",
    "cgroup",
    "cgroup_parent",
    "cpu_count",
    "cpu_percent",
    "cpu_period",
    "cpu_quota",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "cpu_shares",
    "cpuset",
    "credential_spec",
    "develop",
    "device_cgroup_rules",
    "domainname",
    "external_links",
    "isolation",
    "label_file",
    "logging",
    "mac_address",
    "mem_swappiness",
    "memswap_limit",
    "oom_kill_disable",
    "oom_score_adj",
    "post_start",
    "pre_stop",
    "runtime",
    "scale",
    "storage_opt",
    "userns_mode",
    "uts",
];

/// What a Compose key that a test cannot honour means, for the error: what to write instead.
fn refused_reason(key: &str) -> Option<&'static str> {
    Some(match key {
        "volumes_from" => "mount the same named volume in both services instead",
        "provider" => "a service made by a provider plugin has no container to test; declare it in code",
        _ => return None,
    })
}

impl<'de> Deserialize<'de> for Service {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Service;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a service: a mapping of keys such as `image`, `build`, `ports`")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Service, A::Error> {
                let mut s = Service::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "image" => s.image = Some(map.next_value()?),
                        "build" => s.build = Some(map.next_value::<BuildKey>()?.0),
                        "command" => s.command = map.next_value::<Option<CommandLine>>()?.map(|c| c.0),
                        "entrypoint" => s.entrypoint = map.next_value::<Option<CommandLine>>()?.map(|c| c.0),
                        "environment" => s.environment = map.next_value::<KeyValues>()?.0,
                        "env_file" => s.env_file = map.next_value::<EnvFiles>()?.0,
                        "ports" => {
                            s.ports =
                                map.next_value::<Vec<values::PortEntries>>()?.into_iter().flat_map(|e| e.0).collect();
                        }
                        "expose" => {
                            for text in map.next_value::<Vec<String>>()? {
                                s.expose.extend(values::expose(&text).map_err(de::Error::custom)?);
                            }
                        }
                        "volumes" => s.volumes = map.next_value()?,
                        "tmpfs" => {
                            for text in map.next_value::<OneOrMany>()?.0 {
                                s.tmpfs.push(values::tmpfs(&text).map_err(de::Error::custom)?);
                            }
                        }
                        "networks" => s.networks = Some(map.next_value::<Attachments>()?.0),
                        "network_mode" => s.network_mode = Some(map.next_value()?),
                        "depends_on" => s.depends_on = map.next_value::<DependsOn>()?.0,
                        "healthcheck" => s.healthcheck = Some(map.next_value()?),
                        "labels" => s.labels = map.next_value::<KeyValues>()?.strings(),
                        "user" => s.user = Some(map.next_value()?),
                        "working_dir" => s.working_dir = Some(map.next_value()?),
                        "hostname" => s.hostname = Some(map.next_value()?),
                        "dns" => s.dns = map.next_value::<OneOrMany>()?.0,
                        "dns_search" => s.dns_search = map.next_value::<OneOrMany>()?.0,
                        "dns_opt" => s.dns_opt = map.next_value::<OneOrMany>()?.0,
                        "extra_hosts" => s.extra_hosts = map.next_value::<Hosts>()?.0,
                        "cap_add" => s.cap_add = map.next_value()?,
                        "cap_drop" => s.cap_drop = map.next_value()?,
                        "privileged" => s.privileged = Some(map.next_value()?),
                        "read_only" => s.read_only = Some(map.next_value()?),
                        "init" => s.init = Some(map.next_value()?),
                        "stop_signal" => s.stop_signal = Some(map.next_value()?),
                        "stop_grace_period" => {
                            let text: String = map.next_value()?;
                            s.stop_grace_period = Some(values::duration(&text).map_err(de::Error::custom)?);
                        }
                        "shm_size" => s.shm_size = Some(map.next_value::<Bytes>()?.0),
                        "mem_limit" => s.mem_limit = Some(map.next_value::<Bytes>()?.0),
                        "mem_reservation" => s.mem_reservation = Some(map.next_value::<Bytes>()?.0),
                        "cpus" => {
                            let text: String = map.next_value()?;
                            s.cpus = Some(cpus(&text)?);
                        }
                        "pids_limit" => s.pids_limit = Some(map.next_value()?),
                        "ulimits" => s.ulimits = map.next_value::<Ulimits>()?.0,
                        "sysctls" => s.sysctls = map.next_value::<KeyValues>()?.strings(),
                        "profiles" => s.profiles = Some(map.next_value()?),
                        "container_name" => s.container_name = Some(map.next_value()?),
                        "restart" => {
                            let policy: String = map.next_value()?;
                            match policy.split(':').next().unwrap_or_default() {
                                "no" | "always" | "on-failure" | "unless-stopped" => s.restart = Some(policy),
                                _ => {
                                    return Err(de::Error::custom(format!(
                                        "`restart: {policy}` is not a restart policy (no, always, on-failure[:N], \
                                         unless-stopped)"
                                    )));
                                }
                            }
                        }
                        "secrets" => s.secrets = map.next_value()?,
                        "configs" => s.configs = map.next_value()?,
                        "deploy" => {
                            let deploy = map.next_value::<Option<Deploy>>()?.unwrap_or_default();
                            let (limits, reservations) = (deploy.resources.limits, deploy.resources.reservations);
                            if let Some(limits) = limits {
                                if let Some(c) = limits.cpus.and_then(|c| c.0) {
                                    s.cpus = Some(cpus(&c)?);
                                }
                                s.mem_limit = limits.memory.map(|m| m.0).or(s.mem_limit);
                                s.pids_limit = limits.pids.or(s.pids_limit);
                            }
                            if let Some(r) = reservations {
                                s.mem_reservation = r.memory.map(|m| m.0).or(s.mem_reservation);
                                s.gpus |= r.devices.iter().any(|d| {
                                    let _ = (&d.driver, &d.count, &d.device_ids, &d.options);
                                    d.capabilities.iter().any(|c| c == "gpu")
                                });
                            }
                        }
                        "gpus" => {
                            map.next_value::<IgnoredAny>()?;
                            s.gpus = true;
                        }
                        "platform" => s.platform = Some(map.next_value()?),
                        "stdin_open" => s.stdin_open = Some(map.next_value()?),
                        "tty" => s.tty = Some(map.next_value()?),
                        "pull_policy" => {
                            let policy: String = map.next_value()?;
                            match policy.as_str() {
                                "always" | "never" | "missing" | "if_not_present" | "build" | "daily" | "weekly" => {
                                    s.pull_policy = Some(policy);
                                }
                                _ if policy.starts_with("every_") => s.pull_policy = Some(policy),
                                _ => {
                                    return Err(de::Error::custom(format!(
                                        "`pull_policy: {policy}` is not one of always, never, missing, build"
                                    )));
                                }
                            }
                        }
                        "links" => s.links = map.next_value::<Links>()?.0,
                        "extends" => s.extends = Some(map.next_value()?),
                        "pid" => s.pid = Some(map.next_value()?),
                        "ipc" => s.ipc = Some(map.next_value()?),
                        "devices" => s.devices = map.next_value::<Devices>()?.0,
                        "group_add" => {
                            s.group_add = map.next_value::<Vec<Scalar>>()?.into_iter().flat_map(|g| g.0).collect()
                        }
                        "security_opt" => s.security_opt = map.next_value()?,
                        k if k.starts_with("x-") || ACCEPTED.contains(&k) => {
                            map.next_value::<IgnoredAny>()?;
                        }
                        other => {
                            let message = match refused_reason(other) {
                                Some(why) => format!("`{other}` is not supported: {why}"),
                                None => format!("unknown key `{other}`{}", values::did_you_mean(other)),
                            };
                            return Err(de::Error::custom(message));
                        }
                    }
                }
                Ok(s)
            }
        }
        d.deserialize_map(V)
    }
}

/// `devices:` entries: `/dev/x[:/dev/y[:rwm]]`, or the long syntax's `source`/`target`/`permissions`.
struct Devices(Vec<String>);

impl<'de> Deserialize<'de> for Devices {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Long {
            source: String,
            target: Option<String>,
            permissions: Option<String>,
        }
        struct Entry(String);
        impl<'de> Deserialize<'de> for Entry {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = Entry;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a device: `/dev/x[:/dev/y[:rwm]]` or a mapping with `source`")
                    }
                    fn visit_str<E: de::Error>(self, text: &str) -> Result<Entry, E> {
                        Ok(Entry(text.to_owned()))
                    }
                    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Entry, A::Error> {
                        let l = Long::deserialize(de::value::MapAccessDeserializer::new(map))?;
                        let target = l.target.unwrap_or_else(|| l.source.clone());
                        Ok(Entry(format!("{}:{target}:{}", l.source, l.permissions.unwrap_or_else(|| "rwm".into()))))
                    }
                }
                d.deserialize_any(V)
            }
        }
        Ok(Devices(Vec::<Entry>::deserialize(d)?.into_iter().map(|e| e.0).collect()))
    }
}

/// `build: ./dir` or `build: {context, dockerfile, args, target}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Build {
    pub(crate) context: Option<String>,
    pub(crate) dockerfile: Option<String>,
    pub(crate) dockerfile_inline: Option<String>,
    #[serde(default)]
    pub(crate) args: KeyValues,
    pub(crate) target: Option<String>,
    #[serde(default)]
    pub(crate) labels: KeyValues,
    pub(crate) no_cache: Option<bool>,
    // Accepted, not applied: a build for a test runs on the engine as it is.
    #[allow(dead_code)]
    cache_from: Option<IgnoredAny>,
    #[allow(dead_code)]
    cache_to: Option<IgnoredAny>,
    #[allow(dead_code)]
    network: Option<IgnoredAny>,
    #[allow(dead_code)]
    shm_size: Option<IgnoredAny>,
    #[allow(dead_code)]
    extra_hosts: Option<IgnoredAny>,
    #[allow(dead_code)]
    ssh: Option<IgnoredAny>,
    #[allow(dead_code)]
    secrets: Option<IgnoredAny>,
    #[allow(dead_code)]
    tags: Option<IgnoredAny>,
    #[allow(dead_code)]
    platforms: Option<IgnoredAny>,
    #[allow(dead_code)]
    pull: Option<IgnoredAny>,
    #[allow(dead_code)]
    isolation: Option<IgnoredAny>,
    #[allow(dead_code)]
    privileged: Option<IgnoredAny>,
    #[allow(dead_code)]
    additional_contexts: Option<IgnoredAny>,
    #[allow(dead_code)]
    ulimits: Option<IgnoredAny>,
    #[allow(dead_code)]
    entitlements: Option<IgnoredAny>,
}

/// `build:` in either of its forms.
pub(crate) struct BuildKey(pub(crate) Build);

impl<'de> Deserialize<'de> for BuildKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = BuildKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a build context folder, or a mapping with context, dockerfile, args and target")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<BuildKey, E> {
                Ok(BuildKey(Build { context: Some(text.to_owned()), ..Build::default() }))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<BuildKey, A::Error> {
                Build::deserialize(de::value::MapAccessDeserializer::new(map)).map(BuildKey)
            }
        }
        d.deserialize_any(V)
    }
}

/// A service's `volumes:` entry: `name:/path[:ro]`, `./dir:/path`, `/path`, or the long syntax.
#[derive(Debug, Clone)]
pub(crate) enum ServiceVolume {
    Named { name: String, target: String, read_only: bool },
    Bind { source: String, target: String, read_only: bool, create_host_path: bool },
    Anonymous { target: String },
    Tmpfs(values::TmpfsMount),
}

impl ServiceVolume {
    pub(crate) fn target(&self) -> &str {
        match self {
            ServiceVolume::Named { target, .. }
            | ServiceVolume::Bind { target, .. }
            | ServiceVolume::Anonymous { target } => target,
            ServiceVolume::Tmpfs(t) => &t.target,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LongVolume {
    #[serde(rename = "type")]
    kind: String,
    source: Option<String>,
    target: String,
    #[serde(default)]
    read_only: bool,
    consistency: Option<String>,
    volume: Option<LongVolumeOptions>,
    bind: Option<LongBindOptions>,
    tmpfs: Option<LongTmpfsOptions>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LongVolumeOptions {
    #[serde(default)]
    nocopy: bool,
    subpath: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LongBindOptions {
    #[serde(default = "yes")]
    create_host_path: bool,
    propagation: Option<String>,
    selinux: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LongTmpfsOptions {
    size: Option<Bytes>,
}

impl<'de> Deserialize<'de> for ServiceVolume {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ServiceVolume;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a volume: `source:target[:ro]` or a mapping with type, source and target")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<ServiceVolume, E> {
                values::short_volume(text).map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ServiceVolume, A::Error> {
                let long = LongVolume::deserialize(de::value::MapAccessDeserializer::new(map))?;
                let _ = long.volume.map(|v| (v.nocopy, v.subpath));
                let create_host_path = long.bind.as_ref().is_none_or(|b| b.create_host_path);
                let _ = long.bind.map(|b| (b.propagation, b.selinux));
                let _ = long.consistency;
                let target = values::mount_target(&long.target).map_err(de::Error::custom)?;
                let source = || {
                    long.source.clone().ok_or_else(|| {
                        de::Error::custom(format!("a `{}` volume needs a `source` (at `{}`)", long.kind, long.target))
                    })
                };
                Ok(match long.kind.as_str() {
                    "volume" => match &long.source {
                        Some(name) => ServiceVolume::Named { name: name.clone(), target, read_only: long.read_only },
                        None => ServiceVolume::Anonymous { target },
                    },
                    "bind" => {
                        ServiceVolume::Bind { source: source()?, target, read_only: long.read_only, create_host_path }
                    }
                    "tmpfs" => ServiceVolume::Tmpfs(values::TmpfsMount {
                        target,
                        size: long.tmpfs.and_then(|t| t.size).map(|b| b.0 as u64),
                    }),
                    other => {
                        return Err(de::Error::custom(format!(
                            "volume type `{other}` is not supported (volume, bind or tmpfs)"
                        )));
                    }
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// A service's place on a network.
#[allow(dead_code)] // Keys accepted and not applied are read, to check their shape, and dropped.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Attachment {
    #[serde(default)]
    pub(crate) aliases: Vec<String>,
    // Fixed addresses: accepted, not applied (two tests' networks cannot both hold one
    // address; the engine gives each container its own).
    ipv4_address: Option<String>,
    ipv6_address: Option<String>,
    link_local_ips: Option<IgnoredAny>,
    mac_address: Option<String>,
    priority: Option<IgnoredAny>,
    gw_priority: Option<IgnoredAny>,
    driver_opts: Option<IgnoredAny>,
}

struct Attachments(BTreeMap<String, Attachment>);

impl<'de> Deserialize<'de> for Attachments {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Attachments;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of network names, or a mapping of names to `aliases`")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Attachments, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(name) = seq.next_element::<String>()? {
                    out.insert(name, Attachment::default());
                }
                Ok(Attachments(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Attachments, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((name, attachment)) = map.next_entry::<String, Option<Attachment>>()? {
                    out.insert(name, attachment.unwrap_or_default());
                }
                Ok(Attachments(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// What a service waits for in a dependency before it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(clippy::enum_variant_names)] // Compose's own words: `service_started`, ...
pub(crate) enum Condition {
    ServiceStarted,
    ServiceHealthy,
    ServiceCompletedSuccessfully,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LongDependency {
    condition: Option<Condition>,
    #[serde(default = "yes")]
    required: bool,
    #[serde(default)]
    restart: bool,
}

/// A dependency: what it waits for, and whether the service may start without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dependency {
    pub(crate) condition: Condition,
    pub(crate) required: bool,
}

struct DependsOn(BTreeMap<String, Dependency>);

impl<'de> Deserialize<'de> for DependsOn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = DependsOn;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of services, or a mapping of services to a `condition`")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<DependsOn, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(name) = seq.next_element::<String>()? {
                    out.insert(name, Dependency { condition: Condition::ServiceStarted, required: true });
                }
                Ok(DependsOn(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<DependsOn, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((name, long)) = map.next_entry::<String, LongDependency>()? {
                    let _ = long.restart;
                    let condition = long.condition.unwrap_or(Condition::ServiceStarted);
                    out.insert(name, Dependency { condition, required: long.required });
                }
                Ok(DependsOn(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// `healthcheck:` of a service.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Healthcheck {
    pub(crate) test: Option<HealthTest>,
    pub(crate) interval: Option<String>,
    pub(crate) timeout: Option<String>,
    pub(crate) retries: Option<u32>,
    pub(crate) start_period: Option<String>,
    /// Accepted, not applied: the engines here predate it (Docker API 1.44).
    pub(crate) start_interval: Option<String>,
    #[serde(default)]
    pub(crate) disable: bool,
}

/// A top-level network.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NetworkDef {
    pub(crate) driver: Option<String>,
    #[serde(default)]
    pub(crate) driver_opts: KeyValues,
    #[serde(default)]
    pub(crate) internal: bool,
    #[serde(default)]
    pub(crate) enable_ipv6: bool,
    #[serde(default)]
    pub(crate) attachable: bool,
    #[serde(default)]
    pub(crate) labels: KeyValues,
    #[serde(default)]
    pub(crate) external: External,
    pub(crate) name: Option<String>,
    /// Accepted; its subnets are not applied (each test's network gets its own).
    #[allow(dead_code)]
    ipam: Option<IgnoredAny>,
}

/// `external: true`, or the older `external: {name: ...}`.
#[derive(Debug, Clone, Default)]
pub(crate) struct External {
    pub(crate) yes: bool,
    pub(crate) name: Option<String>,
}

impl<'de> Deserialize<'de> for External {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Long {
            name: Option<String>,
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = External;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false, or a mapping with `name`")
            }
            fn visit_bool<E: de::Error>(self, yes: bool) -> Result<External, E> {
                Ok(External { yes, name: None })
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<External, E> {
                match text {
                    "true" | "yes" => Ok(External { yes: true, name: None }),
                    "false" | "no" => Ok(External { yes: false, name: None }),
                    _ => Err(E::custom(format!("`external: {text}` is not true or false"))),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<External, A::Error> {
                let long = Long::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(External { yes: true, name: long.name })
            }
        }
        d.deserialize_any(V)
    }
}

/// A top-level volume.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VolumeDef {
    pub(crate) driver: Option<String>,
    #[serde(default)]
    pub(crate) driver_opts: KeyValues,
    #[serde(default)]
    pub(crate) labels: KeyValues,
    #[serde(default)]
    pub(crate) external: External,
    pub(crate) name: Option<String>,
}

/// A health check's test: a string for the container's shell, or `[CMD, ...]`,
/// `[CMD-SHELL, ...]`, `[NONE]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HealthTest {
    Shell(String),
    List(Vec<String>),
}

impl<'de> Deserialize<'de> for HealthTest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = HealthTest;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a command string, or a list starting with CMD, CMD-SHELL or NONE")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<HealthTest, E> {
                Ok(HealthTest::Shell(text.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<HealthTest, A::Error> {
                let mut out: Vec<String> = Vec::new();
                while let Some(word) = seq.next_element::<String>()? {
                    out.push(word);
                }
                match out.first().map(String::as_str) {
                    Some("CMD" | "CMD-SHELL" | "NONE") => Ok(HealthTest::List(out)),
                    _ => Err(de::Error::custom(format!(
                        "a health check test list starts with CMD, CMD-SHELL or NONE, not {:?}",
                        out.first().map(String::as_str).unwrap_or("nothing")
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// A command as a list; a string is split as a shell would split words (no shell runs it).
#[derive(Debug, Clone)]
pub(crate) struct CommandLine(pub(crate) Vec<String>);

impl<'de> Deserialize<'de> for CommandLine {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CommandLine;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a command: a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<CommandLine, E> {
                values::shell_words(text).map(CommandLine).map_err(E::custom)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<CommandLine, A::Error> {
                let mut out = Vec::new();
                while let Some(word) = seq.next_element::<String>()? {
                    out.push(word);
                }
                Ok(CommandLine(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// A string or a list of strings.
struct OneOrMany(Vec<String>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany(vec![text.to_owned()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element::<String>()? {
                    out.push(item);
                }
                Ok(OneOrMany(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// `KEY: value` pairs given as a mapping or as a list of `KEY=value` (a bare `KEY`, or a
/// `null` value, has no value of its own).
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyValues(pub(crate) BTreeMap<String, Option<String>>);

impl KeyValues {
    /// The pairs with a missing value as an empty string (labels, sysctls, options).
    pub(crate) fn strings(self) -> BTreeMap<String, String> {
        self.0.into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect()
    }
}

/// A scalar of any type, as text.
#[derive(Debug, Clone, Default)]
struct Scalar(Option<String>);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, a number or a boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_owned())))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar(None))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for KeyValues {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyValues;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping, or a list of `KEY=value`")
            }
            fn visit_unit<E: de::Error>(self) -> Result<KeyValues, E> {
                Ok(KeyValues::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<KeyValues, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(item) = seq.next_element::<String>()? {
                    match item.split_once('=') {
                        Some((k, v)) => out.insert(k.to_owned(), Some(v.to_owned())),
                        None => out.insert(item, None),
                    };
                }
                Ok(KeyValues(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyValues, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((k, v)) = map.next_entry::<String, Scalar>()? {
                    out.insert(k, v.0);
                }
                Ok(KeyValues(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// `extra_hosts`: `["name:ip"]`, `["name=ip"]` or `{name: ip}`.
struct Hosts(BTreeMap<String, String>);

impl<'de> Deserialize<'de> for Hosts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Hosts;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of `name:ip`, or a mapping of names to addresses")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Hosts, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(item) = seq.next_element::<String>()? {
                    let (name, ip) = item
                        .split_once('=')
                        .or_else(|| item.split_once(':'))
                        .ok_or_else(|| de::Error::custom(format!("extra host `{item}` is not `name:ip`")))?;
                    out.insert(name.to_owned(), ip.to_owned());
                }
                Ok(Hosts(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Hosts, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((name, ip)) = map.next_entry::<String, String>()? {
                    out.insert(name, ip);
                }
                Ok(Hosts(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// A size in bytes: a number, or `64m`, `1g`, `512kb`, `1.5g`.
#[derive(Debug, Clone)]
pub(crate) struct Bytes(pub(crate) i64);

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Scalar::deserialize(d)?.0.unwrap_or_default();
        values::bytes(&text).map(Bytes).map_err(de::Error::custom)
    }
}

/// `ulimits: {nofile: {soft: 1024, hard: 4096}, nproc: 512}`.
struct Ulimits(BTreeMap<String, (i64, i64)>);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SoftHard {
    soft: i64,
    hard: i64,
}

impl<'de> Deserialize<'de> for Ulimits {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ulimits;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of limit names to a number or `{soft, hard}`")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ulimits, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(name) = map.next_key::<String>()? {
                    let limit = map.next_value::<Limit>()?;
                    out.insert(name, (limit.0, limit.1));
                }
                Ok(Ulimits(out))
            }
        }
        struct Limit(i64, i64);
        impl<'de> Deserialize<'de> for Limit {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct L;
                impl<'de> Visitor<'de> for L {
                    type Value = Limit;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a number or `{soft, hard}`")
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Limit, E> {
                        Ok(Limit(v, v))
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Limit, E> {
                        let v = i64::try_from(v).map_err(|_| E::custom("limit too large"))?;
                        Ok(Limit(v, v))
                    }
                    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Limit, A::Error> {
                        let sh = SoftHard::deserialize(de::value::MapAccessDeserializer::new(map))?;
                        Ok(Limit(sh.soft, sh.hard))
                    }
                }
                d.deserialize_any(L)
            }
        }
        d.deserialize_map(V)
    }
}
