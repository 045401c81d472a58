//! Acceptance tests for `backflow_git_sync::git` against real servers on loopback:
//! Debian's sshd (issue 4, point 1) and `git http-backend` behind Basic auth
//! (point 2), plus a server that accepts and never answers for the timeouts.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed setup step should panic with its message

use backflow_test_git as support;

use std::net::TcpListener;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use backflow_git_sync::git::{
    fetch_branch, remote_head, FetchRequest, FetchedCommit, GitAuth, GitError,
};
use support::http::{GitHttpServer, TOKEN_USER};
use support::repo::BareRepo;
use support::ssh::{keygen, KeyPair, Sshd};

const TIMEOUT: Duration = Duration::from_secs(20);

fn ssh_auth(key: &KeyPair, passphrase: Option<&str>, known_hosts: &str) -> GitAuth {
    GitAuth::SshKey {
        username: "git".into(),
        private_key: key.private_key.clone(),
        passphrase: passphrase.map(str::to_string),
        known_hosts: known_hosts.to_string(),
    }
}

fn fetch(
    url: &str,
    branch: &str,
    auth: &GitAuth,
    work_dir: &Path,
) -> Result<FetchedCommit, GitError> {
    fetch_branch(&FetchRequest {
        url,
        branch,
        auth,
        work_dir,
        timeout: TIMEOUT,
    })
}

/// An sshd accepting `key`, and a bare repo it serves.
fn ssh_fixture(tmp: &Path, key: &KeyPair) -> (Sshd, BareRepo) {
    let sshd = Sshd::start(&tmp.join("sshd"), &[&key.public_line]);
    let repo = BareRepo::create(&tmp.join("srv"), "shop");
    (sshd, repo)
}

#[test]
fn ssh_fetch_checks_out_the_branch_and_reuses_the_work_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let key = keygen(tmp.path(), "id_ed25519", "ed25519", "", false);
    let (sshd, repo) = ssh_fixture(tmp.path(), &key);
    let auth = ssh_auth(&key, None, &sshd.known_hosts());
    let url = sshd.url(&repo.path);
    let work = tmp.path().join("work/conn-1");

    let first = fetch(&url, "main", &auth, &work).unwrap_or_else(|e| panic!("{e}\n{}", sshd.log()));
    assert_eq!(first.sha, repo.head("main"));
    assert_eq!(first.checkout, work);
    assert!(work.join("dbt_project.yml").is_file());
    assert_eq!(
        std::fs::read_to_string(work.join("models/a.sql")).unwrap(),
        "select 1 as id\n"
    );

    let second_sha = repo.commit(
        &[
            ("models/a.sql", "select 2 as id\n"),
            ("models/b.sql", "select * from {{ ref('a') }}\n"),
        ],
        "change a, add b",
    );
    assert_eq!(
        remote_head(&url, "main", &auth, TIMEOUT).unwrap(),
        second_sha
    );
    std::fs::write(work.join("stray.txt"), "left over").unwrap();

    let second = fetch(&url, "main", &auth, &work).unwrap();
    assert_eq!(second.sha, second_sha);
    assert_eq!(
        std::fs::read_to_string(work.join("models/a.sql")).unwrap(),
        "select 2 as id\n"
    );
    assert!(work.join("models/b.sql").is_file());
    assert!(
        !work.join("stray.txt").exists(),
        "force checkout cleans the tree"
    );
}

#[test]
fn ssh_wrong_or_unknown_host_key_is_refused_and_nothing_is_fetched() {
    let tmp = tempfile::tempdir().unwrap();
    let key = keygen(tmp.path(), "id_ed25519", "ed25519", "", false);
    let (sshd, repo) = ssh_fixture(tmp.path(), &key);
    let url = sshd.url(&repo.path);

    let impostor = keygen(tmp.path(), "other_host", "ed25519", "", false);
    let mut fields = impostor.public_line.split_whitespace();
    let (kind, blob) = (fields.next().unwrap(), fields.next().unwrap());
    let wrong_pin = format!("[127.0.0.1]:{} {kind} {blob}\n", sshd.port);
    let work = tmp.path().join("work");
    let err = fetch(&url, "main", &ssh_auth(&key, None, &wrong_pin), &work).unwrap_err();
    assert_eq!(
        err,
        GitError::HostKeyMismatch {
            host: "127.0.0.1".into()
        }
    );
    assert_eq!(err.to_string(), "host key mismatch for 127.0.0.1");
    assert!(!work.join("dbt_project.yml").exists());
    assert!(
        !sshd.log().contains("Accepted publickey"),
        "no authentication after a refused host key"
    );

    // the right key pinned for port 22 only does not cover this port
    let port22_pin = sshd
        .known_hosts()
        .replace(&format!("[127.0.0.1]:{}", sshd.port), "127.0.0.1");
    let err = fetch(&url, "main", &ssh_auth(&key, None, &port22_pin), &work).unwrap_err();
    assert_eq!(
        err,
        GitError::HostKeyUnknown {
            host: "127.0.0.1".into()
        }
    );

    let err = remote_head(&url, "main", &ssh_auth(&key, None, ""), TIMEOUT).unwrap_err();
    assert!(matches!(err, GitError::HostKeyUnknown { .. }), "{err}");
}

#[test]
fn ssh_unauthorized_key_fails_authentication_without_looping() {
    let tmp = tempfile::tempdir().unwrap();
    let key = keygen(tmp.path(), "id_ed25519", "ed25519", "", false);
    let stranger = keygen(tmp.path(), "stranger", "ed25519", "", false);
    let (sshd, repo) = ssh_fixture(tmp.path(), &key);
    let started = Instant::now();
    let err = fetch(
        &sshd.url(&repo.path),
        "main",
        &ssh_auth(&stranger, None, &sshd.known_hosts()),
        &tmp.path().join("work"),
    )
    .unwrap_err();
    assert!(matches!(err, GitError::AuthenticationFailed(_)), "{err:?}");
    assert!(
        err.to_string().starts_with("authentication failed"),
        "{err}"
    );
    assert!(!err.to_string().contains("PRIVATE KEY"));
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn ssh_missing_branch_and_missing_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let key = keygen(tmp.path(), "id_ed25519", "ed25519", "", false);
    let (sshd, repo) = ssh_fixture(tmp.path(), &key);
    let auth = ssh_auth(&key, None, &sshd.known_hosts());
    let url = sshd.url(&repo.path);
    let work = tmp.path().join("work");

    let err = fetch(&url, "develop", &auth, &work).unwrap_err();
    assert_eq!(
        err,
        GitError::BranchNotFound {
            branch: "develop".into()
        }
    );
    assert_eq!(err.to_string(), "branch develop not found");
    let err = remote_head(&url, "develop", &auth, TIMEOUT).unwrap_err();
    assert_eq!(err.to_string(), "branch develop not found");

    // a branch that existed at the last sync and was deleted since
    repo.commit_on("feature", &[("models/f.sql", "select 1\n")], "feature");
    fetch(&url, "feature", &auth, &work).unwrap();
    support::repo::git(&repo.path, &["update-ref", "-d", "refs/heads/feature"]);
    let err = fetch(&url, "feature", &auth, &work).unwrap_err();
    assert_eq!(
        err,
        GitError::BranchNotFound {
            branch: "feature".into()
        }
    );

    let gone = tmp.path().join("srv/nope.git");
    let err = fetch(&sshd.url(&gone), "main", &auth, &tmp.path().join("work2")).unwrap_err();
    assert!(matches!(err, GitError::RepositoryNotFound(_)), "{err:?}");
}

#[test]
fn ssh_client_key_types_and_formats() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = [
        (
            "rsa-openssh",
            keygen(tmp.path(), "id_rsa", "rsa", "", false),
            None,
        ),
        (
            "rsa-pem",
            keygen(tmp.path(), "id_rsa_pem", "rsa", "", true),
            None,
        ),
        (
            "ecdsa",
            keygen(tmp.path(), "id_ecdsa", "ecdsa", "", false),
            None,
        ),
        (
            "ecdsa-pem",
            keygen(tmp.path(), "id_ecdsa_pem", "ecdsa", "", true),
            None,
        ),
        (
            "ed25519-passphrase",
            keygen(
                tmp.path(),
                "id_ed25519_pw",
                "ed25519",
                "correct horse",
                false,
            ),
            Some("correct horse"),
        ),
        (
            "rsa-pem-passphrase",
            keygen(tmp.path(), "id_rsa_pem_pw", "rsa", "battery staple", true),
            Some("battery staple"),
        ),
    ];
    let publics: Vec<&str> = keys
        .iter()
        .map(|(_, k, _)| k.public_line.as_str())
        .collect();
    let sshd = Sshd::start(&tmp.path().join("sshd"), &publics);
    let repo = BareRepo::create(&tmp.path().join("srv"), "shop");
    let url = sshd.url(&repo.path);
    let head = repo.head("main");
    for (name, key, passphrase) in &keys {
        let auth = ssh_auth(key, *passphrase, &sshd.known_hosts());
        let got = fetch(
            &url,
            "main",
            &auth,
            &tmp.path().join(format!("work-{name}")),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}\n{}", sshd.log()));
        assert_eq!(got.sha, head, "{name}");
    }

    let (_, key, _) = &keys[4];
    let err = fetch(
        &url,
        "main",
        &ssh_auth(key, Some("wrong passphrase"), &sshd.known_hosts()),
        &tmp.path().join("work-wrong-pw"),
    )
    .unwrap_err();
    assert!(matches!(err, GitError::AuthenticationFailed(_)), "{err:?}");
    assert!(!err.to_string().contains("wrong passphrase"), "{err}");
}

fn http_fixture(tmp: &Path, token: &str) -> (GitHttpServer, BareRepo) {
    let root = tmp.join("http-root");
    let repo = BareRepo::create(&root, "shop");
    (GitHttpServer::start(&root, token), repo)
}

fn token_auth(token: &str) -> GitAuth {
    GitAuth::Token {
        username: TOKEN_USER.into(),
        token: token.into(),
    }
}

#[test]
fn http_fetch_with_token() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, repo) = http_fixture(tmp.path(), "ghs_goodtoken123");
    let work = tmp.path().join("work");
    let got = fetch(
        &server.url("shop"),
        "main",
        &token_auth("ghs_goodtoken123"),
        &work,
    )
    .unwrap();
    assert_eq!(got.sha, repo.head("main"));
    assert!(work.join("models/a.sql").is_file());

    let next = repo.commit(&[("models/c.sql", "select 3 as id\n")], "add c");
    let got = fetch(
        &server.url("shop"),
        "main",
        &token_auth("ghs_goodtoken123"),
        &work,
    )
    .unwrap();
    assert_eq!(got.sha, next);
    assert!(work.join("models/c.sql").is_file());
}

#[test]
fn http_remote_head_does_not_fetch() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, repo) = http_fixture(tmp.path(), "ghs_goodtoken123");
    let sha = remote_head(
        &server.url("shop"),
        "main",
        &token_auth("ghs_goodtoken123"),
        TIMEOUT,
    )
    .unwrap();
    assert_eq!(sha, repo.head("main"));
    let requests = server.requests();
    assert!(!requests.is_empty());
    assert!(
        requests
            .iter()
            .all(|r| r.starts_with("GET ") && r.contains("/info/refs")),
        "{requests:?}"
    );
}

#[test]
fn http_wrong_token_says_authentication_failed() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, _repo) = http_fixture(tmp.path(), "ghs_goodtoken123");
    let err = fetch(
        &server.url("shop"),
        "main",
        &token_auth("ghs_wrongtoken456"),
        &tmp.path().join("work"),
    )
    .unwrap_err();
    assert!(matches!(err, GitError::AuthenticationFailed(_)), "{err:?}");
    assert!(err.to_string().contains("authentication failed"), "{err}");
    assert!(!err.to_string().contains("ghs_"), "{err}");
    // one unauthenticated probe plus at most a couple of credential attempts
    assert!(server.requests().len() <= 4, "{:?}", server.requests());

    let err = fetch(
        &server.url("shop"),
        "main",
        &GitAuth::None,
        &tmp.path().join("work"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("authentication failed"), "{err}");
}

#[test]
fn http_unknown_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, _repo) = http_fixture(tmp.path(), "ghs_goodtoken123");
    let url = server.url("missing");
    let err = fetch(
        &url,
        "main",
        &token_auth("ghs_goodtoken123"),
        &tmp.path().join("work"),
    )
    .unwrap_err();
    assert_eq!(err, GitError::RepositoryNotFound(url.clone()));
    let err = remote_head(&url, "main", &token_auth("ghs_goodtoken123"), TIMEOUT).unwrap_err();
    assert!(matches!(err, GitError::RepositoryNotFound(_)), "{err:?}");
}

/// Accepts connections and never sends a byte.
fn silent_server() -> (u16, mpsc::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline && stop_rx.try_recv().is_err() {
            if let Ok((stream, _)) = listener.accept() {
                held.push(stream);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    (port, stop_tx)
}

fn assert_times_out(url: String, auth: GitAuth) {
    let timeout = Duration::from_secs(2);
    let (tx, rx) = mpsc::channel();
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    std::thread::spawn(move || {
        let started = Instant::now();
        let result = fetch_branch(&FetchRequest {
            url: &url,
            branch: "main",
            auth: &auth,
            work_dir: &work,
            timeout,
        });
        let _ = tx.send((result, started.elapsed()));
    });
    let (result, elapsed) = rx
        .recv_timeout(Duration::from_secs(15))
        .expect("fetch against a silent server must give up on its own");
    let err = result.unwrap_err();
    assert!(matches!(err, GitError::Timeout { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with("timed out after 2s while"),
        "{err}"
    );
    assert!(
        elapsed < timeout * 2 + Duration::from_millis(500),
        "took {elapsed:?}"
    );
}

#[test]
fn timeout_when_an_http_server_never_answers() {
    let (port, _stop) = silent_server();
    assert_times_out(
        format!("http://127.0.0.1:{port}/shop.git"),
        token_auth("ghs_x123"),
    );
}

#[test]
fn timeout_when_an_ssh_server_never_answers() {
    let (port, _stop) = silent_server();
    let auth = GitAuth::SshKey {
        username: "git".into(),
        private_key: String::new(),
        passphrase: None,
        known_hosts: String::new(),
    };
    assert_times_out(format!("ssh://git@127.0.0.1:{port}/shop.git"), auth);
}
