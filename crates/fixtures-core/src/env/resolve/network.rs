//! Networks: named and labelled by the placement step, with a private IPv6 subnet when asked
//! for IPv6 without one.

use super::*;
use crate::env::node::NetworkNode;

pub(super) async fn make(n: &NetworkNode, m: Making<'_>) -> Result<Fixture> {
    let mut spec = n.spec.clone();
    let sig = signature("network", &spec);
    let given = spec.name.clone();
    let Placement { name, share, reusing, ledger } = m.place("network", Some(&given), &sig, &mut spec.labels)?;
    spec.name = name;
    if spec.enable_ipv6 && !spec.subnets.iter().any(|s| s.contains(':')) {
        spec.subnets.push(naming::ula_subnet(&spec.name));
    }
    let runtime = m.t.runtime.clone();
    m.scoped(&sig.clone(), async move {
        if reusing {
            if let crate::env::reuse::Found::Current(id) = crate::env::reuse::network(&runtime, &spec, &sig).await? {
                return Ok(Fixture::Network(Network::new(spec.name, id)));
            }
        }
        let id = match runtime.create_network(&spec).await {
            Ok(id) => id,
            // Another process of the run made it first.
            Err(e) if share && e.kind() == ErrorKind::Conflict => runtime.inspect_network(&spec.name).await?.id,
            Err(e) => return Err(e),
        };
        ledger.push(&runtime, Owned::Network(id.clone()));
        tracing::info!(network = %spec.name, "created network");
        Ok(Fixture::Network(Network::new(spec.name, id)))
    })
    .await
}
