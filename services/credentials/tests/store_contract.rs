//! The secret store behaves the same on SQLite and PostgreSQL, and never holds
//! material in clear.

use backflow_credentials::app::MIGRATIONS;
use backflow_credentials::envelope::MasterKey;
use backflow_credentials::secrets::{NewSecret, Secrets};
use backflow_credentials::store::SecretStore;
use backflow_credentials::CredentialsError;
use backflow_platform::db::Database;
use backflow_platform::outbox::{pending_count, Outbox};
use backflow_platform::testing;

const MATERIAL: &[u8] = b"ghp_ClearTextTokenThatMustNeverBeStored";

async fn secrets_on(url: &str) -> anyhow::Result<Secrets> {
    let db = Database::connect(url, &MIGRATIONS).await?;
    let store = SecretStore::new(db, Outbox::new());
    let master = MasterKey::from_bytes(&[42; 32])?;
    Ok(Secrets::new(store, master, vec!["svc-token".into()]))
}

fn new_secret(workspace: &str, name: &str) -> NewSecret {
    NewSecret {
        workspace_id: workspace.into(),
        name: name.into(),
        kind: 2,
        material: MATERIAL.to_vec(),
        attributes: [("host".to_string(), "github.com".to_string())].into(),
    }
}

async fn contract(url: &str) -> anyhow::Result<()> {
    let secrets = secrets_on(url).await?;
    let created = secrets.create(new_secret("ws-a", "github")).await?;
    assert_eq!(created.current_version, 1);

    // names are unique per workspace, not globally
    assert!(matches!(
        secrets.create(new_secret("ws-a", "github")).await,
        Err(CredentialsError::AlreadyExists(_))
    ));
    secrets.create(new_secret("ws-b", "github")).await?;

    // workspace isolation
    assert_eq!(secrets.list("ws-a").await?.len(), 1);
    assert!(matches!(
        secrets.get("ws-b", &created.id).await,
        Err(CredentialsError::NotFound(_))
    ));

    // rotation keeps old versions and announces itself through the outbox
    let rotated = secrets.rotate("ws-a", &created.id, b"second").await?;
    assert_eq!(rotated.current_version, 2);
    assert_eq!(pending_count(secrets.store().database()).await?, 1);
    let current = secrets.resolve("ws-a", &created.id, 0, "test").await?;
    assert_eq!(current.material, b"second");
    let first = secrets.resolve("ws-a", &created.id, 1, "test").await?;
    assert_eq!(first.material, MATERIAL);
    assert_eq!(
        secrets.store().access_log("ws-a", &created.id).await?.len(),
        2
    );

    // bad input is refused with a clear error
    let mut empty = new_secret("ws-a", "empty");
    empty.material.clear();
    assert!(matches!(
        secrets.create(empty).await,
        Err(CredentialsError::InvalidArgument(_))
    ));
    assert!(matches!(
        secrets.rotate("ws-a", "missing", b"x").await,
        Err(CredentialsError::NotFound(_))
    ));

    // no clear material anywhere in the stored rows
    let rows: Vec<(Vec<u8>, Vec<u8>)> =
        sqlx::query_as("SELECT wrapped_data_key, ciphertext FROM secret_versions")
            .fetch_all(secrets.store().database().pool())
            .await?;
    assert_eq!(rows.len(), 3);
    for (wrapped, ciphertext) in rows {
        for blob in [wrapped, ciphertext] {
            assert!(!blob
                .windows(MATERIAL.len())
                .any(|window| window == MATERIAL));
            assert!(!blob.windows(6).any(|window| window == b"second"));
        }
    }

    secrets.delete("ws-a", &created.id).await?;
    assert!(secrets.list("ws-a").await?.is_empty());
    assert!(matches!(
        secrets.delete("ws-a", &created.id).await,
        Err(CredentialsError::NotFound(_))
    ));
    Ok(())
}

#[tokio::test]
async fn store_contract_on_sqlite_and_postgres() -> anyhow::Result<()> {
    for url in testing::both_backends("credentials").await? {
        contract(&url)
            .await
            .map_err(|err| anyhow::anyhow!("{url}: {err:#}"))?;
    }
    Ok(())
}

#[tokio::test]
async fn service_token_is_required_to_resolve() -> anyhow::Result<()> {
    let secrets = secrets_on(&testing::fresh_sqlite_url("credentials")).await?;
    assert!(secrets.authorize_service(None).is_err());
    assert!(secrets.authorize_service(Some("wrong")).is_err());
    assert!(secrets.authorize_service(Some("svc-token")).is_ok());
    Ok(())
}
