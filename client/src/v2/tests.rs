use super::*;
use kafka_protocol::messages::share_acknowledge_request::{
    AcknowledgePartition, AcknowledgeTopic, AcknowledgementBatch as AckReqBatch,
};
use kafka_protocol::messages::share_acknowledge_response::{
    PartitionData as AckPartitionData, ShareAcknowledgeTopicResponse,
};
use kafka_protocol::messages::share_fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::GroupId;
use kafka_protocol::protocol::StrBytes;

fn fetch(group: &str) -> ShareFetchRequest {
    ShareFetchRequest::default()
        .with_group_id(Some(GroupId(StrBytes::from_string(group.to_string()))))
        .with_member_id(Some(StrBytes::from_static_str("m")))
        .with_share_session_epoch(3)
        .with_max_wait_ms(500)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_max_records(7)
        .with_batch_size(7)
        .with_topics(vec![FetchTopic::default()
            .with_topic_id(uuid::Uuid::from_u128(9))
            .with_partitions(vec![
                FetchPartition::default().with_partition_index(2)
            ])])
}

fn ack() -> ShareAcknowledgeRequest {
    ShareAcknowledgeRequest::default()
        .with_group_id(Some(GroupId(StrBytes::from_static_str("g"))))
        .with_member_id(Some(StrBytes::from_static_str("member-1")))
        .with_share_session_epoch(4)
        .with_topics(vec![AcknowledgeTopic::default()
            .with_topic_id(uuid::Uuid::from_u128(9))
            .with_partitions(vec![AcknowledgePartition::default()
                .with_partition_index(0)
                .with_acknowledgement_batches(vec![AckReqBatch::default()
                    .with_first_offset(0)
                    .with_last_offset(1)
                    .with_acknowledge_types(vec![4])])])])
}

fn ack_response(message: Option<&'static str>) -> ShareAcknowledgeResponse {
    ShareAcknowledgeResponse::default()
        .with_throttle_time_ms(5)
        .with_error_code(0)
        .with_error_message(message.map(StrBytes::from_static_str))
        .with_responses(vec![ShareAcknowledgeTopicResponse::default()
            .with_topic_id(uuid::Uuid::from_u128(9))
            .with_partitions(vec![AckPartitionData::default()
                .with_partition_index(0)
                .with_error_code(121)])])
}

fn bytes<M: Encodable>(m: &M, v: i16) -> Bytes {
    let mut b = BytesMut::new();
    m.encode(&mut b, v).expect("encodes");
    assert_eq!(
        b.len(),
        m.compute_size(v).expect("size"),
        "compute_size agrees"
    );
    b.freeze()
}

/// The v2 fields sit where the schema puts them: after GroupId, MemberId and six int32 (ShareFetch),
/// and the rest of the body is v1's, byte for byte. A 200-byte group id (a two-byte varint length)
/// moves them accordingly.
#[test]
fn share_fetch_v2_is_v1_with_mode_and_renew_after_batch_size() {
    for group in ["g".to_string(), "x".repeat(200)] {
        let v1 = bytes(&fetch(&group), 1);
        let req = ShareFetchV2Request {
            v1: fetch(&group),
            acquire_mode: AcquireMode::RecordLimit,
            is_renew_ack: true,
        };
        let v2 = bytes(&req, 2);
        let varint = if group.len() + 1 < 128 { 1 } else { 2 };
        let at = varint + group.len() + 2 + 24; // GroupId, MemberId "m", 6 x int32
        assert_eq!(v2.len(), v1.len() + 2);
        assert_eq!(&v2[..at], &v1[..at]);
        assert_eq!(
            &v2[at..at + 2],
            &[1, 1],
            "ShareAcquireMode 1, IsRenewAck true"
        );
        assert_eq!(&v2[at + 2..], &v1[at..]);
        // The epoch is the first int32 after the strings.
        let epoch_at = varint + group.len() + 2;
        assert_eq!(&v2[epoch_at..epoch_at + 4], &3i32.to_be_bytes());
        assert_eq!(
            ShareFetchV2Request::decode(&mut v2.clone(), 2).expect("decodes"),
            req
        );
        crate::guard::check(78, 2, &v2).expect("the 4.2.0 schema accepts it");
    }
}

#[test]
fn share_acknowledge_v2_carries_is_renew_ack_after_the_epoch() {
    let v1 = bytes(&ack(), 1);
    let req = ShareAcknowledgeV2Request {
        v1: ack(),
        is_renew_ack: true,
    };
    let v2 = bytes(&req, 2);
    let at = 2 + 9 + 4; // GroupId "g", MemberId "member-1", epoch
    assert_eq!(&v2[..at], &v1[..at]);
    assert_eq!(v2[at], 1);
    assert_eq!(&v2[at + 1..], &v1[at..]);
    assert_eq!(
        ShareAcknowledgeV2Request::decode(&mut v2.clone(), 2).expect("decodes"),
        req
    );
    crate::guard::check(79, 2, &v2).expect("the 4.2.0 schema accepts it");
}

#[test]
fn share_acknowledge_response_v2_has_the_lock_timeout_after_the_error_message() {
    for message in [None, Some("renewed")] {
        let resp = ShareAcknowledgeV2Response {
            v1: ack_response(message),
            acquisition_lock_timeout_ms: 15_000,
        };
        let v1 = bytes(&resp.v1, 1);
        let v2 = bytes(&resp, 2);
        let at = 6 + message.map_or(1, |m| 1 + m.len());
        assert_eq!(&v2[at..at + 4], &15_000i32.to_be_bytes());
        assert_eq!(&v2[..at], &v1[..at]);
        assert_eq!(&v2[at + 4..], &v1[at..]);
        crate::guard::check_response(79, 2, &v2).expect("the 4.2.0 schema accepts it");
        let back = ShareAcknowledgeV2Response::decode(&mut v2.clone(), 2).expect("decodes");
        assert_eq!(back, resp);
        let old = ShareAcknowledgeV2Response::decode(&mut v1.clone(), 1).expect("v1 decodes");
        assert_eq!(old.acquisition_lock_timeout_ms, 0);
        assert_eq!(old.v1, resp.v1);
    }
}

#[test]
fn share_fetch_response_v2_is_laid_out_as_v1() {
    let resp = ShareFetchV2Response(
        ShareFetchResponse::default().with_acquisition_lock_timeout_ms(30_000),
    );
    let v2 = bytes(&resp, 2);
    assert_eq!(v2, bytes(&resp.0, 1));
    crate::guard::check_response(78, 2, &v2).expect("schema");
    assert_eq!(
        ShareFetchV2Response::decode(&mut v2.clone(), 2).expect("decodes"),
        resp
    );
}

/// v1 cannot say RENEW or a mode, and no version but 1 and 2 exists: refused, not sent wrong.
#[test]
fn what_v1_cannot_carry_is_refused() {
    let mut b = BytesMut::new();
    let renew = ShareAcknowledgeV2Request {
        v1: ack(),
        is_renew_ack: true,
    };
    assert!(renew.encode(&mut b, 1).is_err());
    let mode = ShareFetchV2Request {
        v1: fetch("g"),
        acquire_mode: AcquireMode::RecordLimit,
        is_renew_ack: false,
    };
    assert!(mode.encode(&mut b, 1).is_err());
    assert!(mode.encode(&mut b, 3).is_err());
    assert!(ShareFetchV2Request::decode(&mut Bytes::new(), 0).is_err());
}

/// Truncated or lying bodies are errors, never panics: every cut of a v2 body, and a group id
/// whose length runs past the end.
#[test]
fn broken_v2_bodies_are_errors() {
    let v2 = bytes(
        &ShareFetchV2Request {
            v1: fetch("g"),
            ..Default::default()
        },
        2,
    );
    for cut in 0..v2.len() {
        assert!(
            ShareFetchV2Request::decode(&mut v2.slice(..cut), 2).is_err(),
            "cut at {cut}"
        );
    }
    let resp = bytes(
        &ShareAcknowledgeV2Response {
            v1: ack_response(Some("x")),
            acquisition_lock_timeout_ms: 1,
        },
        2,
    );
    for cut in 0..resp.len() {
        assert!(
            ShareAcknowledgeV2Response::decode(&mut resp.slice(..cut), 2).is_err(),
            "cut at {cut}"
        );
    }
    let lying = Bytes::from_static(&[0xff, 0xff, 0xff, 0x0f, b'g']);
    assert!(ShareFetchV2Request::decode(&mut lying.clone(), 2).is_err());
    let mode = {
        let mut b = v2.to_vec();
        b[2 + 2 + 24] = 7;
        Bytes::from(b)
    };
    assert!(
        ShareFetchV2Request::decode(&mut mode.clone(), 2).is_err(),
        "mode 7"
    );
}

/// Requests the Java client (kafka-clients 4.2.2) sent at v2, captured on the wire: each decodes,
/// passes the guard and encodes back to the very same bytes.
#[test]
fn java_client_v2_requests_round_trip_byte_for_byte() {
    let text = include_str!("java-4.2.2-requests.txt");
    let (mut fetches, mut acks) = (0, 0);
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let mut parts = line.split(' ');
        let key: i16 = parts.next().unwrap().parse().unwrap();
        let version: i16 = parts.next().unwrap().parse().unwrap();
        let hex = parts.next().unwrap();
        let body: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(version, V2);
        crate::guard::check(key, version, &body)
            .expect("the guard accepts the Java client's bytes");
        let mut buf = Bytes::from(body.clone());
        let again = match key {
            78 => {
                let r = ShareFetchV2Request::decode(&mut buf, version).expect("decodes");
                fetches += 1;
                bytes(&r, version)
            }
            79 => {
                let r = ShareAcknowledgeV2Request::decode(&mut buf, version).expect("decodes");
                acks += 1;
                bytes(&r, version)
            }
            other => panic!("unexpected API key {other}"),
        };
        assert_eq!(&again[..], &body[..], "API {key} re-encodes differently");
    }
    assert!(fetches >= 3 && acks >= 3, "{fetches} fetches, {acks} acks");
}
