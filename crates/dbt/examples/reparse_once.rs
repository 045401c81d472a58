//! Callgrind driver and quick timer for the re-parse path: parses DIR once, then REPS times
//! (default 1) edits FILE (relative to DIR; a comment appended, or with MACRO given
//! ` + i * 0` added to the end of that macro's body, as the bench's macro edit does),
//! re-parses with `parse_changed` and restores FILE (re-parsed untimed). Prints the median wall and CPU (user+sys of every
//! thread) time of the timed re-parses. Run with
//! `valgrind --tool=callgrind --toggle-collect='*parse_changed*' reparse_once DIR FILE` to
//! count the instructions of one told re-parse, independent of machine load (rayon work on
//! other threads is only counted with `--collect-atstart=yes`, so the driver keeps the
//! re-parse path sequential where it can).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a measuring tool: fail loudly

use backflow_dbt::{Engine, ParseOptions, ParsePath};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn cpu_time() -> Duration {
    // SAFETY: plain syscall filling a POD struct.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().expect("DIR"));
    let file = PathBuf::from(args.next().expect("FILE"));
    let reps: usize = args.next().map_or(1, |r| r.parse().expect("REPS"));
    let macro_name = args.next();
    let mut engine = Engine::new(ParseOptions::default());
    engine.parse(&dir).expect("first parse");
    let path = dir.join(&file);
    let original = std::fs::read_to_string(&path).unwrap();
    let (mut walls, mut cpus) = (Vec::new(), Vec::new());
    let mut nodes = 0;
    for i in 0..reps {
        let edited = match &macro_name {
            None => format!("{original}\n-- edited {i}\n"),
            Some(name) => {
                let start = original.find(&format!("{{% macro {name}(")).expect("macro");
                let end = start
                    + original[start..]
                        .find("{%- endmacro %}")
                        .or_else(|| original[start..].find("{% endmacro %}"))
                        .expect("endmacro");
                format!("{} + {i} * 0{}", &original[..end], &original[end..])
            }
        };
        std::fs::write(&path, edited).unwrap();
        let (t, c) = (Instant::now(), cpu_time());
        nodes = engine
            .parse_changed(&dir, &[&file])
            .map(|c| c.nodes.len())
            .unwrap();
        walls.push(t.elapsed());
        cpus.push(cpu_time() - c);
        assert_eq!(engine.last_path(), Some(ParsePath::InPlace));
        std::fs::write(&path, &original).unwrap();
        engine.parse_changed(&dir, &[&file]).unwrap();
    }
    walls.sort();
    cpus.sort();
    println!(
        "{nodes} nodes, in place; median of {reps}: wall {:.2} ms, cpu {:.2} ms",
        walls[reps / 2].as_secs_f64() * 1e3,
        cpus[reps / 2].as_secs_f64() * 1e3
    );
}
