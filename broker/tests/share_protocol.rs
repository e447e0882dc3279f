//! The reference broker against sharecheck's real wire client and share members: share-session
//! epochs, acknowledgements and their errors, delivery counts and the delivery limit, lock expiry,
//! connection drop, restart, offset reset, long polls, assignment and group configs.

mod common;

use std::time::Duration;

use common::*;
use sharecheck_broker::BrokerConfig;
use sharecheck_client::member::{AckBatch, AckType, Epoch, MemberConfig, ShareMember};
use sharecheck_client::ErrorCode;
use sharecheck_model::RecordState;
use uuid::Uuid;

#[tokio::test]
async fn serves_a_share_round_trip() {
    let broker = start(BrokerConfig::default()).await;
    share_round_trip(broker.bootstrap()).await;
    assert_eq!(broker.stats().panics, 0);
}

#[tokio::test]
async fn session_epochs_follow_the_kip() {
    let mut f = fixture(BrokerConfig::default(), 1, &[]).await;
    f.produce(0, 3).await;
    let mut m = f.member();
    let spec = f.spec();

    // No session yet: a subsequent epoch is SHARE_SESSION_NOT_FOUND; ShareAcknowledge cannot open.
    let out = m
        .fetch(&spec.clone().with_epoch(Epoch::Raw(3)))
        .await
        .expect("fetch");
    assert_eq!(out.error_code, ErrorCode::SHARE_SESSION_NOT_FOUND);
    let out = m
        .acknowledge_at(
            NODE,
            &[f.acks(vec![AckBatch::new(0, 0, AckType::Accept)])],
            0,
        )
        .await
        .expect("ack");
    assert_eq!(out.error_code, ErrorCode::INVALID_SHARE_SESSION_EPOCH);
    // Epoch 0 with acknowledgements: INVALID_REQUEST, and no session is opened.
    let with_acks = spec
        .clone()
        .with_acks(vec![f.acks(vec![AckBatch::new(0, 0, AckType::Accept)])])
        .with_epoch(Epoch::Raw(0));
    let out = m.fetch(&with_acks).await.expect("fetch");
    assert_eq!(out.error_code, ErrorCode::INVALID_REQUEST);
    assert_eq!(out.acquisition_lock_timeout_ms, 0);

    // Open: epoch 0 fetches; next expected epoch 1.
    let out = m.fetch(&spec).await.expect("fetch");
    assert!(out.error_code.is_none());
    assert_eq!(got(&out, f.tid), [(0, 1), (1, 1), (2, 1)]);
    assert_eq!(out.next_epoch, Some(1));
    assert_eq!(out.acquisition_lock_timeout_ms, 30_000);

    // A wrong epoch is refused and does not move the session; the right one works.
    let out = m
        .fetch(&spec.clone().with_epoch(Epoch::Raw(5)))
        .await
        .expect("fetch");
    assert_eq!(out.error_code, ErrorCode::INVALID_SHARE_SESSION_EPOCH);
    let out = m
        .acknowledge_at(
            NODE,
            &[f.acks(vec![AckBatch::new(0, 0, AckType::Accept)])],
            1,
        )
        .await
        .expect("ack");
    assert!(out.error_code.is_none());
    assert_eq!(out.partition_error(f.tid, 0), Some(ErrorCode::NONE));
    // ShareFetch and ShareAcknowledge share the counter: the fetch must now carry 2.
    let out = m
        .fetch(&spec.clone().with_epoch(Epoch::Raw(1)))
        .await
        .expect("fetch");
    assert_eq!(out.error_code, ErrorCode::INVALID_SHARE_SESSION_EPOCH);
    let out = m
        .fetch(&spec.clone().with_epoch(Epoch::Raw(2)))
        .await
        .expect("fetch");
    assert!(out.error_code.is_none());

    // Close with −1 (acks applied first), then the session is gone.
    let out = m
        .close_session(
            NODE,
            vec![f.acks(vec![AckBatch::new(1, 1, AckType::Accept)])],
        )
        .await
        .expect("close");
    assert!(out.error_code.is_none());
    assert_eq!(
        out.partition(f.tid, 0).map(|p| p.ack_error_code),
        Some(ErrorCode::NONE)
    );
    let out = m
        .fetch(&spec.clone().with_epoch(Epoch::Raw(-1)))
        .await
        .expect("fetch");
    assert_eq!(out.error_code, ErrorCode::SHARE_SESSION_NOT_FOUND);
    // Offset 2 was released by the close: delivered again, count 2.
    let mut other = f.member();
    let again = fetch_n(&mut other, &spec, f.tid, 1, Duration::from_secs(5)).await;
    assert_eq!(again, [(2, 2)]);
}

#[tokio::test]
async fn release_redelivers_until_the_delivery_limit() {
    let mut f = fixture(
        BrokerConfig::default(),
        1,
        &[("share.delivery.count.limit", "2")],
    )
    .await;
    f.produce(0, 3).await;
    let mut m = f.member();
    let spec = f.spec();
    let out = m.fetch(&spec).await.expect("fetch");
    assert_eq!(got(&out, f.tid), [(0, 1), (1, 1), (2, 1)]);
    // Release piggy-backed: the same fetch re-acquires them with count 2.
    let out = m
        .fetch(
            &spec
                .clone()
                .with_acks(vec![f.acks(vec![AckBatch::new(0, 2, AckType::Release)])]),
        )
        .await
        .expect("fetch");
    assert_eq!(
        out.partition(f.tid, 0).map(|p| p.ack_error_code),
        Some(ErrorCode::NONE)
    );
    assert_eq!(got(&out, f.tid), [(0, 2), (1, 2), (2, 2)]);
    // At the limit, RELEASE archives: nothing comes back.
    let out = m
        .acknowledge(
            &[f.acks(vec![AckBatch {
                first_offset: 0,
                last_offset: 2,
                types: vec![
                    AckType::Release.code(),
                    AckType::Reject.code(),
                    AckType::Release.code(),
                ]
                .into(),
            }])],
            Epoch::Auto,
        )
        .await
        .expect("ack");
    assert_eq!(out.partition_error(f.tid, 0), Some(ErrorCode::NONE));
    let out = m.fetch(&spec).await.expect("fetch");
    assert!(got(&out, f.tid).is_empty());
    let sp = f
        .broker
        .share_partition(&f.group, f.tid, 0)
        .expect("loaded");
    assert!(sp.records().all(|(_, r)| r.state == RecordState::Archived));
    assert_eq!(sp.spso(), 3);
}

#[tokio::test]
async fn lock_expiry_makes_records_available_again() {
    let mut f = fixture(
        BrokerConfig::default(),
        1,
        &[("share.record.lock.duration.ms", "1000")],
    )
    .await;
    f.produce(0, 2).await;
    let mut a = f.member();
    let spec = f.spec();
    let out = a.fetch(&spec).await.expect("fetch");
    assert_eq!(got(&out, f.tid), [(0, 1), (1, 1)]);
    assert_eq!(out.acquisition_lock_timeout_ms, 1000);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    // The lock is gone: acknowledging fails with INVALID_RECORD_STATE.
    let out = a
        .acknowledge(
            &[f.acks(vec![AckBatch::new(0, 1, AckType::Accept)])],
            Epoch::Auto,
        )
        .await
        .expect("ack");
    assert_eq!(
        out.partition_error(f.tid, 0),
        Some(ErrorCode::INVALID_RECORD_STATE)
    );
    let mut b = f.member();
    let again = fetch_n(&mut b, &spec, f.tid, 2, Duration::from_secs(5)).await;
    assert_eq!(again, [(0, 2), (1, 2)]);
}

#[tokio::test]
async fn dropped_connection_releases_its_sessions() {
    let mut f = fixture(BrokerConfig::default(), 1, &[]).await;
    f.produce(0, 5).await;
    let mut a = f.member();
    let spec = f.spec();
    let out = a.fetch(&spec).await.expect("fetch");
    assert_eq!(got(&out, f.tid).len(), 5);
    a.drop_connection(NODE);
    let mut b = f.member();
    let long = spec.clone().with_limits(limits(5000, 500));
    let again = fetch_n(&mut b, &long, f.tid, 5, Duration::from_secs(10)).await;
    assert_eq!(again, (0..5).map(|o| (o, 2)).collect::<Vec<_>>());
}

#[tokio::test]
async fn restart_reverts_acquisitions_and_drops_sessions() {
    let mut f = fixture(BrokerConfig::default(), 1, &[]).await;
    f.produce(0, 4).await;
    let mut a = f.member();
    let spec = f.spec();
    let out = a.fetch(&spec).await.expect("fetch");
    assert_eq!(got(&out, f.tid).len(), 4);
    let out = a
        .acknowledge(
            &[f.acks(vec![AckBatch::new(0, 1, AckType::Accept)])],
            Epoch::Auto,
        )
        .await
        .expect("ack");
    assert_eq!(out.partition_error(f.tid, 0), Some(ErrorCode::NONE));
    f.broker.restart();
    assert_eq!(f.broker.stats().restarts, 1);
    // The old connection is gone; on a new one the old session is unknown (KAFKA-20330).
    a.drop_connection(NODE);
    let out = a
        .acknowledge_at(
            NODE,
            &[f.acks(vec![AckBatch::new(2, 3, AckType::Accept)])],
            2,
        )
        .await
        .expect("ack");
    assert_eq!(out.error_code, ErrorCode::SHARE_SESSION_NOT_FOUND);
    // Acquisitions were never persisted: 2 and 3 come back with their old count (1 again),
    // the accepted 0 and 1 never do.
    let again = fetch_n(&mut a, &spec, f.tid, 2, Duration::from_secs(5)).await;
    assert_eq!(again, [(2, 1), (3, 1)]);
    // The log survived: new records continue at offset 4 (the old client connection is gone).
    f.client = client(&f.broker).await;
    assert_eq!(f.produce(0, 1).await, 4);
}

#[tokio::test]
async fn latest_reset_applies_at_the_first_fetch() {
    let mut f = fixture(
        BrokerConfig::default(),
        1,
        &[("share.auto.offset.reset", "latest")],
    )
    .await;
    f.produce(0, 5).await;
    let mut m = f.member();
    let spec = f.spec();
    let out = m.fetch(&spec).await.expect("fetch");
    assert!(
        got(&out, f.tid).is_empty(),
        "latest skips the records before the first fetch"
    );
    f.produce(0, 3).await;
    let again = fetch_n(&mut m, &spec, f.tid, 3, Duration::from_secs(5)).await;
    assert_eq!(again, [(5, 1), (6, 1), (7, 1)]);
}

#[tokio::test]
async fn acknowledgement_errors() {
    let mut f = fixture(BrokerConfig::default(), 2, &[]).await;
    f.produce(0, 3).await;
    let (mut a, mut b) = (f.member(), f.member());
    let spec = f.spec();
    assert_eq!(got(&a.fetch(&spec).await.expect("fetch"), f.tid).len(), 3);
    let out = b.fetch(&spec).await.expect("fetch");
    assert!(got(&out, f.tid).is_empty());
    let ack1 = |first, last, ty| vec![f.acks(vec![AckBatch::with_code(first, last, ty)])];
    // Held by another member.
    let out = b
        .acknowledge(&ack1(0, 0, AckType::Accept.code()), Epoch::Auto)
        .await
        .expect("ack");
    assert_eq!(
        out.partition_error(f.tid, 0),
        Some(ErrorCode::INVALID_RECORD_STATE)
    );
    // Past the share-partition end offset.
    let out = a
        .acknowledge(&ack1(1, 10, AckType::Accept.code()), Epoch::Auto)
        .await
        .expect("ack");
    assert_eq!(
        out.partition_error(f.tid, 0),
        Some(ErrorCode::INVALID_REQUEST)
    );
    // RENEW (4) is not a v1 type; FirstOffset > LastOffset.
    let out = a
        .acknowledge(&ack1(0, 0, 4), Epoch::Auto)
        .await
        .expect("ack");
    assert_eq!(
        out.partition_error(f.tid, 0),
        Some(ErrorCode::INVALID_REQUEST)
    );
    let out = a
        .acknowledge(&ack1(2, 1, AckType::Accept.code()), Epoch::Auto)
        .await
        .expect("ack");
    assert_eq!(
        out.partition_error(f.tid, 0),
        Some(ErrorCode::INVALID_REQUEST)
    );
    // A range no i64 can count, with one type per offset: INVALID_REQUEST, not a crash.
    let huge = vec![f.acks(vec![AckBatch {
        first_offset: i64::MIN + 5,
        last_offset: 2,
        types: vec![AckType::Accept.code(), AckType::Accept.code()].into(),
    }])];
    let out = a.acknowledge(&huge, Epoch::Auto).await.expect("ack");
    assert_eq!(
        out.partition_error(f.tid, 0),
        Some(ErrorCode::INVALID_REQUEST)
    );
    // All or nothing: 0-1 ACCEPT with 1-2 overlapping at 1 fails as a whole (121).
    let out = a
        .acknowledge(
            &[f.acks(vec![
                AckBatch::new(0, 1, AckType::Accept),
                AckBatch::new(1, 2, AckType::Accept),
            ])],
            Epoch::Auto,
        )
        .await
        .expect("ack");
    assert_eq!(
        out.partition_error(f.tid, 0),
        Some(ErrorCode::INVALID_RECORD_STATE)
    );
    let out = a
        .acknowledge(&ack1(0, 2, AckType::Accept.code()), Epoch::Auto)
        .await
        .expect("ack");
    assert_eq!(out.partition_error(f.tid, 0), Some(ErrorCode::NONE));
    let out = a
        .acknowledge(&ack1(0, 0, AckType::Accept.code()), Epoch::Auto)
        .await
        .expect("ack");
    assert_eq!(
        out.partition_error(f.tid, 0),
        Some(ErrorCode::NONE),
        "below SPSO: ignored"
    );
    // A partition never fetched by this group here; an unknown topic id.
    let out = a
        .acknowledge_at(
            NODE,
            &[sharecheck_client::member::PartitionAcks {
                topic_id: f.tid,
                partition: 1,
                batches: vec![AckBatch::new(0, 0, AckType::Accept)],
            }],
            a.session_epoch(NODE).expect("session"),
        )
        .await
        .expect("ack");
    assert_eq!(
        out.partition_error(f.tid, 1),
        Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)
    );
    let out = a
        .acknowledge_at(
            NODE,
            &[sharecheck_client::member::PartitionAcks {
                topic_id: Uuid::new_v4(),
                partition: 0,
                batches: vec![AckBatch::new(0, 0, AckType::Accept)],
            }],
            a.session_epoch(NODE).expect("session"),
        )
        .await
        .expect("ack");
    assert_eq!(out.partitions.len(), 1);
    assert_eq!(out.partitions[0].error_code, ErrorCode::UNKNOWN_TOPIC_ID);
}

#[tokio::test]
async fn long_polls_wake_on_produce_and_on_release() {
    let mut f = fixture(BrokerConfig::default(), 1, &[]).await;
    let mut a = f.member();
    let long = f.spec().with_limits(limits(20_000, 500));
    // Open the session first (nothing to fetch, short wait).
    a.fetch(&f.spec()).await.expect("open");
    let topic = f.topic.clone();
    let client = &mut f.client;
    let (out, _) = tokio::join!(a.fetch(&long), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        client
            .produce(&topic, 0, &[2], |_| {
                (None, Some(bytes::Bytes::from_static(b"x")))
            })
            .await
            .expect("produce")
    });
    let out = out.expect("fetch");
    assert_eq!(
        got(&out, f.tid),
        [(0, 1), (1, 1)],
        "the long poll woke on produce"
    );
    let mut b = f.member();
    b.fetch(&f.spec()).await.expect("open");
    let acks = vec![f.acks(vec![AckBatch::new(0, 1, AckType::Release)])];
    let (out, released) = tokio::join!(b.fetch(&long), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        a.acknowledge(&acks, Epoch::Auto).await
    });
    assert_eq!(
        released.expect("ack").partition_error(f.tid, 0),
        Some(ErrorCode::NONE)
    );
    assert_eq!(
        got(&out.expect("fetch"), f.tid),
        [(0, 2), (1, 2)],
        "woke on release"
    );
}

#[tokio::test]
async fn assignment_shares_partitions_like_kafka_4_2() {
    let config = BrokerConfig {
        heartbeat_interval_ms: 100,
        ..BrokerConfig::default()
    };
    let mut f = fixture(config, 2, &[]).await;
    let mut members = Vec::new();
    for _ in 0..3 {
        let mut mc = MemberConfig::new(f.group.clone(), vec![f.topic.clone()]);
        mc.join_timeout = Duration::from_secs(10);
        members.push(ShareMember::join(&mut f.client, mc).await.expect("join"));
    }
    // Heartbeats every 100 ms: wait until every member has the final assignment.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let (loads, per_partition) = loop {
        let d = f
            .client
            .describe_share_group(&f.group)
            .await
            .expect("describe");
        assert_eq!(d.error_code, 0);
        let settled =
            d.members.len() == 3 && d.members.iter().all(|m| m.member_epoch == d.group_epoch);
        let mut loads: Vec<usize> = d
            .members
            .iter()
            .map(|m| {
                m.assignment
                    .topic_partitions
                    .iter()
                    .map(|t| t.partitions.len())
                    .sum()
            })
            .collect();
        loads.sort_unstable();
        let mut per = [0usize; 2];
        for m in &d.members {
            for t in &m.assignment.topic_partitions {
                for p in &t.partitions {
                    per[*p as usize] += 1;
                }
            }
        }
        if settled || tokio::time::Instant::now() > deadline {
            break (loads, per);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // M = 3 > P = 2: ceil(3/2) = 2 members per partition, loads differ by at most one.
    assert_eq!(per_partition, [2, 2]);
    assert_eq!(loads, [1, 1, 2]);
    for m in members {
        let left = m.close().await.expect("leave");
        assert_eq!(left.member_epoch, -1);
    }
    let d = f
        .client
        .describe_share_group(&f.group)
        .await
        .expect("describe");
    assert!(d.members.is_empty());
    assert_eq!(d.group_state.as_str(), "Empty");
}

#[tokio::test]
async fn group_configs_are_validated_and_described() {
    let mut f = fixture(
        BrokerConfig::default(),
        1,
        &[("share.record.lock.duration.ms", "1500")],
    )
    .await;
    let configs = f
        .client
        .describe_group_configs(&f.group)
        .await
        .expect("describe");
    let lock = configs
        .iter()
        .find(|c| c.name == "share.record.lock.duration.ms")
        .expect("lock config listed");
    assert_eq!(lock.value.as_deref(), Some("1500"));
    let limit = configs
        .iter()
        .find(|c| c.name == "share.delivery.count.limit")
        .expect("delivery limit listed");
    assert_eq!(limit.value.as_deref(), Some("5"));
    for bad in [
        ("share.record.lock.duration.ms", "10"),
        ("share.delivery.count.limit", "1"),
        ("share.partition.max.record.locks", "5"),
        ("share.auto.offset.reset", "sometimes"),
        ("no.such.config", "1"),
    ] {
        let e = f
            .client
            .set_group_configs(&f.group, &[bad])
            .await
            .expect_err("refused");
        assert_eq!(e.kafka_code(), Some(ErrorCode::INVALID_CONFIG), "{bad:?}");
    }
    // Refused changes left the group as it was.
    let mut m = f.member();
    f.produce(0, 1).await;
    let out = m.fetch(&f.spec()).await.expect("fetch");
    assert_eq!(out.acquisition_lock_timeout_ms, 1500);
}

#[tokio::test]
async fn in_flight_window_caps_new_acquisitions() {
    let mut f = fixture(
        BrokerConfig::default(),
        1,
        &[("share.partition.max.record.locks", "100")],
    )
    .await;
    f.produce(0, 150).await;
    let mut m = f.member();
    let out = m.fetch(&f.spec()).await.expect("fetch");
    assert_eq!(got(&out, f.tid).len(), 100);
    let out = m.fetch(&f.spec()).await.expect("fetch");
    assert!(got(&out, f.tid).is_empty(), "window full");
    let out = m
        .acknowledge(
            &[f.acks(vec![AckBatch::new(0, 9, AckType::Accept)])],
            Epoch::Auto,
        )
        .await
        .expect("ack");
    assert_eq!(out.partition_error(f.tid, 0), Some(ErrorCode::NONE));
    let out = m.fetch(&f.spec()).await.expect("fetch");
    assert_eq!(
        got(&out, f.tid).iter().map(|(o, _)| *o).collect::<Vec<_>>(),
        (100..110).collect::<Vec<_>>()
    );
}

/// Plain Fetch (what ordinary consumers use, and what librdkafka needs to see advertised before its
/// producer writes record batches): whole batches from the requested offset within the byte
/// limits, offset errors, unknown topics, a declined fetch session, and a long poll woken by produce.
#[tokio::test]
async fn plain_fetch_reads_the_log() {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::{FetchRequest, TopicName};
    use kafka_protocol::records::RecordBatchDecoder;

    let mut f = fixture(BrokerConfig::default(), 1, &[]).await;
    f.produce(0, 3).await;
    f.produce(0, 2).await;
    let request = |offset: i64, part_max: i32, wait: i32, tid: Uuid, name: &str| {
        FetchRequest::default()
            .with_max_wait_ms(wait)
            .with_min_bytes(1)
            .with_max_bytes(1 << 20)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(name.to_string().into()))
                .with_topic_id(tid)
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(offset)
                    .with_partition_max_bytes(part_max)])])
    };
    let offsets = |resp: &kafka_protocol::messages::FetchResponse| -> Vec<i64> {
        let mut bytes = resp.responses[0].partitions[0]
            .records
            .clone()
            .unwrap_or_default();
        RecordBatchDecoder::decode_all(&mut bytes)
            .expect("batches decode")
            .iter()
            .flat_map(|set| set.records.iter().map(|r| r.offset))
            .collect()
    };
    let topic = f.topic.clone();
    let tid = f.tid;
    let conn = f.client.connection(NODE).await.expect("connection");

    // From offset 1: the whole first batch (0..2) and the second (3..4); the watermarks.
    let resp = conn
        .send(&request(1, 1 << 20, 0, tid, &topic))
        .await
        .expect("fetch");
    let p = &resp.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    assert_eq!(
        (p.high_watermark, p.last_stable_offset, p.log_start_offset),
        (5, 5, 0)
    );
    assert_eq!(offsets(&resp), [0, 1, 2, 3, 4]);
    assert_eq!(resp.session_id, 0, "fetch sessions are declined");

    // A one-byte partition limit still returns the first batch, and only it.
    let resp = conn
        .send(&request(3, 1, 0, tid, &topic))
        .await
        .expect("fetch");
    assert_eq!(offsets(&resp), [3, 4]);

    // At the log end: nothing, no error; past it: OFFSET_OUT_OF_RANGE.
    let resp = conn
        .send(&request(5, 1 << 20, 0, tid, &topic))
        .await
        .expect("fetch");
    assert_eq!(resp.responses[0].partitions[0].error_code, 0);
    assert!(offsets(&resp).is_empty());
    let resp = conn
        .send(&request(6, 1 << 20, 0, tid, &topic))
        .await
        .expect("fetch");
    assert_eq!(resp.responses[0].partitions[0].error_code, 1);

    // An unknown topic id (v13+) or name answers at once with its error.
    let resp = conn
        .send(&request(0, 1 << 20, 5_000, Uuid::new_v4(), "no-such-topic"))
        .await
        .expect("fetch");
    assert!([3, 100].contains(&resp.responses[0].partitions[0].error_code));

    // An incremental fetch in a session this broker never gave.
    let resp = conn
        .send(
            &request(0, 1 << 20, 0, tid, &topic)
                .with_session_id(42)
                .with_session_epoch(1),
        )
        .await
        .expect("fetch");
    assert_eq!(resp.error_code, 70);

    // A long poll at the log end is woken by a produce.
    let mut other = client(&f.broker).await;
    let waiter = tokio::spawn({
        let req = request(5, 1 << 20, 10_000, tid, &topic);
        let mut conn = client(&f.broker).await;
        async move {
            let started = std::time::Instant::now();
            let resp = conn
                .connection(NODE)
                .await
                .expect("connection")
                .send(&req)
                .await
                .expect("fetch");
            (resp, started.elapsed())
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    other
        .produce(&topic, 0, &[1], |_| {
            (None, Some(bytes::Bytes::from_static(b"late")))
        })
        .await
        .expect("produced");
    let (resp, waited) = waiter.await.expect("joined");
    assert_eq!(offsets(&resp), [5]);
    assert!(
        waited < Duration::from_secs(9),
        "woken by the produce, not the 10 s wait: {waited:?}"
    );
}
