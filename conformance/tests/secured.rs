//! Against a real Kafka started with `scripts/kafka start 4.2 --security sasl_ssl` (or `ssl`):
//! `KAFKA_SECURED_BOOTSTRAP` names it and `KAFKA_COMMAND_CONFIG` the client properties it printed.
//! Run by `.ci/run` on its secured arms.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::MetadataRequest;
use sharecheck_client::security::Security;
use sharecheck_client::wire::{ConnectOptions, Connection, WireError};

fn target() -> (String, Arc<Security>) {
    let bootstrap = std::env::var("KAFKA_SECURED_BOOTSTRAP").expect(
        "KAFKA_SECURED_BOOTSTRAP must name the broker (scripts/kafka start 4.2 --security …)",
    );
    let config = PathBuf::from(
        std::env::var("KAFKA_COMMAND_CONFIG")
            .expect("KAFKA_COMMAND_CONFIG (printed by scripts/kafka start --security)"),
    );
    let security = Security::from_file(&config).expect("the printed client properties load");
    (bootstrap, Arc::new(security))
}

fn options(security: Arc<Security>) -> ConnectOptions {
    ConnectOptions {
        timeout: Duration::from_secs(10),
        security,
        ..ConnectOptions::default()
    }
}

/// KIP-368: scripts/kafka sets connections.max.reauth.ms=10000, so a SASL connection that does not
/// authenticate again is closed by the broker at its first request after 10 s. One connection is
/// kept for 12 s and used on both sides of that boundary; it must renew its session and keep
/// working.
#[tokio::test]
#[ignore = "needs a secured real broker: scripts/kafka start 4.2 --security sasl_ssl"]
async fn a_sasl_connection_reauthenticates_before_its_session_ends() {
    let (bootstrap, security) = target();
    if security.sasl.is_none() {
        eprintln!("skipped: {} does not use SASL", security.describe());
        return;
    }
    let mut conn = Connection::connect_with(&bootstrap, &options(security))
        .await
        .expect("connect and authenticate");
    let renew_at = conn
        .reauthenticates_at()
        .expect("the broker gives the session a lifetime (connections.max.reauth.ms)");
    let started = Instant::now();
    conn.send(&MetadataRequest::default())
        .await
        .expect("metadata at once");
    while started.elapsed() < Duration::from_secs(12) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        conn.send(&MetadataRequest::default())
            .await
            .unwrap_or_else(|e| panic!("metadata after {:?}: {e}", started.elapsed()));
    }
    assert!(Instant::now() > renew_at);
    assert!(
        conn.reauthentications() >= 1,
        "no re-authentication in 12 s"
    );
}

/// Wrong credentials are refused as authentication, not as an unreachable broker, and the
/// message never carries the password.
#[tokio::test]
#[ignore = "needs a secured real broker: scripts/kafka start 4.2 --security sasl_ssl"]
async fn a_wrong_password_is_an_authentication_failure_without_the_password() {
    let (bootstrap, security) = target();
    let Some(creds) = security.sasl.clone() else {
        eprintln!("skipped: {} does not use SASL", security.describe());
        return;
    };
    let wrong = "not-the-password-0123";
    let mut bad = (*security).clone();
    bad.sasl = Some(sharecheck_client::security::SaslCredentials {
        password: sharecheck_client::security::Secret::new(wrong),
        ..creds
    });
    let err = Connection::connect_with(&bootstrap, &options(Arc::new(bad)))
        .await
        .expect_err("a wrong password must be refused");
    assert!(matches!(err, WireError::Authentication { .. }), "{err}");
    let text = format!("{err} {err:?}");
    assert!(text.contains("authentication failed"), "{text}");
    assert!(!text.contains(wrong), "{text}");
}

/// With TLS, a connection without the TLS settings is told what is wrong, not "frame too large".
#[tokio::test]
#[ignore = "needs a secured real broker: scripts/kafka start 4.2 --security ssl"]
async fn a_plaintext_client_at_a_tls_listener_is_told_so() {
    let (bootstrap, security) = target();
    if security.tls.is_none() {
        eprintln!("skipped: {} does not use TLS", security.describe());
        return;
    }
    let err = Connection::connect_with(&bootstrap, &ConnectOptions::default())
        .await
        .expect_err("a plaintext client at a TLS listener");
    assert!(matches!(err, WireError::WrongProtocol { .. }), "{err}");
    assert!(err.to_string().contains("security.protocol"), "{err}");
}
