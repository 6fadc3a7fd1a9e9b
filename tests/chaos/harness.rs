//! The chaos suite (`suite.rs`) under the library's harness.

#[path = "suite.rs"]
mod suite;

fixtures::main!();
