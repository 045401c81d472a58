//! Issue 7, acceptance 2 and build points 2-3, on the real binary: `backflow dev`
//! serves every service on one front door, writes `./data/cli.json` (0600) with a
//! dev admin token, and every RPC of every service in the descriptor set (today's and
//! each later one, found by reflection over the descriptors, never listed by hand) is
//! checked on the front door and on its own port: no token → UNAUTHENTICATED; a
//! token of another workspace → PERMISSION_DENIED; a viewer → PERMISSION_DENIED on
//! writes and not on reads; service-only RPCs refuse every tool token. Reflection on
//! each port lists exactly what it serves; a call on the wrong port names the address
//! that serves it; `backflow tokens revoke` takes effect within the cache time.

mod support;

use bytes::{Buf, BufMut, Bytes};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use support::cli::{operator_json, Dev};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::Code;

/// Raw bytes in, raw bytes out: requests are built from the descriptors.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Self::Error> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// A `backflow dev` in an empty work dir (the shared CLI harness).
fn start_dev() -> anyhow::Result<Dev> {
    let workdir =
        std::env::temp_dir().join(format!("backflow-auth-{}", backflow_platform::new_id()));
    std::fs::create_dir_all(&workdir)?;
    Dev::start(&workdir)
}

/// `backflow tokens …` against the same ./data as the running dev process.
fn tokens(dev: &Dev, args: &[&str]) -> anyhow::Result<serde_json::Value> {
    let mut args = args.to_vec();
    args.insert(0, "tokens");
    operator_json(dev, &args)
}

struct Method {
    path: String,
    service: String,
    access: i32,
    server_streaming: bool,
    /// The request names a workspace (else only operator tokens may call).
    scoped: bool,
    request: Bytes,
}

/// Every method of every service in the descriptor set, with a request naming
/// workspace `default` (where the request has a `workspace_id`).
fn methods() -> anyhow::Result<Vec<Method>> {
    let pool = DescriptorPool::decode(backflow_proto::FILE_DESCRIPTOR_SET)?;
    let access = pool
        .get_extension_by_name("backflow.auth.v1.access")
        .ok_or_else(|| anyhow::anyhow!("no access option"))?;
    let mut methods = Vec::new();
    for service in pool.services() {
        for method in service.methods() {
            let mut request = DynamicMessage::new(method.input());
            let field = method.input().get_field_by_name("workspace_id");
            let scoped = field.is_some() && !method.is_client_streaming();
            if let Some(field) = field {
                request.set_field(&field, Value::String("default".into()));
            }
            let declared = match method.options().get_extension(&access).as_ref() {
                Value::EnumNumber(n) => *n,
                _ => 0,
            };
            methods.push(Method {
                path: format!("/{}/{}", service.full_name(), method.name()),
                service: service.full_name().to_string(),
                access: declared,
                server_streaming: method.is_server_streaming(),
                scoped,
                request: Bytes::from(request.encode_to_vec()),
            });
        }
    }
    Ok(methods)
}

/// Calls `method` on `addr` with an optional bearer token; the status code (Ok for
/// a successful call).
async fn call(addr: &str, method: &Method, token: Option<&str>) -> anyhow::Result<tonic::Status> {
    let channel = channel(addr).await?;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await?;
    let mut request = tonic::Request::new(method.request.clone());
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse()?);
    }
    let path = http::uri::PathAndQuery::try_from(method.path.as_str())?;
    let outcome = if method.server_streaming {
        match grpc.server_streaming(request, path, RawCodec).await {
            Ok(response) => match response.into_inner().message().await {
                Ok(_) => Ok(()),
                Err(status) => Err(status),
            },
            Err(status) => Err(status),
        }
    } else {
        grpc.unary::<Bytes, Bytes, _>(request, path, RawCodec)
            .await
            .map(|_| ())
    };
    Ok(outcome.err().unwrap_or_else(|| tonic::Status::ok("")))
}

/// One connection per address for the whole test.
async fn channel(addr: &str) -> anyhow::Result<tonic::transport::Channel> {
    static CHANNELS: std::sync::Mutex<BTreeMap<String, tonic::transport::Channel>> =
        std::sync::Mutex::new(BTreeMap::new());
    if let Some(channel) = CHANNELS.lock().ok().and_then(|map| map.get(addr).cloned()) {
        return Ok(channel);
    }
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    if let Ok(mut map) = CHANNELS.lock() {
        map.insert(addr.to_string(), channel.clone());
    }
    Ok(channel)
}

const READ: i32 = backflow_proto::auth::v1::Access::Read as i32;
const WRITE: i32 = backflow_proto::auth::v1::Access::Write as i32;
const SERVICE: i32 = backflow_proto::auth::v1::Access::Service as i32;

fn denied(code: Code) -> bool {
    matches!(code, Code::Unauthenticated | Code::PermissionDenied)
}

/// Served by every service port (each for its own dead letters) and the front door.
const ON_EVERY_PORT: &str = "backflow.ops.v1.DeadLetterService";

fn port_of<'a>(dev: &'a Dev, grpc_service: &str) -> anyhow::Result<&'a str> {
    let name = match grpc_service {
        ON_EVERY_PORT => "git-sync",
        "backflow.credentials.v1.CredentialsService" | "backflow.auth.v1.TokenService" => {
            "credentials"
        }
        "backflow.gitsync.v1.GitSyncService" => "git-sync",
        "backflow.catalog.v1.ModelCatalogService" => "model-catalog",
        "backflow.dbtcloud.v1.DbtCloudListenerService" => "dbt-cloud-listener",
        "backflow.retl.v1.RetlSchedulerService" => "retl-scheduler",
        other => anyhow::bail!("no port known for {other}: add it to this test"),
    };
    dev.ports
        .get(name)
        .map(String::as_str)
        .ok_or_else(|| anyhow::anyhow!("{name} printed no address"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_is_authenticated_and_scoped() -> anyhow::Result<()> {
    let dev = start_dev()?;
    assert_eq!(dev.ports.len(), 5, "{:?}", dev.ports);
    assert!(!dev.front_door.is_empty(), "front door address printed");

    // ./data/cli.json: the CLI's address and dev admin token (contract 2).
    let cli_path = dev.workdir.join("data/cli.json");
    let cli: serde_json::Value = serde_json::from_slice(&std::fs::read(&cli_path)?)?;
    assert_eq!(cli["addr"], format!("http://{}", dev.front_door));
    assert_eq!(cli["workspace"], "default");
    let admin = cli["token"].as_str().unwrap_or_default().to_string();
    assert!(admin.starts_with("bf_"), "{admin}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&cli_path)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "cli.json mode {mode:o}");
    }

    let other = tokens(&dev, &["create", "--workspace", "other", "--role", "admin"])?;
    let other_token = other["token"].as_str().unwrap_or_default().to_string();
    let viewer = tokens(
        &dev,
        &["create", "--workspace", "default", "--role", "viewer"],
    )?;
    let viewer_token = viewer["token"].as_str().unwrap_or_default().to_string();
    let viewer_id = viewer["id"].as_str().unwrap_or_default().to_string();
    let operator = tokens(&dev, &["create", "--operator", "--role", "admin"])?;
    let operator_token = operator["token"].as_str().unwrap_or_default().to_string();
    let operator_viewer = tokens(&dev, &["create", "--operator", "--role", "viewer"])?;
    let operator_viewer_token = operator_viewer["token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let listed = tokens(&dev, &["list"])?;
    let listed_text = listed.to_string();
    assert!(listed_text.contains(&viewer_id));
    assert!(
        !listed_text.contains(&viewer_token),
        "list never shows a token"
    );

    let methods = methods()?;
    assert!(methods.len() >= 39, "{} methods", methods.len());
    let mut checked = 0;
    for method in &methods {
        assert!(
            [READ, WRITE, SERVICE].contains(&method.access),
            "{} has no (backflow.auth.v1.access) option",
            method.path
        );
        let own = port_of(&dev, &method.service)?;
        for addr in [dev.front_door.as_str(), own] {
            let at = format!("{} on {addr}", method.path);
            let none = call(addr, method, None).await?;
            assert_eq!(
                none.code(),
                Code::Unauthenticated,
                "no token: {at}: {none:?}"
            );
            let bogus = call(addr, method, Some("bf_not_a_token")).await?;
            assert_eq!(bogus.code(), Code::Unauthenticated, "bogus token: {at}");
            let foreign = call(addr, method, Some(&other_token)).await?;
            assert_eq!(
                foreign.code(),
                Code::PermissionDenied,
                "other workspace: {at}: {foreign:?}"
            );
            let as_viewer = call(addr, method, Some(&viewer_token)).await?;
            let as_admin = call(addr, method, Some(&admin)).await?;
            let as_operator = call(addr, method, Some(&operator_token)).await?;
            let as_operator_viewer = call(addr, method, Some(&operator_viewer_token)).await?;
            // A request without a workspace is for operator tokens only.
            let workspace_token_allowed = |status: &tonic::Status, what: &str| {
                if method.scoped {
                    assert!(!denied(status.code()), "{what} allowed: {at}: {status:?}");
                } else {
                    assert_eq!(
                        status.code(),
                        Code::PermissionDenied,
                        "{what} unscoped: {at}"
                    );
                }
            };
            match method.access {
                READ => {
                    workspace_token_allowed(&as_viewer, "viewer read");
                    workspace_token_allowed(&as_admin, "admin read");
                    assert!(
                        !denied(as_operator.code()),
                        "operator read: {at}: {as_operator:?}"
                    );
                    assert!(
                        !denied(as_operator_viewer.code()),
                        "operator viewer read: {at}: {as_operator_viewer:?}"
                    );
                }
                WRITE => {
                    assert_eq!(
                        as_viewer.code(),
                        Code::PermissionDenied,
                        "viewer write: {at}"
                    );
                    workspace_token_allowed(&as_admin, "admin write");
                    assert!(
                        !denied(as_operator.code()),
                        "operator write: {at}: {as_operator:?}"
                    );
                    assert_eq!(
                        as_operator_viewer.code(),
                        Code::PermissionDenied,
                        "operator viewer write: {at}"
                    );
                }
                _ => {
                    for status in [&as_viewer, &as_admin, &as_operator, &as_operator_viewer] {
                        assert_eq!(status.code(), Code::PermissionDenied, "service only: {at}");
                    }
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, methods.len() * 2);

    // Reflection lists exactly what each port serves.
    let open: BTreeSet<String> = [
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ]
    .map(String::from)
    .into();
    let all: BTreeSet<String> = methods.iter().map(|m| m.service.clone()).collect();
    let front: BTreeSet<String> = all.union(&open).cloned().collect();
    assert_eq!(support::reflected_services(&dev.front_door).await?, front);
    for service in &all {
        let addr = port_of(&dev, service)?;
        let listed = support::reflected_services(addr).await?;
        let expected: BTreeSet<String> = all
            .iter()
            .filter(|name| name.as_str() == ON_EVERY_PORT || port_of(&dev, name).ok() == Some(addr))
            .chain(open.iter())
            .cloned()
            .collect();
        assert_eq!(listed, expected, "reflection on {addr}");
    }

    // The wrong port says where the service is served.
    let list_connections = methods
        .iter()
        .find(|m| m.path == "/backflow.gitsync.v1.GitSyncService/ListConnections")
        .ok_or_else(|| anyhow::anyhow!("no ListConnections"))?;
    let wrong = call(
        port_of(&dev, "backflow.credentials.v1.CredentialsService")?,
        list_connections,
        Some(&admin),
    )
    .await?;
    assert_eq!(wrong.code(), Code::Unimplemented);
    let git_sync = port_of(&dev, "backflow.gitsync.v1.GitSyncService")?;
    assert!(
        wrong.message().starts_with(&format!(
            "backflow.gitsync.v1.GitSyncService is not served here; it is served at {git_sync}"
        )),
        "{}",
        wrong.message()
    );
    assert!(
        wrong.message().contains(&dev.front_door),
        "{}",
        wrong.message()
    );

    // Revocation: immediate at the front door (credentials checks its own table),
    // within the cache time on another service's port.
    let list_secrets = methods
        .iter()
        .find(|m| m.path == "/backflow.credentials.v1.CredentialsService/ListSecrets")
        .ok_or_else(|| anyhow::anyhow!("no ListSecrets"))?;
    assert!(!denied(
        call(git_sync, list_connections, Some(&viewer_token))
            .await?
            .code()
    ));
    tokens(&dev, &["revoke", &viewer_id])?;
    // revoking it again, or an unknown id: exit 1, saying so
    let again = support::cli::operator(&dev, &["tokens", "revoke", &viewer_id])?;
    assert_eq!(again.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains(&format!(
            "no valid token {viewer_id}: it does not exist or is revoked already"
        )),
        "{again:?}"
    );
    let revoked = Instant::now();
    let front = call(&dev.front_door, list_secrets, Some(&viewer_token)).await?;
    assert_eq!(front.code(), Code::Unauthenticated, "{front:?}");
    loop {
        let status = call(git_sync, list_connections, Some(&viewer_token)).await?;
        if status.code() == Code::Unauthenticated {
            break;
        }
        assert!(
            revoked.elapsed() < backflow_platform::auth::TOKEN_CACHE_TTL + Duration::from_secs(3),
            "revoked token still accepted after {:?}",
            revoked.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}
