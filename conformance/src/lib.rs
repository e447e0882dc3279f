//! Conformance side of sharecheck: a Kafka wire client, a share-group member, and the probe.

pub mod wire;
pub mod client;
pub mod member;
pub mod probe;
