//! Reuse mode (`reuse = true`, `FIXTURE_REUSE=1`): named containers, networks and volumes
//! outlive the run and are taken up again by the next one when their signature (a hash of
//! the resolved spec, image id included) still matches; stale ones are replaced. An object
//! with the wanted name that this library did not make is refused and left alone.

use std::sync::Arc;

use crate::error::{Error, ErrorKind, Result};
use crate::labels;
use crate::runtime::{ContainerStatus, Runtime};
use crate::spec::{Labels, NetworkSpec, VolumeSpec};

/// Marks `labels` as those of a reused object: kept by every cleanup.
pub(super) fn mark(labels: &mut Labels) {
    labels.insert(labels::REUSE.to_owned(), "true".to_owned());
    labels.insert(labels::OWNER.to_owned(), "reuse".to_owned());
}

/// The fixed name a reused object needs.
pub(super) fn required_name(node: &str, kind: &str, name: Option<&str>) -> Result<String> {
    name.filter(|n| !n.is_empty()).map(str::to_owned).ok_or_else(|| {
        Error::graph(node, format!("reuse mode is on, but this {kind} has no name"))
            .with_hint("give it `.name(\"...\")` so the next run can find it, or turn reuse off (FIXTURE_REUSE=0)")
    })
}

fn ours(labels: &Labels) -> bool {
    labels.get(labels::MANAGED).is_some_and(|v| v == "true")
}

fn refuse(kind: &str, name: &str) -> Error {
    Error::new(
        ErrorKind::Conflict,
        format!(
            "a {kind} named `{name}` exists that this library did not create (it has no `{}` label); it is left alone",
            labels::MANAGED
        ),
    )
    .with_hint(format!("remove or rename that {kind} yourself, or give the fixture another name"))
}

/// What to do with an object of the wanted name.
pub(super) enum Found {
    /// Nothing there: create it.
    Nothing,
    /// Ours and current: use it (its id).
    Current(String),
}

/// Container: use it if current (starting it if stopped), replace it if stale.
pub(super) async fn container(runtime: &Arc<dyn Runtime>, name: &str, sig: &str) -> Result<Found> {
    let existing = match runtime.inspect_container(name).await {
        Ok(c) => c,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Found::Nothing),
        Err(e) => return Err(e),
    };
    if !ours(&existing.labels) {
        return Err(refuse("container", name).with_container(existing.id));
    }
    if existing.labels.get(labels::SIGNATURE).map(String::as_str) == Some(sig) {
        if existing.status != ContainerStatus::Running {
            runtime.start_container(&existing.id).await?;
        }
        tracing::info!(container = %name, "reusing container");
        return Ok(Found::Current(existing.id));
    }
    tracing::info!(container = %name, "replacing stale container");
    runtime.remove_container(&existing.id, true).await?;
    Ok(Found::Nothing)
}

/// Removes the containers attached to a stale network or volume, if they are all ours.
async fn clear_users(runtime: &Arc<dyn Runtime>, kind: &str, name: &str, users: Vec<String>) -> Result<()> {
    for id in users {
        let c = match runtime.inspect_container(&id).await {
            Ok(c) => c,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if !ours(&c.labels) {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "the {kind} `{name}` is stale and must be replaced, but container `{}` of someone else uses it",
                    c.name
                ),
            )
            .with_container(c.id)
            .with_hint(format!("stop using `{name}` in that container, or give the fixture another name")));
        }
        runtime.remove_container(&c.id, true).await?;
    }
    Ok(())
}

/// Network: use it if current, replace it (and our containers on it) if stale.
pub(super) async fn network(runtime: &Arc<dyn Runtime>, spec: &NetworkSpec, sig: &str) -> Result<Found> {
    let existing = match runtime.inspect_network(&spec.name).await {
        Ok(n) => n,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Found::Nothing),
        Err(e) => return Err(e),
    };
    if !ours(&existing.labels) {
        return Err(refuse("network", &spec.name));
    }
    if existing.labels.get(labels::SIGNATURE).map(String::as_str) == Some(sig) {
        tracing::info!(network = %spec.name, "reusing network");
        return Ok(Found::Current(existing.id));
    }
    tracing::info!(network = %spec.name, "replacing stale network");
    clear_users(runtime, "network", &spec.name, existing.containers).await?;
    runtime.remove_network(&existing.id).await?;
    Ok(Found::Nothing)
}

/// Volume: use it if current, replace it (and our containers using it) if stale.
pub(super) async fn volume(runtime: &Arc<dyn Runtime>, spec: &VolumeSpec, sig: &str) -> Result<Found> {
    let existing = match runtime.inspect_volume(&spec.name).await {
        Ok(v) => v,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Found::Nothing),
        Err(e) => return Err(e),
    };
    if !ours(&existing.labels) {
        return Err(refuse("volume", &spec.name));
    }
    if existing.labels.get(labels::SIGNATURE).map(String::as_str) == Some(sig) {
        tracing::info!(volume = %spec.name, "reusing volume");
        return Ok(Found::Current(spec.name.clone()));
    }
    tracing::info!(volume = %spec.name, "replacing stale volume");
    if let Err(e) = runtime.remove_volume(&spec.name, false).await {
        if e.kind() != ErrorKind::Conflict {
            return Err(e);
        }
        // In use: find who mounts it.
        let mut users = Vec::new();
        for c in runtime.list_containers(&crate::spec::LabelFilter::default()).await? {
            let info = runtime.inspect_container(&c.id).await?;
            let mounts = info.raw.get("Mounts").and_then(|m| m.as_array()).cloned().unwrap_or_default();
            if mounts.iter().any(|m| m.get("Name").and_then(|n| n.as_str()) == Some(spec.name.as_str())) {
                users.push(c.id);
            }
        }
        clear_users(runtime, "volume", &spec.name, users).await?;
        runtime.remove_volume(&spec.name, true).await?;
    }
    Ok(Found::Nothing)
}
