//! The credentials service over its real gRPC API: GitHub App installation tokens
//! exchanged with a local stand-in of GitHub (JWT signature and claims checked,
//! tokens cached per secret version, one exchange for concurrent callers), errors
//! mapped to clear statuses, and the raw database never holding material in clear.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed setup step should panic with its message

mod support;

use backflow_credentials::{App, Config};
use backflow_platform::shutdown::Shutdown;
use backflow_platform::testing;
use backflow_platform::testing::AuthedChannel as Channel;
use backflow_proto::credentials::v1 as pb;
use pb::credentials_service_client::CredentialsServiceClient;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use support::fake_github::FakeGitHub;
use support::keygen;
use tonic::{Code, Request};

const WS: &str = "ws-grpc";
const APP_ID: &str = "12345";
const INSTALLATION: u64 = 777;

struct Service {
    client: CredentialsServiceClient<Channel>,
    database_url: String,
    shutdown: Shutdown,
}

impl Drop for Service {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn start() -> anyhow::Result<Service> {
    let database_url = testing::fresh_sqlite_url("credentials");
    let config = Config {
        database_url: database_url.clone(),
        grpc_listen: "127.0.0.1:0".into(),
        master_key_file: String::new(),
        master_key: backflow_credentials::envelope::MasterKey::generate_encoded().into(),
        create_master_key_if_missing: false,
        service_tokens: vec!["svc".into()],
        github_http_timeout_ms: 5_000,
        github_token_refresh_margin_s: 300,
        tls: Default::default(),
    };
    let app = App::build(config, &testing::fresh_nats("credentials")).await?;
    let addr = app
        .grpc_addr()
        .ok_or_else(|| anyhow::anyhow!("no grpc address"))?;
    let shutdown = Shutdown::new();
    let token = app
        .tokens()
        .create(None, backflow_platform::auth::Role::Admin, "test operator")
        .await?
        .token;
    tokio::spawn(app.run(shutdown.clone()));
    let client = CredentialsServiceClient::new(
        testing::authed_channel(&format!("http://{addr}"), &token).await?,
    );
    Ok(Service {
        client,
        database_url,
        shutdown,
    })
}

fn as_service<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", "Bearer svc".parse().expect("ascii header"));
    request
}

async fn create(
    client: &mut CredentialsServiceClient<Channel>,
    name: &str,
    kind: pb::SecretKind,
    material: &[u8],
    attributes: &[(&str, String)],
) -> Result<pb::Secret, tonic::Status> {
    let response = client
        .create_secret(pb::CreateSecretRequest {
            workspace_id: WS.into(),
            name: name.into(),
            kind: kind as i32,
            material: material.to_vec(),
            attributes: attributes
                .iter()
                .map(|(key, value)| (key.to_string(), value.clone()))
                .collect::<HashMap<_, _>>(),
        })
        .await?;
    response
        .into_inner()
        .secret
        .ok_or_else(|| tonic::Status::internal("no secret"))
}

fn app_attributes(api_url: &str, installation_id: u64) -> Vec<(&'static str, String)> {
    vec![
        ("app_id", APP_ID.to_string()),
        ("installation_id", installation_id.to_string()),
        ("api_url", api_url.to_string()),
    ]
}

async fn issue(
    client: &mut CredentialsServiceClient<Channel>,
    secret_id: &str,
) -> Result<pb::IssueGitHubInstallationTokenResponse, tonic::Status> {
    Ok(client
        .issue_git_hub_installation_token(as_service(pb::IssueGitHubInstallationTokenRequest {
            workspace_id: WS.into(),
            secret_id: secret_id.into(),
            purpose: "git-sync clone".into(),
        }))
        .await?
        .into_inner())
}

/// Every byte of the SQLite database (file, WAL and shared memory).
fn raw_database(url: &str) -> Vec<u8> {
    let path = url
        .trim_start_matches("sqlite://")
        .split('?')
        .next()
        .unwrap_or_default()
        .to_string();
    ["", "-wal", "-shm"]
        .iter()
        .flat_map(|suffix| std::fs::read(format!("{path}{suffix}")).unwrap_or_default())
        .collect()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[tokio::test]
async fn installation_tokens_are_exchanged_once_and_cached() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (app_key, _) = keygen(dir.path(), "app", "rsa", &["-b", "2048", "-m", "PEM"], "");
    let github = FakeGitHub::start(APP_ID, INSTALLATION, &app_key).await;
    let mut service = start().await?;
    let client = &mut service.client;
    let attributes = app_attributes(&github.api_url(), INSTALLATION);
    let secret = create(
        client,
        "app",
        pb::SecretKind::GithubApp,
        app_key.as_bytes(),
        &attributes,
    )
    .await?;

    let first = issue(client, &secret.id).await?;
    assert!(first.token.starts_with("ghs_"));
    let in_an_hour = backflow_platform::now_unix_ms() + 3_600_000;
    assert!((first.expires_at_unix_ms - in_an_hour).abs() < 10_000);
    let second = issue(client, &secret.id).await?;
    assert_eq!(second.token, first.token);
    assert_eq!(
        github.requests.load(Ordering::SeqCst),
        1,
        "the second call is served from the cache"
    );

    // concurrent callers for an uncached secret share one exchange
    let other = create(
        client,
        "app-2",
        pb::SecretKind::GithubApp,
        app_key.as_bytes(),
        &attributes,
    )
    .await?;
    let calls = (0..4).map(|_| {
        let mut client = client.clone();
        let id = other.id.clone();
        async move { issue(&mut client, &id).await }
    });
    let tokens = futures_join(calls).await?;
    assert!(tokens.windows(2).all(|pair| pair[0].token == pair[1].token));
    assert_ne!(tokens[0].token, first.token);
    assert_eq!(github.requests.load(Ordering::SeqCst), 2);

    // a new version gets its own token
    client
        .rotate_secret(pb::RotateSecretRequest {
            workspace_id: WS.into(),
            secret_id: secret.id.clone(),
            material: app_key.as_bytes().to_vec(),
        })
        .await?;
    let rotated = issue(client, &secret.id).await?;
    assert_ne!(rotated.token, first.token);
    assert_eq!(github.issued.load(Ordering::SeqCst), 3);

    // neither the key nor any token is stored in clear
    let raw = raw_database(&service.database_url);
    assert!(!raw.is_empty());
    assert!(
        !support::contains_key_body(&raw, &app_key),
        "app key in clear in the database"
    );
    for token in [&first.token, &tokens[0].token, &rotated.token] {
        assert!(!contains(&raw, token), "installation token in the database");
    }
    Ok(())
}

async fn futures_join<F, T>(calls: impl Iterator<Item = F>) -> Result<Vec<T>, tonic::Status>
where
    F: std::future::Future<Output = Result<T, tonic::Status>> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = calls.map(tokio::spawn).collect();
    let mut results = Vec::new();
    for handle in handles {
        results.push(
            handle
                .await
                .map_err(|err| tonic::Status::internal(err.to_string()))??,
        );
    }
    Ok(results)
}

#[tokio::test]
async fn github_and_caller_errors_are_clear() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (app_key, _) = keygen(dir.path(), "app", "rsa", &["-b", "2048", "-m", "PEM"], "");
    let (wrong_key, _) = keygen(dir.path(), "wrong", "rsa", &["-b", "2048", "-m", "PEM"], "");
    let github = FakeGitHub::start(APP_ID, INSTALLATION, &app_key).await;
    let mut service = start().await?;
    let client = &mut service.client;

    // a key GitHub does not know: 401 with GitHub's message
    let wrong = create(
        client,
        "wrong",
        pb::SecretKind::GithubApp,
        wrong_key.as_bytes(),
        &app_attributes(&github.api_url(), INSTALLATION),
    )
    .await?;
    let status = issue(client, &wrong.id)
        .await
        .expect_err("wrong key is rejected");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(
        status.message(),
        "github rejected the app credentials (401): A JSON web token could not be decoded"
    );
    assert!(!support::contains_key_body(
        status.message().as_bytes(),
        &wrong_key
    ));

    // an installation the app cannot see: 404
    let missing = create(
        client,
        "missing",
        pb::SecretKind::GithubApp,
        app_key.as_bytes(),
        &app_attributes(&github.api_url(), 1),
    )
    .await?;
    let status = issue(client, &missing.id)
        .await
        .expect_err("unknown installation");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains("installation 1") && status.message().contains("404"),
        "{status:?}"
    );

    // GitHub unreachable: unavailable, retryable
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await?
        .local_addr()?;
    let offline = create(
        client,
        "offline",
        pb::SecretKind::GithubApp,
        app_key.as_bytes(),
        &app_attributes(&format!("http://{closed}"), INSTALLATION),
    )
    .await?;
    let status = issue(client, &offline.id)
        .await
        .expect_err("github unreachable");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");

    // not a github app
    let token = create(client, "token", pb::SecretKind::GitToken, b"ghp_abc", &[]).await?;
    let status = issue(client, &token.id).await.expect_err("not an app");
    assert_eq!(status.code(), Code::FailedPrecondition);

    // only trusted services may ask
    let request = pb::IssueGitHubInstallationTokenRequest {
        workspace_id: WS.into(),
        secret_id: wrong.id.clone(),
        purpose: "tool".into(),
    };
    // (the client sends an operator admin token: a tool token, refused here)
    let status = client
        .issue_git_hub_installation_token(request.clone())
        .await
        .expect_err("no service token");
    assert_eq!(status.code(), Code::PermissionDenied);
    let mut bad = Request::new(request);
    bad.metadata_mut()
        .insert("authorization", "Bearer nope".parse()?);
    let status = client
        .issue_git_hub_installation_token(bad)
        .await
        .expect_err("wrong token");
    assert_eq!(status.code(), Code::Unauthenticated);

    // invalid material is refused at create, without echoing it
    let status = create(
        client,
        "bad",
        pb::SecretKind::GithubApp,
        b"-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0\n-----END RSA PRIVATE KEY-----",
        &app_attributes(&github.api_url(), INSTALLATION),
    )
    .await
    .expect_err("junk key");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(!status.message().contains("c2VjcmV0"));
    Ok(())
}

#[tokio::test]
async fn ssh_keys_resolve_with_their_attributes_and_never_sit_in_clear() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let passphrase = "a passphrase only the service knows";
    let (key, _) = keygen(dir.path(), "deploy", "ed25519", &[], passphrase);
    let known_hosts = support::known_hosts_line(dir.path());
    let material = serde_json::json!({"private_key": key, "passphrase": passphrase}).to_string();
    let mut service = start().await?;
    let client = &mut service.client;
    let secret = create(
        client,
        "deploy-key",
        pb::SecretKind::SshPrivateKey,
        material.as_bytes(),
        &[("known_hosts", known_hosts.clone())],
    )
    .await?;
    assert_eq!(secret.attributes["key_type"], "ed25519");

    let resolved = client
        .resolve_secret(as_service(pb::ResolveSecretRequest {
            workspace_id: WS.into(),
            secret_id: secret.id.clone(),
            version: 0,
            purpose: "git-sync clone".into(),
        }))
        .await?
        .into_inner();
    assert_eq!(resolved.material, material.as_bytes());
    assert_eq!(resolved.attributes["known_hosts"], known_hosts);

    // a git token gets its username; a bad one is refused without echo
    let token = create(
        client,
        "gitlab",
        pb::SecretKind::GitToken,
        b"glpat-TokenValue",
        &[("provider", "gitlab".to_string())],
    )
    .await?;
    assert_eq!(token.attributes["username"], "oauth2");
    let status = create(
        client,
        "newline",
        pb::SecretKind::GitToken,
        b"glpat-OtherValue\n",
        &[],
    )
    .await
    .expect_err("newline");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(!status.message().contains("glpat"));

    let raw = raw_database(&service.database_url);
    assert!(
        !support::contains_key_body(&raw, &key),
        "ssh key in clear in the database"
    );
    assert!(
        !contains(&raw, passphrase),
        "passphrase in clear in the database"
    );
    assert!(
        !contains(&raw, "glpat-TokenValue"),
        "git token in clear in the database"
    );
    Ok(())
}

/// Issue 7.7: the pinned `known_hosts` of an SSH key changes without re-entering the
/// key (same material, same version), validated like at create; what cannot change
/// without new material is refused by name.
#[tokio::test]
async fn known_hosts_can_be_re_pinned_without_the_key() -> anyhow::Result<()> {
    let (dir, other) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let (key, _) = keygen(dir.path(), "deploy", "ed25519", &[], "");
    let (old_hosts, new_hosts) = (
        support::known_hosts_line(dir.path()),
        support::known_hosts_line(other.path()),
    );
    let mut service = start().await?;
    let client = &mut service.client;
    let secret = create(
        client,
        "deploy-key",
        pb::SecretKind::SshPrivateKey,
        key.as_bytes(),
        &[("known_hosts", old_hosts)],
    )
    .await?;
    let update = |attributes: &[(&str, &str)]| pb::UpdateSecretAttributesRequest {
        workspace_id: WS.into(),
        secret_id: secret.id.clone(),
        attributes: attributes
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    let updated = client
        .update_secret_attributes(update(&[("known_hosts", &new_hosts)]))
        .await?
        .into_inner()
        .secret
        .ok_or_else(|| anyhow::anyhow!("no secret"))?;
    assert_eq!(updated.attributes["known_hosts"], new_hosts);
    assert_eq!(updated.attributes["key_type"], "ed25519");
    assert_eq!(updated.current_version, secret.current_version);
    let resolved = client
        .resolve_secret(as_service(pb::ResolveSecretRequest {
            workspace_id: WS.into(),
            secret_id: secret.id.clone(),
            version: 0,
            purpose: "git-sync fetch".into(),
        }))
        .await?
        .into_inner();
    assert_eq!(resolved.material, key.as_bytes());
    assert_eq!(resolved.attributes["known_hosts"], new_hosts);

    for (attributes, expect) in [
        (&[("known_hosts", "not a host key line")][..], "known_hosts"),
        (&[("key_type", "rsa")][..], "key_type"),
        (&[][..], "nothing to change"),
    ] {
        let status = client
            .update_secret_attributes(update(attributes))
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains(expect), "{status:?}");
    }
    let missing = client
        .update_secret_attributes(pb::UpdateSecretAttributesRequest {
            workspace_id: "another-workspace".into(),
            ..update(&[("known_hosts", &new_hosts)])
        })
        .await
        .expect_err("another workspace");
    assert_eq!(missing.code(), Code::NotFound);
    Ok(())
}
