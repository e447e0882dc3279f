//! DescribeShareGroupOffsets v1 (Kafka 4.2+: `Lag`, KIP-1226), which kafka-protocol 0.18 cannot
//! encode or decode (it stops at v0).
//!
//! The request is the same at v0 and v1; v1 adds `Lag` (int64) to each partition of the response,
//! between `LeaderEpoch` and `ErrorCode`
//! (`clients/src/main/resources/common/message/DescribeShareGroupOffsetsResponse.json` at 4.2.0
//! `a18251bae0`; wire-identical on the 4.4 branch; copy in `schemas/`). Lag sits inside a triple
//! nesting, so the response is written and read here field by field on kafka-protocol's primitives
//! (no field of it is tagged; every struct ends with an empty tagged-field section). The guard walks
//! every response against the schema before this code reads it (`crate::guard`).

use bytes::{Buf, BufMut};
use kafka_protocol::messages::{
    DescribeShareGroupOffsetsRequest, DescribeShareGroupOffsetsResponse,
};
use kafka_protocol::protocol::{
    buf::{ByteBuf, ByteBufMut},
    Decodable, Encodable, HeaderVersion, Message, Request, VersionRange,
};
use uuid::Uuid;

/// The version that carries `Lag`.
pub const LAG_VERSION: i16 = 1;

const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

/// Lag when the broker cannot compute it (the schema's default).
pub const NO_LAG: i64 = -1;

/// A DescribeShareGroupOffsets request at v0 or v1 (the same fields).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DescribeOffsetsRequest(pub DescribeShareGroupOffsetsRequest);

/// A DescribeShareGroupOffsets response at v0 or v1.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DescribeOffsetsResponse {
    /// `ThrottleTimeMs`.
    pub throttle_time_ms: i32,
    /// `Groups`.
    pub groups: Vec<OffsetsGroup>,
}

/// One group of a [`DescribeOffsetsResponse`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OffsetsGroup {
    /// `GroupId`.
    pub group_id: String,
    /// `Topics`.
    pub topics: Vec<OffsetsTopic>,
    /// The group-level `ErrorCode`.
    pub error_code: i16,
    /// The group-level `ErrorMessage`.
    pub error_message: Option<String>,
}

/// One topic of an [`OffsetsGroup`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OffsetsTopic {
    /// `TopicName`.
    pub topic_name: String,
    /// `TopicId`.
    pub topic_id: Uuid,
    /// `Partitions`.
    pub partitions: Vec<OffsetsPartition>,
}

/// One partition of an [`OffsetsTopic`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetsPartition {
    /// `PartitionIndex`.
    pub partition_index: i32,
    /// `StartOffset`: the share-partition start offset (−1: not initialised).
    pub start_offset: i64,
    /// `LeaderEpoch`.
    pub leader_epoch: i32,
    /// `Lag` (v1; [`NO_LAG`] when decoded from v0 or not computable).
    pub lag: i64,
    /// `ErrorCode`.
    pub error_code: i16,
    /// `ErrorMessage`.
    pub error_message: Option<String>,
}

impl Default for OffsetsPartition {
    fn default() -> Self {
        OffsetsPartition {
            partition_index: 0,
            start_offset: -1,
            leader_epoch: 0,
            lag: NO_LAG,
            error_code: 0,
            error_message: None,
        }
    }
}

impl Message for DescribeOffsetsRequest {
    const VERSIONS: VersionRange = VERSIONS;
    const DEPRECATED_VERSIONS: Option<VersionRange> = None;
}

impl Message for DescribeOffsetsResponse {
    const VERSIONS: VersionRange = VERSIONS;
    const DEPRECATED_VERSIONS: Option<VersionRange> = None;
}

fn check_version(version: i16) -> anyhow::Result<()> {
    if (VERSIONS.min..=VERSIONS.max).contains(&version) {
        Ok(())
    } else {
        anyhow::bail!("DescribeShareGroupOffsets version {version} is not 0 or 1")
    }
}

impl Encodable for DescribeOffsetsRequest {
    fn encode<B: ByteBufMut>(&self, buf: &mut B, version: i16) -> anyhow::Result<()> {
        check_version(version)?;
        self.0.encode(buf, 0)
    }

    fn compute_size(&self, version: i16) -> anyhow::Result<usize> {
        check_version(version)?;
        self.0.compute_size(0)
    }
}

impl Decodable for DescribeOffsetsRequest {
    fn decode<B: ByteBuf>(buf: &mut B, version: i16) -> anyhow::Result<Self> {
        check_version(version)?;
        Ok(DescribeOffsetsRequest(
            DescribeShareGroupOffsetsRequest::decode(buf, 0)?,
        ))
    }
}

impl HeaderVersion for DescribeOffsetsRequest {
    fn header_version(_version: i16) -> i16 {
        <DescribeShareGroupOffsetsRequest as HeaderVersion>::header_version(0)
    }
}

impl Request for DescribeOffsetsRequest {
    const KEY: i16 = <DescribeShareGroupOffsetsRequest as Request>::KEY;
    type Response = DescribeOffsetsResponse;
}

impl HeaderVersion for DescribeOffsetsResponse {
    fn header_version(_version: i16) -> i16 {
        <DescribeShareGroupOffsetsResponse as HeaderVersion>::header_version(0)
    }
}

// kafka-protocol keeps its primitive encoders private: the few this message needs.

fn put_uvarint<B: BufMut>(buf: &mut B, mut n: u32) {
    while n >= 0x80 {
        buf.put_u8((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    buf.put_u8(n as u8);
}

fn get_uvarint<B: Buf>(buf: &mut B) -> anyhow::Result<u32> {
    let mut n: u32 = 0;
    for shift in (0..35).step_by(7) {
        anyhow::ensure!(buf.has_remaining(), "varint cut short");
        let b = buf.get_u8();
        n |= u32::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(n);
        }
    }
    anyhow::bail!("varint longer than five bytes")
}

fn need<B: Buf>(buf: &B, n: usize) -> anyhow::Result<()> {
    anyhow::ensure!(
        buf.remaining() >= n,
        "{n} bytes needed, {} left",
        buf.remaining()
    );
    Ok(())
}

fn get_i16<B: Buf>(buf: &mut B) -> anyhow::Result<i16> {
    need(buf, 2)?;
    Ok(buf.get_i16())
}

fn get_i32<B: Buf>(buf: &mut B) -> anyhow::Result<i32> {
    need(buf, 4)?;
    Ok(buf.get_i32())
}

fn get_i64<B: Buf>(buf: &mut B) -> anyhow::Result<i64> {
    need(buf, 8)?;
    Ok(buf.get_i64())
}

/// A compact (nullable) string: length + 1 as a varint (0 = null), then UTF-8.
fn put_string<B: BufMut>(buf: &mut B, s: Option<&str>) -> anyhow::Result<()> {
    match s {
        None => put_uvarint(buf, 0),
        Some(s) => {
            put_uvarint(buf, u32::try_from(s.len() + 1)?);
            buf.put_slice(s.as_bytes());
        }
    }
    Ok(())
}

fn get_string<B: Buf>(buf: &mut B) -> anyhow::Result<Option<String>> {
    match get_uvarint(buf)? {
        0 => Ok(None),
        n => {
            let len = (n - 1) as usize;
            need(buf, len)?;
            let mut v = vec![0; len];
            buf.copy_to_slice(&mut v);
            Ok(Some(String::from_utf8(v)?))
        }
    }
}

fn get_name<B: Buf>(buf: &mut B, what: &str) -> anyhow::Result<String> {
    get_string(buf)?.ok_or_else(|| anyhow::anyhow!("null {what}"))
}

/// A compact array length (`n + 1`, 0 = null).
fn put_len<B: BufMut>(buf: &mut B, n: usize) -> anyhow::Result<()> {
    put_uvarint(buf, u32::try_from(n + 1)?);
    Ok(())
}

fn no_tags<B: BufMut>(buf: &mut B) {
    put_uvarint(buf, 0);
}

/// A compact array's element count; null is refused (no array of this response is nullable).
fn get_len<B: Buf>(buf: &mut B) -> anyhow::Result<usize> {
    match get_uvarint(buf)? {
        0 => anyhow::bail!("null array in DescribeShareGroupOffsetsResponse"),
        n => {
            let n = (n - 1) as usize;
            // Every element is at least one byte: a longer count cannot be there.
            anyhow::ensure!(
                n <= buf.remaining(),
                "array of {n} elements in {} bytes",
                buf.remaining()
            );
            Ok(n)
        }
    }
}

/// Skips a tagged-field section (unknown tags are allowed and ignored).
fn skip_tags<B: Buf>(buf: &mut B) -> anyhow::Result<()> {
    for _ in 0..get_uvarint(buf)? {
        let _tag = get_uvarint(buf)?;
        let size = get_uvarint(buf)? as usize;
        need(buf, size)?;
        buf.advance(size);
    }
    Ok(())
}

impl Encodable for DescribeOffsetsResponse {
    fn encode<B: ByteBufMut>(&self, buf: &mut B, version: i16) -> anyhow::Result<()> {
        check_version(version)?;
        buf.put_i32(self.throttle_time_ms);
        put_len(buf, self.groups.len())?;
        for g in &self.groups {
            put_string(buf, Some(&g.group_id))?;
            put_len(buf, g.topics.len())?;
            for t in &g.topics {
                put_string(buf, Some(&t.topic_name))?;
                buf.put_slice(t.topic_id.as_bytes());
                put_len(buf, t.partitions.len())?;
                for p in &t.partitions {
                    buf.put_i32(p.partition_index);
                    buf.put_i64(p.start_offset);
                    buf.put_i32(p.leader_epoch);
                    if version >= LAG_VERSION {
                        buf.put_i64(p.lag);
                    }
                    buf.put_i16(p.error_code);
                    put_string(buf, p.error_message.as_deref())?;
                    no_tags(buf);
                }
                no_tags(buf);
            }
            buf.put_i16(g.error_code);
            put_string(buf, g.error_message.as_deref())?;
            no_tags(buf);
        }
        no_tags(buf);
        Ok(())
    }

    fn compute_size(&self, version: i16) -> anyhow::Result<usize> {
        let mut b = bytes::BytesMut::new();
        self.encode(&mut b, version)?;
        Ok(b.len())
    }
}

impl Decodable for DescribeOffsetsResponse {
    fn decode<B: ByteBuf>(buf: &mut B, version: i16) -> anyhow::Result<Self> {
        check_version(version)?;
        let throttle_time_ms = get_i32(buf)?;
        let mut groups = Vec::new();
        for _ in 0..get_len(buf)? {
            let group_id = get_name(buf, "GroupId")?;
            let mut topics = Vec::new();
            for _ in 0..get_len(buf)? {
                let topic_name = get_name(buf, "TopicName")?;
                need(buf, 16)?;
                let mut id = [0u8; 16];
                buf.copy_to_slice(&mut id);
                let mut partitions = Vec::new();
                for _ in 0..get_len(buf)? {
                    let partition_index = get_i32(buf)?;
                    let start_offset = get_i64(buf)?;
                    let leader_epoch = get_i32(buf)?;
                    let lag = if version >= LAG_VERSION {
                        get_i64(buf)?
                    } else {
                        NO_LAG
                    };
                    let error_code = get_i16(buf)?;
                    let error_message = get_string(buf)?;
                    skip_tags(buf)?;
                    partitions.push(OffsetsPartition {
                        partition_index,
                        start_offset,
                        leader_epoch,
                        lag,
                        error_code,
                        error_message,
                    });
                }
                skip_tags(buf)?;
                topics.push(OffsetsTopic {
                    topic_name,
                    topic_id: Uuid::from_bytes(id),
                    partitions,
                });
            }
            let error_code = get_i16(buf)?;
            let error_message = get_string(buf)?;
            skip_tags(buf)?;
            groups.push(OffsetsGroup {
                group_id,
                topics,
                error_code,
                error_message,
            });
        }
        skip_tags(buf)?;
        Ok(DescribeOffsetsResponse {
            throttle_time_ms,
            groups,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    fn sample() -> DescribeOffsetsResponse {
        DescribeOffsetsResponse {
            throttle_time_ms: 0,
            groups: vec![OffsetsGroup {
                group_id: "g".into(),
                topics: vec![OffsetsTopic {
                    topic_name: "t".into(),
                    topic_id: Uuid::from_u128(7),
                    partitions: vec![OffsetsPartition {
                        partition_index: 0,
                        start_offset: 3,
                        leader_epoch: 1,
                        lag: 2,
                        error_code: 0,
                        error_message: None,
                    }],
                }],
                error_code: 0,
                error_message: None,
            }],
        }
    }

    #[test]
    fn v1_round_trips_and_passes_the_guard() {
        let r = sample();
        let mut b = BytesMut::new();
        r.encode(&mut b, 1).unwrap();
        crate::guard::check_response(90, 1, &b).unwrap();
        let back = DescribeOffsetsResponse::decode(&mut b.freeze(), 1).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn v0_is_kafka_protocols_v0() {
        let mut r = sample();
        r.groups[0].topics[0].partitions[0].lag = NO_LAG;
        let mut ours = BytesMut::new();
        r.encode(&mut ours, 0).unwrap();
        crate::guard::check_response(90, 0, &ours).unwrap();
        let theirs =
            DescribeShareGroupOffsetsResponse::decode(&mut ours.clone().freeze(), 0).unwrap();
        let p = &theirs.groups[0].topics[0].partitions[0];
        assert_eq!((p.start_offset, p.leader_epoch), (3, 1));
        let mut again = BytesMut::new();
        theirs.encode(&mut again, 0).unwrap();
        assert_eq!(again, ours);
        assert_eq!(
            DescribeOffsetsResponse::decode(&mut ours.freeze(), 0).unwrap(),
            r
        );
    }

    #[test]
    fn v1_is_v0_with_lag_after_the_leader_epoch() {
        let r = sample();
        let (mut v0, mut v1) = (BytesMut::new(), BytesMut::new());
        r.encode(&mut v0, 0).unwrap();
        r.encode(&mut v1, 1).unwrap();
        assert_eq!(v1.len(), v0.len() + 8);
        let at = v1.iter().zip(v0.iter()).position(|(a, b)| a != b).unwrap();
        // ThrottleTimeMs 4, groups 1, "g" 2, topics 1, "t" 2, uuid 16, partitions 1, index 4,
        // start 8, epoch 4: Lag's first byte is 43 (the high bytes of 2 are 0, as are the
        // ErrorCode's, so the first difference is where Lag's low byte sits or later).
        assert!(at >= 43, "first difference at {at}");
        assert_eq!(&v1[43..51], &2i64.to_be_bytes());
    }

    #[test]
    fn a_cut_or_oversized_response_is_an_error_not_a_panic() {
        let r = sample();
        let mut b = BytesMut::new();
        r.encode(&mut b, 1).unwrap();
        for cut in 0..b.len() {
            let _ = DescribeOffsetsResponse::decode(&mut b.clone().freeze().slice(..cut), 1);
        }
        let mut huge = BytesMut::new();
        huge.extend_from_slice(&[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(DescribeOffsetsResponse::decode(&mut huge.freeze(), 1).is_err());
    }
}
