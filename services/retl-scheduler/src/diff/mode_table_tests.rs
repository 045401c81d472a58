//! The mode table of issue 10 (first run, change, delete, re-add, key change, null value,
//! duplicate key, NULL key, failed deliveries) run through the pure diff → select →
//! commit cycle for every mode, at batch sizes 1, 2 and 100.
//!
//! Notation: `+k` added, `~k` updated, `-k` deleted, `!k` a rejected row with key k (`!null`
//! for a NULL key). States list `key:value` for delivered entries and `key:value?` for entries
//! only observed (update mode).

use super::*;
use arrow_array::{ArrayRef, Int64Array, StringArray};
use arrow_schema::{DataType, Field, Schema};
use std::collections::HashMap;
use std::sync::Arc;

type Row = (Option<i64>, Option<&'static str>);

fn spec() -> RowSpec {
    RowSpec {
        key_columns: vec!["id".into()],
        mapped_columns: vec!["id".into(), "value".into()],
    }
}

fn batch(rows: &[Row]) -> arrow_array::RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("value", DataType::Utf8, true),
    ]));
    let ids: ArrayRef = Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.0)));
    let values: ArrayRef = Arc::new(StringArray::from_iter(rows.iter().map(|r| r.1)));
    arrow_array::RecordBatch::try_new(schema, vec![ids, values]).unwrap_or_else(|e| panic!("{e}"))
}

/// Hash → id and hash → value, to print results in the table's notation.
struct Names {
    keys: HashMap<u64, i64>,
    rows: HashMap<u64, String>,
}

impl Names {
    fn new() -> Self {
        let mut hasher = RowHasher::new(spec()).unwrap_or_else(|e| panic!("{e}"));
        let mut names = Names {
            keys: HashMap::new(),
            rows: HashMap::new(),
        };
        let values: [Option<&'static str>; 7] = [
            None,
            Some("a"),
            Some("b"),
            Some("c"),
            Some("d"),
            Some("e"),
            Some("f"),
        ];
        for id in 0..10 {
            let rows: Vec<Row> = values.iter().map(|v| (Some(id), *v)).collect();
            let mut out = BatchHashes::default();
            hasher
                .hash_batch(&batch(&rows), &mut out)
                .unwrap_or_else(|e| panic!("{e}"));
            names.keys.insert(out.keys[0], id);
            for (value, row) in values.iter().zip(&out.rows) {
                names
                    .rows
                    .insert(*row, format!("{id}:{}", value.unwrap_or("null")));
            }
        }
        names
    }

    fn key(&self, hash: u64) -> i64 {
        self.keys[&hash]
    }

    fn state(&self, state: &State) -> String {
        let mut out: Vec<String> = state
            .entries()
            .iter()
            .map(|e| {
                let name = self.rows[&e.row_hash()].clone();
                if e.is_delivered() {
                    name
                } else {
                    format!("{name}?")
                }
            })
            .collect();
        out.sort();
        out.join(" ")
    }
}

/// One run: diff, replay every batch that needs it, fail the given keys, commit.
fn run(
    names: &Names,
    state: State,
    mode: DeliveryMode,
    rows: &[Row],
    batch_size: usize,
    failed_ids: &[i64],
) -> (String, Counts, State) {
    let batches: Vec<_> = rows.chunks(batch_size).map(batch).collect();
    let mut diff = Diff::new(state, spec(), mode).unwrap_or_else(|e| panic!("{e}"));
    for b in &batches {
        diff.push(b).unwrap_or_else(|e| panic!("{e}"));
    }
    let mut outcome = diff.finish();
    let mut tokens = Vec::new();
    let mut failed = Vec::new();
    for (index, b) in batches.iter().enumerate() {
        if !outcome.needs_replay(index) {
            continue;
        }
        let selection = outcome.select(index, b).unwrap_or_else(|e| panic!("{e}"));
        for delivery in selection.deliver {
            let id = names.key(delivery.key);
            assert_eq!(rows[index * batch_size + delivery.row].0, Some(id));
            let sign = match delivery.change {
                Change::Added => "+",
                Change::Updated => "~",
                Change::Deleted => "-",
            };
            tokens.push(format!("{sign}{id}"));
            if failed_ids.contains(&id) {
                failed.push(delivery.key);
            }
        }
        for rejection in selection.rejected {
            let token = match (
                &rejection.reason,
                rows[index * batch_size + rejection.row].0,
            ) {
                (RejectReason::NullKey { column }, None) if column == "id" => "!null".to_string(),
                (RejectReason::DuplicateKey, Some(id)) => format!("!{id}"),
                other => panic!("unexpected rejection {other:?}"),
            };
            tokens.push(token);
        }
    }
    for key in outcome.deletes().collect::<Vec<_>>() {
        let id = names.key(key);
        tokens.push(format!("-{id}"));
        if failed_ids.contains(&id) {
            failed.push(key);
        }
    }
    tokens.sort();
    let counts = outcome.counts;
    (tokens.join(" "), counts, outcome.commit(failed))
}

struct Step {
    rows: &'static [Row],
    failed: &'static [i64],
    /// Deliveries and rejections for upsert, insert, update, mirror.
    expect: [&'static str; 4],
    /// State after commit, same order; `None` to skip checking.
    state: Option<[&'static str; 4]>,
}

const fn step(rows: &'static [Row], expect: [&'static str; 4]) -> Step {
    Step {
        rows,
        failed: &[],
        expect,
        state: None,
    }
}

const AB: &[Row] = &[(Some(1), Some("a")), (Some(2), Some("b"))];
const A: &[Row] = &[(Some(1), Some("a"))];

fn cases() -> Vec<(&'static str, Vec<Step>)> {
    vec![
        (
            "first run",
            vec![Step {
                state: Some(["1:a 2:b", "1:a 2:b", "1:a? 2:b?", "1:a 2:b"]),
                ..step(AB, ["+1 +2", "+1 +2", "", "+1 +2"])
            }],
        ),
        (
            "change",
            vec![
                step(AB, ["+1 +2", "+1 +2", "", "+1 +2"]),
                Step {
                    state: Some(["1:a 2:c", "1:a 2:b", "1:a? 2:c", "1:a 2:c"]),
                    ..step(
                        &[(Some(1), Some("a")), (Some(2), Some("c"))],
                        ["~2", "", "~2", "~2"],
                    )
                },
            ],
        ),
        (
            "delete",
            vec![
                step(AB, ["+1 +2", "+1 +2", "", "+1 +2"]),
                Step {
                    state: Some(["1:a 2:b", "1:a 2:b", "1:a?", "1:a"]),
                    ..step(A, ["", "", "", "-2"])
                },
            ],
        ),
        (
            "re-add",
            vec![
                step(AB, ["+1 +2", "+1 +2", "", "+1 +2"]),
                step(A, ["", "", "", "-2"]),
                Step {
                    state: Some(["1:a 2:b", "1:a 2:b", "1:a? 2:b?", "1:a 2:b"]),
                    ..step(AB, ["", "", "", "+2"])
                },
            ],
        ),
        (
            "key change",
            vec![
                step(A, ["+1", "+1", "", "+1"]),
                Step {
                    state: Some(["1:a 3:a", "1:a 3:a", "3:a?", "3:a"]),
                    ..step(&[(Some(3), Some("a"))], ["+3", "+3", "", "+3 -1"])
                },
            ],
        ),
        (
            "null value",
            vec![
                step(A, ["+1", "+1", "", "+1"]),
                Step {
                    state: Some(["1:null", "1:a", "1:null", "1:null"]),
                    ..step(&[(Some(1), None)], ["~1", "", "~1", "~1"])
                },
            ],
        ),
        (
            "duplicate key",
            vec![
                step(AB, ["+1 +2", "+1 +2", "", "+1 +2"]),
                Step {
                    state: Some([
                        "1:a 2:b 5:f",
                        "1:a 2:b 5:f",
                        "1:a? 2:b? 5:f?",
                        "1:a 2:b 5:f",
                    ]),
                    ..step(
                        &[
                            (Some(1), Some("a")),
                            (Some(2), Some("c")),
                            (Some(4), Some("d")),
                            (Some(2), Some("d")),
                            (Some(5), Some("f")),
                            (Some(4), Some("e")),
                        ],
                        [
                            "!2 !2 !4 !4 +5",
                            "!2 !2 !4 !4 +5",
                            "!2 !2 !4 !4",
                            "!2 !2 !4 !4 +5",
                        ],
                    )
                },
                step(
                    &[
                        (Some(1), Some("a")),
                        (Some(2), Some("c")),
                        (Some(4), Some("d")),
                        (Some(5), Some("f")),
                    ],
                    ["+4 ~2", "+4", "~2", "+4 ~2"],
                ),
            ],
        ),
        (
            "null key",
            vec![Step {
                state: Some(["1:a", "1:a", "1:a?", "1:a"]),
                ..step(
                    &[(None, Some("a")), (Some(1), Some("a")), (None, None)],
                    [
                        "!null !null +1",
                        "!null !null +1",
                        "!null !null",
                        "!null !null +1",
                    ],
                )
            }],
        ),
        (
            "failed add is absent and retried",
            vec![
                Step {
                    failed: &[2],
                    state: Some(["1:a", "1:a", "1:a? 2:b?", "1:a"]),
                    ..step(AB, ["+1 +2", "+1 +2", "", "+1 +2"])
                },
                step(AB, ["+2", "+2", "", "+2"]),
            ],
        ),
        (
            "failed update keeps the old hash and is retried",
            vec![
                step(A, ["+1", "+1", "", "+1"]),
                Step {
                    failed: &[1],
                    state: Some(["1:a", "1:a", "1:a?", "1:a"]),
                    ..step(&[(Some(1), Some("b"))], ["~1", "", "~1", "~1"])
                },
                step(&[(Some(1), Some("c"))], ["~1", "", "~1", "~1"]),
            ],
        ),
        (
            "failed delete keeps the key and is retried",
            vec![
                step(AB, ["+1 +2", "+1 +2", "", "+1 +2"]),
                Step {
                    failed: &[2],
                    state: Some(["1:a 2:b", "1:a 2:b", "1:a?", "1:a 2:b"]),
                    ..step(A, ["", "", "", "-2"])
                },
                step(A, ["", "", "", "-2"]),
            ],
        ),
    ]
}

#[test]
fn mode_table() {
    let names = Names::new();
    for (name, steps) in cases() {
        for (m, mode) in DeliveryMode::ALL.into_iter().enumerate() {
            for batch_size in [1usize, 2, 100] {
                let mut state = State::default();
                for (number, step) in steps.iter().enumerate() {
                    let (got, _, next) =
                        run(&names, state, mode, step.rows, batch_size, step.failed);
                    let at = format!(
                        "{name}, step {}, {mode:?}, batches of {batch_size}",
                        number + 1
                    );
                    assert_eq!(got, step.expect[m], "{at}");
                    if let Some(expected) = step.state {
                        assert_eq!(names.state(&next), expected[m], "state after {at}");
                    }
                    state = next;
                }
            }
        }
    }
}

#[test]
fn counts_describe_the_run() {
    let names = Names::new();
    let (_, _, state) = run(
        &names,
        State::default(),
        DeliveryMode::Mirror,
        &[
            (Some(1), Some("a")),
            (Some(2), Some("b")),
            (Some(3), Some("c")),
        ],
        2,
        &[],
    );
    let rows: &[Row] = &[
        (Some(1), Some("a")),
        (Some(2), Some("e")),
        (Some(4), Some("d")),
        (Some(4), Some("d")),
        (Some(5), Some("d")),
        (None, Some("d")),
    ];
    let (_, counts, _) = run(&names, state, DeliveryMode::Mirror, rows, 4, &[]);
    assert_eq!(
        counts,
        Counts {
            previous: 3,
            extracted: 6,
            added: 1,
            updated: 1,
            unchanged: 1,
            missing: 1,
            deleted: 1,
            null_keys: 1,
            duplicate_keys: 1,
        }
    );
}

#[test]
fn replay_must_match_the_extract() {
    let mut diff =
        Diff::new(State::default(), spec(), DeliveryMode::Upsert).unwrap_or_else(|e| panic!("{e}"));
    diff.push(&batch(AB)).unwrap_or_else(|e| panic!("{e}"));
    let mut outcome = diff.finish();
    assert!(matches!(
        outcome.select(0, &batch(A)),
        Err(DiffError::ReplayMismatch {
            batch: 0,
            expected: 2,
            got: 1
        })
    ));
    assert!(matches!(
        outcome.select(1, &batch(A)),
        Err(DiffError::UnknownBatch(1))
    ));
    assert!(!outcome.needs_replay(1));
}

#[test]
fn nothing_changed_needs_no_replay() {
    let names = Names::new();
    let (_, _, state) = run(&names, State::default(), DeliveryMode::Upsert, AB, 1, &[]);
    let mut diff = Diff::new(state, spec(), DeliveryMode::Upsert).unwrap_or_else(|e| panic!("{e}"));
    diff.push(&batch(&AB[..1]))
        .unwrap_or_else(|e| panic!("{e}"));
    diff.push(&batch(&AB[1..]))
        .unwrap_or_else(|e| panic!("{e}"));
    let outcome = diff.finish();
    assert!(!outcome.needs_replay(0) && !outcome.needs_replay(1));
    assert_eq!(outcome.counts.unchanged, 2);
}
