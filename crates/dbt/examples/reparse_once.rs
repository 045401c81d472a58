//! Callgrind driver for the re-parse path: parses DIR once, appends a comment to FILE
//! (relative to DIR), re-parses with `parse_changed`, restores FILE. Run with
//! `valgrind --tool=callgrind --toggle-collect='*parse_changed*' reparse_once DIR FILE`
//! to count the instructions of one told re-parse, independent of machine load.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a measuring tool: fail loudly

use backflow_dbt::{Engine, ParseOptions, ParsePath};
use std::path::PathBuf;

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().expect("DIR"));
    let file = PathBuf::from(args.next().expect("FILE"));
    let mut engine = Engine::new(ParseOptions::default());
    engine.parse(&dir).expect("first parse");
    let path = dir.join(&file);
    let original = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{original}\n-- edited\n")).unwrap();
    let nodes = engine.parse_changed(&dir, &[&file]).map(|c| c.nodes.len());
    std::fs::write(&path, &original).unwrap();
    println!("{} nodes, {:?}", nodes.unwrap(), engine.last_path());
    assert_eq!(engine.last_path(), Some(ParsePath::InPlace));
}
