//! The scheduler as deployed: `App::build` on port 0, real NATS and SQLite. A sync
//! created and triggered over gRPC puts `cmd.retl.run_sync.<id>` on CMD_RETL through
//! the outbox relay; bad input and paused syncs get the documented status codes.

use backflow_platform::bus::streams;
use backflow_platform::bus::Bus;
use backflow_platform::shutdown::Shutdown;
use backflow_platform::testing;
use backflow_proto::retl::v1 as pb;
use backflow_retl_scheduler::{App, Config};
use pb::retl_scheduler_service_client::RetlSchedulerServiceClient;
use prost::Message;
use std::time::Duration;
use tonic::Code;

mod support;

fn create_request(
    name: &str,
    destination_id: &str,
    schedule: pb::schedule::Kind,
) -> pb::CreateSyncRequest {
    pb::CreateSyncRequest {
        workspace_id: "ws".into(),
        name: name.into(),
        retl_model_id: "model".into(),
        destination_id: destination_id.into(),
        mode: pb::SyncMode::Mirror as i32,
        mappings: vec![pb::FieldMapping {
            source_column: "id".into(),
            destination_field: "external_id".into(),
            ..Default::default()
        }],
        schedule: Some(pb::Schedule {
            kind: Some(schedule),
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn trigger_over_grpc_queues_a_command_on_nats() -> anyhow::Result<()> {
    let nats = testing::fresh_nats("retlapp");
    let authority = testing::TokenAuthority::start().await?;
    let config = Config {
        database_url: testing::fresh_sqlite_url("retl"),
        grpc_listen: "127.0.0.1:0".into(),
        credentials_url: authority.url.clone(),
        catalog_url: "http://127.0.0.1:9".into(),
        tick_poll_ms: 1000,
        service_token: authority.service_token.clone().into(),
        tls: Default::default(),
        // this test watches the queued command itself: no executor takes it
        executor: backflow_retl_scheduler::config::ExecutorConfig {
            enabled: false,
            ..Default::default()
        },
    };
    let overrides = backflow_retl_scheduler::app::Overrides {
        models: Some(support::models(&["ws"], "model").shared()),
        ..Default::default()
    };
    let app = App::build_with(config, &nats, overrides).await?;
    let addr = app
        .grpc_addr()
        .ok_or_else(|| anyhow::anyhow!("no grpc address"))?;
    let shutdown = Shutdown::new();
    let server = tokio::spawn(app.run(shutdown.clone()));
    let token = authority.mint(None, backflow_platform::auth::Role::Admin);
    let mut client = RetlSchedulerServiceClient::new(
        testing::authed_channel(&format!("http://{addr}"), &token).await?,
    );

    let hook = pb::CreateDestinationRequest {
        workspace_id: "ws".into(),
        name: "hook".into(),
        kind: pb::DestinationKind::Webhook as i32,
        settings: [("url".to_string(), "http://127.0.0.1:9/hook".to_string())]
            .into_iter()
            .collect(),
        skip_test: true,
        ..Default::default()
    };
    let destination = client
        .create_destination(hook.clone())
        .await?
        .into_inner()
        .destination
        .ok_or_else(|| anyhow::anyhow!("no destination"))?;
    assert_eq!(destination.kind, pb::DestinationKind::Webhook as i32);
    assert!(destination.last_test.is_none());
    let dest = destination.id.clone();
    // a failing connection test refuses the destination; secrets never go in settings
    let mut tested = hook.clone();
    tested.name = "tested".into();
    tested.skip_test = false;
    let refused = client.create_destination(tested).await;
    assert_eq!(
        refused.err().map(|status| status.code()),
        Some(Code::FailedPrecondition)
    );
    let mut leaky = hook.clone();
    leaky.name = "leaky".into();
    leaky.settings.insert("password".into(), "hunter2".into());
    let refused = client.create_destination(leaky).await;
    assert_eq!(
        refused.err().map(|status| status.code()),
        Some(Code::InvalidArgument)
    );

    let cron = pb::schedule::Kind::Cron(pb::CronSchedule {
        expression: "30 6 * * MON-FRI".into(),
        time_zone: "America/New_York".into(),
    });
    let sync = client
        .create_sync(create_request("nightly", &dest, cron))
        .await?
        .into_inner()
        .sync
        .ok_or_else(|| anyhow::anyhow!("no sync"))?;
    let run = client
        .trigger_sync(pb::TriggerSyncRequest {
            workspace_id: "ws".into(),
            sync_id: sync.id.clone(),
        })
        .await?
        .into_inner()
        .run
        .ok_or_else(|| anyhow::anyhow!("no run"))?;
    assert_eq!(run.status, pb::RunStatus::Queued as i32);

    // the relay publishes the command to the work queue
    let bus = Bus::connect(&nats).await?;
    let stream = bus
        .jetstream()
        .get_stream(bus.stream_name(&streams::CMD_RETL))
        .await?;
    let subject = bus.subject(&format!("cmd.retl.run_sync.{}", sync.id));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let message = loop {
        if let Ok(message) = stream.get_last_raw_message_by_subject(&subject).await {
            break message;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no command on {subject}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let command = pb::RunSyncCommand::decode(message.payload.as_ref())?;
    assert_eq!(command.run_id, run.id);
    assert_eq!(command.workspace_id, "ws");

    // status codes
    let interval = pb::schedule::Kind::IntervalSeconds(30);
    let refused = client
        .create_sync(create_request("too often", &dest, interval))
        .await;
    assert_eq!(
        refused.err().map(|status| status.code()),
        Some(Code::InvalidArgument)
    );
    let bad_zone = pb::schedule::Kind::Cron(pb::CronSchedule {
        expression: "0 * * * *".into(),
        time_zone: "Nowhere/Special".into(),
    });
    let refused = client
        .create_sync(create_request("bad zone", &dest, bad_zone))
        .await;
    assert_eq!(
        refused.err().map(|status| status.code()),
        Some(Code::InvalidArgument)
    );
    // each refusal: its code, and a lowercase message naming the bad value
    let hourly = || pb::schedule::Kind::IntervalSeconds(3600);
    let mut unknown_model = create_request("unknown model", &dest, hourly());
    unknown_model.retl_model_id = "no-such-model".into();
    let mut unknown_column = create_request("unknown column", &dest, hourly());
    unknown_column.mappings[0].source_column = "nope".into();
    let mut twice = create_request("twice", &dest, hourly());
    twice.mappings.push(pb::FieldMapping {
        destination_field: "external_id".into(),
        constant: Some("x".into()),
        ..Default::default()
    });
    let bad_cron = pb::schedule::Kind::Cron(pb::CronSchedule {
        expression: "0 25 * * *".into(),
        time_zone: String::new(),
    });
    let cases = [
        (
            create_request("unknown destination", "no-such-destination", hourly()),
            Code::NotFound,
            "destination no-such-destination not found",
        ),
        (
            unknown_model,
            Code::NotFound,
            "reverse etl model no-such-model not found",
        ),
        (
            unknown_column,
            Code::InvalidArgument,
            "\"nope\" is not a column",
        ),
        (
            twice,
            Code::InvalidArgument,
            "\"external_id\" is mapped more than once",
        ),
        (
            create_request("bad cron", &dest, bad_cron),
            Code::InvalidArgument,
            "\"0 25 * * *\" is not a valid five-field cron expression",
        ),
        (
            create_request("too often", &dest, pb::schedule::Kind::IntervalSeconds(59)),
            Code::InvalidArgument,
            "got 59",
        ),
    ];
    for (request, code, needle) in cases {
        let name = request.name.clone();
        let status = client
            .create_sync(request)
            .await
            .err()
            .ok_or_else(|| anyhow::anyhow!("{name} was created"))?;
        assert_eq!(status.code(), code, "{name}: {}", status.message());
        assert!(
            status.message().contains(needle)
                && status
                    .message()
                    .chars()
                    .next()
                    .is_some_and(char::is_lowercase),
            "{name}: {}",
            status.message()
        );
    }
    // a queued run is not awaiting approval; a cancelled one cannot be cancelled again
    let approve = |run_id: String| pb::ApproveRunRequest {
        workspace_id: "ws".into(),
        run_id,
    };
    let status = client
        .approve_run(approve(run.id.clone()))
        .await
        .err()
        .ok_or_else(|| anyhow::anyhow!("a queued run was approved"))?;
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status
            .message()
            .contains(&format!("run {} is not awaiting approval (queued)", run.id)),
        "{}",
        status.message()
    );
    let cancel = |run_id: String| pb::CancelRunRequest {
        workspace_id: "ws".into(),
        run_id,
    };
    client.cancel_run(cancel(run.id.clone())).await?;
    let status = client
        .cancel_run(cancel(run.id.clone()))
        .await
        .err()
        .ok_or_else(|| anyhow::anyhow!("a cancelled run was cancelled again"))?;
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status
            .message()
            .contains(&format!("run {} has already ended (cancelled)", run.id)),
        "{}",
        status.message()
    );
    let status = client
        .approve_run(approve("no-such-run".into()))
        .await
        .err()
        .ok_or_else(|| anyhow::anyhow!("an unknown run was approved"))?;
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().contains("no-such-run"));
    client
        .pause_sync(pb::PauseSyncRequest {
            workspace_id: "ws".into(),
            sync_id: sync.id.clone(),
        })
        .await?;
    let refused = client
        .trigger_sync(pb::TriggerSyncRequest {
            workspace_id: "ws".into(),
            sync_id: sync.id.clone(),
        })
        .await;
    assert_eq!(
        refused.err().map(|status| status.code()),
        Some(Code::FailedPrecondition)
    );
    let missing = client
        .get_sync(pb::GetSyncRequest {
            workspace_id: "other".into(),
            sync_id: sync.id.clone(),
        })
        .await;
    assert_eq!(
        missing.err().map(|status| status.code()),
        Some(Code::NotFound)
    );
    let runs = client
        .list_runs(pb::ListRunsRequest {
            workspace_id: "ws".into(),
            sync_id: sync.id.clone(),
            limit: 0,
        })
        .await?
        .into_inner()
        .runs;
    assert_eq!(runs.len(), 1);

    // lifecycle over the wire: update, dry run, reset, delete
    let updated = client
        .update_sync(pb::UpdateSyncRequest {
            workspace_id: "ws".into(),
            sync_id: sync.id.clone(),
            mappings: vec![pb::FieldMapping {
                destination_field: "source".into(),
                constant: Some("backflow".into()),
                ..Default::default()
            }],
            guards: Some(pb::SyncGuards {
                max_delete_share: 0.9,
                allow_empty_extract: false,
            }),
            ..Default::default()
        })
        .await?
        .into_inner()
        .sync
        .ok_or_else(|| anyhow::anyhow!("no sync"))?;
    assert_eq!(updated.mappings.len(), 2);
    assert_eq!(updated.guards.map(|g| g.max_delete_share), Some(0.9));
    assert_eq!(updated.version, sync.version + 2);
    let dry = client
        .dry_run_sync(pb::DryRunSyncRequest {
            workspace_id: "ws".into(),
            sync_id: sync.id.clone(),
        })
        .await?
        .into_inner()
        .run
        .ok_or_else(|| anyhow::anyhow!("no run"))?;
    assert!(dry.dry_run);
    client
        .reset_sync_state(pb::ResetSyncStateRequest {
            workspace_id: "ws".into(),
            sync_id: sync.id.clone(),
        })
        .await?;
    let in_use = client
        .delete_destination(pb::DeleteDestinationRequest {
            workspace_id: "ws".into(),
            destination_id: dest.clone(),
        })
        .await;
    assert_eq!(
        in_use.err().map(|status| status.code()),
        Some(Code::FailedPrecondition)
    );
    client
        .delete_sync(pb::DeleteSyncRequest {
            workspace_id: "ws".into(),
            sync_id: sync.id.clone(),
        })
        .await?;
    client
        .delete_destination(pb::DeleteDestinationRequest {
            workspace_id: "ws".into(),
            destination_id: dest.clone(),
        })
        .await?;

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), server).await???;
    Ok(())
}
