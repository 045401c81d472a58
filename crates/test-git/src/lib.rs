//! Real Git servers for tests, started on loopback by the tests themselves: Debian's
//! `sshd` for SSH, `git http-backend` behind a small axum server for smart HTTP, and
//! bare repositories filled with the git CLI. Nothing is mocked, so tests exercise
//! the same libgit2/libssh2 paths production does. Test-only: helpers panic with a
//! clear message instead of returning errors.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test-only crate: helpers panic with a clear message

pub mod http;
pub mod repo;
pub mod ssh;
