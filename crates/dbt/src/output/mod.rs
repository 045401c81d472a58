//! What leaves the engine in dbt's own shapes: the manifest JSON (schema v11) for a catalog,
//! whole or streamed. Reads the catalog only; nothing below depends on it.

pub mod manifest;
