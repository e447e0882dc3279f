//! Reproducer (not a test) of docs/findings.md F7: a member drops its connection to the partition
//! leader and at once opens a new share session on a new connection; how often is the new
//! session gone by its next request (SHARE_SESSION_NOT_FOUND)?
//!
//! `KAFKA_BOOTSTRAP=127.0.0.1:19110 cargo run --release -p sharecheck-conformance --example
//! reopen_race -- [TRIALS] [SETTLE_MS]` prints the count. Each trial uses a fresh topic and group.

use sharecheck_client::admin::{Client, ClientConfig};
use sharecheck_client::member::{FetchLimits, FetchSpec, MemberConfig, ShareMember};
use sharecheck_model::ErrorCode;
use std::time::Duration;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let bootstrap = std::env::var("KAFKA_BOOTSTRAP").expect("KAFKA_BOOTSTRAP");
    let mut args = std::env::args().skip(1);
    let trials: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(50);
    let settle_ms: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    let mut c = Client::connect(ClientConfig::new(bootstrap).with_timeout(Duration::from_secs(10)))
        .await
        .expect("connect");
    let mut gone = 0;
    for t in 0..trials {
        let topic = format!("sc-f7-{}-{t}", std::process::id());
        let group = format!("{topic}-g");
        let tid = c.create_topic(&topic, 1).await.expect("topic");
        c.set_group_configs(&group, &[("share.auto.offset.reset", "earliest")])
            .await
            .expect("configs");
        c.produce(&topic, 0, &[3], |i| {
            (None, Some(bytes::Bytes::from(format!("v{i}"))))
        })
        .await
        .expect("produce");
        let mut m = ShareMember::join(&mut c, MemberConfig::new(&group, vec![topic.clone()]))
            .await
            .expect("join");
        let spec = FetchSpec::partitions(vec![(tid, 0)]).with_limits(FetchLimits {
            max_wait_ms: 50,
            min_bytes: 1,
            max_bytes: 1 << 20,
            max_records: 10,
            batch_size: 10,
        });
        // Until the member holds the records (the share partition initialises first).
        let mut first = m.fetch(&spec).await.expect("fetch");
        for _ in 0..40 {
            if first.acquired_count() > 0 {
                break;
            }
            first = m.fetch(&spec).await.expect("fetch");
        }
        m.drop_connection(first.broker);
        tokio::time::sleep(Duration::from_millis(settle_ms)).await;
        let reopened = m.fetch(&spec).await.expect("fetch");
        assert!(reopened.error_code.is_none(), "{:?}", reopened.error_code);
        let next = m.fetch(&spec).await.expect("fetch");
        if next.error_code == ErrorCode::SHARE_SESSION_NOT_FOUND {
            gone += 1;
        }
        drop(m);
        let _ = c.delete_topic(&topic).await;
    }
    println!(
        "{gone} of {trials} new sessions were gone at their next epoch (settle {settle_ms} ms)"
    );
}
