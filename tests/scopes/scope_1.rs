//! The reference's `test_scope_1.py`: each test stores a key and reads it back.

use fixtures::{Container, Result};

use super::{exchange, saw_module, saw_session};

#[fixtures::test(env = super::env())]
async fn test_session_1(memcache_session: &Container) -> Result<()> {
    saw_session(memcache_session);
    exchange(memcache_session, b"set s1 0 600 4\r\ndata\r\nget s1\r\n", b"STORED\r\nVALUE s1 0 4\r\ndata\r\nEND\r\n")
        .await
}

#[fixtures::test(env = super::env())]
async fn test_session_2(memcache_session: &Container) -> Result<()> {
    saw_session(memcache_session);
    exchange(memcache_session, b"set s2 0 600 4\r\ndata\r\nget s2\r\n", b"STORED\r\nVALUE s2 0 4\r\ndata\r\nEND\r\n")
        .await
}

#[fixtures::test(env = super::env())]
async fn test_module_1(memcache_module: &Container) -> Result<()> {
    saw_module(module_path!(), memcache_module);
    exchange(memcache_module, b"set m1 0 600 4\r\ndata\r\nget m1\r\n", b"STORED\r\nVALUE m1 0 4\r\ndata\r\nEND\r\n")
        .await
}

#[fixtures::test(env = super::env())]
async fn test_module_2(memcache_module: &Container) -> Result<()> {
    saw_module(module_path!(), memcache_module);
    exchange(memcache_module, b"set m2 0 600 4\r\ndata\r\nget m2\r\n", b"STORED\r\nVALUE m2 0 4\r\ndata\r\nEND\r\n")
        .await
}
