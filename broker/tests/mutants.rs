//! Every listed mutant is observable over the wire: for each one a small scenario, run with
//! sharecheck's wire client, holds on the correct broker and fails on the mutant. (The conformance
//! suite must catch them all; this is the broker's own check that each one can be caught.)

mod common;

use std::time::Duration;

use common::*;
use sharecheck_broker::{BrokerConfig, BrokerMutant, Mutant};
use sharecheck_client::member::{
    AckBatch, AckType, Epoch, FetchSpec, FetchV2, MemberConfig, ShareMember,
};
use sharecheck_client::v2::AcquireMode;
use sharecheck_client::ErrorCode;

async fn setup(mutant: Option<BrokerMutant>, configs: &[(&str, &str)], records: usize) -> Fixture {
    let config = BrokerConfig {
        mutant,
        ..BrokerConfig::default()
    };
    let mut f = fixture(config, 1, configs).await;
    f.produce(0, records).await;
    f
}

fn counts(v: &[(i64, i16)]) -> Vec<i16> {
    v.iter().map(|(_, c)| *c).collect()
}

async fn fetch(m: &mut ShareMember, f: &Fixture) -> Vec<(i64, i16)> {
    got(&m.fetch(&f.spec()).await.expect("fetch"), f.tid)
}

async fn ack_code(m: &mut ShareMember, f: &Fixture, batches: Vec<AckBatch>) -> ErrorCode {
    let out = m
        .acknowledge(&[f.acks(batches)], Epoch::Auto)
        .await
        .expect("ack");
    out.partition_error(f.tid, 0).unwrap_or(out.error_code)
}

/// RENEW offset `o` of partition 0 with a ShareAcknowledge v2 (`IsRenewAck`).
async fn renew(m: &mut ShareMember, f: &Fixture, o: i64) -> ErrorCode {
    let broker = m.leader_of(f.tid, 0).expect("leader");
    let out = m
        .acknowledge_v2_to(
            broker,
            &[f.acks(vec![AckBatch::new(o, o, AckType::Renew)])],
            Epoch::Auto,
            true,
        )
        .await
        .expect("renew");
    out.partition_error(f.tid, 0).unwrap_or(out.error_code)
}

/// The scenario that exposes `target`; true when the broker behaved as KIP-932 says.
async fn holds(target: BrokerMutant, planted: Option<BrokerMutant>) -> bool {
    let short_lock = [("share.record.lock.duration.ms", "1000")];
    let limit2 = [("share.delivery.count.limit", "2")];
    match target {
        BrokerMutant::Spec(Mutant::NoCountIncrement) => {
            let f = setup(planted, &[], 1).await;
            let mut a = f.member();
            fetch(&mut a, &f).await;
            ack_code(&mut a, &f, vec![AckBatch::new(0, 0, AckType::Release)]).await;
            counts(&fetch(&mut a, &f).await) == [2]
        }
        BrokerMutant::Spec(Mutant::ReleaseAtLimitAvailable) => {
            let f = setup(planted, &limit2, 1).await;
            let mut a = f.member();
            fetch(&mut a, &f).await;
            ack_code(&mut a, &f, vec![AckBatch::new(0, 0, AckType::Release)]).await;
            fetch(&mut a, &f).await;
            ack_code(&mut a, &f, vec![AckBatch::new(0, 0, AckType::Release)]).await;
            fetch(&mut a, &f).await.is_empty()
        }
        BrokerMutant::Spec(Mutant::ExpiryReopensAcknowledged) => {
            // Offset 0 stays acquired so the SPSO stays below the accepted offset 1.
            let f = setup(planted, &short_lock, 2).await;
            let mut a = f.member();
            fetch(&mut a, &f).await;
            ack_code(&mut a, &f, vec![AckBatch::new(1, 1, AckType::Accept)]).await;
            tokio::time::sleep(Duration::from_millis(1500)).await;
            fetch(&mut a, &f).await == [(0, 2)]
        }
        BrokerMutant::Spec(Mutant::NonOwnerAck)
        | BrokerMutant::Spec(Mutant::SilentInvalidAck)
        | BrokerMutant::WrongAckErrorCode => {
            let f = setup(planted, &[], 1).await;
            let (mut a, mut b) = (f.member(), f.member());
            fetch(&mut a, &f).await;
            fetch(&mut b, &f).await;
            ack_code(&mut b, &f, vec![AckBatch::new(0, 0, AckType::Accept)]).await
                == ErrorCode::INVALID_RECORD_STATE
        }
        BrokerMutant::Spec(Mutant::SessionCloseKeepsLocks) => {
            let f = setup(planted, &[], 1).await;
            let (mut a, mut b) = (f.member(), f.member());
            fetch(&mut a, &f).await;
            a.close_session(NODE, Vec::new()).await.expect("close");
            counts(&fetch(&mut b, &f).await) == [2]
        }
        BrokerMutant::Spec(Mutant::SpsoSkipsAcquired) => {
            let f = setup(planted, &[], 2).await;
            let mut a = f.member();
            fetch(&mut a, &f).await;
            ack_code(&mut a, &f, vec![AckBatch::new(1, 1, AckType::Accept)]).await;
            ack_code(&mut a, &f, vec![AckBatch::new(0, 0, AckType::Release)]).await;
            fetch(&mut a, &f).await == [(0, 2)]
        }
        BrokerMutant::Spec(Mutant::ExpiryNeverFires) => {
            let f = setup(planted, &short_lock, 1).await;
            let mut a = f.member();
            fetch(&mut a, &f).await;
            tokio::time::sleep(Duration::from_millis(1500)).await;
            counts(&fetch(&mut a, &f).await) == [2]
        }
        BrokerMutant::Spec(Mutant::DoubleAcquire) => {
            let f = setup(planted, &[], 1).await;
            let (mut a, mut b) = (f.member(), f.member());
            fetch(&mut a, &f).await;
            fetch(&mut b, &f).await.is_empty()
        }
        BrokerMutant::Spec(Mutant::NonAtomicAck) => {
            let f = setup(planted, &[], 3).await;
            let (mut a, mut b) = (f.member(), f.member());
            fetch(&mut a, &f).await;
            // RELEASE 0, then a batch past the end offset: 42 for the whole request.
            let code = ack_code(
                &mut a,
                &f,
                vec![
                    AckBatch::new(0, 0, AckType::Release),
                    AckBatch::new(10, 10, AckType::Accept),
                ],
            )
            .await;
            code == ErrorCode::INVALID_REQUEST && fetch(&mut b, &f).await.is_empty()
        }
        BrokerMutant::Spec(Mutant::StaleFetchOffset) => {
            let f = setup(planted, &[], 2).await;
            let mut a = f.member();
            fetch(&mut a, &f).await;
            ack_code(&mut a, &f, vec![AckBatch::new(0, 1, AckType::Release)]).await;
            fetch(&mut a, &f).await == [(0, 2), (1, 2)]
        }
        BrokerMutant::Spec(Mutant::SessionReleaseDecrements) => {
            let f = setup(planted, &[], 1).await;
            let (mut a, mut b) = (f.member(), f.member());
            fetch(&mut a, &f).await;
            a.close_session(NODE, Vec::new()).await.expect("close");
            // 4.2 keeps the count: the redelivery is the second.
            counts(&fetch(&mut b, &f).await) == [2]
        }
        BrokerMutant::Spec(Mutant::ReportedCountOffByOne) => {
            let f = setup(planted, &[], 1).await;
            let mut a = f.member();
            counts(&fetch(&mut a, &f).await) == [1]
        }
        BrokerMutant::Spec(Mutant::RejectRedelivers) => {
            let f = setup(planted, &[], 1).await;
            let mut a = f.member();
            fetch(&mut a, &f).await;
            ack_code(&mut a, &f, vec![AckBatch::new(0, 0, AckType::Reject)]).await;
            fetch(&mut a, &f).await.is_empty()
        }
        BrokerMutant::Spec(Mutant::WindowOvershoot) => {
            let f = setup(planted, &[("share.partition.max.record.locks", "100")], 150).await;
            let mut a = f.member();
            fetch(&mut a, &f).await.len() == 100
        }
        BrokerMutant::EarlyLockExpiry => {
            let f = setup(planted, &[("share.record.lock.duration.ms", "3000")], 1).await;
            let (mut a, mut b) = (f.member(), f.member());
            fetch(&mut a, &f).await;
            tokio::time::sleep(Duration::from_millis(1900)).await;
            fetch(&mut b, &f).await.is_empty()
        }
        BrokerMutant::SessionEpochUnchecked => {
            let f = setup(planted, &[], 1).await;
            let mut a = f.member();
            fetch(&mut a, &f).await;
            let out = a
                .fetch(&f.spec().with_epoch(Epoch::Raw(7)))
                .await
                .expect("fetch");
            out.error_code == ErrorCode::INVALID_SHARE_SESSION_EPOCH
        }
        BrokerMutant::DisconnectKeepsLocks => {
            let f = setup(planted, &[], 1).await;
            let (mut a, mut b) = (f.member(), f.member());
            fetch(&mut a, &f).await;
            a.drop_connection(NODE);
            let long = f.spec().with_limits(limits(3000, 500));
            counts(&fetch_n(&mut b, &long, f.tid, 1, Duration::from_secs(3)).await) == [2]
        }
        BrokerMutant::InitialEpochAcksApplied => {
            let f = setup(planted, &[], 1).await;
            let mut a = f.member();
            fetch(&mut a, &f).await;
            let out = a
                .fetch(
                    &f.spec()
                        .with_acks(vec![f.acks(vec![AckBatch::new(0, 0, AckType::Accept)])])
                        .with_epoch(Epoch::Raw(0)),
                )
                .await
                .expect("fetch");
            out.error_code == ErrorCode::INVALID_REQUEST
        }
        BrokerMutant::LockTimeoutNotEchoed => {
            let f = setup(planted, &[("share.record.lock.duration.ms", "1500")], 1).await;
            let mut a = f.member();
            let out = a.fetch(&f.spec()).await.expect("fetch");
            out.acquisition_lock_timeout_ms == 1500
        }
        BrokerMutant::Spec(Mutant::RestartForgetsAcknowledged) => {
            // Offset 0 stays acquired so the SPSO stays below the accepted offset 1.
            let f = setup(planted, &[], 2).await;
            let mut a = f.member();
            fetch(&mut a, &f).await;
            ack_code(&mut a, &f, vec![AckBatch::new(1, 1, AckType::Accept)]).await;
            f.broker.restart();
            let mut b = f.member();
            fetch(&mut b, &f).await == [(0, 1)]
        }
        BrokerMutant::RestartKeepsLocks => {
            let f = setup(planted, &[], 1).await;
            let mut a = f.member();
            fetch(&mut a, &f).await;
            f.broker.restart();
            let mut b = f.member();
            fetch(&mut b, &f).await == [(0, 1)]
        }
        BrokerMutant::AddedPartitionUnassigned => {
            let mut f = setup(planted, &[], 1).await;
            let topic = f.topic.clone();
            f.client
                .create_partitions(&topic, 2)
                .await
                .expect("partitions added");
            let config = sharecheck_client::member::MemberConfig::new(f.group.clone(), vec![topic]);
            let a = ShareMember::join(&mut f.client, config)
                .await
                .expect("joined");
            let mut assigned = a.assignment();
            assigned.sort_unstable();
            assigned == [(f.tid, 0), (f.tid, 1)]
        }
        BrokerMutant::DuplicatePartitionEntry => {
            let f = setup(planted, &[], 1).await;
            let mut a = f.member();
            let out = a.fetch(&f.spec()).await.expect("fetch");
            out.partitions.len() == 1
        }
        BrokerMutant::UnrequestedPartitionEntry => {
            let config = BrokerConfig {
                mutant: planted,
                ..BrokerConfig::default()
            };
            let mut f = fixture(config, 2, &[]).await;
            f.produce(0, 1).await;
            let mut a = f.member();
            let out = a.fetch(&f.spec()).await.expect("fetch");
            out.partitions.iter().all(|p| p.partition == 0)
        }
        BrokerMutant::RestartLowersCounts => {
            let f = setup(planted, &[], 1).await;
            let mut a = f.member();
            fetch(&mut a, &f).await;
            ack_code(&mut a, &f, vec![AckBatch::new(0, 0, AckType::Release)]).await;
            f.broker.restart();
            let mut b = f.member();
            counts(&fetch(&mut b, &f).await) == [2]
        }
        BrokerMutant::RenewIncrementsCount => {
            let f = setup(planted, &[], 1).await;
            let mut a = f.member();
            fetch(&mut a, &f).await;
            assert_eq!(renew(&mut a, &f, 0).await, ErrorCode::NONE);
            ack_code(&mut a, &f, vec![AckBatch::new(0, 0, AckType::Release)]).await;
            counts(&fetch(&mut a, &f).await) == [2]
        }
        BrokerMutant::RenewKeepsOldDeadline => {
            // A 2 s lock renewed at 1 s ends at about 3 s; at 2.5 s the first one is over. B asks
            // without waiting, so the answer reflects that instant (500 ms either side).
            let f = setup(planted, &[("share.record.lock.duration.ms", "2000")], 1).await;
            let mut a = f.member();
            let started = std::time::Instant::now();
            fetch(&mut a, &f).await;
            tokio::time::sleep(Duration::from_millis(1000).saturating_sub(started.elapsed())).await;
            assert_eq!(renew(&mut a, &f, 0).await, ErrorCode::NONE);
            let mut b = f.member();
            tokio::time::sleep(Duration::from_millis(2500).saturating_sub(started.elapsed())).await;
            let now = FetchSpec::partitions(vec![(f.tid, 0)]).with_limits(limits(0, 500));
            got(&b.fetch(&now).await.expect("fetch"), f.tid).is_empty()
        }
        BrokerMutant::RecordLimitOvershoot => {
            let f = setup(planted, &[], 5).await;
            let mut a = f.member();
            let spec = FetchSpec::partitions(vec![(f.tid, 0)])
                .with_limits(limits(200, 2))
                .with_v2(FetchV2 {
                    acquire_mode: AcquireMode::RecordLimit,
                    is_renew_ack: false,
                });
            let out = a.fetch(&spec).await.expect("fetch");
            out.acquired_count() == 2
        }
        BrokerMutant::AddedPartitionAtLogEnd => {
            let config = BrokerConfig {
                mutant: planted,
                ..BrokerConfig::default()
            };
            let mut f = fixture(config, 1, &[]).await;
            let topic = f.topic.clone();
            f.client
                .create_partitions(&topic, 2)
                .await
                .expect("partitions added");
            f.produce(1, 2).await;
            let mut a = f.member();
            let spec = FetchSpec::partitions(vec![(f.tid, 1)]).with_limits(limits(200, 500));
            let out = a.fetch(&spec).await.expect("fetch");
            out.acquired(f.tid, 1).len() == 2
        }
        BrokerMutant::AlterWithMembers => {
            let mut f = setup(planted, &[], 2).await;
            let (group, topic) = (f.group.clone(), f.topic.clone());
            let _joined = ShareMember::join(
                &mut f.client,
                MemberConfig::new(group.clone(), vec![topic.clone()]),
            )
            .await
            .expect("join");
            let out = f
                .client
                .alter_share_group_offsets(&group, &topic, &[(0, 1)])
                .await
                .expect("alter");
            out.error == ErrorCode::NON_EMPTY_GROUP
        }
        BrokerMutant::AlterKeepsOlderRecords | BrokerMutant::DeleteKeepsState => {
            let mut f = setup(planted, &[], 2).await;
            let mut a = f.member();
            fetch(&mut a, &f).await;
            ack_code(&mut a, &f, vec![AckBatch::new(0, 1, AckType::Accept)]).await;
            a.close_session(NODE, Vec::new()).await.expect("close");
            let (group, topic) = (f.group.clone(), f.topic.clone());
            // `a` never joined (the leader does not check); one member joins and leaves, so the
            // group exists and has no members.
            let mut j = ShareMember::join(
                &mut f.client,
                MemberConfig::new(group.clone(), vec![topic.clone()]),
            )
            .await
            .expect("join");
            j.leave().await.expect("leave");
            let out = if target == BrokerMutant::AlterKeepsOlderRecords {
                f.client
                    .alter_share_group_offsets(&group, &topic, &[(0, 0)])
                    .await
            } else {
                f.client.delete_share_group_offsets(&group, &topic).await
            }
            .expect("alter or delete");
            let mut b = f.member();
            out.error == ErrorCode::NONE && fetch(&mut b, &f).await == [(0, 1), (1, 1)]
        }
        BrokerMutant::LagOffByOne => {
            let mut f = setup(planted, &[], 3).await;
            let mut a = f.member();
            fetch(&mut a, &f).await;
            ack_code(&mut a, &f, vec![AckBatch::new(0, 0, AckType::Accept)]).await;
            let (group, topic) = (f.group.clone(), f.topic.clone());
            let (version, g) = f
                .client
                .describe_share_group_offsets(&group, &topic, &[0])
                .await
                .expect("describe");
            let p = &g.topics[0].partitions[0];
            version == 1 && (p.start_offset, p.lag) == (1, 2)
        }
        BrokerMutant::DlqRecordMissing | BrokerMutant::DlqWrittenTwice => {
            let mut f = setup(planted, &[], 2).await;
            let (group, topic) = (f.group.clone(), f.topic.clone());
            let dlq = format!("dlq.{topic}");
            f.client
                .create_topic_with(&dlq, 1, &[("errors.deadletterqueue.group.enable", "true")])
                .await
                .expect("DLQ topic");
            f.client
                .set_group_configs(&group, &[("errors.deadletterqueue.topic.name", &dlq)])
                .await
                .expect("DLQ config");
            let mut a = f.member();
            fetch(&mut a, &f).await;
            ack_code(&mut a, &f, vec![AckBatch::new(0, 0, AckType::Reject)]).await;
            f.client
                .refresh_metadata(&[dlq.as_str()])
                .await
                .expect("metadata");
            let written = f.client.read_log(&dlq, 0, 0).await.expect("read the DLQ");
            let offset = |r: &sharecheck_client::admin::LogRecord| {
                r.headers
                    .iter()
                    .find(|(k, _)| k == "__dlq.errors.offset")
                    .and_then(|(_, v)| v.clone())
            };
            written.len() == 1 && offset(&written[0]).as_deref() == Some(&b"0"[..])
        }
        BrokerMutant::RenewIgnoresDisable => {
            let f = setup(planted, &[("share.renew.acknowledge.enable", "false")], 1).await;
            let mut a = f.member();
            fetch(&mut a, &f).await;
            renew(&mut a, &f, 0).await == ErrorCode::INVALID_RECORD_STATE
        }
        BrokerMutant::GroupLimitUnchecked => {
            let mut f = setup(planted, &[], 1).await;
            let group = f.group.clone();
            let refused = f
                .client
                .set_group_configs(&group, &[("share.delivery.count.limit", "26")])
                .await
                .err()
                .and_then(|e| e.kafka_code());
            refused == Some(ErrorCode::INVALID_CONFIG)
        }
    }
}

async fn observable(name: &str) {
    let m = BrokerMutant::by_name(name).expect("a listed mutant");
    assert!(
        holds(m, None).await,
        "{name}: the correct broker fails the scenario"
    );
    assert!(
        !holds(m, Some(m)).await,
        "{name}: the mutant is not observable"
    );
}

macro_rules! observable {
    ($($test:ident => $name:literal,)*) => {
        $(
            #[tokio::test]
            async fn $test() {
                observable($name).await;
            }
        )*

        #[test]
        fn every_listed_mutant_has_a_scenario() {
            let mut covered = vec![$($name),*];
            covered.sort_unstable();
            let mut listed: Vec<&str> = BrokerMutant::all().iter().map(|m| m.name()).collect();
            listed.sort_unstable();
            assert_eq!(covered, listed);
        }
    };
}

observable! {
    no_count_increment => "no-count-increment",
    release_at_limit_available => "release-at-limit-available",
    expiry_reopens_acknowledged => "expiry-reopens-acknowledged",
    non_owner_ack => "non-owner-ack",
    session_close_keeps_locks => "session-close-keeps-locks",
    spso_skips_acquired => "spso-skips-acquired",
    expiry_never_fires => "expiry-never-fires",
    double_acquire => "double-acquire",
    non_atomic_ack => "non-atomic-ack",
    stale_fetch_offset => "stale-fetch-offset",
    session_release_decrements => "session-release-decrements",
    reported_count_off_by_one => "reported-count-off-by-one",
    reject_redelivers => "reject-redelivers",
    silent_invalid_ack => "silent-invalid-ack",
    window_overshoot => "window-overshoot",
    wrong_ack_error_code => "wrong-ack-error-code",
    early_lock_expiry => "early-lock-expiry",
    session_epoch_unchecked => "session-epoch-unchecked",
    disconnect_keeps_locks => "disconnect-keeps-locks",
    initial_epoch_acks_applied => "initial-epoch-acks-applied",
    lock_timeout_not_echoed => "lock-timeout-not-echoed",
    restart_forgets_acknowledged => "restart-forgets-acknowledged",
    restart_keeps_locks => "restart-keeps-locks",
    added_partition_unassigned => "added-partition-unassigned",
    duplicate_partition_entry => "duplicate-partition-entry",
    unrequested_partition_entry => "unrequested-partition-entry",
    restart_lowers_counts => "restart-lowers-counts",
    added_partition_at_log_end => "added-partition-at-log-end",
    renew_increments_count => "renew-increments-count",
    renew_keeps_old_deadline => "renew-keeps-old-deadline",
    record_limit_overshoot => "record-limit-overshoot",
    alter_with_members => "alter-with-members",
    alter_keeps_older_records => "alter-keeps-older-records",
    delete_keeps_state => "delete-keeps-state",
    lag_off_by_one => "lag-off-by-one",
    group_limit_unchecked => "group-limit-unchecked",
    dlq_record_missing => "dlq-record-missing",
    dlq_written_twice => "dlq-written-twice",
    renew_ignores_disable => "renew-ignores-disable",
}
