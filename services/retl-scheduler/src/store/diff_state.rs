//! Where Backflow-side diff states live: the NATS JetStream object store (DESIGN §5),
//! one object per committed version, and a JetStream key-value pointer per sync naming the
//! current one. A commit writes the new object first, then moves the pointer (compare and
//! set on its revision), and only then deletes older objects, so a crash at any point
//! leaves either the old or the new state readable and never a mix; objects a crash
//! orphaned are removed by the next commit of that sync.
//!
//! A run that changed few records commits a delta instead of the whole state: a small
//! object of what it changed, appended to the pointer's list on top of the same base object
//! ([`DiffStateStore::commit_after`]); the same write-then-compare-and-set applies, and
//! loading reads the base and applies its deltas in order. Past [`MAX_DELTAS`] deltas, or
//! more changes than an eighth of the state, the commit writes the whole state again (and
//! the base and deltas become stale).
//!
//! One bucket pair serves every sync: objects `<sync id>/<version id>` in bucket
//! `RETL_DIFF_STATE` and pointers keyed by sync id in `RETL_DIFF_STATE_PTR` (names carry the
//! bus namespace, see [`bucket_name`]). States are encoded by [`crate::diff::codec`] and
//! streamed both ways, so neither side holds a second copy of a state.

use crate::diff::codec::{removed_entries, Decoder, DeltaDecoder, Encoder, ENTRIES_PER_CHUNK};
use crate::diff::{Delta, DiffError, State};
use async_nats::jetstream::{self, kv, object_store};
use backflow_platform::bus::{Bus, StreamSpec};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

/// Object store bucket (before the namespace prefix).
pub const BUCKET: &str = "RETL_DIFF_STATE";

#[derive(Debug, thiserror::Error)]
pub enum StateStoreError {
    #[error("diff state storage ({operation}): {message}")]
    Nats {
        operation: &'static str,
        message: String,
    },
    #[error(transparent)]
    Corrupt(#[from] DiffError),
    #[error("diff state of sync {sync_id} was committed by someone else since it was loaded")]
    Conflict { sync_id: String },
    #[error("diff state pointer of sync {sync_id} is unreadable: {message}")]
    Pointer { sync_id: String, message: String },
}

fn nats(operation: &'static str) -> impl FnOnce(String) -> StateStoreError {
    move |message| StateStoreError::Nats { operation, message }
}

/// The bucket name under `bus`'s namespace.
pub fn bucket_name(bus: &Bus) -> String {
    bus.stream_name(&StreamSpec {
        name: BUCKET,
        subjects: "",
        work_queue: false,
    })
}

/// Deltas a pointer may list before a commit writes the whole state again.
pub const MAX_DELTAS: usize = 8;

/// How long a listing of state objects may go without an answer.
const LIST_IDLE: std::time::Duration = std::time::Duration::from_secs(5);

/// The pointer's stored form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Pointer {
    object: String,
    entries: u64,
    /// The sync's state epoch the state was committed at (absent in pointers written
    /// before epochs were stamped: those count as current).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    epoch: Option<i64>,
    /// Deltas applied in order on top of `object` (absent: none). A reader that does not
    /// know them would find `entries` wrong and refuse the state as corrupt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    deltas: Vec<DeltaRef>,
}

/// A delta object a pointer lists, with how many changes it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeltaRef {
    pub object: String,
    pub changes: u64,
}

/// The committed version a state was loaded from (what the next commit must replace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// The base object (a whole state).
    pub object: String,
    pub entries: u64,
    /// Revision of the pointer entry.
    pub revision: u64,
    /// Deltas on top of the base, oldest first.
    pub deltas: Vec<DeltaRef>,
}

impl Version {
    /// Every object the version reads: the base, then its deltas.
    pub fn objects(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.object.as_str()).chain(self.deltas.iter().map(|d| d.object.as_str()))
    }
}

#[derive(Debug)]
pub struct Loaded {
    pub state: State,
    /// `None` before the first commit (or after a reset): expect no pointer.
    pub version: Option<Version>,
    /// Pointer revision to compare against when there is no version (after a reset).
    deleted_revision: Option<u64>,
}

impl Loaded {
    /// Whether the next commit replaces no state (none committed, reset, or one of an
    /// older epoch): then the sync moves to a new epoch, see [`DiffStateStore::load_at`].
    pub fn replaces(&self) -> bool {
        self.version.is_none()
    }

    /// What [`DiffStateStore::switch`] expects to find.
    pub fn expected(&self) -> Expected {
        match (&self.version, self.deleted_revision) {
            (Some(version), _) => Expected::Revision(version.revision),
            (None, Some(revision)) => Expected::Revision(revision),
            (None, None) => Expected::Absent,
        }
    }

    /// What the next commit starts from (see [`DiffStateStore::commit_after`]).
    pub fn base(&self) -> Base {
        Base {
            expected: self.expected(),
            version: self.version.clone(),
        }
    }
}

/// The committed version a run loaded, kept until its commit: the pointer it expects and,
/// when it loaded a state of its epoch, that state's objects (a delta builds on them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Base {
    pub expected: Expected,
    pub version: Option<Version>,
}

impl Base {
    /// Changes a delta on top of this base may hold; 0 when the commit must write the whole
    /// state (no base, or the base has enough deltas already).
    pub fn delta_room(&self) -> usize {
        let Some(version) = &self.version else {
            return 0;
        };
        if version.deltas.len() >= MAX_DELTAS {
            return 0;
        }
        let used: u64 = version.deltas.iter().map(|delta| delta.changes).sum();
        let budget = (version.entries / 8).max(1024);
        usize::try_from(budget.saturating_sub(used)).unwrap_or(usize::MAX)
    }
}

/// The pointer state a switch requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    Absent,
    Revision(u64),
}

/// A state object written but not yet pointed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub sync_id: String,
    pub object: String,
    pub entries: u64,
    /// Stamped on the pointer.
    pub epoch: Option<i64>,
    /// Deltas on top of `object` (empty for a whole state).
    pub deltas: Vec<DeltaRef>,
    /// The object this write created (the whole state, or the delta; none for an empty
    /// delta): what a refused switch deletes again.
    pub fresh: Option<String>,
}

#[derive(Clone)]
pub struct DiffStateStore {
    objects: object_store::ObjectStore,
    pointers: kv::Store,
    /// Bytes per object chunk (one JetStream message each, published and acknowledged in
    /// turn): [`chunk_size`] of the server's payload limit.
    chunk_size: usize,
}

/// The largest object chunk: 1 MiB, the codec's piece size.
const MAX_CHUNK_SIZE: usize = 1 << 20;
/// Room left in a message for the chunk's subject and protocol framing.
const CHUNK_HEADROOM: usize = 4 << 10;

/// Object chunk size under a server payload limit of `max_payload` bytes: as large as
/// fits up to 1 MiB, never below the client's 128 KiB default. The object store publishes
/// chunks one at a time and waits for each acknowledgement, so a 16 MiB state (1M keys)
/// is 16 round trips at 1 MiB instead of 128 at the default (measured: the commit phase
/// of the 1M-row sync bench spent ~0.2 s there).
fn chunk_size(max_payload: usize) -> usize {
    max_payload
        .saturating_sub(CHUNK_HEADROOM)
        .clamp(128 << 10, MAX_CHUNK_SIZE)
}

impl std::fmt::Debug for DiffStateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiffStateStore").finish_non_exhaustive()
    }
}

impl DiffStateStore {
    /// Opens (creating if missing) the buckets named from `bucket`.
    pub async fn open(js: &jetstream::Context, bucket: &str) -> Result<Self, StateStoreError> {
        let objects = match js.get_object_store(bucket).await {
            Ok(store) => store,
            Err(_) => js
                .create_object_store(object_store::Config {
                    bucket: bucket.to_string(),
                    description: Some("backflow reverse etl diff states".into()),
                    ..Default::default()
                })
                .await
                .map_err(|err| nats("create object store")(err.to_string()))?,
        };
        let chunk_size = chunk_size(js.client().server_info().max_payload);
        let pointer_bucket = format!("{bucket}_PTR");
        let pointers = match js.get_key_value(&pointer_bucket).await {
            Ok(store) => store,
            Err(_) => {
                // The key-value stream is defined by hand, as a KV bucket of history 1 is
                // defined: `create_key_value` of this client sends a configuration that
                // nats-server 2.9 answers in a form the client cannot parse.
                js.get_or_create_stream(jetstream::stream::Config {
                    name: format!("KV_{pointer_bucket}"),
                    description: Some("backflow reverse etl diff state pointers".into()),
                    subjects: vec![format!("$KV.{pointer_bucket}.>")],
                    max_messages_per_subject: 1,
                    discard: jetstream::stream::DiscardPolicy::New,
                    allow_rollup: true,
                    deny_delete: true,
                    allow_direct: true,
                    ..Default::default()
                })
                .await
                .map_err(|err| nats("create key-value bucket")(err.to_string()))?;
                js.get_key_value(&pointer_bucket)
                    .await
                    .map_err(|err| nats("open key-value bucket")(err.to_string()))?
            }
        };
        Ok(Self {
            objects,
            pointers,
            chunk_size,
        })
    }

    /// The committed state of `sync_id` (empty before the first commit).
    pub async fn load(&self, sync_id: &str) -> Result<Loaded, StateStoreError> {
        self.load_checked(sync_id, None).await
    }

    /// The committed state of `sync_id` if it was committed at `epoch`, else empty (a state
    /// of an older epoch is void: the sync was reset, or its diff strategy changed and
    /// another strategy's state is newer). Each commit that replaces a void state moves the
    /// sync to a new epoch first ([`Loaded::replaces`]), so of a sync's two possible states
    /// (here and in the warehouse) only the one written last is ever current.
    pub async fn load_at(&self, sync_id: &str, epoch: i64) -> Result<Loaded, StateStoreError> {
        self.load_checked(sync_id, Some(epoch)).await
    }

    async fn load_checked(
        &self,
        sync_id: &str,
        epoch: Option<i64>,
    ) -> Result<Loaded, StateStoreError> {
        let entry = self
            .pointers
            .entry(sync_id)
            .await
            .map_err(|err| nats("read pointer")(err.to_string()))?;
        let Some(entry) = entry else {
            return Ok(Loaded {
                state: State::default(),
                version: None,
                deleted_revision: None,
            });
        };
        if entry.operation != kv::Operation::Put {
            return Ok(Loaded {
                state: State::default(),
                version: None,
                deleted_revision: Some(entry.revision),
            });
        }
        let pointer: Pointer =
            serde_json::from_slice(&entry.value).map_err(|err| StateStoreError::Pointer {
                sync_id: sync_id.to_string(),
                message: err.to_string(),
            })?;
        if let (Some(wanted), Some(stamped)) = (epoch, pointer.epoch) {
            if wanted != stamped {
                tracing::info!(
                    sync_id,
                    stamped,
                    epoch = wanted,
                    "diff state of an older epoch is void"
                );
                return Ok(Loaded {
                    state: State::default(),
                    version: None,
                    deleted_revision: Some(entry.revision),
                });
            }
        }
        let mut state = self.read_object(&pointer.object).await?;
        for delta in &pointer.deltas {
            let delta = self.read_delta(&delta.object).await?;
            state = delta.apply(state)?;
        }
        if state.len() as u64 != pointer.entries {
            return Err(DiffError::Corrupt(format!(
                "object {} holds {} entries, its pointer says {}",
                pointer.object,
                state.len(),
                pointer.entries
            ))
            .into());
        }
        Ok(Loaded {
            state,
            version: Some(Version {
                object: pointer.object,
                entries: pointer.entries,
                revision: entry.revision,
                deltas: pointer.deltas,
            }),
            deleted_revision: None,
        })
    }

    async fn read_object(&self, name: &str) -> Result<State, StateStoreError> {
        let mut decoder = Decoder::new();
        self.read_into(name, |bytes| decoder.push(bytes)).await?;
        Ok(decoder.finish()?)
    }

    async fn read_delta(&self, name: &str) -> Result<Delta, StateStoreError> {
        let mut decoder = DeltaDecoder::new();
        self.read_into(name, |bytes| decoder.push(bytes)).await?;
        Ok(decoder.finish()?)
    }

    /// Streams object `name` into `sink` in 256 KiB reads.
    async fn read_into(
        &self,
        name: &str,
        mut sink: impl FnMut(&[u8]) -> Result<(), DiffError>,
    ) -> Result<(), StateStoreError> {
        let mut object = self
            .objects
            .get(name)
            .await
            .map_err(|err| nats("open state object")(err.to_string()))?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let read = object
                .read(&mut buf)
                .await
                .map_err(|err| nats("read state object")(err.to_string()))?;
            if read == 0 {
                return Ok(());
            }
            sink(&buf[..read])?;
        }
    }

    /// Step 1 of a commit: stores `state` as a new object nothing points to yet.
    pub async fn write(&self, sync_id: &str, state: &State) -> Result<Written, StateStoreError> {
        let object = self.put(sync_id, vec![Encoder::new(state)]).await?;
        Ok(Written {
            sync_id: sync_id.to_string(),
            fresh: Some(object.clone()),
            object,
            entries: state.len() as u64,
            epoch: None,
            deltas: Vec::new(),
        })
    }

    /// Step 1 of a delta commit: stores `delta` as a new object nothing points to yet; the
    /// written version is `base` plus the delta, holding `entries` entries.
    pub async fn write_delta(
        &self,
        sync_id: &str,
        base: &Version,
        delta: &Delta,
        entries: u64,
    ) -> Result<Written, StateStoreError> {
        let mut deltas = base.deltas.clone();
        let mut fresh = None;
        if !delta.is_empty() {
            let removed = removed_entries(delta);
            let object = self
                .put(
                    sync_id,
                    vec![
                        Encoder::over(&delta.puts, ENTRIES_PER_CHUNK),
                        Encoder::over(&removed, ENTRIES_PER_CHUNK),
                    ],
                )
                .await?;
            fresh = Some(object.clone());
            deltas.push(DeltaRef {
                object,
                changes: delta.len() as u64,
            });
        }
        Ok(Written {
            sync_id: sync_id.to_string(),
            object: base.object.clone(),
            entries,
            epoch: None,
            deltas,
            fresh,
        })
    }

    /// A new object `<sync id>/<new id>` holding the encoders' pieces in turn.
    async fn put(
        &self,
        sync_id: &str,
        encoders: Vec<Encoder<'_>>,
    ) -> Result<String, StateStoreError> {
        let object = format!("{sync_id}/{}", backflow_platform::new_id());
        let mut reader = EncodeReader::new(encoders);
        self.objects
            .put(
                object_store::ObjectMetadata {
                    name: object.clone(),
                    chunk_size: Some(self.chunk_size),
                    ..Default::default()
                },
                &mut reader,
            )
            .await
            .map_err(|err| nats("write state object")(err.to_string()))?;
        Ok(object)
    }

    /// Step 2: points the sync at `written`, if the pointer is still as `expected`.
    pub async fn switch(
        &self,
        written: &Written,
        expected: Expected,
    ) -> Result<Version, StateStoreError> {
        let pointer = Pointer {
            object: written.object.clone(),
            entries: written.entries,
            epoch: written.epoch,
            deltas: written.deltas.clone(),
        };
        let value = serde_json::to_vec(&pointer).map_err(|err| StateStoreError::Pointer {
            sync_id: written.sync_id.clone(),
            message: err.to_string(),
        })?;
        let conflict = || StateStoreError::Conflict {
            sync_id: written.sync_id.clone(),
        };
        let revision = match expected {
            Expected::Absent => self
                .pointers
                .create(&written.sync_id, value.into())
                .await
                .map_err(|err| match err.kind() {
                    kv::CreateErrorKind::AlreadyExists => conflict(),
                    _ => nats("create pointer")(err.to_string()),
                })?,
            Expected::Revision(revision) => self
                .pointers
                .update(&written.sync_id, value.into(), revision)
                .await
                .map_err(|err| match err.kind() {
                    kv::UpdateErrorKind::WrongLastRevision => conflict(),
                    _ => nats("update pointer")(err.to_string()),
                })?,
        };
        Ok(Version {
            object: pointer.object,
            entries: pointer.entries,
            revision,
            deltas: pointer.deltas,
        })
    }

    /// Step 3: deletes the sync's objects other than `keep` (older versions, and objects a
    /// crash left between steps 1 and 2). Returns how many were deleted.
    pub async fn remove_stale(
        &self,
        sync_id: &str,
        keep: Option<&str>,
    ) -> Result<usize, StateStoreError> {
        self.remove_unused(sync_id, keep.into_iter().collect())
            .await
    }

    /// [`Self::remove_stale`] keeping every object of `version` (its base and deltas).
    pub async fn remove_unused_by(
        &self,
        sync_id: &str,
        version: &Version,
    ) -> Result<usize, StateStoreError> {
        self.remove_unused(sync_id, version.objects().collect())
            .await
    }

    async fn remove_unused(
        &self,
        sync_id: &str,
        keep: Vec<&str>,
    ) -> Result<usize, StateStoreError> {
        let mut removed = 0;
        for name in self.object_names(sync_id).await? {
            if !keep.contains(&name.as_str()) {
                self.objects
                    .delete(&name)
                    .await
                    .map_err(|err| nats("delete state object")(err.to_string()))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Write, switch, remove stale: the whole commit of a run.
    pub async fn commit(
        &self,
        sync_id: &str,
        state: &State,
        expected: Expected,
    ) -> Result<Version, StateStoreError> {
        self.commit_stamped(sync_id, state, expected, None).await
    }

    /// [`Self::commit`], stamping the state with the sync's epoch (see [`Self::load_at`]).
    pub async fn commit_at(
        &self,
        sync_id: &str,
        state: &State,
        expected: Expected,
        epoch: i64,
    ) -> Result<Version, StateStoreError> {
        self.commit_stamped(sync_id, state, expected, Some(epoch))
            .await
    }

    async fn commit_stamped(
        &self,
        sync_id: &str,
        state: &State,
        expected: Expected,
        epoch: Option<i64>,
    ) -> Result<Version, StateStoreError> {
        let mut written = self.write(sync_id, state).await?;
        written.epoch = epoch;
        self.finish_commit(written, expected).await
    }

    /// The commit of a run that loaded `base` and computed `state`, knowing (when it fit
    /// [`Base::delta_room`]) the `delta` between them: with a base and a delta, only the
    /// delta is written (nothing at all when it is empty), else the whole state. Either
    /// way the pointer moves by compare and set from `base.expected`, stamped with `epoch`,
    /// so a crash at any step leaves the base or the new version, never a mix.
    pub async fn commit_after(
        &self,
        sync_id: &str,
        state: &State,
        delta: Option<&Delta>,
        base: &Base,
        epoch: i64,
    ) -> Result<Version, StateStoreError> {
        let (Some(version), Some(delta)) = (&base.version, delta) else {
            return self
                .commit_stamped(sync_id, state, base.expected, Some(epoch))
                .await;
        };
        let mut written = self
            .write_delta(sync_id, version, delta, state.len() as u64)
            .await?;
        written.epoch = Some(epoch);
        self.finish_commit(written, base.expected).await
    }

    /// Steps 2 and 3 of a commit whose objects are written.
    async fn finish_commit(
        &self,
        written: Written,
        expected: Expected,
    ) -> Result<Version, StateStoreError> {
        let version = match self.switch(&written, expected).await {
            Ok(version) => version,
            Err(err) => {
                // Only what this commit wrote goes: a delta commit's base and earlier
                // deltas are the loaded version's.
                if let Some(object) = written.fresh.as_deref() {
                    if let Err(cleanup) = self.objects.delete(object).await {
                        tracing::warn!(object, error = %cleanup, "could not delete an unused diff state object");
                    }
                }
                return Err(err);
            }
        };
        if let Err(err) = self.remove_unused_by(&written.sync_id, &version).await {
            // The new state is committed; stale objects go with the next commit.
            tracing::warn!(sync_id = %written.sync_id, error = %err, "could not delete stale diff state objects");
        }
        Ok(version)
    }

    /// Forgets the sync's state (the next run resends everything).
    pub async fn reset(&self, sync_id: &str) -> Result<(), StateStoreError> {
        self.pointers
            .delete(sync_id)
            .await
            .map_err(|err| nats("delete pointer")(err.to_string()))?;
        self.remove_stale(sync_id, None).await?;
        Ok(())
    }

    /// Names of the objects stored for `sync_id`, any version.
    pub async fn object_names(&self, sync_id: &str) -> Result<Vec<String>, StateStoreError> {
        let prefix = format!("{sync_id}/");
        let mut list = self
            .objects
            .list()
            .await
            .map_err(|err| nats("list state objects")(err.to_string()))?;
        let mut names = Vec::new();
        // The client's listing (an ordered consumer that ends on the message with nothing
        // pending) can wait forever when another writer's commit purges object metadata
        // under it (two executors committing at once): a run then hung in its commit.
        // A listing quiet for LIST_IDLE is abandoned instead (stale objects go next time).
        loop {
            let next = tokio::time::timeout(LIST_IDLE, list.next())
                .await
                .map_err(|_| {
                    nats("list state objects")(format!(
                        "no answer within {LIST_IDLE:?}; listing abandoned"
                    ))
                })?;
            let Some(info) = next else { break };
            let info = info.map_err(|err| nats("list state objects")(err.to_string()))?;
            if !info.deleted && info.name.starts_with(&prefix) {
                names.push(info.name);
            }
        }
        names.sort();
        Ok(names)
    }
}

/// Feeds [`Encoder`]s' pieces, one encoder after the other, to the object store as it
/// reads.
struct EncodeReader<'a> {
    encoders: std::collections::VecDeque<Encoder<'a>>,
    piece: Vec<u8>,
    at: usize,
}

impl<'a> EncodeReader<'a> {
    fn new(encoders: Vec<Encoder<'a>>) -> Self {
        Self {
            encoders: encoders.into(),
            piece: Vec::new(),
            at: 0,
        }
    }

    /// The next piece into `self.piece`; `false` once every encoder is done.
    fn next_piece(&mut self) -> bool {
        while let Some(encoder) = self.encoders.front_mut() {
            if encoder.next_piece(&mut self.piece) {
                return true;
            }
            self.encoders.pop_front();
        }
        false
    }
}

impl AsyncRead for EncodeReader<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.at == this.piece.len() {
            this.piece.clear();
            this.at = 0;
            if !this.next_piece() {
                return Poll::Ready(Ok(()));
            }
        }
        let take = (this.piece.len() - this.at).min(buf.remaining());
        buf.put_slice(&this.piece[this.at..this.at + take]);
        this.at += take;
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_fill_the_server_payload_limit_up_to_a_mebibyte() {
        // nats-server's default limit (1 MiB): just under it
        assert_eq!(chunk_size(1 << 20), (1 << 20) - CHUNK_HEADROOM);
        // a larger limit: the codec's 1 MiB pieces
        assert_eq!(chunk_size(8 << 20), MAX_CHUNK_SIZE);
        // a tiny or unknown (0) limit: the client's default
        assert_eq!(chunk_size(64 << 10), 128 << 10);
        assert_eq!(chunk_size(0), 128 << 10);
    }
}
