//! Images: built, pulled or already there, tagged for the run.

use super::*;
use crate::env::node::ImageNode;

pub(super) async fn make(i: &ImageNode, m: Making<'_>) -> Result<Fixture> {
    let source = render_image(&i.source, &m.resolved)?;
    let sig = signature("image", &source);
    m.scoped(&sig.clone(), make_image(m.t.runtime.clone(), m.name.to_owned(), source, sig)).await
}

pub(super) fn render_image(source: &ImageSource, resolved: &Resolved) -> Result<ImageSource> {
    let render_build = |spec: &BuildSpec| -> Result<BuildSpec> {
        let mut spec = spec.clone();
        node::build_strings(&mut spec, &mut |s| {
            *s = render(s, resolved)?;
            Ok(())
        })?;
        if let BuildContext::Dir(path) = &mut spec.context {
            if path.is_relative() {
                // Under cargo, the crate's folder; a binary run by itself, the current folder. Made
                // absolute either way: a bind mount's source means nothing to the engine otherwise.
                let base = std::env::var_os("CARGO_MANIFEST_DIR")
                    .map(PathBuf::from)
                    .or_else(|| std::env::current_dir().ok())
                    .unwrap_or_default();
                *path = base.join(&*path);
            }
        }
        Ok(spec)
    };
    Ok(match source {
        ImageSource::Build { spec, stages } => ImageSource::Build { spec: render_build(spec)?, stages: stages.clone() },
        ImageSource::FromEnvOrBuild { key, spec, stages } => {
            ImageSource::FromEnvOrBuild { key: key.clone(), spec: render_build(spec)?, stages: stages.clone() }
        }
        ImageSource::Fetch { spec, if_missing } => {
            let mut spec = spec.clone();
            spec.repository = render(&spec.repository, resolved)?;
            ImageSource::Fetch { spec, if_missing: *if_missing }
        }
        ImageSource::Existing(r) => ImageSource::Existing(render(r, resolved)?),
    })
}

pub(super) async fn build(
    runtime: &Arc<dyn Runtime>,
    name: &str,
    spec: &BuildSpec,
    stages: &[String],
    sig: &str,
) -> Result<String> {
    if let BuildContext::Dir(dir) = &spec.context {
        if !dir.is_dir() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("build context `{}` is not a folder", dir.display()),
            )
            .with_hint("paths are relative to the crate's folder (CARGO_MANIFEST_DIR)"));
        }
    }
    let progress =
        |p: crate::runtime::Progress| tracing::debug!(target: "fixtures::build", fixture = %name, "{}", p.message);
    for stage in stages {
        let mut stage_spec = spec.clone();
        stage_spec.target = Some(stage.clone());
        stage_spec.tags = vec![format!("fixtures-stage/{}:{stage}-{sig}", name.to_ascii_lowercase())];
        runtime.build_image(&stage_spec, &progress).await?;
    }
    let mut spec = spec.clone();
    spec.labels.insert(labels::NODE.to_owned(), name.to_owned());
    spec.labels.insert(labels::SIGNATURE.to_owned(), sig.to_owned());
    tracing::info!(fixture = %name, "building image");
    runtime.build_image(&spec, &progress).await
}

pub(super) async fn make_image(
    runtime: Arc<dyn Runtime>,
    name: String,
    source: ImageSource,
    sig: String,
) -> Result<Fixture> {
    let id = match &source {
        ImageSource::Build { spec, stages } => build(&runtime, &name, spec, stages, &sig).await?,
        ImageSource::FromEnvOrBuild { key, spec, stages } => match std::env::var(key).ok().filter(|v| !v.is_empty()) {
            Some(reference) => {
                tracing::info!(fixture = %name, image = %reference, "using the image named by {key}");
                runtime
                    .inspect_image(&reference)
                    .await
                    .map_err(|e| e.with_hint(format!("{key}={reference} names an image the engine does not have")))?
                    .id
            }
            None => build(&runtime, &name, spec, stages, &sig).await?,
        },
        ImageSource::Fetch { spec: pull, if_missing } => {
            if *if_missing {
                match runtime.inspect_image(&pull.reference()).await {
                    Ok(found) => return Ok(Fixture::Image(Image::new(found))),
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            tracing::info!(fixture = %name, image = %pull.reference(), "pulling image");
            let progress = |p: crate::runtime::Progress| tracing::info!(target: "fixtures::pull", fixture = %name, "{}", p.message);
            runtime.pull_image(pull, &progress).await?
        }
        ImageSource::Existing(reference) => {
            runtime
                .inspect_image(reference)
                .await
                .map_err(|e| {
                    e.with_hint(
                    "`image(...)` uses an image already on the engine; build or fetch it instead, or create it first",
                )
                })?
                .id
        }
    };
    Ok(Fixture::Image(Image::new(runtime.inspect_image(&id).await?)))
}
