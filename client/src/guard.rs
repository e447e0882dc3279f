//! The frame guard: every request body is walked against its Apache Kafka JSON message schema
//! before kafka-protocol decodes it.
//!
//! Why: kafka-protocol 0.18 sizes a `Vec` from the array length it reads off the wire
//! (`Vec::with_capacity(n)` in `protocol/types.rs`) before it knows whether `n` elements follow. A
//! random or hostile length of a few hundred million turns into an allocation larger than memory,
//! and allocation failure aborts the whole process instead of failing one request. The guard walks
//! the same bytes the decoder will read, field by field as the schema lays them out for that version
//! (flexible versions: compact lengths and tagged-field sections), and accepts the frame only if
//! every array, string and byte field fits in what is left of the frame. After that every array the
//! decoder allocates holds at most as many elements as the frame has bytes.
//!
//! The schemas are the request JSON files of Apache Kafka 4.1.2 (`clients/src/main/resources/common/
//! message/`, Apache License 2.0), the release whose schemas kafka-protocol 0.18 was generated from.
//! They are embedded and parsed once.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::Value;

/// Why a frame was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    /// No schema is embedded for this API key.
    #[error("no schema for API key {0}")]
    UnknownApi(i16),
    /// The version is outside the schema's valid versions.
    #[error("API key {key} has no version {version}")]
    UnknownVersion { key: i16, version: i16 },
    /// The bytes do not fit the schema.
    #[error("malformed {api} v{version} body at byte {at}: {what}")]
    Malformed {
        api: &'static str,
        version: i16,
        at: usize,
        what: String,
    },
    /// An embedded schema could not be parsed (a build defect, reported at broker start).
    #[error("embedded schema {file}: {what}")]
    Schema { file: &'static str, what: String },
}

/// What is wrong with an embedded schema (a build defect).
#[derive(Clone, Debug, PartialEq, Eq)]
struct SchemaProblem(String);

impl From<String> for SchemaProblem {
    fn from(s: String) -> Self {
        SchemaProblem(s)
    }
}

impl From<&str> for SchemaProblem {
    fn from(s: &str) -> Self {
        SchemaProblem(s.to_string())
    }
}

/// An inclusive version range; `min > max` is the empty range ("none").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Versions {
    min: i16,
    max: i16,
}

impl Versions {
    const NONE: Versions = Versions { min: 1, max: 0 };

    fn contains(self, v: i16) -> bool {
        self.min <= v && v <= self.max
    }

    /// `"none"`, `"3"`, `"3+"`, `"3-5"` as in Kafka's message JSON.
    fn parse(s: &str) -> Result<Versions, SchemaProblem> {
        let s = s.trim();
        if s == "none" {
            return Ok(Versions::NONE);
        }
        let num = |t: &str| t.trim().parse::<i16>().map_err(|e| format!("{s:?}: {e}"));
        if let Some(min) = s.strip_suffix('+') {
            return Ok(Versions {
                min: num(min)?,
                max: i16::MAX,
            });
        }
        if let Some((a, b)) = s.split_once('-') {
            return Ok(Versions {
                min: num(a)?,
                max: num(b)?,
            });
        }
        let v = num(s)?;
        Ok(Versions { min: v, max: v })
    }
}

#[derive(Clone, Debug)]
enum Ty {
    Fixed(usize),
    String,
    Bytes,
    Array(Box<Ty>),
    Struct(Vec<Field>),
}

#[derive(Clone, Debug)]
struct Field {
    name: String,
    ty: Ty,
    versions: Versions,
    tagged: Versions,
    /// The tag of a tagged field.
    tag: Option<u32>,
}

#[derive(Debug)]
struct Schema {
    name: &'static str,
    valid: Versions,
    flexible: Versions,
    fields: Vec<Field>,
}

/// The embedded schemas: (file name, contents).
const FILES: &[(&str, &str)] = &[
    (
        "ProduceRequest.json",
        include_str!("schemas/ProduceRequest.json"),
    ),
    (
        "ListOffsetsRequest.json",
        include_str!("schemas/ListOffsetsRequest.json"),
    ),
    (
        "MetadataRequest.json",
        include_str!("schemas/MetadataRequest.json"),
    ),
    (
        "FindCoordinatorRequest.json",
        include_str!("schemas/FindCoordinatorRequest.json"),
    ),
    (
        "ApiVersionsRequest.json",
        include_str!("schemas/ApiVersionsRequest.json"),
    ),
    (
        "CreateTopicsRequest.json",
        include_str!("schemas/CreateTopicsRequest.json"),
    ),
    (
        "DeleteTopicsRequest.json",
        include_str!("schemas/DeleteTopicsRequest.json"),
    ),
    (
        "InitProducerIdRequest.json",
        include_str!("schemas/InitProducerIdRequest.json"),
    ),
    (
        "DescribeConfigsRequest.json",
        include_str!("schemas/DescribeConfigsRequest.json"),
    ),
    (
        "IncrementalAlterConfigsRequest.json",
        include_str!("schemas/IncrementalAlterConfigsRequest.json"),
    ),
    (
        "DescribeClusterRequest.json",
        include_str!("schemas/DescribeClusterRequest.json"),
    ),
    (
        "ShareGroupHeartbeatRequest.json",
        include_str!("schemas/ShareGroupHeartbeatRequest.json"),
    ),
    (
        "ShareGroupDescribeRequest.json",
        include_str!("schemas/ShareGroupDescribeRequest.json"),
    ),
    (
        "ShareFetchRequest.json",
        include_str!("schemas/ShareFetchRequest.json"),
    ),
    (
        "FetchRequest.json",
        include_str!("schemas/FetchRequest.json"),
    ),
    (
        "ShareAcknowledgeRequest.json",
        include_str!("schemas/ShareAcknowledgeRequest.json"),
    ),
];

type Schemas = HashMap<i16, Schema>;

static SCHEMAS: OnceLock<Result<Schemas, GuardError>> = OnceLock::new();

fn schemas() -> Result<&'static Schemas, GuardError> {
    SCHEMAS
        .get_or_init(load_all)
        .as_ref()
        .map_err(|e| e.clone())
}

/// Parses every embedded schema; the broker calls this at start so a defect fails loudly there.
pub fn init() -> Result<(), GuardError> {
    schemas().map(|_| ())
}

/// The API keys that have an embedded schema, with their valid versions.
pub fn covered() -> Result<Vec<(i16, i16, i16)>, GuardError> {
    let mut out: Vec<(i16, i16, i16)> = schemas()?
        .iter()
        .map(|(k, s)| (*k, s.valid.min, s.valid.max))
        .collect();
    out.sort_unstable();
    Ok(out)
}

fn load_all() -> Result<Schemas, GuardError> {
    let mut out = HashMap::new();
    for (file, text) in FILES {
        let err = |what: String| GuardError::Schema { file, what };
        let json: Value =
            serde_json::from_str(&strip_comments(text)).map_err(|e| err(e.to_string()))?;
        let key = json
            .get("apiKey")
            .and_then(Value::as_i64)
            .and_then(|k| i16::try_from(k).ok())
            .ok_or_else(|| err("no apiKey".to_string()))?;
        let versions = |name: &str| -> Result<Versions, GuardError> {
            let s = json
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| err(format!("no {name}")))?;
            Versions::parse(s).map_err(|p| err(p.0))
        };
        let schema = Schema {
            name: file.trim_end_matches(".json"),
            valid: versions("validVersions")?,
            flexible: versions("flexibleVersions")?,
            fields: parse_fields(json.get("fields")).map_err(|p| err(p.0))?,
        };
        out.insert(key, schema);
    }
    Ok(out)
}

/// Kafka's message JSON has `//` comments; drop them (outside string literals).
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut in_string = false;
        let mut escaped = false;
        let mut cut = line.len();
        let bytes = line.as_bytes();
        for (i, &c) in bytes.iter().enumerate() {
            if in_string {
                match c {
                    _ if escaped => escaped = false,
                    b'\\' => escaped = true,
                    b'"' => in_string = false,
                    _ => {}
                }
            } else if c == b'"' {
                in_string = true;
            } else if c == b'/' && bytes.get(i + 1) == Some(&b'/') {
                cut = i;
                break;
            }
        }
        out.push_str(&line[..cut]);
        out.push('\n');
    }
    out
}

fn parse_fields(v: Option<&Value>) -> Result<Vec<Field>, SchemaProblem> {
    let Some(v) = v else {
        return Ok(Vec::new());
    };
    let arr = v.as_array().ok_or("fields is not an array")?;
    arr.iter().map(parse_field).collect()
}

fn parse_field(f: &Value) -> Result<Field, SchemaProblem> {
    let name = f
        .get("name")
        .and_then(Value::as_str)
        .ok_or("field without a name")?
        .to_string();
    let ty_name = f
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("field {name} without a type"))?;
    let versions = Versions::parse(
        f.get("versions")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("field {name} without versions"))?,
    )?;
    let tagged = match f.get("taggedVersions").and_then(Value::as_str) {
        Some(s) => Versions::parse(s)?,
        None => Versions::NONE,
    };
    let tag = match f.get("tag") {
        None => None,
        Some(t) => Some(
            t.as_u64()
                .and_then(|t| u32::try_from(t).ok())
                .ok_or_else(|| format!("field {name}: bad tag {t}"))?,
        ),
    };
    if (tag.is_some()) != (tagged != Versions::NONE) {
        return Err(format!("field {name}: a tag needs taggedVersions and vice versa").into());
    }
    let ty = match ty_name.strip_prefix("[]") {
        Some(elem) => Ty::Array(Box::new(parse_type(elem, f)?)),
        None => parse_type(ty_name, f)?,
    };
    Ok(Field {
        name,
        ty,
        versions,
        tagged,
        tag,
    })
}

fn parse_type(name: &str, field: &Value) -> Result<Ty, SchemaProblem> {
    Ok(match name {
        "bool" | "int8" => Ty::Fixed(1),
        "int16" | "uint16" => Ty::Fixed(2),
        "int32" | "uint32" => Ty::Fixed(4),
        "int64" | "float64" => Ty::Fixed(8),
        "uuid" => Ty::Fixed(16),
        "string" => Ty::String,
        "bytes" | "records" => Ty::Bytes,
        _ if name.starts_with(|c: char| c.is_ascii_uppercase()) => {
            Ty::Struct(parse_fields(field.get("fields"))?)
        }
        other => return Err(format!("unknown type {other}").into()),
    })
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    api: &'static str,
    version: i16,
}

impl Cursor<'_> {
    fn fail<T>(&self, what: impl Into<String>) -> Result<T, GuardError> {
        Err(GuardError::Malformed {
            api: self.api,
            version: self.version,
            at: self.pos,
            what: what.into(),
        })
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn skip(&mut self, n: usize, what: &str) -> Result<(), GuardError> {
        if n > self.remaining() {
            return self.fail(format!(
                "{what}: {n} bytes needed, {} left",
                self.remaining()
            ));
        }
        self.pos += n;
        Ok(())
    }

    fn fixed<const N: usize>(&mut self, what: &str) -> Result<[u8; N], GuardError> {
        if N > self.remaining() {
            return self.fail(format!("{what}: truncated"));
        }
        let mut out = [0u8; N];
        out.copy_from_slice(&self.buf[self.pos..self.pos + N]);
        self.pos += N;
        Ok(out)
    }

    fn uvarint(&mut self, what: &str) -> Result<u32, GuardError> {
        let mut value: u32 = 0;
        for i in 0..5 {
            let [b] = self.fixed::<1>(what)?;
            value |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        self.fail(format!("{what}: varint longer than 5 bytes"))
    }

    /// A length prefix: `None` for null, else the length.
    fn length(
        &mut self,
        flexible: bool,
        wide: bool,
        what: &str,
    ) -> Result<Option<usize>, GuardError> {
        if flexible {
            let n = self.uvarint(what)?;
            return Ok(if n == 0 { None } else { Some((n - 1) as usize) });
        }
        let n = if wide {
            i32::from_be_bytes(self.fixed::<4>(what)?)
        } else {
            i32::from(i16::from_be_bytes(self.fixed::<2>(what)?))
        };
        match n {
            -1 => Ok(None),
            n if n < 0 => self.fail(format!("{what}: negative length {n}")),
            n => Ok(Some(n as usize)),
        }
    }
}

fn walk_fields(c: &mut Cursor<'_>, fields: &[Field], flexible: bool) -> Result<(), GuardError> {
    for f in fields {
        if !f.versions.contains(c.version) || f.tagged.contains(c.version) {
            continue;
        }
        walk_type(c, &f.ty, flexible, &f.name)?;
    }
    if flexible {
        walk_tagged(c, fields)?;
    }
    Ok(())
}

/// A tagged-field section: count, then (tag, size, value) triples. Known tagged fields are walked
/// inside their declared size (the decoder reads them with their type); unknown ones are skipped.
fn walk_tagged(c: &mut Cursor<'_>, fields: &[Field]) -> Result<(), GuardError> {
    let n = c.uvarint("tagged field count")?;
    if n as usize > c.remaining() {
        return c.fail(format!("{n} tagged fields in {} bytes", c.remaining()));
    }
    for _ in 0..n {
        let tag = c.uvarint("tag")?;
        let size = c.uvarint("tagged field size")? as usize;
        if size > c.remaining() {
            return c.fail(format!(
                "tagged field of {size} bytes, {} left",
                c.remaining()
            ));
        }
        let known = fields
            .iter()
            .find(|f| f.tagged.contains(c.version) && tag_of(f) == Some(tag));
        match known {
            Some(f) => {
                let mut sub = Cursor {
                    buf: &c.buf[..c.pos + size],
                    pos: c.pos,
                    api: c.api,
                    version: c.version,
                };
                walk_type(&mut sub, &f.ty, true, &f.name)?;
                c.pos += size;
            }
            None => c.pos += size,
        }
    }
    Ok(())
}

/// The tag of a tagged field (only FetchRequest declares any among the embedded schemas).
fn tag_of(f: &Field) -> Option<u32> {
    f.tag
}

fn walk_type(c: &mut Cursor<'_>, ty: &Ty, flexible: bool, name: &str) -> Result<(), GuardError> {
    match ty {
        Ty::Fixed(n) => c.skip(*n, name),
        Ty::String => match c.length(flexible, false, name)? {
            None => Ok(()),
            Some(n) => {
                let start = c.pos;
                c.skip(n, name)?;
                if std::str::from_utf8(&c.buf[start..start + n]).is_err() {
                    c.pos = start;
                    return c.fail(format!("{name}: invalid UTF-8"));
                }
                Ok(())
            }
        },
        Ty::Bytes => match c.length(flexible, true, name)? {
            None => Ok(()),
            Some(n) => c.skip(n, name),
        },
        Ty::Array(elem) => {
            let Some(n) = c.length(flexible, true, name)? else {
                return Ok(());
            };
            // Every element of every request array takes at least one byte on the wire.
            if n > c.remaining() {
                return c.fail(format!(
                    "{name}: {n} elements announced, {} bytes left",
                    c.remaining()
                ));
            }
            for _ in 0..n {
                walk_type(c, elem, flexible, name)?;
            }
            Ok(())
        }
        Ty::Struct(fields) => walk_fields(c, fields, flexible),
    }
}

/// Checks a request body (the bytes after the request header) of API `key` at `version`.
pub fn check(key: i16, version: i16, body: &[u8]) -> Result<(), GuardError> {
    let schemas = schemas()?;
    let schema = schemas.get(&key).ok_or(GuardError::UnknownApi(key))?;
    if !schema.valid.contains(version) {
        return Err(GuardError::UnknownVersion { key, version });
    }
    let mut c = Cursor {
        buf: body,
        pos: 0,
        api: schema.name,
        version,
    };
    walk_fields(&mut c, &schema.fields, schema.flexible.contains(version))
}

/// Names of tagged fields declared in the embedded schemas (see [`tag_of`]).
pub fn tagged_field_names() -> Result<Vec<String>, GuardError> {
    fn collect(fields: &[Field], out: &mut Vec<String>) {
        for f in fields {
            if f.tagged != Versions::NONE {
                out.push(f.name.clone());
            }
            match &f.ty {
                Ty::Struct(fs) => collect(fs, out),
                Ty::Array(e) => {
                    if let Ty::Struct(fs) = e.as_ref() {
                        collect(fs, out)
                    }
                }
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    for s in schemas()?.values() {
        collect(&s.fields, &mut out);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::share_fetch_request::{
        AcknowledgementBatch, FetchPartition, FetchTopic,
    };
    use kafka_protocol::messages::{ApiKey, MetadataRequest, ShareFetchRequest};
    use kafka_protocol::protocol::Encodable;

    #[test]
    fn schemas_parse_and_cover_the_served_apis() {
        let covered = covered().expect("embedded schemas parse");
        assert_eq!(covered.len(), FILES.len());
        assert!(covered.contains(&(ApiKey::ShareFetch as i16, 1, 1)));
        let mut tagged = tagged_field_names().expect("schemas");
        tagged.sort();
        assert_eq!(
            tagged,
            [
                "ClusterId",
                "HighWatermark",
                "ReplicaDirectoryId",
                "ReplicaState"
            ],
            "only FetchRequest declares tagged fields"
        );
    }

    fn min_size(ty: &Ty, v: i16, flexible: bool) -> usize {
        match ty {
            Ty::Fixed(n) => *n,
            Ty::String => {
                if flexible {
                    1
                } else {
                    2
                }
            }
            Ty::Bytes | Ty::Array(_) => {
                if flexible {
                    1
                } else {
                    4
                }
            }
            Ty::Struct(fs) => {
                fs.iter()
                    .filter(|f| f.versions.contains(v) && !f.tagged.contains(v))
                    .map(|f| min_size(&f.ty, v, flexible))
                    .sum::<usize>()
                    + usize::from(flexible)
            }
        }
    }

    fn check_elements(fields: &[Field], v: i16, flexible: bool, bad: &mut Vec<String>) {
        for f in fields.iter().filter(|f| f.versions.contains(v)) {
            match &f.ty {
                Ty::Array(e) => {
                    if min_size(e, v, flexible) == 0 {
                        bad.push(format!("{} v{v}", f.name));
                    }
                    if let Ty::Struct(fs) = e.as_ref() {
                        check_elements(fs, v, flexible, bad);
                    }
                }
                Ty::Struct(fs) => check_elements(fs, v, flexible, bad),
                _ => {}
            }
        }
    }

    /// The guard's bound `elements <= bytes left` needs every array element to take a byte.
    #[test]
    fn every_array_element_takes_at_least_one_byte() {
        let mut bad = Vec::new();
        for s in schemas().expect("schemas").values() {
            for v in s.valid.min..=s.valid.max {
                check_elements(&s.fields, v, s.flexible.contains(v), &mut bad);
            }
        }
        assert!(bad.is_empty(), "zero-size array elements: {bad:?}");
    }

    #[test]
    fn versions_parse() {
        assert_eq!(Versions::parse("3+").map(|v| v.contains(9)), Ok(true));
        assert_eq!(Versions::parse("0-2").map(|v| v.contains(3)), Ok(false));
        assert_eq!(Versions::parse("none").map(|v| v.contains(0)), Ok(false));
        assert!(Versions::parse("x").is_err());
    }

    fn encode<M: Encodable>(m: &M, v: i16) -> Vec<u8> {
        let mut buf = Vec::new();
        m.encode(&mut buf, v).expect("encodes");
        buf
    }

    #[test]
    fn accepts_valid_bodies_and_refuses_huge_arrays() {
        let req = ShareFetchRequest::default().with_topics(vec![FetchTopic::default()
            .with_partitions(vec![FetchPartition::default()
                .with_acknowledgement_batches(vec![
                    AcknowledgementBatch::default().with_acknowledge_types(vec![1, 2])
                ])])]);
        let body = encode(&req, 1);
        check(78, 1, &body).expect("valid ShareFetch");
        // Metadata v0: topics is an int32-counted array; claim 2^30 elements.
        let mut huge = encode(&MetadataRequest::default().with_topics(Some(vec![])), 0);
        huge[..4].copy_from_slice(&(1i32 << 30).to_be_bytes());
        assert!(matches!(
            check(3, 0, &huge),
            Err(GuardError::Malformed { .. })
        ));
        // Truncation anywhere is refused.
        for cut in 0..body.len() {
            assert!(check(78, 1, &body[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn walks_known_tagged_fields_inside_their_size() {
        use kafka_protocol::messages::fetch_request::{self, ReplicaState};
        use kafka_protocol::messages::{BrokerId, FetchRequest};
        use kafka_protocol::protocol::StrBytes;
        let req = FetchRequest::default()
            .with_cluster_id(Some(StrBytes::from_static_str("c")))
            .with_replica_state(ReplicaState::default().with_replica_id(BrokerId(3)))
            .with_topics(vec![fetch_request::FetchTopic::default().with_partitions(
                vec![fetch_request::FetchPartition::default()
                    .with_replica_directory_id(uuid::Uuid::from_u128(9))
                    .with_high_watermark(5)],
            )]);
        for v in [4, 12, 15, 17, 18] {
            let body = encode(&req, v);
            check(1, v, &body).unwrap_or_else(|e| panic!("valid Fetch v{v}: {e}"));
            for cut in 0..body.len() {
                assert!(check(1, v, &body[..cut]).is_err(), "v{v} cut at {cut}");
            }
        }
        // A tagged ClusterId whose string claims more bytes than its tagged field holds.
        let mut body = encode(
            &FetchRequest::default().with_cluster_id(Some(StrBytes::from_static_str("abc"))),
            12,
        );
        let at = body
            .windows(3)
            .position(|w| w == b"abc")
            .expect("cluster id in body");
        body[at - 1] = 100; // compact string length 99
        assert!(check(1, 12, &body).is_err());
    }
}
