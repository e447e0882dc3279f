//! The frame guard: every request body (in the reference broker) and every response body (in the
//! client) is walked against its Apache Kafka JSON message schema before kafka-protocol decodes it,
//! and every record batch a client receives is walked before its records are decoded.
//!
//! Why: kafka-protocol 0.18 sizes a `Vec` from the array length it reads off the wire
//! (`Vec::with_capacity(n)` in `protocol/types.rs`, `records.reserve(record_count)` and
//! `IndexMap::with_capacity(headers)` in `records.rs`) before it knows whether that many elements
//! follow. A random or hostile length of a few hundred million turns into an allocation larger than
//! memory, and allocation failure aborts the whole process instead of failing one exchange. The
//! guard walks the same bytes the decoder will read, field by field as the schema lays them out for
//! that version (flexible versions: compact lengths and tagged-field sections), and accepts the
//! frame only if every array, string and byte field fits in what is left of it. After that every
//! array the decoder allocates holds at most as many elements as the frame has bytes, and each of
//! them is really there.
//!
//! The schemas are the request and response JSON files of Apache Kafka 4.1.2
//! (`clients/src/main/resources/common/message/` at `c82fd9b934`, Apache License 2.0), the release
//! whose schemas kafka-protocol 0.18 was generated from, except ShareFetch and ShareAcknowledge
//! (request and response), which are 4.2.0's (`a18251bae0`, identical on the 4.4 branch): they add
//! v2 (`crate::v2`), and Describe/Alter/DeleteShareGroupOffsets (90–92), also 4.2.0's: Describe v1
//! adds `Lag` (`crate::offsets`). They are embedded and parsed once.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::Value;

/// Which way a message goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client to broker.
    Request,
    /// Broker to client.
    Response,
}

/// Why a frame was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    /// No schema is embedded for this API key.
    #[error("no schema for API key {0}")]
    UnknownApi(i16),
    /// The version is outside the schema's valid versions.
    #[error("API key {key} has no version {version}")]
    UnknownVersion { key: i16, version: i16 },
    /// The bytes do not fit the schema: which message, at which byte, in which field.
    #[error("malformed {api} v{version} at byte {at}, field {field}: {what}")]
    Malformed {
        /// The message (`ShareFetchResponse`).
        api: &'static str,
        /// Its version.
        version: i16,
        /// Byte offset into the body.
        at: usize,
        /// The field path (`Responses.Partitions.AcquiredRecords`).
        field: String,
        /// What does not fit.
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
    /// Versions where the field may be null. A nullable struct carries a one-byte marker
    /// (−1 null, 1 present) before its fields.
    nullable: Versions,
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

/// The embedded schemas: (file name, contents). The direction is in the name.
const FILES: &[(&str, &str)] = &[
    (
        "ProduceRequest.json",
        include_str!("schemas/ProduceRequest.json"),
    ),
    (
        "ProduceResponse.json",
        include_str!("schemas/ProduceResponse.json"),
    ),
    (
        "FetchRequest.json",
        include_str!("schemas/FetchRequest.json"),
    ),
    (
        "FetchResponse.json",
        include_str!("schemas/FetchResponse.json"),
    ),
    (
        "ListOffsetsRequest.json",
        include_str!("schemas/ListOffsetsRequest.json"),
    ),
    (
        "ListOffsetsResponse.json",
        include_str!("schemas/ListOffsetsResponse.json"),
    ),
    (
        "MetadataRequest.json",
        include_str!("schemas/MetadataRequest.json"),
    ),
    (
        "MetadataResponse.json",
        include_str!("schemas/MetadataResponse.json"),
    ),
    (
        "FindCoordinatorRequest.json",
        include_str!("schemas/FindCoordinatorRequest.json"),
    ),
    (
        "FindCoordinatorResponse.json",
        include_str!("schemas/FindCoordinatorResponse.json"),
    ),
    (
        "ApiVersionsRequest.json",
        include_str!("schemas/ApiVersionsRequest.json"),
    ),
    (
        "ApiVersionsResponse.json",
        include_str!("schemas/ApiVersionsResponse.json"),
    ),
    (
        "CreateTopicsRequest.json",
        include_str!("schemas/CreateTopicsRequest.json"),
    ),
    (
        "CreateTopicsResponse.json",
        include_str!("schemas/CreateTopicsResponse.json"),
    ),
    (
        "DeleteTopicsRequest.json",
        include_str!("schemas/DeleteTopicsRequest.json"),
    ),
    (
        "DeleteTopicsResponse.json",
        include_str!("schemas/DeleteTopicsResponse.json"),
    ),
    (
        "InitProducerIdRequest.json",
        include_str!("schemas/InitProducerIdRequest.json"),
    ),
    (
        "InitProducerIdResponse.json",
        include_str!("schemas/InitProducerIdResponse.json"),
    ),
    (
        "DescribeConfigsRequest.json",
        include_str!("schemas/DescribeConfigsRequest.json"),
    ),
    (
        "DescribeConfigsResponse.json",
        include_str!("schemas/DescribeConfigsResponse.json"),
    ),
    (
        "IncrementalAlterConfigsRequest.json",
        include_str!("schemas/IncrementalAlterConfigsRequest.json"),
    ),
    (
        "IncrementalAlterConfigsResponse.json",
        include_str!("schemas/IncrementalAlterConfigsResponse.json"),
    ),
    (
        "DescribeClusterRequest.json",
        include_str!("schemas/DescribeClusterRequest.json"),
    ),
    (
        "DescribeClusterResponse.json",
        include_str!("schemas/DescribeClusterResponse.json"),
    ),
    (
        "ShareGroupHeartbeatRequest.json",
        include_str!("schemas/ShareGroupHeartbeatRequest.json"),
    ),
    (
        "ShareGroupHeartbeatResponse.json",
        include_str!("schemas/ShareGroupHeartbeatResponse.json"),
    ),
    (
        "ShareGroupDescribeRequest.json",
        include_str!("schemas/ShareGroupDescribeRequest.json"),
    ),
    (
        "ShareGroupDescribeResponse.json",
        include_str!("schemas/ShareGroupDescribeResponse.json"),
    ),
    (
        "ShareFetchRequest.json",
        include_str!("schemas/ShareFetchRequest.json"),
    ),
    (
        "ShareFetchResponse.json",
        include_str!("schemas/ShareFetchResponse.json"),
    ),
    (
        "ShareAcknowledgeRequest.json",
        include_str!("schemas/ShareAcknowledgeRequest.json"),
    ),
    (
        "ShareAcknowledgeResponse.json",
        include_str!("schemas/ShareAcknowledgeResponse.json"),
    ),
    (
        "CreatePartitionsRequest.json",
        include_str!("schemas/CreatePartitionsRequest.json"),
    ),
    (
        "CreatePartitionsResponse.json",
        include_str!("schemas/CreatePartitionsResponse.json"),
    ),
    (
        "ElectLeadersRequest.json",
        include_str!("schemas/ElectLeadersRequest.json"),
    ),
    (
        "ElectLeadersResponse.json",
        include_str!("schemas/ElectLeadersResponse.json"),
    ),
    (
        "AlterPartitionReassignmentsRequest.json",
        include_str!("schemas/AlterPartitionReassignmentsRequest.json"),
    ),
    (
        "AlterPartitionReassignmentsResponse.json",
        include_str!("schemas/AlterPartitionReassignmentsResponse.json"),
    ),
    (
        "ListGroupsRequest.json",
        include_str!("schemas/ListGroupsRequest.json"),
    ),
    (
        "ListGroupsResponse.json",
        include_str!("schemas/ListGroupsResponse.json"),
    ),
    (
        "DeleteGroupsRequest.json",
        include_str!("schemas/DeleteGroupsRequest.json"),
    ),
    (
        "DeleteGroupsResponse.json",
        include_str!("schemas/DeleteGroupsResponse.json"),
    ),
    (
        "DescribeShareGroupOffsetsRequest.json",
        include_str!("schemas/DescribeShareGroupOffsetsRequest.json"),
    ),
    (
        "DescribeShareGroupOffsetsResponse.json",
        include_str!("schemas/DescribeShareGroupOffsetsResponse.json"),
    ),
    (
        "AlterShareGroupOffsetsRequest.json",
        include_str!("schemas/AlterShareGroupOffsetsRequest.json"),
    ),
    (
        "AlterShareGroupOffsetsResponse.json",
        include_str!("schemas/AlterShareGroupOffsetsResponse.json"),
    ),
    (
        "DeleteShareGroupOffsetsRequest.json",
        include_str!("schemas/DeleteShareGroupOffsetsRequest.json"),
    ),
    (
        "DeleteShareGroupOffsetsResponse.json",
        include_str!("schemas/DeleteShareGroupOffsetsResponse.json"),
    ),
    (
        "SaslHandshakeRequest.json",
        include_str!("schemas/SaslHandshakeRequest.json"),
    ),
    (
        "SaslHandshakeResponse.json",
        include_str!("schemas/SaslHandshakeResponse.json"),
    ),
    (
        "SaslAuthenticateRequest.json",
        include_str!("schemas/SaslAuthenticateRequest.json"),
    ),
    (
        "SaslAuthenticateResponse.json",
        include_str!("schemas/SaslAuthenticateResponse.json"),
    ),
];

type Schemas = HashMap<(i16, Direction), Schema>;

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

/// The API keys that have an embedded request schema, with its valid versions.
pub fn covered() -> Result<Vec<(i16, i16, i16)>, GuardError> {
    let mut out: Vec<(i16, i16, i16)> = schemas()?
        .iter()
        .filter(|((_, d), _)| *d == Direction::Request)
        .map(|((k, _), s)| (*k, s.valid.min, s.valid.max))
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
        let direction = match json.get("type").and_then(Value::as_str) {
            Some("request") => Direction::Request,
            Some("response") => Direction::Response,
            _ => return Err(err("type is neither request nor response".to_string())),
        };
        let schema = Schema {
            name: file.trim_end_matches(".json"),
            valid: versions("validVersions")?,
            flexible: versions("flexibleVersions")?,
            fields: {
                // Structs named by type, defined once under `commonStructs`.
                let commons: HashMap<&str, &Value> = json
                    .get("commonStructs")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|c| Some((c.get("name")?.as_str()?, c)))
                            .collect()
                    })
                    .unwrap_or_default();
                parse_fields(json.get("fields"), &commons).map_err(|p| err(p.0))?
            },
        };
        out.insert((key, direction), schema);
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

type Commons<'a> = HashMap<&'a str, &'a Value>;

fn parse_fields(v: Option<&Value>, commons: &Commons<'_>) -> Result<Vec<Field>, SchemaProblem> {
    let Some(v) = v else {
        return Ok(Vec::new());
    };
    let arr = v.as_array().ok_or("fields is not an array")?;
    arr.iter().map(|f| parse_field(f, commons)).collect()
}

fn parse_field(f: &Value, commons: &Commons<'_>) -> Result<Field, SchemaProblem> {
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
    let nullable = match f.get("nullableVersions").and_then(Value::as_str) {
        Some(s) => Versions::parse(s)?,
        None => Versions::NONE,
    };
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
        Some(elem) => Ty::Array(Box::new(parse_type(elem, f, commons)?)),
        None => parse_type(ty_name, f, commons)?,
    };
    Ok(Field {
        name,
        ty,
        versions,
        nullable,
        tagged,
        tag,
    })
}

fn parse_type(name: &str, field: &Value, commons: &Commons<'_>) -> Result<Ty, SchemaProblem> {
    Ok(match name {
        "bool" | "int8" => Ty::Fixed(1),
        "int16" | "uint16" => Ty::Fixed(2),
        "int32" | "uint32" => Ty::Fixed(4),
        "int64" | "float64" => Ty::Fixed(8),
        "uuid" => Ty::Fixed(16),
        "string" => Ty::String,
        "bytes" | "records" => Ty::Bytes,
        _ if name.starts_with(|c: char| c.is_ascii_uppercase()) => match field.get("fields") {
            Some(fields) => Ty::Struct(parse_fields(Some(fields), commons)?),
            None => {
                let common = commons.get(name).ok_or_else(|| {
                    format!("struct {name} has no fields and is not a common struct")
                })?;
                Ty::Struct(parse_fields(common.get("fields"), commons)?)
            }
        },
        other => return Err(format!("unknown type {other}").into()),
    })
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    api: &'static str,
    version: i16,
    /// The fields being walked, outermost first.
    path: Vec<&'a str>,
}

impl Cursor<'_> {
    fn fail<T>(&self, what: impl Into<String>) -> Result<T, GuardError> {
        Err(GuardError::Malformed {
            api: self.api,
            version: self.version,
            at: self.pos,
            field: if self.path.is_empty() {
                "(top level)".to_string()
            } else {
                self.path.join(".")
            },
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

    /// A zigzag-encoded signed varint (record fields), at most 5 bytes.
    fn varint(&mut self, what: &str) -> Result<i32, GuardError> {
        let u = self.uvarint(what)?;
        Ok(((u >> 1) as i32) ^ -((u & 1) as i32))
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

fn walk_fields<'a>(
    c: &mut Cursor<'a>,
    fields: &'a [Field],
    flexible: bool,
) -> Result<(), GuardError> {
    for f in fields {
        if !f.versions.contains(c.version) || f.tagged.contains(c.version) {
            continue;
        }
        c.path.push(&f.name);
        let absent = matches!(f.ty, Ty::Struct(_))
            && f.nullable.contains(c.version)
            && i8::from_be_bytes(c.fixed::<1>("null marker")?) < 0;
        if !absent {
            walk_type(c, &f.ty, flexible, &f.name)?;
        }
        c.path.pop();
    }
    if flexible {
        walk_tagged(c, fields)?;
    }
    Ok(())
}

/// A tagged-field section: count, then (tag, size, value) triples. Known tagged fields are walked
/// inside their declared size (the decoder reads them with their type); unknown ones are skipped.
fn walk_tagged<'a>(c: &mut Cursor<'a>, fields: &'a [Field]) -> Result<(), GuardError> {
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
                let mut path = c.path.clone();
                path.push(&f.name);
                let mut sub = Cursor {
                    buf: &c.buf[..c.pos + size],
                    pos: c.pos,
                    api: c.api,
                    version: c.version,
                    path,
                };
                walk_type(&mut sub, &f.ty, true, &f.name)?;
                c.pos += size;
            }
            None => c.pos += size,
        }
    }
    Ok(())
}

/// The tag of a tagged field.
fn tag_of(f: &Field) -> Option<u32> {
    f.tag
}

fn walk_type<'a>(
    c: &mut Cursor<'a>,
    ty: &'a Ty,
    flexible: bool,
    name: &str,
) -> Result<(), GuardError> {
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
            // Every element of every embedded array takes at least one byte on the wire (a test
            // checks it for every schema and version).
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

/// Checks a message body (the bytes after its header) of API `key` at `version`.
pub fn check_body(
    key: i16,
    direction: Direction,
    version: i16,
    body: &[u8],
) -> Result<(), GuardError> {
    let schemas = schemas()?;
    let schema = schemas
        .get(&(key, direction))
        .ok_or(GuardError::UnknownApi(key))?;
    if !schema.valid.contains(version) {
        return Err(GuardError::UnknownVersion { key, version });
    }
    let mut c = Cursor {
        buf: body,
        pos: 0,
        api: schema.name,
        version,
        path: Vec::new(),
    };
    walk_fields(&mut c, &schema.fields, schema.flexible.contains(version))
}

/// Checks a request body (the bytes after the request header) of API `key` at `version`.
pub fn check(key: i16, version: i16, body: &[u8]) -> Result<(), GuardError> {
    check_body(key, Direction::Request, version, body)
}

/// Checks a response body (the bytes after the response header) of API `key` at `version`.
pub fn check_response(key: i16, version: i16, body: &[u8]) -> Result<(), GuardError> {
    check_body(key, Direction::Response, version, body)
}

/// Checks the `Records` bytes of a fetch response before its record batches are decoded: every
/// batch (magic 2) holds its declared length, and every record of an uncompressed batch fits in
/// the batch, with its key, value and header counts and lengths inside the record — so the
/// decoder's `reserve(record_count)` and per-record header maps are bounded by real bytes. A
/// partial batch at the end (a size limit cut it) is allowed: the decoder stops there.
pub fn check_records(records: &[u8]) -> Result<(), GuardError> {
    let mut c = Cursor {
        buf: records,
        pos: 0,
        api: "RecordBatch",
        version: 2,
        path: vec!["Records"],
    };
    // Base offset (8), batch length (4), partition leader epoch (4), magic (1), CRC (4),
    // attributes (2), last offset delta (4), base timestamp (8), max timestamp (8), producer id
    // (8), producer epoch (2), base sequence (4), record count (4): 61 bytes.
    const HEADER: usize = 61;
    while c.remaining() >= 12 {
        let start = c.pos;
        let len = i32::from_be_bytes([
            records[start + 8],
            records[start + 9],
            records[start + 10],
            records[start + 11],
        ]);
        if len < 0 {
            return c.fail(format!("negative batch length {len}"));
        }
        let total = 12 + len as usize;
        if total > c.remaining() {
            // A trailing partial batch; the decoder does not read it.
            return Ok(());
        }
        if total < HEADER {
            return c.fail(format!("batch of {total} bytes, shorter than its header"));
        }
        let magic = records[start + 16];
        if magic != 2 {
            return c.fail(format!("record batch magic {magic}, only 2 is supported"));
        }
        let attributes = i16::from_be_bytes([records[start + 21], records[start + 22]]);
        let count = i32::from_be_bytes([
            records[start + 57],
            records[start + 58],
            records[start + 59],
            records[start + 60],
        ]);
        let body = total - HEADER;
        // Every record takes at least 7 bytes (length, attributes, timestamp and offset deltas,
        // key and value lengths, header count).
        if count < 0 || count as usize > body / 7 {
            return c.fail(format!(
                "{count} records announced in a batch of {body} record bytes"
            ));
        }
        if attributes & 0x07 == 0 {
            let mut r = Cursor {
                buf: &records[..start + total],
                pos: start + HEADER,
                api: "RecordBatch",
                version: 2,
                path: vec!["Records", "Record"],
            };
            for _ in 0..count {
                walk_record(&mut r)?;
            }
        }
        c.pos = start + total;
    }
    Ok(())
}

/// One record of an uncompressed v2 batch: a varint length, then that many bytes holding
/// attributes, varint timestamp and offset deltas, key and value (varint lengths, −1 for null) and
/// a varint header count with (key, value) pairs.
fn walk_record(c: &mut Cursor<'_>) -> Result<(), GuardError> {
    let len = c.varint("record length")?;
    if len < 0 || len as usize > c.remaining() {
        return c.fail(format!("record of {len} bytes, {} left", c.remaining()));
    }
    let end = c.pos + len as usize;
    let mut r = Cursor {
        buf: &c.buf[..end],
        pos: c.pos,
        api: c.api,
        version: c.version,
        path: c.path.clone(),
    };
    r.skip(1, "attributes")?;
    r.varint("timestamp delta")?;
    r.varint("offset delta")?;
    for what in ["key", "value"] {
        let n = r.varint(what)?;
        if n >= 0 {
            r.skip(n as usize, what)?;
        } else if n < -1 {
            return r.fail(format!("{what} length {n}"));
        }
    }
    let headers = r.varint("header count")?;
    if headers < 0 || headers as usize > r.remaining() {
        return r.fail(format!("{headers} headers in {} bytes", r.remaining()));
    }
    for _ in 0..headers {
        let k = r.varint("header key length")?;
        if k < 0 {
            return r.fail(format!("header key length {k}"));
        }
        r.skip(k as usize, "header key")?;
        let v = r.varint("header value length")?;
        if v >= 0 {
            r.skip(v as usize, "header value")?;
        } else if v < -1 {
            return r.fail(format!("header value length {v}"));
        }
    }
    c.pos = end;
    Ok(())
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
    out.sort();
    out.dedup();
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
        assert_eq!(
            covered.len() * 2,
            FILES.len(),
            "a request and a response schema per API"
        );
        assert_eq!(schemas().expect("schemas").len(), FILES.len());
        assert!(covered.contains(&(ApiKey::ShareFetch as i16, 1, 2)));
        assert!(covered.contains(&(ApiKey::ShareAcknowledge as i16, 1, 2)));
        let mut tagged = tagged_field_names().expect("schemas");
        tagged.sort();
        assert_eq!(
            tagged,
            [
                "ClusterId",
                "CurrentLeader",
                "DivergingEpoch",
                "FinalizedFeatures",
                "FinalizedFeaturesEpoch",
                "HighWatermark",
                "NodeEndpoints",
                "ReplicaDirectoryId",
                "ReplicaState",
                "SnapshotId",
                "SupportedFeatures",
                "TopicConfigErrorCode",
                "ZkMigrationReady"
            ],
            "the tagged fields of the embedded Fetch, ApiVersions, Produce and CreateTopics schemas"
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

    #[test]
    fn responses_are_walked_too_with_the_field_named() {
        use kafka_protocol::messages::share_fetch_response::{
            AcquiredRecords, PartitionData, ShareFetchableTopicResponse,
        };
        use kafka_protocol::messages::{ApiVersionsResponse, ShareFetchResponse};
        let resp = ShareFetchResponse::default().with_responses(vec![
            ShareFetchableTopicResponse::default().with_partitions(vec![PartitionData::default()
                .with_acquired_records(vec![AcquiredRecords::default()
                    .with_first_offset(0)
                    .with_last_offset(9)
                    .with_delivery_count(1)])]),
        ]);
        let body = encode(&resp, 1);
        check_response(78, 1, &body).expect("a valid ShareFetchResponse");
        for cut in 0..body.len() {
            assert!(check_response(78, 1, &body[..cut]).is_err(), "cut at {cut}");
        }
        // The allocation that aborted `sharecheck probe`: an ApiVersions response announcing
        // 2^30 API keys (v3 is flexible: a compact array length).
        let mut huge = encode(&ApiVersionsResponse::default(), 3);
        huge[2] = 0x80;
        huge.splice(3..3, [0x80, 0x80, 0x80, 0x04]);
        let err = check_response(18, 3, &huge).unwrap_err();
        assert!(
            matches!(&err, GuardError::Malformed { api: "ApiVersionsResponse", field, .. } if field == "ApiKeys"),
            "{err}"
        );
        assert!(err.to_string().contains("field ApiKeys"), "{err}");
    }

    /// An uncompressed record batch of `n` records as kafka-protocol encodes it.
    fn batch(n: i64) -> Vec<u8> {
        use kafka_protocol::records::{
            Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
        };
        let records: Vec<Record> = (0..n)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i,
                sequence: i as i32,
                timestamp: 0,
                key: None,
                value: Some(bytes::Bytes::from(format!("v{i}"))),
                headers: Default::default(),
            })
            .collect();
        let mut buf = bytes::BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .expect("encodes");
        buf.to_vec()
    }

    #[test]
    fn record_batches_are_walked_before_their_records_are_decoded() {
        let good = batch(3);
        check_records(&good).expect("a valid batch");
        // A trailing partial batch is fine (a size limit cut it).
        check_records(&good[..good.len() - 5]).expect("partial tail");
        // A record count the batch cannot hold: the decoder would reserve 2^31 - 1 records.
        let mut count = good.clone();
        count[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
        let err = check_records(&count).unwrap_err().to_string();
        assert!(err.contains("records announced"), "{err}");
        // A header count the record cannot hold: the decoder would size a map from it.
        let mut headers = good.clone();
        let last = headers.len() - 1; // the last record's header count (0, zigzag 0)
        headers[last] = 0xfe;
        headers.extend_from_slice(&[0xff, 0xff, 0xff, 0x07]);
        let len = (headers.len() - 12) as i32;
        headers[8..12].copy_from_slice(&len.to_be_bytes());
        assert!(check_records(&headers).is_err());
        // A negative batch length.
        let mut neg = good.clone();
        neg[8..12].copy_from_slice(&(-5i32).to_be_bytes());
        assert!(check_records(&neg).is_err());
    }

    /// Every embedded schema, every version: the default message as kafka-protocol encodes it
    /// passes the guard, and so does a heartbeat response with an assignment (a nullable struct
    /// naming a common struct).
    #[test]
    fn every_message_kafka_protocol_encodes_passes() {
        use kafka_protocol::messages::share_group_heartbeat_response::{
            Assignment, TopicPartitions,
        };
        use kafka_protocol::messages::*;
        use kafka_protocol::protocol::Message;
        fn all<M: Encodable + Default + Message>(key: i16, d: Direction) {
            for v in M::VERSIONS.min..=M::VERSIONS.max {
                let body = encode(&M::default(), v);
                check_body(key, d, v, &body).unwrap_or_else(|e| panic!("{key} {d:?} v{v}: {e}"));
            }
        }
        macro_rules! both {
            ($($key:literal: $req:ty, $resp:ty;)*) => {
                $(all::<$req>($key, Direction::Request); all::<$resp>($key, Direction::Response);)*
            };
        }
        both! {
            0: ProduceRequest, ProduceResponse;
            1: FetchRequest, FetchResponse;
            2: ListOffsetsRequest, ListOffsetsResponse;
            3: MetadataRequest, MetadataResponse;
            10: FindCoordinatorRequest, FindCoordinatorResponse;
            18: ApiVersionsRequest, ApiVersionsResponse;
            19: CreateTopicsRequest, CreateTopicsResponse;
            20: DeleteTopicsRequest, DeleteTopicsResponse;
            22: InitProducerIdRequest, InitProducerIdResponse;
            32: DescribeConfigsRequest, DescribeConfigsResponse;
            44: IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse;
            60: DescribeClusterRequest, DescribeClusterResponse;
            76: ShareGroupHeartbeatRequest, ShareGroupHeartbeatResponse;
            77: ShareGroupDescribeRequest, ShareGroupDescribeResponse;
            78: ShareFetchRequest, ShareFetchResponse;
            79: ShareAcknowledgeRequest, ShareAcknowledgeResponse;
            37: CreatePartitionsRequest, CreatePartitionsResponse;
            43: ElectLeadersRequest, ElectLeadersResponse;
            45: AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse;
            42: DeleteGroupsRequest, DeleteGroupsResponse;
            16: ListGroupsRequest, ListGroupsResponse;
            17: SaslHandshakeRequest, SaslHandshakeResponse;
            36: SaslAuthenticateRequest, SaslAuthenticateResponse;
        }
        let hb = ShareGroupHeartbeatResponse::default().with_assignment(Some(
            Assignment::default().with_topic_partitions(vec![TopicPartitions::default()
                .with_topic_id(uuid::Uuid::from_u128(7))
                .with_partitions(vec![0, 1, 2])]),
        ));
        let body = encode(&hb, 1);
        check_response(76, 1, &body).expect("a heartbeat with an assignment");
        for cut in 0..body.len() {
            assert!(check_response(76, 1, &body[..cut]).is_err(), "cut at {cut}");
        }
    }
}
