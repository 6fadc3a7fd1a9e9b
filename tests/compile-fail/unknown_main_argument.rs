//! `main!` refuses an argument it does not know (built by `tests/compile_errors.rs`).

fixtures::main!(threads = 4);
