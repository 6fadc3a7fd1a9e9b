//! Volumes, and seeding one with its initial content.

use super::*;
use crate::env::node::VolumeNode;

pub(super) async fn make(v: &VolumeNode, m: Making<'_>) -> Result<Fixture> {
    let mut spec = v.spec.clone();
    let sig = signature("volume", &(&spec, &v.initial_content));
    let given = spec.name.clone();
    let Placement { name, share, reusing, ledger } = m.place("volume", Some(&given), &sig, &mut spec.labels)?;
    spec.name = name;
    // Refuse bad paths before anything exists.
    let seed = if v.initial_content.is_empty() { None } else { Some(archive::build_tar(&v.initial_content)?) };
    let runtime = m.t.runtime.clone();
    m.scoped(&sig.clone(), async move {
        if reusing {
            if let crate::env::reuse::Found::Current(name) = crate::env::reuse::volume(&runtime, &spec, &sig).await? {
                return Ok(Fixture::Volume(Volume::new(name)));
            }
        }
        // Another process of the run may have made (and seeded) it already.
        let existed = share && runtime.inspect_volume(&spec.name).await.is_ok();
        if !existed {
            runtime.create_volume(&spec).await?;
        }
        ledger.push(&runtime, Owned::Volume(spec.name.clone()));
        if let (Some(tar), false) = (seed, existed) {
            seed_volume(&runtime, &ledger, &spec.name, tar).await?;
        }
        tracing::info!(volume = %spec.name, "created volume");
        Ok(Fixture::Volume(Volume::new(spec.name)))
    })
    .await
}

/// The image that seeds volumes: no layers, never started, so it needs nothing pulled.
pub(super) const SEED_IMAGE: &str = "fixtures-helper/seed:1";

pub(super) async fn seed_volume(
    runtime: &Arc<dyn Runtime>,
    ledger: &Arc<Ledger>,
    volume: &str,
    tar: bytes::Bytes,
) -> Result<()> {
    if runtime.inspect_image(SEED_IMAGE).await.is_err() {
        let mut spec =
            BuildSpec::new(BuildContext::Dockerfile("FROM scratch\nLABEL fixtures.helper=seed\n".to_owned()));
        spec.tags = vec![SEED_IMAGE.to_owned()];
        runtime.build_image(&spec, &|_| {}).await?;
    }
    let mut helper = ContainerSpec {
        name: Some(unique_name("seed")),
        image: SEED_IMAGE.to_owned(),
        command: Some(vec!["/seed".to_owned()]),
        mounts: vec![Mount::Volume { name: volume.to_owned(), target: "/seed".to_owned(), read_only: false }],
        network_mode: Some("none".to_owned()),
        ..ContainerSpec::default()
    };
    helper.labels = our_labels("seed", Scope::Function, "seed");
    let id = runtime.create_container(&helper).await?;
    ledger.push(runtime, Owned::Container(id.clone()));
    let copied = runtime.put_archive(&id, "/seed", tar).await;
    let removed = runtime.remove_container(&id, true).await;
    copied?;
    removed
}
