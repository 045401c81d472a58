//! Test support shared by the warehouse integration tests (one module per warehouse).
#![allow(dead_code)]

pub mod pg;
