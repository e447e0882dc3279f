//! The in-memory log of one topic partition: magic-v2 record batches as the producer sent them,
//! with the broker-assigned base offset written into each.
//!
//! A Produce carries exactly one record batch per partition (as Kafka requires for magic v2). The
//! batch is checked (header, CRC-32C via kafka-protocol, offset deltas) and stored as bytes; only
//! the base offset and the partition leader epoch are rewritten, both outside the CRC. Record data is
//! never decoded, so compressed batches are stored and served as they came.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::RecordBatchDecoder;

/// A record batch that cannot be read (the message says where).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BatchError(pub String);

/// Size of the magic-v2 record batch header (`DefaultRecordBatch.RECORD_BATCH_OVERHEAD`).
pub const BATCH_HEADER_LEN: usize = 61;

/// One stored batch.
#[derive(Clone, Debug)]
pub struct StoredBatch {
    /// Offset of its first record.
    pub base: i64,
    /// Offset of its last record.
    pub last: i64,
    /// Largest record timestamp in it (`MaxTimestamp`).
    pub max_timestamp: i64,
    /// The batch as it goes out in fetch responses.
    pub bytes: Bytes,
}

/// Why a Produce was refused for one partition: a Kafka error code and a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendError {
    pub code: i16,
    pub message: String,
}

/// CORRUPT_MESSAGE.
pub const CORRUPT_MESSAGE: i16 = 2;
/// INVALID_RECORD.
pub const INVALID_RECORD: i16 = 87;
/// UNSUPPORTED_FOR_MESSAGE_FORMAT.
pub const UNSUPPORTED_FOR_MESSAGE_FORMAT: i16 = 43;

/// What the header of a magic-v2 batch says (fields at fixed positions, `DefaultRecordBatch`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    /// `12 + BatchLength`: the whole batch.
    pub total_len: usize,
    pub magic: i8,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub record_count: i32,
}

impl BatchHeader {
    /// Reads the fixed header at the start of `b`, or says why it cannot.
    pub fn parse(b: &[u8]) -> Result<BatchHeader, BatchError> {
        if b.len() < BATCH_HEADER_LEN {
            return Err(BatchError(format!(
                "{} bytes, a record batch header needs {BATCH_HEADER_LEN}",
                b.len()
            )));
        }
        let i32_at = |i: usize| i32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let i64_at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i..i + 8]);
            i64::from_be_bytes(a)
        };
        let batch_len = i32_at(8);
        if batch_len < (BATCH_HEADER_LEN - 12) as i32 {
            return Err(BatchError(format!(
                "batch length {batch_len} is shorter than a header"
            )));
        }
        Ok(BatchHeader {
            total_len: 12 + batch_len as usize,
            magic: b[16] as i8,
            attributes: i16::from_be_bytes([b[21], b[22]]),
            last_offset_delta: i32_at(23),
            max_timestamp: i64_at(35),
            producer_id: i64_at(43),
            record_count: i32_at(57),
        })
    }

    /// Control batch (transaction marker).
    pub fn is_control(&self) -> bool {
        self.attributes & (1 << 5) != 0
    }

    /// Part of a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & (1 << 4) != 0
    }
}

/// One partition's log.
#[derive(Clone, Debug, Default)]
pub struct PartitionLog {
    batches: Vec<StoredBatch>,
    end: i64,
}

impl PartitionLog {
    /// The log end offset (high watermark): the offset the next record gets.
    pub fn end(&self) -> i64 {
        self.end
    }

    /// The log start offset (records are never deleted here).
    pub fn start(&self) -> i64 {
        0
    }

    /// Appends the one record batch of a Produce; returns its base offset and record count.
    pub fn append(&mut self, records: &Bytes) -> Result<(i64, i64), AppendError> {
        let corrupt = |message: String| AppendError {
            code: CORRUPT_MESSAGE,
            message,
        };
        let invalid = |message: String| AppendError {
            code: INVALID_RECORD,
            message,
        };
        let h = BatchHeader::parse(records).map_err(|e| corrupt(e.0))?;
        if h.magic != 2 {
            return Err(AppendError {
                code: UNSUPPORTED_FOR_MESSAGE_FORMAT,
                message: format!("record batch magic {} (only magic v2 is served)", h.magic),
            });
        }
        if h.total_len != records.len() {
            return Err(invalid(format!(
                "a produce request must carry exactly one record batch per partition \
                 (batch of {} bytes in {} bytes)",
                h.total_len,
                records.len()
            )));
        }
        // CRC-32C and header sanity, without decompressing.
        let mut slice = records.clone();
        match RecordBatchDecoder::decode_batch_info(&mut slice) {
            Ok(infos) if infos.len() == 1 => {}
            Ok(_) => return Err(corrupt("unreadable record batch".to_string())),
            Err(e) => return Err(corrupt(format!("record batch: {e}"))),
        }
        if h.record_count < 1 || h.last_offset_delta != h.record_count - 1 {
            return Err(invalid(format!(
                "{} records with last offset delta {}",
                h.record_count, h.last_offset_delta
            )));
        }
        if h.is_control() || h.is_transactional() {
            return Err(invalid(
                "transactional and control batches are not supported by the reference broker"
                    .to_string(),
            ));
        }
        let count = i64::from(h.record_count);
        let base = self.end;
        let mut b = BytesMut::from(&records[..]);
        b[0..8].copy_from_slice(&base.to_be_bytes());
        // Partition leader epoch: this broker is leader epoch 0 forever.
        b[12..16].copy_from_slice(&0i32.to_be_bytes());
        self.batches.push(StoredBatch {
            base,
            last: base + count - 1,
            max_timestamp: h.max_timestamp,
            bytes: b.freeze(),
        });
        self.end += count;
        Ok((base, count))
    }

    /// Index of the batch holding `offset`.
    pub fn batch_index(&self, offset: i64) -> Option<usize> {
        if offset < 0 || offset >= self.end {
            return None;
        }
        let i = self.batches.partition_point(|b| b.last < offset);
        (i < self.batches.len() && self.batches[i].base <= offset).then_some(i)
    }

    /// The batch at `index`.
    pub fn batch(&self, index: usize) -> Option<&StoredBatch> {
        self.batches.get(index)
    }

    /// The first offset of the first batch whose max timestamp is at least `timestamp`, with that
    /// timestamp (ListOffsets by time, at batch granularity).
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Option<(i64, i64)> {
        self.batches
            .iter()
            .find(|b| b.max_timestamp >= timestamp)
            .map(|b| (b.base, b.max_timestamp))
    }

    /// The largest timestamp in the log and the base offset of its batch.
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        self.batches
            .iter()
            .max_by_key(|b| b.max_timestamp)
            .map(|b| (b.base, b.max_timestamp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    fn batch(n: usize) -> Bytes {
        let records: Vec<Record> = (0..n)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: i as i32,
                timestamp: 1000 + i as i64,
                key: None,
                value: Some(Bytes::from(format!("v{i}"))),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .expect("encodes");
        buf.freeze()
    }

    #[test]
    fn appends_and_rewrites_base_offsets() {
        let mut log = PartitionLog::default();
        assert_eq!(log.append(&batch(3)), Ok((0, 3)));
        assert_eq!(log.append(&batch(2)), Ok((3, 2)));
        assert_eq!(log.end(), 5);
        assert_eq!(log.batch_index(4), Some(1));
        assert_eq!(log.batch_index(2), Some(0));
        assert_eq!(log.batch_index(5), None);
        let mut stored = log.batch(1).expect("batch").bytes.clone();
        let sets = RecordBatchDecoder::decode_all(&mut stored).expect("decodes");
        let offsets: Vec<i64> = sets[0].records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, [3, 4]);
        assert_eq!(log.offset_for_timestamp(1001), Some((0, 1002)));
    }

    #[test]
    fn refuses_corrupt_and_double_batches() {
        let mut log = PartitionLog::default();
        let mut bad = BytesMut::from(&batch(2)[..]);
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        assert_eq!(
            log.append(&bad.freeze()).map_err(|e| e.code),
            Err(CORRUPT_MESSAGE)
        );
        let mut two = BytesMut::from(&batch(1)[..]);
        two.extend_from_slice(&batch(1));
        assert_eq!(
            log.append(&two.freeze()).map_err(|e| e.code),
            Err(INVALID_RECORD)
        );
        assert_eq!(
            log.append(&Bytes::from_static(b"short"))
                .map_err(|e| e.code),
            Err(CORRUPT_MESSAGE)
        );
        assert_eq!(log.end(), 0);
    }
}
