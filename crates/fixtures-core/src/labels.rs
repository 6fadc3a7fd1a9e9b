//! The labels this library puts on everything it creates.
//!
//! Every key is under the prefix `fixtures.`. An object without
//! [`MANAGED`] was not made by this library and is never touched by it.

/// Present (value `true`) on every object this library creates.
pub const MANAGED: &str = "fixtures.managed";
/// The run the object belongs to.
pub const RUN: &str = "fixtures.run";
/// The fixture (node) name.
pub const NODE: &str = "fixtures.node";
/// Hash of the resolved spec, to tell whether a reused object is stale.
pub const SIGNATURE: &str = "fixtures.signature";
/// Who removes the object: `<host>:<pid>:<start time>` of the process that made it, or
/// `run:<run id>` for session objects shared by a run's processes.
pub const OWNER: &str = "fixtures.owner";
/// Present (value `true`) on objects kept across runs in reuse mode.
pub const REUSE: &str = "fixtures.reuse";
/// The scope the object was created for.
pub const SCOPE: &str = "fixtures.scope";
/// When the object was made: seconds since the Unix epoch (for `cargo fixtures clean --older-than`).
pub const CREATED: &str = "fixtures.created";
