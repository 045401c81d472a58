//! Real Git servers for the transport tests, started on loopback by the tests
//! themselves: Debian's `sshd` for SSH, `git http-backend` behind a small axum
//! server for smart HTTP, and bare repositories filled with the git CLI. Nothing is
//! mocked, so the tests exercise the same libgit2/libssh2 paths production does.

#![allow(dead_code)]

pub mod http;
pub mod repo;
pub mod ssh;
