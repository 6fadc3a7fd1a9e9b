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
/// The owning process, `pid@boot-id`, to find runs whose owner is gone.
pub const OWNER: &str = "fixtures.owner";
/// The scope the object was created for.
pub const SCOPE: &str = "fixtures.scope";
