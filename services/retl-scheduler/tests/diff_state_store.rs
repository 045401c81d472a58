//! Diff states in the real NATS object store: write, read back, commit with compare and
//! set, and crashes between the steps of a commit (whole state or delta) leave the old
//! state (or the complete new one) readable, with orphans cleaned by the next commit; the
//! next run diffs the state a crash left correctly.

use backflow_platform::bus::Bus;
use backflow_platform::testing;
use backflow_retl_scheduler::diff::{Entry, State};
use backflow_retl_scheduler::store::diff_state::{
    bucket_name, DiffStateStore, Expected, StateStoreError, MAX_DELTAS,
};

async fn store(label: &str) -> anyhow::Result<DiffStateStore> {
    let bus = Bus::connect(&testing::fresh_nats(label)).await?;
    Ok(DiffStateStore::open(bus.jetstream(), &bucket_name(&bus)).await?)
}

fn state(len: u64, salt: u64) -> State {
    let entries = (0..len)
        .map(|i| Entry::delivered(i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1, i ^ salt))
        .collect();
    State::from_unsorted(entries).unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn commits_switch_atomically_and_clean_up() -> anyhow::Result<()> {
    let store = store("diff-state-commit").await?;
    let sync = "sync-a";

    let first = store.load(sync).await?;
    assert_eq!(first.state, State::default());
    assert!(first.version.is_none());

    // First commit; 200k entries span several codec chunks and object store chunks.
    let s1 = state(200_000, 1);
    let v1 = store.commit(sync, &s1, first.expected()).await?;
    let loaded = store.load(sync).await?;
    assert_eq!(loaded.state, s1);
    assert_eq!(loaded.version.as_ref(), Some(&v1));
    assert_eq!(store.object_names(sync).await?, vec![v1.object.clone()]);

    // Crash after step 1 (object written, pointer not moved): the old state is read.
    let orphan = store.write(sync, &state(10, 2)).await?;
    let after_crash = store.load(sync).await?;
    assert_eq!(after_crash.state, s1);
    assert_eq!(store.object_names(sync).await?.len(), 2);

    // The next commit replaces the old state and removes the orphan too.
    let s3 = state(1_000, 3);
    let v3 = store.commit(sync, &s3, after_crash.expected()).await?;
    assert_eq!(store.load(sync).await?.state, s3);
    let names = store.object_names(sync).await?;
    assert_eq!(names, vec![v3.object.clone()]);
    assert!(!names.contains(&orphan.object));

    // Crash after step 2 (pointer moved, old object not deleted): the new state is read.
    let loaded = store.load(sync).await?;
    let s4 = state(5, 4);
    let written = store.write(sync, &s4).await?;
    let v4 = store.switch(&written, loaded.expected()).await?;
    assert_eq!(store.load(sync).await?.state, s4);
    assert_eq!(store.object_names(sync).await?.len(), 2);
    assert_eq!(store.remove_stale(sync, Some(&v4.object)).await?, 1);
    assert_eq!(store.object_names(sync).await?, vec![v4.object.clone()]);

    // A commit from a stale load is refused and changes nothing.
    let stale = store.commit(sync, &state(3, 5), loaded.expected()).await;
    assert!(matches!(stale, Err(StateStoreError::Conflict { ref sync_id }) if sync_id == sync));
    assert_eq!(store.load(sync).await?.state, s4);
    assert_eq!(store.object_names(sync).await?, vec![v4.object.clone()]);

    // Creating a pointer that exists is a conflict too.
    let again = store.commit(sync, &state(3, 6), Expected::Absent).await;
    assert!(matches!(again, Err(StateStoreError::Conflict { .. })));
    Ok(())
}

#[tokio::test]
async fn syncs_are_apart_and_reset_forgets() -> anyhow::Result<()> {
    let store = store("diff-state-reset").await?;
    let a = state(50, 1);
    let b = state(70, 2);
    store.commit("sync-a", &a, Expected::Absent).await?;
    store.commit("sync-b", &b, Expected::Absent).await?;
    assert_eq!(store.load("sync-a").await?.state, a);
    assert_eq!(store.load("sync-b").await?.state, b);

    store.reset("sync-a").await?;
    let reset = store.load("sync-a").await?;
    assert_eq!(reset.state, State::default());
    assert!(reset.version.is_none());
    assert!(store.object_names("sync-a").await?.is_empty());
    assert_eq!(store.load("sync-b").await?.state, b);

    // After a reset the next commit starts again from the deleted pointer's revision.
    let c = state(9, 3);
    store.commit("sync-a", &c, reset.expected()).await?;
    assert_eq!(store.load("sync-a").await?.state, c);
    Ok(())
}

#[tokio::test]
async fn an_empty_state_round_trips() -> anyhow::Result<()> {
    let store = store("diff-state-empty").await?;
    store
        .commit("sync-e", &State::default(), Expected::Absent)
        .await?;
    let loaded = store.load("sync-e").await?;
    assert_eq!(loaded.state, State::default());
    assert_eq!(loaded.version.map(|v| v.entries), Some(0));
    Ok(())
}

/// A run of the diff over `rows` (id, name) against `base`, everything delivered: the
/// counts and what it commits (with its delta, as the executor commits it).
fn diff_run(
    loaded: &backflow_retl_scheduler::store::diff_state::Loaded,
    rows: &[(i64, String)],
) -> (
    backflow_retl_scheduler::diff::Counts,
    State,
    Option<backflow_retl_scheduler::diff::Delta>,
) {
    use arrow_array::{Int64Array, RecordBatch, StringArray};
    use backflow_retl_scheduler::diff::{DeliveryMode, Diff, RowSpec};
    use std::sync::Arc;
    let ids: Vec<i64> = rows.iter().map(|(id, _)| *id).collect();
    let names: Vec<&str> = rows.iter().map(|(_, name)| name.as_str()).collect();
    let batch = RecordBatch::try_from_iter(vec![
        (
            "id",
            Arc::new(Int64Array::from(ids)) as arrow_array::ArrayRef,
        ),
        ("name", Arc::new(StringArray::from(names)) as _),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let spec = RowSpec {
        key_columns: vec!["id".into()],
        mapped_columns: vec!["name".into()],
    };
    let mut diff = Diff::new(loaded.state.clone(), spec, DeliveryMode::Mirror)
        .unwrap_or_else(|e| panic!("{e}"));
    diff.push(&batch).unwrap_or_else(|e| panic!("{e}"));
    let outcome = diff.finish();
    let counts = outcome.counts;
    let (state, delta) = outcome.commit_noting(Vec::new(), Vec::new(), loaded.base().delta_room());
    (counts, state, delta)
}

fn rows(ids: std::ops::Range<i64>, changed: impl Fn(i64) -> bool) -> Vec<(i64, String)> {
    ids.map(|id| {
        (
            id,
            if changed(id) {
                format!("new {id}")
            } else {
                format!("old {id}")
            },
        )
    })
    .collect()
}

#[tokio::test]
async fn delta_commits_survive_a_crash_at_each_step() -> anyhow::Result<()> {
    let store = store("diff-state-delta").await?;
    let sync = "sync-d";
    const EPOCH: i64 = 3;

    // A first run writes the whole state (no base to build on).
    let first = store.load_at(sync, EPOCH).await?;
    assert_eq!(first.base().delta_room(), 0);
    let v0_rows = rows(0..20_000, |_| false);
    let (_, s0, delta) = diff_run(&first, &v0_rows);
    assert_eq!(delta, None);
    let v0 = store
        .commit_after(sync, &s0, delta.as_ref(), &first.base(), EPOCH)
        .await?;
    assert!(v0.deltas.is_empty());

    // 1% changed, 1% deleted, 1% added: a delta of 598 changes on top of the base.
    let v1_rows = rows(200..20_200, |id| id % 100 == 7);
    let loaded = store.load_at(sync, EPOCH).await?;
    let (counts, s1, delta) = diff_run(&loaded, &v1_rows);
    assert_eq!(
        (counts.added, counts.updated, counts.deleted),
        (200, 198, 200)
    );
    let delta = delta.expect("a small change fits a delta");
    assert_eq!((delta.puts.len(), delta.removed.len()), (398, 200));

    // Crash after step 1 (delta written, pointer not moved): the old state is read, and
    // the next run finds every change again.
    let orphan = store
        .write_delta(
            sync,
            loaded.version.as_ref().expect("base"),
            &delta,
            s1.len() as u64,
        )
        .await?;
    let after_crash = store.load_at(sync, EPOCH).await?;
    assert_eq!(after_crash.state, s0);
    assert_eq!(after_crash.version, loaded.version);
    let (again, _, _) = diff_run(&after_crash, &v1_rows);
    assert_eq!((again.added, again.updated, again.deleted), (200, 198, 200));

    // Its commit moves the pointer to base + delta and removes the orphan.
    let (_, s1_again, delta) = diff_run(&after_crash, &v1_rows);
    assert_eq!(s1_again, s1);
    let v1 = store
        .commit_after(sync, &s1, delta.as_ref(), &after_crash.base(), EPOCH)
        .await?;
    assert_eq!(v1.object, v0.object);
    assert_eq!(v1.deltas.len(), 1);
    let names = store.object_names(sync).await?;
    assert!(!names.contains(orphan.fresh.as_ref().expect("delta object")));
    let mut expected_names: Vec<String> = v1.objects().map(str::to_string).collect();
    expected_names.sort();
    assert_eq!(names, expected_names);
    let loaded = store.load_at(sync, EPOCH).await?;
    assert_eq!(loaded.state, s1);
    let (none, _, _) = diff_run(&loaded, &v1_rows);
    assert_eq!(
        (none.added, none.updated, none.deleted, none.unchanged),
        (0, 0, 0, 20_000)
    );

    // Crash after step 2 (pointer moved, nothing stale removed): the new state is read.
    let v2_rows = rows(200..20_200, |id| id % 100 == 7 || id % 50 == 1);
    let (_, s2, delta) = diff_run(&loaded, &v2_rows);
    let written = store
        .write_delta(
            sync,
            loaded.version.as_ref().expect("base"),
            delta.as_ref().expect("delta"),
            s2.len() as u64,
        )
        .await?;
    let mut written = written;
    written.epoch = Some(EPOCH);
    let v2 = store.switch(&written, loaded.expected()).await?;
    assert_eq!(v2.deltas.len(), 2);
    let loaded2 = store.load_at(sync, EPOCH).await?;
    assert_eq!(loaded2.state, s2);
    let (none, _, _) = diff_run(&loaded2, &v2_rows);
    assert_eq!((none.added, none.updated, none.deleted), (0, 0, 0));

    // A commit from the stale load is refused, changes nothing, and deletes only its own
    // delta (the base and the deltas it shares with the current version stay).
    let stale = store
        .commit_after(sync, &s2, delta.as_ref(), &loaded.base(), EPOCH)
        .await;
    assert!(matches!(stale, Err(StateStoreError::Conflict { .. })));
    assert_eq!(store.load_at(sync, EPOCH).await?.state, s2);
    let mut expected_names: Vec<String> = v2.objects().map(str::to_string).collect();
    expected_names.sort();
    assert_eq!(store.object_names(sync).await?, expected_names);

    // Nothing changed: no object is written, the pointer still moves (so a concurrent
    // commit from the same load would be refused).
    let (_, same, delta) = diff_run(&loaded2, &v2_rows);
    assert_eq!(delta.as_ref().map(|d| d.is_empty()), Some(true));
    let v3 = store
        .commit_after(sync, &same, delta.as_ref(), &loaded2.base(), EPOCH)
        .await?;
    assert_eq!((v3.objects().count(), v3.revision > v2.revision), (3, true));
    assert_eq!(store.object_names(sync).await?, expected_names);

    // Deltas stack up to MAX_DELTAS (or an eighth of the state in changes); the commit
    // after writes the whole state again, and the old base and its deltas go.
    let mut state = same;
    let mut whole_writes = 0;
    for round in 0..20 {
        let loaded = store.load_at(sync, EPOCH).await?;
        assert_eq!(loaded.state, state, "round {round}");
        let before = loaded.version.clone().expect("committed");
        let next_rows = rows(200..20_200, |id| id % 100 == 7 || id % 97 == round);
        let (counts, next, delta) = diff_run(&loaded, &next_rows);
        assert!(counts.updated > 0);
        let version = store
            .commit_after(sync, &next, delta.as_ref(), &loaded.base(), EPOCH)
            .await?;
        if delta.is_some() {
            assert_eq!(version.object, before.object, "round {round}");
            assert_eq!(version.deltas.len(), before.deltas.len() + 1);
            assert!(version.deltas.len() <= MAX_DELTAS);
        } else {
            whole_writes += 1;
            assert!(version.deltas.is_empty());
            assert_ne!(version.object, before.object);
        }
        let mut names: Vec<String> = version.objects().map(str::to_string).collect();
        names.sort();
        assert_eq!(store.object_names(sync).await?, names, "round {round}");
        state = next;
    }
    assert!(whole_writes >= 2, "{whole_writes}");
    assert_eq!(store.load_at(sync, EPOCH).await?.state, state);

    // A later epoch voids it all, deltas included.
    let void = store.load_at(sync, EPOCH + 1).await?;
    assert!(void.state.is_empty() && void.version.is_none());
    assert_eq!(void.base().delta_room(), 0);
    Ok(())
}
