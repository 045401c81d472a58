//! The domain of Reverse ETL models, free of I/O: which query a model runs, how it
//! follows its dbt model across commits, which columns make a good primary key, how a
//! key is checked, and how preview cells are rendered. The gRPC edge and the store call
//! these; each piece is unit-tested on its own.

pub mod cells;
pub mod following;
pub mod key_check;
pub mod query;
pub mod suggestions;
