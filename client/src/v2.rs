//! ShareFetch and ShareAcknowledge v2 (Kafka 4.2+: RENEW, KIP-1222; acquire modes, KIP-1206), which
//! kafka-protocol 0.18 cannot encode (it stops at v1).
//!
//! v2 changes three of the four messages by fields at fixed places, and nothing else
//! (`clients/src/main/resources/common/message/Share{Fetch,Acknowledge}{Request,Response}.json`,
//! identical at 4.2.0 `a18251bae0` and on the 4.4 branch `87943b2ff8`; copies in `schemas/`):
//!
//! | message | v2 adds | after |
//! |---|---|---|
//! | ShareFetchRequest | `ShareAcquireMode` int8, `IsRenewAck` bool | `BatchSize` |
//! | ShareAcknowledgeRequest | `IsRenewAck` bool | `ShareSessionEpoch` |
//! | ShareAcknowledgeResponse | `AcquisitionLockTimeoutMs` int32 | `ErrorMessage` |
//! | ShareFetchResponse | nothing (v2 is laid out as v1) | |
//!
//! So a v2 message here is kafka-protocol's v1 encoding with the new fields spliced in at their place
//! (and taken out again to decode). Everything before the splice point is fixed-width except the
//! compact nullable strings `GroupId` and `MemberId` (requests) and `ErrorMessage` (response), which
//! are skipped by their varint length. None of the v2 fields is tagged. The guard walks every v2
//! response against the schema before this code sees it (`crate::guard`).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ShareAcknowledgeRequest, ShareAcknowledgeResponse, ShareFetchRequest, ShareFetchResponse,
};
use kafka_protocol::protocol::{
    buf::{ByteBuf, ByteBufMut},
    Decodable, Encodable, HeaderVersion, Message, Request, VersionRange,
};

/// The version that carries RENEW and the acquire mode.
pub const V2: i16 = 2;

const VERSIONS: VersionRange = VersionRange { min: 1, max: 2 };

/// `ShareAcquireMode` of a v2 ShareFetch (`ShareAcquireMode.java@4.2`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AcquireMode {
    /// 0: whole batches, which may exceed MaxRecords (the v1 behaviour).
    #[default]
    BatchOptimized,
    /// 1: never more than MaxRecords records (KIP-1206).
    RecordLimit,
}

impl AcquireMode {
    /// The wire code.
    pub fn code(self) -> i8 {
        match self {
            AcquireMode::BatchOptimized => 0,
            AcquireMode::RecordLimit => 1,
        }
    }
}

/// A splice that does not fit the bytes (kafka-protocol's own v1 encoding, or a frame the guard
/// passed): reported through kafka-protocol's error type.
#[derive(Debug, thiserror::Error)]
#[error("share v2 layout: {0}")]
pub struct LayoutError(&'static str);

/// Length in bytes of the compact nullable string at the start of `b` (varint included).
fn compact_string_len(b: &[u8]) -> Result<usize, LayoutError> {
    let (mut n, mut shift, mut i) = (0u64, 0u32, 0usize);
    loop {
        let byte = *b.get(i).ok_or(LayoutError("string length cut short"))?;
        n |= u64::from(byte & 0x7f) << shift;
        i += 1;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 28 {
            return Err(LayoutError("string length varint too long"));
        }
    }
    // 0 is null; otherwise length + 1.
    let len = n.saturating_sub(1) as usize;
    let total = i.checked_add(len).ok_or(LayoutError("string too long"))?;
    if total > b.len() {
        return Err(LayoutError("string longer than the body"));
    }
    Ok(total)
}

/// Offset just past `strings` compact nullable strings then `fixed` bytes.
fn splice_point(b: &[u8], strings: usize, fixed: usize) -> Result<usize, LayoutError> {
    let mut at = 0;
    for _ in 0..strings {
        at += compact_string_len(&b[at..])?;
    }
    at = at.checked_add(fixed).ok_or(LayoutError("overflow"))?;
    if at > b.len() {
        return Err(LayoutError("body shorter than its fixed fields"));
    }
    Ok(at)
}

fn v1_bytes<M: Encodable>(m: &M) -> anyhow::Result<BytesMut> {
    let mut buf = BytesMut::new();
    m.encode(&mut buf, 1)?;
    Ok(buf)
}

/// `body` with `insert` placed at `at`.
fn spliced_in(body: &[u8], at: usize, insert: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(body.len() + insert.len());
    out.put_slice(&body[..at]);
    out.put_slice(insert);
    out.put_slice(&body[at..]);
    out.freeze()
}

/// `body` without the `len` bytes at `at`, and those bytes.
fn spliced_out(body: &[u8], at: usize, len: usize) -> Result<(Bytes, Bytes), LayoutError> {
    let end = at.checked_add(len).ok_or(LayoutError("overflow"))?;
    if end > body.len() {
        return Err(LayoutError("body ends inside a v2 field"));
    }
    let mut out = BytesMut::with_capacity(body.len() - len);
    out.put_slice(&body[..at]);
    out.put_slice(&body[end..]);
    Ok((out.freeze(), Bytes::copy_from_slice(&body[at..end])))
}

fn take_all<B: ByteBuf>(buf: &mut B) -> Bytes {
    buf.copy_to_bytes(buf.remaining())
}

/// Fixed bytes of a ShareFetchRequest between `MemberId` and the v2 fields: ShareSessionEpoch,
/// MaxWaitMs, MinBytes, MaxBytes, MaxRecords, BatchSize (six int32).
const FETCH_FIXED: usize = 24;
/// Fixed bytes of a ShareAcknowledgeRequest between `MemberId` and `IsRenewAck`: the epoch.
const ACK_FIXED: usize = 4;
/// Fixed bytes of a ShareAcknowledgeResponse before `ErrorMessage`: ThrottleTimeMs, ErrorCode.
const ACK_RESPONSE_FIXED: usize = 6;

macro_rules! message_1_to_2 {
    ($t:ty) => {
        impl Message for $t {
            const VERSIONS: VersionRange = VERSIONS;
            const DEPRECATED_VERSIONS: Option<VersionRange> = None;
        }
    };
}

/// A ShareFetch at v1 or v2; at v1 the v2 fields must keep their defaults.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ShareFetchV2Request {
    /// Every field v1 has.
    pub v1: ShareFetchRequest,
    /// `ShareAcquireMode`.
    pub acquire_mode: AcquireMode,
    /// `IsRenewAck`: the request only renews (no fetch: MaxWaitMs, MinBytes, MaxBytes and
    /// MaxRecords must be 0).
    pub is_renew_ack: bool,
}

/// A ShareFetch response (laid out at v2 as at v1).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ShareFetchV2Response(pub ShareFetchResponse);

/// A ShareAcknowledge at v1 or v2.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ShareAcknowledgeV2Request {
    /// Every field v1 has.
    pub v1: ShareAcknowledgeRequest,
    /// `IsRenewAck`: the request may carry RENEW (type 4).
    pub is_renew_ack: bool,
}

/// A ShareAcknowledge response; `acquisition_lock_timeout_ms` exists from v2.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ShareAcknowledgeV2Response {
    /// Every field v1 has.
    pub v1: ShareAcknowledgeResponse,
    /// `AcquisitionLockTimeoutMs` (v2; 0 when decoded from v1).
    pub acquisition_lock_timeout_ms: i32,
}

message_1_to_2!(ShareFetchV2Request);
message_1_to_2!(ShareFetchV2Response);
message_1_to_2!(ShareAcknowledgeV2Request);
message_1_to_2!(ShareAcknowledgeV2Response);

fn check_version(version: i16) -> Result<(), LayoutError> {
    if (VERSIONS.min..=VERSIONS.max).contains(&version) {
        Ok(())
    } else {
        Err(LayoutError("version not 1 or 2"))
    }
}

impl Encodable for ShareFetchV2Request {
    fn encode<B: ByteBufMut>(&self, buf: &mut B, version: i16) -> anyhow::Result<()> {
        check_version(version)?;
        let body = v1_bytes(&self.v1)?;
        if version < V2 {
            if self.is_renew_ack || self.acquire_mode != AcquireMode::BatchOptimized {
                return Err(LayoutError("IsRenewAck and ShareAcquireMode need v2").into());
            }
            buf.put_slice(&body);
            return Ok(());
        }
        let at = splice_point(&body, 2, FETCH_FIXED)?;
        let insert = [self.acquire_mode.code() as u8, u8::from(self.is_renew_ack)];
        buf.put_slice(&spliced_in(&body, at, &insert));
        Ok(())
    }

    fn compute_size(&self, version: i16) -> anyhow::Result<usize> {
        check_version(version)?;
        Ok(self.v1.compute_size(1)? + if version >= V2 { 2 } else { 0 })
    }
}

impl Decodable for ShareFetchV2Request {
    fn decode<B: ByteBuf>(buf: &mut B, version: i16) -> anyhow::Result<Self> {
        check_version(version)?;
        let mut body = take_all(buf);
        if version < V2 {
            let v1 = ShareFetchRequest::decode(&mut body, 1)?;
            return Ok(ShareFetchV2Request {
                v1,
                ..Default::default()
            });
        }
        let at = splice_point(&body, 2, FETCH_FIXED)?;
        let (mut rest, fields) = spliced_out(&body, at, 2)?;
        let acquire_mode = match fields[0] {
            0 => AcquireMode::BatchOptimized,
            1 => AcquireMode::RecordLimit,
            _ => return Err(LayoutError("ShareAcquireMode is neither 0 nor 1").into()),
        };
        let v1 = ShareFetchRequest::decode(&mut rest, 1)?;
        Ok(ShareFetchV2Request {
            v1,
            acquire_mode,
            is_renew_ack: fields[1] != 0,
        })
    }
}

impl HeaderVersion for ShareFetchV2Request {
    fn header_version(_version: i16) -> i16 {
        <ShareFetchRequest as HeaderVersion>::header_version(1)
    }
}

impl Request for ShareFetchV2Request {
    const KEY: i16 = <ShareFetchRequest as Request>::KEY;
    type Response = ShareFetchV2Response;
}

impl Encodable for ShareFetchV2Response {
    fn encode<B: ByteBufMut>(&self, buf: &mut B, version: i16) -> anyhow::Result<()> {
        check_version(version)?;
        self.0.encode(buf, 1)
    }

    fn compute_size(&self, version: i16) -> anyhow::Result<usize> {
        check_version(version)?;
        self.0.compute_size(1)
    }
}

impl Decodable for ShareFetchV2Response {
    fn decode<B: ByteBuf>(buf: &mut B, version: i16) -> anyhow::Result<Self> {
        check_version(version)?;
        Ok(ShareFetchV2Response(ShareFetchResponse::decode(buf, 1)?))
    }
}

impl HeaderVersion for ShareFetchV2Response {
    fn header_version(_version: i16) -> i16 {
        <ShareFetchResponse as HeaderVersion>::header_version(1)
    }
}

impl Encodable for ShareAcknowledgeV2Request {
    fn encode<B: ByteBufMut>(&self, buf: &mut B, version: i16) -> anyhow::Result<()> {
        check_version(version)?;
        let body = v1_bytes(&self.v1)?;
        if version < V2 {
            if self.is_renew_ack {
                return Err(LayoutError("IsRenewAck needs v2").into());
            }
            buf.put_slice(&body);
            return Ok(());
        }
        let at = splice_point(&body, 2, ACK_FIXED)?;
        buf.put_slice(&spliced_in(&body, at, &[u8::from(self.is_renew_ack)]));
        Ok(())
    }

    fn compute_size(&self, version: i16) -> anyhow::Result<usize> {
        check_version(version)?;
        Ok(self.v1.compute_size(1)? + usize::from(version >= V2))
    }
}

impl Decodable for ShareAcknowledgeV2Request {
    fn decode<B: ByteBuf>(buf: &mut B, version: i16) -> anyhow::Result<Self> {
        check_version(version)?;
        let mut body = take_all(buf);
        if version < V2 {
            let v1 = ShareAcknowledgeRequest::decode(&mut body, 1)?;
            return Ok(ShareAcknowledgeV2Request {
                v1,
                is_renew_ack: false,
            });
        }
        let at = splice_point(&body, 2, ACK_FIXED)?;
        let (mut rest, fields) = spliced_out(&body, at, 1)?;
        let v1 = ShareAcknowledgeRequest::decode(&mut rest, 1)?;
        Ok(ShareAcknowledgeV2Request {
            v1,
            is_renew_ack: fields[0] != 0,
        })
    }
}

impl HeaderVersion for ShareAcknowledgeV2Request {
    fn header_version(_version: i16) -> i16 {
        <ShareAcknowledgeRequest as HeaderVersion>::header_version(1)
    }
}

impl Request for ShareAcknowledgeV2Request {
    const KEY: i16 = <ShareAcknowledgeRequest as Request>::KEY;
    type Response = ShareAcknowledgeV2Response;
}

/// Where `AcquisitionLockTimeoutMs` sits in a ShareAcknowledge response body: after ThrottleTimeMs,
/// ErrorCode and the ErrorMessage string.
fn ack_response_splice(body: &[u8]) -> Result<usize, LayoutError> {
    if body.len() < ACK_RESPONSE_FIXED {
        return Err(LayoutError("body shorter than its fixed fields"));
    }
    Ok(ACK_RESPONSE_FIXED + compact_string_len(&body[ACK_RESPONSE_FIXED..])?)
}

impl Encodable for ShareAcknowledgeV2Response {
    fn encode<B: ByteBufMut>(&self, buf: &mut B, version: i16) -> anyhow::Result<()> {
        check_version(version)?;
        let body = v1_bytes(&self.v1)?;
        if version < V2 {
            buf.put_slice(&body);
            return Ok(());
        }
        let at = ack_response_splice(&body)?;
        buf.put_slice(&spliced_in(
            &body,
            at,
            &self.acquisition_lock_timeout_ms.to_be_bytes(),
        ));
        Ok(())
    }

    fn compute_size(&self, version: i16) -> anyhow::Result<usize> {
        check_version(version)?;
        Ok(self.v1.compute_size(1)? + if version >= V2 { 4 } else { 0 })
    }
}

impl Decodable for ShareAcknowledgeV2Response {
    fn decode<B: ByteBuf>(buf: &mut B, version: i16) -> anyhow::Result<Self> {
        check_version(version)?;
        let mut body = take_all(buf);
        if version < V2 {
            let v1 = ShareAcknowledgeResponse::decode(&mut body, 1)?;
            return Ok(ShareAcknowledgeV2Response {
                v1,
                acquisition_lock_timeout_ms: 0,
            });
        }
        let at = ack_response_splice(&body)?;
        let (mut rest, field) = spliced_out(&body, at, 4)?;
        let v1 = ShareAcknowledgeResponse::decode(&mut rest, 1)?;
        Ok(ShareAcknowledgeV2Response {
            v1,
            acquisition_lock_timeout_ms: (&field[..]).get_i32(),
        })
    }
}

impl HeaderVersion for ShareAcknowledgeV2Response {
    fn header_version(_version: i16) -> i16 {
        <ShareAcknowledgeResponse as HeaderVersion>::header_version(1)
    }
}

#[cfg(test)]
mod tests;
