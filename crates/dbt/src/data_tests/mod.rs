//! dbt's generic data tests: the YAML-declared tests become test nodes named and hashed the
//! way dbt names them (`generate`, one entry's arguments and naming in `spec`), then each test macro is rendered into compiled SQL
//! (`compile`). Runs after models compile, since tests name the relations they test.

pub mod compile;
pub mod generate;
mod spec;
