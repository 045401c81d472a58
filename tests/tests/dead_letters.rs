//! Issue 7, acceptance 5 (no silent drops), on real NATS and both databases: a handler
//! that always fails exhausts its deliveries → the message is kept as a dead letter
//! with its subject, payload, headers, error and delivery count, listed over gRPC
//! (`backflow.ops.v1.DeadLetterService`); after the cause is fixed, a replay is handled
//! exactly once, and a second replay changes nothing (the inbox).

use backflow_platform::bus::{streams, Bus, ConsumerSpec, Delivery, Outcome};
use backflow_platform::db::Database;
use backflow_platform::dead_letter::{DeadLetterReason, DeadLetters};
use backflow_platform::dead_letter_grpc::{DeadLetterGrpc, Target};
use backflow_platform::shutdown::Shutdown;
use backflow_platform::testing;
use backflow_proto::ops::v1 as pb;
use backflow_tests::eventually;
use pb::dead_letter_service_client::DeadLetterServiceClient;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const CONSUMER: &str = "dead-letter-test";
const MAX_DELIVER: i64 = 3;

#[derive(Default)]
struct Handler {
    fixed: AtomicBool,
    attempts: AtomicUsize,
    handled: AtomicUsize,
}

async fn handle(handler: &Handler, db: &Database, delivery: Delivery) -> Outcome {
    handler.attempts.fetch_add(1, Ordering::SeqCst);
    if !handler.fixed.load(Ordering::SeqCst) {
        return Outcome::Retry {
            delay: Duration::from_millis(20),
            error: format!("warehouse unreachable (attempt {})", delivery.delivered),
        };
    }
    let claimed = async {
        let mut tx = db.begin().await?;
        let fresh =
            backflow_platform::inbox::claim(&mut tx, CONSUMER, &delivery.message_id).await?;
        tx.commit().await?;
        Ok::<bool, sqlx::Error>(fresh)
    }
    .await;
    match claimed {
        Ok(true) => {
            handler.handled.fetch_add(1, Ordering::SeqCst);
            Outcome::Done
        }
        Ok(false) => Outcome::Done,
        Err(error) => Outcome::Retry {
            delay: Duration::from_millis(20),
            error: error.to_string(),
        },
    }
}

async fn exhaust_and_replay(database_url: &str) -> anyhow::Result<()> {
    let db = Database::connect(database_url, &backflow_model_catalog::app::MIGRATIONS).await?;
    let nats = testing::fresh_nats("deadletters");
    let store = DeadLetters::new("model_catalog", db.clone());
    let bus = Bus::connect(&nats).await?.with_dead_letters(store.clone());
    let handler = Arc::new(Handler::default());
    let shutdown = Shutdown::new();

    let mut spec = ConsumerSpec::new(streams::EVT_GITSYNC, CONSUMER, "evt.gitsync.test.>");
    spec.max_deliver = MAX_DELIVER;
    spec.ack_wait = Duration::from_secs(5);
    bus.ensure_consumer(&spec).await?;
    let consuming = {
        let (bus, handler, db, shutdown) =
            (bus.clone(), handler.clone(), db.clone(), shutdown.clone());
        tokio::spawn(async move {
            bus.run_consumer(
                spec,
                |delivery| {
                    let (handler, db) = (handler.clone(), db.clone());
                    async move { handle(&handler, &db, delivery).await }
                },
                shutdown,
            )
            .await;
        })
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let grpc = DeadLetterGrpc::new(vec![Target {
        store: store.clone(),
        bus: bus.clone(),
    }]);
    let serving = {
        let shutdown = shutdown.clone();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(grpc.into_server())
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::TcpListenerStream::new(listener),
                    async move { shutdown.cancelled().await },
                ),
        )
    };

    bus.publish(
        "evt.gitsync.test.one",
        "evt-dead-1",
        b"payload-1".to_vec().into(),
    )
    .await?;

    // every delivery fails → one dead letter, no more deliveries
    let letters = eventually(Duration::from_secs(30), "the dead letter", || {
        let store = store.clone();
        async move { store.list(false, 10).await.ok().filter(|l| !l.is_empty()) }
    })
    .await?;
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(letter.consumer, CONSUMER);
    assert_eq!(letter.subject, "evt.gitsync.test.one");
    assert_eq!(letter.message_id, "evt-dead-1");
    assert_eq!(letter.payload, b"payload-1");
    assert_eq!(letter.delivery_count, MAX_DELIVER);
    assert_eq!(letter.reason, DeadLetterReason::Exhausted);
    assert_eq!(letter.error, "warehouse unreachable (attempt 3)");
    assert_eq!(
        letter.headers.get("Backflow-Event-Id").map(String::as_str),
        Some("evt-dead-1")
    );
    assert_eq!(letter.replayed_at_ms, None);
    assert_eq!(
        handler.attempts.load(Ordering::SeqCst),
        MAX_DELIVER as usize
    );
    assert_eq!(handler.handled.load(Ordering::SeqCst), 0);

    // listed over gRPC, by service name in either spelling
    let mut client = DeadLetterServiceClient::connect(format!("http://{addr}")).await?;
    let listed = client
        .list_dead_letters(pb::ListDeadLettersRequest {
            service: "model-catalog".into(),
            include_replayed: false,
            limit: 0,
        })
        .await?
        .into_inner()
        .dead_letters;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, letter.id);
    assert_eq!(listed[0].service, "model_catalog");
    assert_eq!(listed[0].error, "warehouse unreachable (attempt 3)");
    assert_eq!(listed[0].reason, "exhausted");
    let unknown = client
        .list_dead_letters(pb::ListDeadLettersRequest {
            service: "nope".into(),
            ..Default::default()
        })
        .await
        .err()
        .ok_or_else(|| anyhow::anyhow!("an unknown service must be refused"))?;
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    assert!(
        unknown.message().contains("model_catalog"),
        "{}",
        unknown.message()
    );

    // fixed → replay → handled once
    handler.fixed.store(true, Ordering::SeqCst);
    let attempts_before = handler.attempts.load(Ordering::SeqCst);
    let replayed = client
        .replay_dead_letter(pb::ReplayDeadLetterRequest {
            service: String::new(),
            id: letter.id.clone(),
        })
        .await?
        .into_inner()
        .dead_letter
        .ok_or_else(|| anyhow::anyhow!("no dead letter"))?;
    assert_eq!(replayed.replay_count, 1);
    assert!(replayed.replayed_at_ms > 0);
    eventually(Duration::from_secs(30), "the replay handled", || {
        let handler = handler.clone();
        async move { (handler.handled.load(Ordering::SeqCst) == 1).then_some(()) }
    })
    .await?;
    assert_eq!(handler.attempts.load(Ordering::SeqCst), attempts_before + 1);
    assert!(
        store.list(false, 10).await?.is_empty(),
        "replayed ones are not pending"
    );
    assert_eq!(store.list(true, 10).await?.len(), 1);

    // a second replay is delivered but not handled again
    client
        .replay_dead_letter(pb::ReplayDeadLetterRequest {
            service: "model_catalog".into(),
            id: letter.id.clone(),
        })
        .await?;
    eventually(Duration::from_secs(30), "the second replay delivered", || {
        let handler = handler.clone();
        async move {
            (handler.attempts.load(Ordering::SeqCst) == attempts_before + 2).then_some(())
        }
    })
    .await?;
    assert_eq!(handler.handled.load(Ordering::SeqCst), 1);
    let missing = client
        .replay_dead_letter(pb::ReplayDeadLetterRequest {
            service: String::new(),
            id: "no-such-id".into(),
        })
        .await
        .err()
        .ok_or_else(|| anyhow::anyhow!("an unknown id must be refused"))?;
    assert_eq!(missing.code(), tonic::Code::NotFound);

    shutdown.cancel();
    consuming.await?;
    serving.await??;
    db.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_message_is_kept_and_replayed_once_on_sqlite() -> anyhow::Result<()> {
    exhaust_and_replay(&testing::fresh_sqlite_url("deadletters")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_message_is_kept_and_replayed_once_on_postgres() -> anyhow::Result<()> {
    exhaust_and_replay(&testing::fresh_postgres_url("deadletters").await?).await
}
