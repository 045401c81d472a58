//! Where Backflow-side diff states live: the NATS JetStream object store (DESIGN §5),
//! one object per committed version, and a JetStream key-value pointer per sync naming the
//! current one. A commit writes the new object first, then moves the pointer (compare and
//! set on its revision), and only then deletes older objects, so a crash at any point
//! leaves either the old or the new state readable and never a mix; objects a crash
//! orphaned are removed by the next commit of that sync.
//!
//! One bucket pair serves every sync: objects `<sync id>/<version id>` in bucket
//! `RETL_DIFF_STATE` and pointers keyed by sync id in `RETL_DIFF_STATE_PTR` (names carry the
//! bus namespace, see [`bucket_name`]). States are encoded by [`crate::diff::codec`] and
//! streamed both ways, so neither side holds a second copy of a state.

use crate::diff::codec::{Decoder, Encoder};
use crate::diff::{DiffError, State};
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
}

/// The committed version a state was loaded from (what the next commit must replace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub object: String,
    pub entries: u64,
    /// Revision of the pointer entry.
    pub revision: u64,
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
}

#[derive(Clone)]
pub struct DiffStateStore {
    objects: object_store::ObjectStore,
    pointers: kv::Store,
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
        Ok(Self { objects, pointers })
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
        let state = self.read_object(&pointer.object).await?;
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
            }),
            deleted_revision: None,
        })
    }

    async fn read_object(&self, name: &str) -> Result<State, StateStoreError> {
        let mut object = self
            .objects
            .get(name)
            .await
            .map_err(|err| nats("open state object")(err.to_string()))?;
        let mut decoder = Decoder::new();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let read = object
                .read(&mut buf)
                .await
                .map_err(|err| nats("read state object")(err.to_string()))?;
            if read == 0 {
                break;
            }
            decoder.push(&buf[..read])?;
        }
        Ok(decoder.finish()?)
    }

    /// Step 1 of a commit: stores `state` as a new object nothing points to yet.
    pub async fn write(&self, sync_id: &str, state: &State) -> Result<Written, StateStoreError> {
        let object = format!("{sync_id}/{}", backflow_platform::new_id());
        let mut reader = EncodeReader::new(Encoder::new(state));
        self.objects
            .put(object.as_str(), &mut reader)
            .await
            .map_err(|err| nats("write state object")(err.to_string()))?;
        Ok(Written {
            sync_id: sync_id.to_string(),
            object,
            entries: state.len() as u64,
            epoch: None,
        })
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
        })
    }

    /// Step 3: deletes the sync's objects other than `keep` (older versions, and objects a
    /// crash left between steps 1 and 2). Returns how many were deleted.
    pub async fn remove_stale(
        &self,
        sync_id: &str,
        keep: Option<&str>,
    ) -> Result<usize, StateStoreError> {
        let mut removed = 0;
        for name in self.object_names(sync_id).await? {
            if Some(name.as_str()) != keep {
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
        let version = match self.switch(&written, expected).await {
            Ok(version) => version,
            Err(err) => {
                if let Err(cleanup) = self.objects.delete(&written.object).await {
                    tracing::warn!(object = %written.object, error = %cleanup, "could not delete an unused diff state object");
                }
                return Err(err);
            }
        };
        if let Err(err) = self.remove_stale(sync_id, Some(&version.object)).await {
            // The new state is committed; stale objects go with the next commit.
            tracing::warn!(sync_id, error = %err, "could not delete stale diff state objects");
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

/// Feeds an [`Encoder`]'s pieces to the object store as it reads.
struct EncodeReader<'a> {
    encoder: Encoder<'a>,
    piece: Vec<u8>,
    at: usize,
}

impl<'a> EncodeReader<'a> {
    fn new(encoder: Encoder<'a>) -> Self {
        Self {
            encoder,
            piece: Vec::new(),
            at: 0,
        }
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
            if !this.encoder.next_piece(&mut this.piece) {
                return Poll::Ready(Ok(()));
            }
        }
        let take = (this.piece.len() - this.at).min(buf.remaining());
        buf.put_slice(&this.piece[this.at..this.at + take]);
        this.at += take;
        Poll::Ready(Ok(()))
    }
}
