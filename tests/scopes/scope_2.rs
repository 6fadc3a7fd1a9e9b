//! The reference's `test_scope_2.py`: the session container is the same one, the
//! module container is this module's own and holds none of `scope_1`'s keys.

use fixtures::{Container, Result};

use super::{exchange, saw_module, saw_session};

#[fixtures::test(env = super::env())]
async fn test_session_3(memcache_session: &Container) -> Result<()> {
    saw_session(memcache_session);
    exchange(memcache_session, b"set s3 0 600 4\r\ndata\r\nget s3\r\n", b"STORED\r\nVALUE s3 0 4\r\ndata\r\nEND\r\n")
        .await
}

#[fixtures::test(env = super::env())]
async fn test_module_3(memcache_module: &Container) -> Result<()> {
    saw_module(module_path!(), memcache_module);
    // Keys stored by scope_1's module tests are not here: this is another container.
    exchange(memcache_module, b"get m1 m2\r\n", b"END\r\n").await
}
