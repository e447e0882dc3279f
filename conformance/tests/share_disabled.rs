//! Against a real Apache Kafka broker with share groups disabled (`share.version=0`): the client
//! must see that they are off and say so, and the broker must refuse share RPCs.

use std::time::Duration;

use sharecheck_client::admin::{Client, ClientConfig};
use sharecheck_client::member::MemberConfig;
use sharecheck_model::ErrorCode;

/// Needs a second broker with share groups off:
/// `scripts/kafka start 4.2 --port 19520 --feature share.version=0`, address in
/// `KAFKA_BOOTSTRAP_SHARE_DISABLED`.
#[tokio::test]
#[ignore = "needs a real broker with share groups disabled: scripts/kafka start 4.2 --feature share.version=0"]
async fn disabled_share_groups_are_refused() {
    use sharecheck_client::admin::ShareSupportError;
    use sharecheck_client::member::send_heartbeat;
    // Without the broker this test fails: it is ignored by default and run by .ci/run, which
    // starts the broker.
    let addr = std::env::var("KAFKA_BOOTSTRAP_SHARE_DISABLED").expect(
        "KAFKA_BOOTSTRAP_SHARE_DISABLED must name a broker with share groups off \
         (scripts/kafka start 4.2 --port 19520 --feature share.version=0)",
    );
    let mut c = Client::connect(ClientConfig::new(addr).with_timeout(Duration::from_secs(10)))
        .await
        .unwrap();
    // Kafka still advertises the share APIs; the feature level says they are off.
    let info = c.broker_info();
    assert!(
        info.share_apis.iter().all(|a| a.broker.is_some()),
        "{info:?}"
    );
    assert_eq!(
        c.check_share_support(),
        Err(ShareSupportError::Disabled { level: 0 })
    );
    // And the broker indeed answers UNSUPPORTED_VERSION to a share RPC.
    let coordinator = c.find_coordinator("sc-disabled").await.unwrap();
    let conn = c.connection(coordinator).await.unwrap();
    let out = send_heartbeat(conn, &MemberConfig::new("sc-disabled", vec!["t".into()]), 0)
        .await
        .unwrap();
    assert_eq!(out.error_code, ErrorCode::UNSUPPORTED_VERSION, "{out:?}");
}
