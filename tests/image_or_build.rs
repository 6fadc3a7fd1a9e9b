//! `image_or_build`: the image named by an environment variable (a CI artifact) when it
//! is set, else a build. One test per binary: it sets a process environment variable.

use fixtures::{Image, Result, image, image_or_build};
use test_support::SERVICES_IMAGE;

#[tokio::test]
async fn uses_the_variable_when_set_and_builds_otherwise() -> Result<()> {
    // SAFETY: the only test of this binary; nothing else reads the environment meanwhile.
    unsafe { std::env::set_var("FIXTURES_IT_IMAGE_ID", SERVICES_IMAGE) };
    let env = test_support::base_env()
        .with("services", image(SERVICES_IMAGE))
        .with("artifact", image_or_build("FIXTURES_IT_IMAGE_ID").path("examples/resolver-service/dns"))
        .with("built", image_or_build("FIXTURES_IT_UNSET_IMAGE_ID").path("examples/resolver-service/dns"));
    let t = env.start("image_or_build").await?;
    let services: Image = t.image("services").await?;
    let artifact = t.image("artifact").await?;
    assert_eq!(artifact.id(), services.id(), "IMAGE_ID names the image to use");
    assert_eq!(artifact.attrs()["Os"], "linux");
    let built = t.image("built").await?;
    assert_ne!(built.id(), services.id(), "without the variable the image is built");
    assert_eq!(built.attrs()["Config"]["Cmd"], serde_json::json!(["dns"]));
    t.finish().await.expect("torn down");
    Ok(())
}
