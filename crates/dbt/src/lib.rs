//! dbt project engine (placeholder, being written).
