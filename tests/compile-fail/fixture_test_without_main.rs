//! A fixture test in a file with `harness = false` whose `main` is not the library's: its
//! tests would never run, so it does not compile (built by `tests/compile_errors.rs`).

use fixtures::{Env, Result};

#[fixtures::test(env = Env::new())]
async fn never_run_by_anyone() -> Result<()> {
    Ok(())
}

fn main() {}
