//! Leases for running work, so that work a dead process held is noticed and redone.
//!
//! A process that starts a unit of work (a git-sync run, later a Reverse ETL run)
//! takes a lease on it in the same transaction that marks it running: a row in
//! `platform_leases` with the owner (this process) and an expiry. While the work runs,
//! [`Leases::keep_renewed`] pushes the expiry forward every [`LeasePolicy::renew_every`].
//! Finishing the work releases the lease in the transaction that records the outcome.
//! If the process is killed or its node is lost, renewals stop and the lease lapses;
//! every live replica runs [`run_reaper`] (once at start-up, then periodically), and
//! the first one to [`Leases::take_lapsed`] a lapsed lease marks the work failed
//! ("interrupted") and queues it again, in one transaction with taking the lease.
//!
//! The helper knows nothing of what is leased: a lease is `(kind, id)`. A service
//! supplies the kind (`"git_sync.run"`, `"retl.run"`) and the reap step. For Reverse
//! ETL runs, retl-scheduler builds one [`Leases`] with kind `"retl.run"`, calls
//! [`Leases::acquire`] where it moves a run to running, keeps the returned
//! [`RenewalGuard`] alive for the run's duration, calls [`Leases::release`] where it
//! records the result (a `false` answer means a reaper already failed the run: drop
//! the result), and spawns [`run_reaper`] with a closure that, in one transaction,
//! takes the lapsed lease, fails the run as interrupted and schedules a new one.
//! The table is a platform migration, so every service database has it.

use crate::db::{Database, Transaction};
use crate::shutdown::Shutdown;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The error text a reaped run records.
pub const INTERRUPTED: &str = "interrupted: the process running it stopped before it finished";

/// How long a lease lives without renewal, and how often it is renewed and reaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeasePolicy {
    pub ttl: Duration,
    pub renew_every: Duration,
    pub reap_every: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    #[error("lease ttl must be at least 300ms, got {0:?}")]
    TtlTooShort(Duration),
}

impl LeasePolicy {
    /// Renews three times per ttl (two renewals may fail before the lease lapses) and
    /// reaps twice per ttl.
    pub fn from_ttl(ttl: Duration) -> Result<Self, LeaseError> {
        if ttl < Duration::from_millis(300) {
            return Err(LeaseError::TtlTooShort(ttl));
        }
        Ok(Self {
            ttl,
            renew_every: ttl / 3,
            reap_every: ttl / 2,
        })
    }

    /// The expiry of a lease taken or renewed at `now_ms`.
    pub fn expires_at(&self, now_ms: i64) -> i64 {
        let ttl = i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX);
        now_ms.saturating_add(ttl)
    }
}

/// Whether a lease expiring at `expires_at_ms` has lapsed at `now_ms`.
pub fn is_lapsed(expires_at_ms: i64, now_ms: i64) -> bool {
    now_ms >= expires_at_ms
}

/// What a renewal found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    Renewed,
    /// The lease is gone or has another owner: a reaper took it.
    Lost,
}

/// The leases of one kind held by this process.
#[derive(Clone, Debug)]
pub struct Leases {
    db: Database,
    kind: &'static str,
    owner: Arc<str>,
    policy: LeasePolicy,
}

impl Leases {
    /// A holder with a fresh owner id (one per process and kind).
    pub fn new(db: Database, kind: &'static str, policy: LeasePolicy) -> Self {
        Self {
            db,
            kind,
            owner: Arc::from(crate::new_id()),
            policy,
        }
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn kind(&self) -> &'static str {
        self.kind
    }

    pub fn policy(&self) -> LeasePolicy {
        self.policy
    }

    /// Takes the lease on `id` in the caller's transaction. `false` if another owner
    /// holds a live lease on it (a lapsed one is taken over).
    pub async fn acquire(&self, tx: &mut Transaction<'_>, id: &str) -> Result<bool, sqlx::Error> {
        let now = crate::now_unix_ms();
        let done = sqlx::query(
            "INSERT INTO platform_leases (kind, id, owner, expires_at_ms, acquired_at_ms) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (kind, id) DO UPDATE SET owner = excluded.owner, expires_at_ms = excluded.expires_at_ms, acquired_at_ms = excluded.acquired_at_ms \
             WHERE platform_leases.expires_at_ms <= $5",
        )
        .bind(self.kind)
        .bind(id)
        .bind(&*self.owner)
        .bind(self.policy.expires_at(now))
        .bind(now)
        .execute(&mut **tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Pushes the expiry of this owner's lease on `id` forward.
    pub async fn renew(&self, id: &str) -> Result<Renewal, sqlx::Error> {
        let now = crate::now_unix_ms();
        let done = sqlx::query(
            "UPDATE platform_leases SET expires_at_ms = $1 WHERE kind = $2 AND id = $3 AND owner = $4",
        )
        .bind(self.policy.expires_at(now))
        .bind(self.kind)
        .bind(id)
        .bind(&*self.owner)
        .execute(self.db.pool())
        .await?;
        Ok(if done.rows_affected() == 1 {
            Renewal::Renewed
        } else {
            Renewal::Lost
        })
    }

    /// Drops this owner's lease on `id` in the caller's transaction (the one recording
    /// the outcome). `false` means the lease was lost: a reaper already failed the work,
    /// so the caller should roll back and drop its result.
    pub async fn release(&self, tx: &mut Transaction<'_>, id: &str) -> Result<bool, sqlx::Error> {
        let done =
            sqlx::query("DELETE FROM platform_leases WHERE kind = $1 AND id = $2 AND owner = $3")
                .bind(self.kind)
                .bind(id)
                .bind(&*self.owner)
                .execute(&mut **tx)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Ids whose lease of this kind has lapsed now (oldest expiry first).
    pub async fn lapsed(&self, limit: i64) -> Result<Vec<String>, sqlx::Error> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM platform_leases WHERE kind = $1 AND expires_at_ms <= $2 ORDER BY expires_at_ms LIMIT $3",
        )
        .bind(self.kind)
        .bind(crate::now_unix_ms())
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Removes a lapsed lease in the caller's transaction; `true` if this caller took
    /// it (and so must mark the work interrupted in the same transaction), `false` if
    /// it was renewed meanwhile or another reaper took it first.
    pub async fn take_lapsed(
        &self,
        tx: &mut Transaction<'_>,
        id: &str,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "DELETE FROM platform_leases WHERE kind = $1 AND id = $2 AND expires_at_ms <= $3",
        )
        .bind(self.kind)
        .bind(id)
        .bind(crate::now_unix_ms())
        .execute(&mut **tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Renews the lease on `id` every `renew_every` until the guard is dropped.
    pub fn keep_renewed(&self, id: &str) -> RenewalGuard {
        let lost = Arc::new(AtomicBool::new(false));
        let (leases, id, flag) = (self.clone(), id.to_string(), lost.clone());
        let handle = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(leases.policy.renew_every);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                match leases.renew(&id).await {
                    Ok(Renewal::Renewed) => {}
                    Ok(Renewal::Lost) => {
                        tracing::warn!(kind = leases.kind, id = %id, "lease lost; the work was taken over");
                        flag.store(true, Ordering::Release);
                        return;
                    }
                    Err(error) => {
                        tracing::warn!(kind = leases.kind, id = %id, %error, "lease renewal failed; will retry")
                    }
                }
            }
        });
        RenewalGuard { handle, lost }
    }
}

/// Keeps a lease renewed while alive.
#[derive(Debug)]
pub struct RenewalGuard {
    handle: tokio::task::JoinHandle<()>,
    lost: Arc<AtomicBool>,
}

impl RenewalGuard {
    /// Whether a renewal found the lease taken by a reaper.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Acquire)
    }
}

impl Drop for RenewalGuard {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// One reaper pass: calls `reap(id)` for every lapsed lease; returns how many `reap`
/// reported as reaped (`Ok(true)`).
pub async fn reap_once<F, Fut, E>(leases: &Leases, reap: &mut F) -> Result<usize, sqlx::Error>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<bool, E>>,
    E: std::fmt::Display,
{
    let mut reaped = 0;
    for id in leases.lapsed(100).await? {
        match reap(id.clone()).await {
            Ok(true) => reaped += 1,
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(kind = leases.kind, id = %id, %error, "reaping a lapsed lease failed")
            }
        }
    }
    Ok(reaped)
}

/// Reaps lapsed leases at start-up and then every `reap_every` until shutdown.
pub async fn run_reaper<F, Fut, E>(leases: Leases, shutdown: Shutdown, mut reap: F)
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<bool, E>>,
    E: std::fmt::Display,
{
    loop {
        match reap_once(&leases, &mut reap).await {
            Ok(0) => {}
            Ok(reaped) => tracing::info!(kind = leases.kind, reaped, "lapsed leases reaped"),
            Err(error) => tracing::warn!(kind = leases.kind, %error, "lease reaper pass failed"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(leases.policy.reap_every) => {},
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_derives_renew_and_reap_from_ttl() {
        let policy = LeasePolicy::from_ttl(Duration::from_secs(30)).expect("valid");
        assert_eq!(policy.renew_every, Duration::from_secs(10));
        assert_eq!(policy.reap_every, Duration::from_secs(15));
        assert_eq!(policy.expires_at(1_000), 31_000);
        assert_eq!(
            LeasePolicy::from_ttl(Duration::from_millis(100)),
            Err(LeaseError::TtlTooShort(Duration::from_millis(100)))
        );
    }

    #[test]
    fn expiry_saturates() {
        let policy = LeasePolicy::from_ttl(Duration::from_secs(1)).expect("valid");
        assert_eq!(policy.expires_at(i64::MAX - 1), i64::MAX);
    }

    #[test]
    fn a_lease_lapses_at_its_expiry() {
        assert!(!is_lapsed(10_000, 9_999));
        assert!(is_lapsed(10_000, 10_000));
        assert!(is_lapsed(10_000, 20_000));
    }

    static NONE: sqlx::migrate::Migrator = sqlx::migrate::Migrator::DEFAULT;

    async fn sqlite() -> Database {
        let dir = std::env::temp_dir().join(format!("backflow-lease-{}", crate::new_id()));
        let url = format!("sqlite://{}/lease.db", dir.display());
        let none = crate::db::Migrations {
            postgres: &NONE,
            sqlite: &NONE,
        };
        Database::connect(&url, &none).await.expect("sqlite")
    }

    /// Waits (up to 5 s) for a lapsed lease.
    async fn lapsed_within(leases: &Leases) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let lapsed = leases.lapsed(10).await.expect("lapsed");
            if !lapsed.is_empty() || tokio::time::Instant::now() > deadline {
                return lapsed;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn acquire_renew_release_and_reap() {
        let db = sqlite().await;
        let policy = LeasePolicy::from_ttl(Duration::from_millis(300)).expect("policy");
        let (mine, theirs) = (
            Leases::new(db.clone(), "test.run", policy),
            Leases::new(db.clone(), "test.run", policy),
        );
        let mut tx = db.begin().await.expect("tx");
        assert!(mine.acquire(&mut tx, "r1").await.expect("acquire"));
        assert!(
            !theirs.acquire(&mut tx, "r1").await.expect("held"),
            "a live lease is not taken over"
        );
        tx.commit().await.expect("commit");
        assert_eq!(mine.renew("r1").await.expect("renew"), Renewal::Renewed);
        assert_eq!(theirs.renew("r1").await.expect("renew"), Renewal::Lost);
        assert!(mine.lapsed(10).await.expect("lapsed").is_empty());

        // the owner stops renewing: the lease lapses and exactly one reaper takes it
        assert_eq!(lapsed_within(&theirs).await, vec!["r1".to_string()]);
        let mut tx = db.begin().await.expect("tx");
        assert!(theirs.take_lapsed(&mut tx, "r1").await.expect("take"));
        assert!(!theirs.take_lapsed(&mut tx, "r1").await.expect("gone"));
        tx.commit().await.expect("commit");
        assert_eq!(mine.renew("r1").await.expect("renew"), Renewal::Lost);
        let mut tx = db.begin().await.expect("tx");
        assert!(
            !mine.release(&mut tx, "r1").await.expect("release"),
            "a reaped lease is lost"
        );
        assert!(mine.acquire(&mut tx, "r2").await.expect("acquire"));
        assert!(mine.release(&mut tx, "r2").await.expect("release"));
        tx.commit().await.expect("commit");
    }

    #[tokio::test]
    async fn a_guard_keeps_the_lease_alive() {
        let db = sqlite().await;
        let policy = LeasePolicy::from_ttl(Duration::from_millis(300)).expect("policy");
        let leases = Leases::new(db.clone(), "test.run", policy);
        let mut tx = db.begin().await.expect("tx");
        assert!(leases.acquire(&mut tx, "r1").await.expect("acquire"));
        tx.commit().await.expect("commit");
        let guard = leases.keep_renewed("r1");
        // Over two ttls pass with the guard alive: renewals must have kept it live.
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(leases.lapsed(10).await.expect("lapsed").is_empty());
        assert!(!guard.is_lost());
        drop(guard);
        assert_eq!(lapsed_within(&leases).await, vec!["r1".to_string()]);
    }
}
