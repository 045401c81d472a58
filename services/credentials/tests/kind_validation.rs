//! Material is checked by kind at create and rotate, with real keys made by
//! `ssh-keygen` in every format users paste: OpenSSH, PEM (PKCS#1 / SEC1) and
//! PKCS#8, plain and passphrase-protected; errors never quote the material.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed setup step should panic with its message

mod support;

use backflow_credentials::kinds::{validate_new, validate_rotation, InvalidSecret};
use backflow_proto::credentials::v1::SecretKind;
use std::collections::BTreeMap;
use support::keygen;

const SSH: i32 = SecretKind::SshPrivateKey as i32;
const PASSPHRASE: &str = "correct horse battery";

fn envelope(key: &str, passphrase: &str) -> Vec<u8> {
    serde_json::json!({"private_key": key, "passphrase": passphrase})
        .to_string()
        .into_bytes()
}

fn pinned(dir: &std::path::Path) -> BTreeMap<String, String> {
    [("known_hosts".to_string(), support::known_hosts_line(dir))].into()
}

fn assert_refused(result: Result<impl std::fmt::Debug, InvalidSecret>, expect: &str, key: &str) {
    let error = result.expect_err("material must be refused").0;
    assert!(
        error.contains(expect),
        "{error:?} should mention {expect:?}"
    );
    assert!(
        !support::contains_key_body(error.as_bytes(), key),
        "error quotes the key"
    );
    assert!(!error.contains(PASSPHRASE), "error quotes the passphrase");
}

#[test]
fn plain_keys_of_every_type_and_format_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let attributes = pinned(dir.path());
    let cases: &[(&str, &[&str], &str)] = &[
        ("ed25519", &[], "ed25519"),
        ("rsa", &["-b", "2048"], "rsa"),
        ("ecdsa", &[], "ecdsa-p256"),
        ("ecdsa", &["-b", "384"], "ecdsa-p384"),
        ("ecdsa", &["-b", "521"], "ecdsa-p521"),
        ("rsa", &["-b", "2048", "-m", "PEM"], "rsa"),
        ("ecdsa", &["-m", "PEM"], "ecdsa-p256"),
        ("ecdsa", &["-b", "384", "-m", "PEM"], "ecdsa-p384"),
        ("rsa", &["-b", "2048", "-m", "PKCS8"], "rsa"),
        ("ecdsa", &["-m", "PKCS8"], "ecdsa-p256"),
    ];
    for (index, (kind, extra, expected)) in cases.iter().enumerate() {
        let (key, _) = keygen(dir.path(), &format!("k{index}"), kind, extra, "");
        let stored = validate_new(SSH, key.as_bytes(), &attributes)
            .unwrap_or_else(|err| panic!("{kind} {extra:?}: {err}"));
        assert_eq!(stored["key_type"], *expected, "{kind} {extra:?}");
        assert_eq!(stored["known_hosts"], attributes["known_hosts"]);
        // the JSON envelope without a passphrase works too
        validate_new(SSH, &envelope(&key, ""), &attributes)
            .unwrap_or_else(|err| panic!("{kind} {extra:?} in json: {err}"));
    }
}

#[test]
fn encrypted_keys_need_the_right_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let attributes = pinned(dir.path());
    let cases: &[(&str, &[&str], &str)] = &[
        ("ed25519", &[], "ed25519"),
        ("rsa", &["-b", "2048"], "rsa"),
        ("ecdsa", &[], "ecdsa-p256"),
        ("rsa", &["-b", "2048", "-m", "PEM"], "rsa"),
        ("ecdsa", &["-m", "PEM"], "ecdsa-p256"),
        ("rsa", &["-b", "2048", "-m", "PKCS8"], "rsa"),
        ("ecdsa", &["-m", "PKCS8"], "ecdsa-p256"),
    ];
    for (index, (kind, extra, expected)) in cases.iter().enumerate() {
        let (key, _) = keygen(dir.path(), &format!("e{index}"), kind, extra, PASSPHRASE);
        let stored = validate_new(SSH, &envelope(&key, PASSPHRASE), &attributes)
            .unwrap_or_else(|err| panic!("{kind} {extra:?}: {err}"));
        assert_eq!(stored["key_type"], *expected);
        assert_refused(
            validate_new(SSH, key.as_bytes(), &attributes),
            "passphrase is required",
            &key,
        );
        assert_refused(
            validate_new(SSH, &envelope(&key, "wrong passphrase"), &attributes),
            "passphrase does not decrypt",
            &key,
        );
    }
}

#[test]
fn bad_ssh_material_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let attributes = pinned(dir.path());
    let (key, public) = keygen(dir.path(), "k", "ed25519", &[], "");

    assert_refused(
        validate_new(SSH, public.as_bytes(), &attributes),
        "public key",
        &key,
    );
    let truncated: String = key.lines().take(3).collect::<Vec<_>>().join("\n");
    assert_refused(
        validate_new(SSH, truncated.as_bytes(), &attributes),
        "ssh private key",
        &key,
    );
    let corrupted = key.replacen("b3BlbnNzaC1rZXktdjE", "b3BlbnNzaC1rZXktdjF", 1);
    assert_refused(
        validate_new(SSH, corrupted.as_bytes(), &attributes),
        "does not parse",
        &key,
    );
    assert_refused(
        validate_new(SSH, b"hunter2", &attributes),
        "no pem armour",
        &key,
    );

    // host keys are required and must parse
    assert_refused(
        validate_new(SSH, key.as_bytes(), &BTreeMap::new()),
        "known_hosts is required",
        &key,
    );
    let bad_hosts: BTreeMap<String, String> = [(
        "known_hosts".to_string(),
        "127.0.0.1 ssh-ed25519 !!!".to_string(),
    )]
    .into();
    assert_refused(
        validate_new(SSH, key.as_bytes(), &bad_hosts),
        "known_hosts line 1",
        &key,
    );
}

#[test]
fn rotation_keeps_the_kind_rules_and_key_type() {
    let dir = tempfile::tempdir().unwrap();
    let attributes = pinned(dir.path());
    let (ed25519, _) = keygen(dir.path(), "a", "ed25519", &[], "");
    let (next, _) = keygen(dir.path(), "b", "ed25519", &[], "");
    let (rsa, _) = keygen(dir.path(), "c", "rsa", &["-b", "2048"], "");
    let stored = validate_new(SSH, ed25519.as_bytes(), &attributes).unwrap();
    validate_rotation(SSH, next.as_bytes(), &stored).unwrap();
    assert_refused(
        validate_rotation(SSH, rsa.as_bytes(), &stored),
        "create a new secret",
        &rsa,
    );
    assert_refused(
        validate_rotation(SSH, b"nope", &stored),
        "ssh private key",
        &ed25519,
    );
}

#[test]
fn github_app_keys_must_sign_rs256() {
    let dir = tempfile::tempdir().unwrap();
    let app = SecretKind::GithubApp as i32;
    let attributes: BTreeMap<String, String> = [
        ("app_id".to_string(), "12345".to_string()),
        ("installation_id".to_string(), "777".to_string()),
    ]
    .into();
    for (index, extra) in [&["-m", "PEM"][..], &["-m", "PKCS8"][..]]
        .iter()
        .enumerate()
    {
        let (pem, _) = keygen(
            dir.path(),
            &format!("app{index}"),
            "rsa",
            &[&["-b", "2048"][..], extra].concat(),
            "",
        );
        let stored = validate_new(app, pem.as_bytes(), &attributes).unwrap();
        assert_eq!(stored["api_url"], "https://api.github.com");
    }
    let (ed25519, _) = keygen(dir.path(), "ed", "ed25519", &[], "");
    assert_refused(
        validate_new(app, ed25519.as_bytes(), &attributes),
        "github app private key",
        &ed25519,
    );
    let (pem, _) = keygen(dir.path(), "app", "rsa", &["-b", "2048", "-m", "PEM"], "");
    let mut no_installation = attributes.clone();
    no_installation.remove("installation_id");
    assert_refused(
        validate_new(app, pem.as_bytes(), &no_installation),
        "installation_id is required",
        &pem,
    );
}

#[test]
fn other_kinds_need_only_material() {
    let none = BTreeMap::new();
    for kind in [
        SecretKind::DbtCloudToken,
        SecretKind::WarehousePassword,
        SecretKind::WebhookSecret,
    ] {
        validate_new(kind as i32, b"p@ss word\n", &none).unwrap();
    }
    validate_new(SecretKind::GitToken as i32, b"ghp_abc", &none).unwrap();
}
