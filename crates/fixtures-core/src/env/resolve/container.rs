//! Containers: created, started (again when a published port was taken meanwhile), ready.

use super::*;
use crate::env::node::ContainerNode;

pub(super) async fn make(c: &ContainerNode, m: Making<'_>) -> Result<Fixture> {
    let mut spec = c.spec.clone();
    node::container_strings(&mut spec, &mut |s| {
        *s = render(s, &m.resolved)?;
        Ok(())
    })?;
    for (_, configure) in &c.configure {
        configure(&mut spec, &m.resolved)?;
    }
    let sig = signature("container", &(&spec, c.wrapper.as_ref().map(|w| w.0)));
    let given = spec.name.clone();
    let Placement { name, share, reusing, ledger } = m.place("container", given.as_deref(), &sig, &mut spec.labels)?;
    spec.name = Some(name);
    let readiness = Readiness {
        timeout: c.timeout.unwrap_or_else(crate::readiness::default_timeout),
        ports: c.ports_ready,
        expose: if c.exposed_ready { spec.expose.clone() } else { Vec::new() },
        wait_for: c.wait_for.clone(),
        min_uptime: c.min_uptime,
        completes: c.completes,
        exit_ok: c.exit_ok,
    };
    let runtime = m.t.runtime.clone();
    publish_where_reachable(&mut spec, runtime.as_ref());
    let wrapper = c.wrapper.clone();
    let node_name = m.name.to_owned();
    m.scoped(&sig.clone(), async move {
        let reused = match reusing {
            true => crate::env::reuse::container(&runtime, spec.name.as_deref().unwrap_or_default(), &sig).await?,
            false => crate::env::reuse::Found::Nothing,
        };
        let container = match reused {
            crate::env::reuse::Found::Current(id) => {
                let primary = spec.networks.first().map(|n| n.network.clone());
                let c = Container::attach(runtime.clone(), &node_name, &id, primary, readiness).await?;
                c.wait_ready().await?;
                c
            }
            crate::env::reuse::Found::Nothing => {
                start_container(&runtime, &ledger, &node_name, &spec, readiness, share).await?
            }
        };
        let wrapped = wrapper.map(|(_, wrap)| wrap(container.clone()));
        Ok(Fixture::Container(container, wrapped))
    })
    .await
}

/// On an engine on another host, a port published on its loopback could not be reached from
/// here: it is published on all of that host's addresses instead (`.port()` publishes on the
/// loopback, which is right only for an engine on this machine).
fn publish_where_reachable(spec: &mut ContainerSpec, runtime: &dyn Runtime) {
    if runtime.remote().is_none() {
        return;
    }
    for binding in &mut spec.ports {
        let loopback = binding.host_ip.as_deref().and_then(|ip| ip.parse::<std::net::IpAddr>().ok());
        if loopback.is_some_and(|ip| ip.is_loopback()) {
            binding.host_ip = None;
        }
    }
}

pub(super) async fn start_container(
    runtime: &Arc<dyn Runtime>,
    ledger: &Arc<Ledger>,
    node: &str,
    spec: &ContainerSpec,
    readiness: Readiness,
    share: bool,
) -> Result<Container> {
    let mut port_clashes = 0;
    let id = loop {
        match runtime.create_container(spec).await {
            Ok(id) => {
                ledger.push(runtime, Owned::Container(id.clone()));
                tracing::info!(container_id = %crate::short_id(&id), image = %crate::short_id(&spec.image), "created container");
                match runtime.start_container(&id).await {
                    Ok(()) => break id,
                    // Podman picks a free host port when it creates the container and binds it
                    // only at the start; anything on the machine may take it in between (an
                    // outgoing connection's local port comes from the same range). With ports
                    // the engine chose, a new container gets new ones.
                    Err(e) if port_clashes < 3 && ephemeral_port_taken(spec, &e) => {
                        port_clashes += 1;
                        tracing::info!(container_id = %crate::short_id(&id), "its host port was taken before it started; creating it again");
                        ledger.remove_now(runtime, &Owned::Container(id)).await?;
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            // Another process of the run made it first: use theirs once it is ready.
            Err(e) if share && e.kind() == ErrorKind::Conflict => {
                let name = spec.name.clone().unwrap_or_default();
                let theirs = match runtime.inspect_container(&name).await {
                    Ok(theirs) => theirs,
                    // Removed meanwhile (its run ended as ours began): make it again.
                    Err(e) if e.kind() == ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                };
                if theirs.labels.get(labels::SIGNATURE) != spec.labels.get(labels::SIGNATURE) {
                    return Err(Error::new(
                        ErrorKind::Conflict,
                        format!("a container named `{name}` exists with another spec"),
                    )
                    .with_container(theirs.id));
                }
                tracing::info!(container_id = %crate::short_id(&theirs.id), "sharing the run's session container");
                break theirs.id;
            }
            Err(e) => return Err(e.with_image(spec.image.clone())),
        }
    };
    let primary = spec.networks.first().map(|n| n.network.clone());
    let container = Container::attach(runtime.clone(), node, &id, primary, readiness).await?;
    container.wait_ready().await.map_err(|e| e.with_image(spec.image.clone()))?;
    tracing::info!(container_id = %crate::short_id(&id), "container ready");
    Ok(container)
}

/// Whether `e`, from starting a container of `spec`, says a host port the engine chose was
/// taken meanwhile.
pub(super) fn ephemeral_port_taken(spec: &ContainerSpec, e: &Error) -> bool {
    spec.ports.iter().any(|p| p.host_port.is_none()) && e.message().contains("address already in use")
}
