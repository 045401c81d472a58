//! Diff bench (issue 10, acceptance 5): the Backflow-side diff at 10,000,000 keys, against
//! its targets of peak memory ≤ 20 bytes per key and diff CPU ≤ 1 s.
//!
//! Two runs over a generated model (id, email, score, plan, updated_at): a first run
//! (empty state, every row added) and a run with ~1% of rows updated, 0.5% deleted and 0.5%
//! added against the state the first run committed (mirror mode). For each it prints CPU
//! time (this thread's on-CPU time from /proc) of hashing and of the diff proper (index,
//! classification, settling duplicates, commit), the replay selection, peak heap bytes per
//! key (a counting global allocator; the whole process, old state included) and peak RSS
//! (VmHWM, reset per run through /proc/self/clear_refs). Batch generation is not counted.
//! `BENCH_DIFF_KEYS` overrides the key count.

use arrow_array::builder::{
    Float64Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use backflow_retl_scheduler::diff::codec::{Decoder, Encoder};
use backflow_retl_scheduler::diff::{BatchHashes, DeliveryMode, Diff, RowHasher, RowSpec, State};
use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn note_grow(bytes: usize) {
    let now = CURRENT.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call forwards to the system allocator unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_grow(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_grow(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            note_grow(new_size - layout.size());
        } else {
            CURRENT.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const BATCH: i64 = 8_192;

/// This thread's on-CPU time in nanoseconds.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|line| line.starts_with(field))
                .and_then(|line| line.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

fn reset_peaks() {
    // Resets VmHWM (Linux ≥ 4.0); best effort.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    PEAK.store(CURRENT.load(Ordering::Relaxed), Ordering::Relaxed);
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("email", DataType::Utf8, true),
        Field::new("score", DataType::Float64, true),
        Field::new("plan", DataType::Utf8, true),
        Field::new(
            "updated_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
    ]))
}

fn spec() -> RowSpec {
    RowSpec {
        key_columns: vec!["id".into()],
        mapped_columns: ["email", "score", "plan", "updated_at"]
            .map(String::from)
            .to_vec(),
    }
}

/// The model's rows `ids`; `changed` rows get another email and timestamp.
fn batch(
    schema: &SchemaRef,
    ids: impl Iterator<Item = i64>,
    changed: impl Fn(i64) -> bool,
) -> anyhow::Result<RecordBatch> {
    let mut id = Int64Builder::with_capacity(BATCH as usize);
    let mut email = StringBuilder::with_capacity(BATCH as usize, BATCH as usize * 24);
    let mut score = Float64Builder::with_capacity(BATCH as usize);
    let mut plan = StringBuilder::with_capacity(BATCH as usize, BATCH as usize * 5);
    let mut updated = TimestampMicrosecondBuilder::with_capacity(BATCH as usize);
    let mut text = String::new();
    for i in ids {
        let change = changed(i);
        id.append_value(i);
        text.clear();
        let _ = write!(text, "user{i}@example.com");
        if change {
            text.push('x');
        }
        email.append_value(&text);
        score.append_value(i as f64 * 0.25);
        plan.append_value(["free", "team", "pro", "enterprise"][(i % 4) as usize]);
        updated.append_value(1_700_000_000_000_000 + i * 1_000 + i64::from(change));
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(email.finish()),
        Arc::new(score.finish()),
        Arc::new(plan.finish()),
        Arc::new(updated.finish().with_timezone("UTC")),
    ];
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

#[derive(Default)]
struct Times {
    hash_ns: u64,
    diff_ns: u64,
    select_ns: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scenario {
    /// Ids `0..keys`, nothing changed.
    First,
    /// 1% updated, 0.5% deleted, 0.5% added (ids past `keys`).
    Changed,
}

struct Extract {
    keys: i64,
    scenario: Scenario,
}

impl Extract {
    fn batches(&self) -> i64 {
        match self.scenario {
            Scenario::First => (self.keys + BATCH - 1) / BATCH,
            Scenario::Changed => (self.keys + self.keys / 200 + BATCH - 1) / BATCH,
        }
    }

    fn keep(&self, i: i64) -> bool {
        match self.scenario {
            Scenario::First => i < self.keys,
            Scenario::Changed => {
                (i < self.keys && i % 200 != 3)
                    || (i >= self.keys && i < self.keys + self.keys / 200)
            }
        }
    }

    fn batch(&self, schema: &SchemaRef, b: i64) -> anyhow::Result<RecordBatch> {
        let changed = |i: i64| self.scenario == Scenario::Changed && i % 100 == 7;
        batch(
            schema,
            (b * BATCH..(b + 1) * BATCH).filter(|&i| self.keep(i)),
            changed,
        )
    }
}

fn run(name: &str, keys: u64, previous: State, extract: &Extract) -> anyhow::Result<State> {
    let schema = schema();
    reset_peaks();
    let mut times = Times::default();
    let mut hasher = RowHasher::new(spec())?;
    let mut hashes = BatchHashes::default();
    let started = cpu_ns();
    let mut diff = Diff::new(previous, spec(), DeliveryMode::Mirror)?;
    times.diff_ns += cpu_ns() - started;
    for b in 0..extract.batches() {
        let rows = extract.batch(&schema, b)?;
        let t0 = cpu_ns();
        hasher.hash_batch(&rows, &mut hashes)?;
        let t1 = cpu_ns();
        diff.push_hashes(&hashes)?;
        let t2 = cpu_ns();
        times.hash_ns += t1 - t0;
        times.diff_ns += t2 - t1;
    }
    let t0 = cpu_ns();
    let mut outcome = diff.finish();
    times.diff_ns += cpu_ns() - t0;
    let heap_after_diff = outcome.heap_bytes();
    let mut delivered = 0usize;
    for b in 0..extract.batches() {
        if !outcome.needs_replay(b as usize) {
            continue;
        }
        let rows = extract.batch(&schema, b)?;
        let t0 = cpu_ns();
        delivered += outcome.select(b as usize, &rows)?.deliver.len();
        times.select_ns += cpu_ns() - t0;
    }
    let deletes = outcome.deletes().count();
    let counts = outcome.counts;
    let t0 = cpu_ns();
    let state = outcome.commit(Vec::new());
    times.diff_ns += cpu_ns() - t0;
    let peak = PEAK.load(Ordering::Relaxed) as f64;
    let rss = status_kib("VmHWM:") as f64 * 1024.0;
    let per_key = |bytes: f64| bytes / keys as f64;
    println!("diff bench, {name}: {keys} keys");
    println!(
        "  rows extracted {}, added {}, updated {}, unchanged {}, deleted {}; delivered {delivered} + {deletes} deletes; new state {} entries",
        counts.extracted, counts.added, counts.updated, counts.unchanged, counts.deleted, state.len()
    );
    println!(
        "  diff cpu   {:>7.1} ms  (target ≤ 1000 ms: {})   [index, classify, settle duplicates, commit]",
        times.diff_ns as f64 / 1e6,
        verdict(times.diff_ns as f64 <= 1e9)
    );
    println!(
        "  hash cpu   {:>7.1} ms  (canonical encoding + XXH3 of key and mapped columns)",
        times.hash_ns as f64 / 1e6
    );
    println!(
        "  select cpu {:>7.1} ms  (replay of batches with changes)",
        times.select_ns as f64 / 1e6
    );
    println!(
        "  peak heap  {:>7.2} B/key (target ≤ 20: {})   diff structures {:.2} B/key",
        per_key(peak),
        verdict(per_key(peak) <= 20.0),
        per_key(heap_after_diff as f64)
    );
    println!(
        "  peak rss   {:>7.2} B/key ({:.0} MiB, whole process)",
        per_key(rss),
        rss / 1048576.0
    );
    Ok(state)
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT MET"
    }
}

fn codec(state: &State) -> anyhow::Result<()> {
    let t0 = cpu_ns();
    let mut piece = Vec::new();
    let mut decoder = Decoder::new();
    let mut encoder = Encoder::new(state);
    let mut bytes = 0usize;
    while encoder.next_piece(&mut piece) {
        bytes += piece.len();
        decoder.push(&piece)?;
        piece.clear();
    }
    let decoded = decoder.finish()?;
    anyhow::ensure!(decoded == *state, "codec round trip differs");
    println!(
        "  state codec: {:.1} MiB encoded and decoded in {:.1} ms cpu",
        bytes as f64 / 1048576.0,
        (cpu_ns() - t0) as f64 / 1e6
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let keys: i64 = std::env::var("BENCH_DIFF_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let first = Extract {
        keys,
        scenario: Scenario::First,
    };
    let state = run(
        "first run (empty state)",
        keys as u64,
        State::default(),
        &first,
    )?;
    let second = Extract {
        keys,
        scenario: Scenario::Changed,
    };
    let state = run(
        "1% updated, 0.5% added, 0.5% deleted",
        keys as u64,
        state,
        &second,
    )?;
    codec(&state)?;
    Ok(())
}
