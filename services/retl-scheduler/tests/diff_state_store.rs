//! Diff states in the real NATS object store: write, read back, commit with compare and
//! set, and crashes between the steps of a commit leave the old state (or the complete new
//! one) readable, with orphans cleaned by the next commit.

use backflow_platform::bus::Bus;
use backflow_platform::testing;
use backflow_retl_scheduler::diff::{Entry, State};
use backflow_retl_scheduler::store::diff_state::{
    bucket_name, DiffStateStore, Expected, StateStoreError,
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
