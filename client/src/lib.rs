//! sharecheck's Kafka wire client for share groups.
//!
//! - [`wire`]: one connection — framing, correlation ids, ApiVersions negotiation, a deadline on
//!   every request, and every response body checked by the [`guard`] before it is decoded.
//! - [`guard`]: walks a request or response body against Apache Kafka's JSON message schema for
//!   its API and version, so no length read off the wire can turn into a huge allocation.
//! - [`admin`]: the cluster-level client (metadata, topics, produce, configs, coordinators).
//! - [`member`]: one share-group member (heartbeats, share sessions, ShareFetch/ShareAcknowledge).
//! - [`v2`]: ShareFetch/ShareAcknowledge v2 (RENEW, acquire modes), which kafka-protocol 0.18 lacks.
//! - [`offsets`]: DescribeShareGroupOffsets v1 (`Lag`), which kafka-protocol 0.18 lacks.
//! - [`release`]: what a broker's API versions and features say about its Apache Kafka release.
//!
//! Kafka error codes are data ([`sharecheck_model::ErrorCode`]), compared, never thrown.

pub mod admin;
pub mod guard;
pub mod member;
pub mod offsets;
pub mod release;
pub mod scram;
pub mod security;
pub mod v2;
pub mod wire;

pub use release::Release;
pub use sharecheck_model::vocab::{AckBatch, AckType, ErrorCode};
