//! Conformance side of sharecheck: a Kafka wire client, a share-group member, the probe, and the
//! conformance suite (trace format, oracle, scenarios, runner, reports).

pub mod fuzz;
pub mod oracle;
pub mod probe;
pub mod report;
pub mod run;
pub mod scenario;
pub mod trace;
