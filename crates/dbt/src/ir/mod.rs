//! Shared types every stage reads or produces: the catalog the engine outputs (nodes,
//! sources, macros, columns), parse options and errors. Nothing here depends on a stage, so
//! the stages above (load, parse, compile, data_tests, output, incremental) can all name them.

pub mod catalog;
pub mod error;
pub mod fingerprint;
pub mod options;
pub mod par;
