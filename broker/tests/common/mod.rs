//! Helpers for the broker's integration tests: a broker on a free port, sharecheck's real wire
//! client and share members (no mocks), a topic and a group per test.

#![allow(dead_code)]

pub mod frames;

use std::time::Duration;

use bytes::Bytes;
use sharecheck_broker::{Broker, BrokerConfig, BrokerHandle};
use sharecheck_client::admin::{Client, ClientConfig};
use sharecheck_client::member::{
    AckBatch, FetchLimits, FetchOutcome, FetchSpec, MemberConfig, PartitionAcks, ShareMember,
};
use uuid::Uuid;

/// The broker's node id (BrokerConfig default).
pub const NODE: i32 = 1;

pub struct Fixture {
    pub broker: BrokerHandle,
    pub client: Client,
    pub topic: String,
    pub tid: Uuid,
    pub group: String,
}

pub async fn start(config: BrokerConfig) -> BrokerHandle {
    Broker::start(config).await.expect("the broker starts")
}

pub async fn client(broker: &BrokerHandle) -> Client {
    Client::connect(ClientConfig::new(broker.bootstrap()).with_timeout(Duration::from_secs(10)))
        .await
        .expect("the client connects")
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &Uuid::new_v4().simple().to_string()[..10])
}

/// A broker, a client, a topic of `partitions` partitions and a group with
/// `share.auto.offset.reset=earliest` plus `configs`.
pub async fn fixture(config: BrokerConfig, partitions: i32, configs: &[(&str, &str)]) -> Fixture {
    let broker = start(config).await;
    let mut client = client(&broker).await;
    let topic = unique("t");
    let group = unique("g");
    let tid = client
        .create_topic(&topic, partitions)
        .await
        .expect("topic created");
    let mut all = vec![("share.auto.offset.reset", "earliest")];
    all.extend_from_slice(configs);
    client
        .set_group_configs(&group, &all)
        .await
        .expect("group configs set");
    Fixture {
        broker,
        client,
        topic,
        tid,
        group,
    }
}

impl Fixture {
    /// A member that has not joined (the partition leader does not check membership).
    pub fn member(&self) -> ShareMember {
        ShareMember::new(
            self.client.cluster(),
            MemberConfig::new(self.group.clone(), vec![self.topic.clone()]),
        )
    }

    /// Produce `n` records as one batch to partition `p`; values are `v<i>`.
    pub async fn produce(&mut self, p: i32, n: usize) -> i64 {
        let topic = self.topic.clone();
        self.client
            .produce(&topic, p, &[n], |i| {
                (None, Some(Bytes::from(format!("v{i}"))))
            })
            .await
            .expect("produced")[0]
    }

    pub fn spec(&self) -> FetchSpec {
        FetchSpec::partitions(vec![(self.tid, 0)]).with_limits(limits(200, 500))
    }

    pub fn acks(&self, batches: Vec<AckBatch>) -> PartitionAcks {
        PartitionAcks {
            topic_id: self.tid,
            partition: 0,
            batches,
        }
    }
}

pub fn limits(max_wait_ms: i32, max_records: i32) -> FetchLimits {
    FetchLimits {
        max_wait_ms,
        min_bytes: 1,
        max_bytes: 8 * 1024 * 1024,
        max_records,
        batch_size: max_records,
    }
}

/// Offsets acquired on partition 0, with counts.
pub fn got(out: &FetchOutcome, tid: Uuid) -> Vec<(i64, i16)> {
    out.acquired(tid, 0)
}

/// Fetch until at least `want` records were acquired in total or `patience` passes.
pub async fn fetch_n(
    m: &mut ShareMember,
    spec: &FetchSpec,
    tid: Uuid,
    want: usize,
    patience: Duration,
) -> Vec<(i64, i16)> {
    let deadline = tokio::time::Instant::now() + patience;
    let mut all = Vec::new();
    while all.len() < want && tokio::time::Instant::now() < deadline {
        let out = m.fetch(spec).await.expect("fetch");
        assert!(out.error_code.is_none(), "fetch error {:?}", out.error_code);
        all.extend(got(&out, tid));
    }
    all
}

/// A whole share round trip on a running broker: a fresh topic and group, 3 records produced,
/// each acquired once with delivery count 1 and accepted, after which nothing is acquirable.
pub async fn share_round_trip(bootstrap: String) {
    let mut client =
        Client::connect(ClientConfig::new(bootstrap).with_timeout(Duration::from_secs(10)))
            .await
            .expect("the client connects");
    let topic = unique("t");
    let group = unique("g");
    let tid = client.create_topic(&topic, 1).await.expect("topic created");
    client
        .set_group_configs(&group, &[("share.auto.offset.reset", "earliest")])
        .await
        .expect("group configs set");
    client
        .produce(&topic, 0, &[3], |i| {
            (None, Some(Bytes::from(format!("v{i}"))))
        })
        .await
        .expect("produced");
    let mut m = ShareMember::new(client.cluster(), MemberConfig::new(group, vec![topic]));
    let spec = FetchSpec::partitions(vec![(tid, 0)]).with_limits(limits(200, 500));
    let got = fetch_n(&mut m, &spec, tid, 3, Duration::from_secs(5)).await;
    assert_eq!(got, vec![(0, 1), (1, 1), (2, 1)]);
    let out = m
        .acknowledge(
            &[PartitionAcks {
                topic_id: tid,
                partition: 0,
                batches: vec![AckBatch::new(0, 2, sharecheck_client::AckType::Accept)],
            }],
            sharecheck_client::member::Epoch::Auto,
        )
        .await
        .expect("acknowledge");
    assert!(out.error_code.is_none(), "{:?}", out.error_code);
    assert_eq!(
        out.partition_error(tid, 0),
        Some(sharecheck_client::ErrorCode::NONE)
    );
    let again = m.fetch(&spec).await.expect("fetch");
    assert!(again.acquired(tid, 0).is_empty());
}
