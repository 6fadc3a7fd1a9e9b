//! `main!` in a file that libtest's harness compiles (built as a test by
//! `tests/compile_errors.rs`): the target needs `harness = false`.

fixtures::main!();
