//! Integration tests against a real Apache Kafka broker (scripts/kafka start 4.2 --port 19092).
//! Each test reads the broker address from `KAFKA_BOOTSTRAP`.

use std::time::Duration;

use sharecheck_conformance::client::{Client, ClientConfig};

fn bootstrap() -> String {
    std::env::var("KAFKA_BOOTSTRAP")
        .expect("KAFKA_BOOTSTRAP must name the broker (scripts/kafka start 4.2)")
        .split(',')
        .next()
        .unwrap_or_default()
        .to_string()
}

async fn client() -> Client {
    Client::connect(ClientConfig::new(bootstrap()).with_timeout(Duration::from_secs(10)))
        .await
        .expect("connect to KAFKA_BOOTSTRAP")
}

#[tokio::test]
#[ignore = "needs a real broker: scripts/kafka start"]
async fn broker_info_shows_share_groups_enabled() {
    let c = client().await;
    let info = c.broker_info();
    println!("{}", serde_json::to_string_pretty(&info).unwrap());
    assert!(info.share_version >= 1, "{info:?}");
    assert!(info.share_unusable.is_none());
}
