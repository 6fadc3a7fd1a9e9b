//! Run only by `tests/selection.rs`: chooses a runtime the way an `Env` does, among the
//! backends named on the command line (`docker`, `podman`), under whatever configuration
//! its environment and `CARGO_MANIFEST_DIR` give, and prints what it got or the error report.

fn main() {
    let mut backends = Vec::new();
    for name in std::env::args().skip(1) {
        match name.as_str() {
            "docker" => backends.push(fixtures_docker::backend()),
            "podman" => backends.push(fixtures_podman::backend()),
            other => panic!("unknown backend `{other}`"),
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        match fixtures::backend::select(&backends).await {
            Ok(rt) => {
                let engine = rt.version().await.map(|v| v.engine).unwrap_or_else(|e| format!("{e}"));
                println!("selected {} (engine {engine})", rt.name());
            }
            Err(e) => println!("{e:?}"),
        }
    });
}
