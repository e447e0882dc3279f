//! sharecheck's model of KIP-932 share groups ("Queues for Kafka").
//!
//! - [`vocab`]: the protocol vocabulary (error codes, acknowledge types and batches, member names).
//! - [`anomaly`]: the stable names of what a broker can be caught doing wrong.
//! - [`spec`]: the executable semantics of one share partition — the one implementation of the
//!   rules, used by the model checker, the reference broker, the conformance oracle and the fuzzer.
//! - [`profile`]: the rules that differ between Apache Kafka releases.
//! - [`session`]: share-session epoch rules (ShareFetch / ShareAcknowledge).
//! - [`session_model`]: the second Stateright model, of share-session epochs, with its properties.
//! - [`mutant`]: planted bugs, each a small named change to a rule.
//! - [`model`]: the Stateright model over client operations and broker events, with the properties.
//! - [`graph`]: whole-graph exploration for liveness and transition coverage.
//! - [`check`]: one model-checking run, as `sharecheck check` reports it.
//!
//! This crate does no I/O and reads no clock.

pub mod anomaly;
pub mod check;
pub mod design;
pub mod graph;
pub mod model;
pub mod mutant;
pub mod profile;
pub mod session;
pub mod session_model;
pub mod spec;
pub mod vocab;
pub mod watch;

pub use anomaly::Anomaly;
pub use mutant::Mutant;
pub use profile::Profile;
pub use spec::{
    AckBatch, AckError, AckType, AcquireError, AcquiredRange, AutoOffsetReset, Change, ErrorCode,
    InFlight, MemberIdx, Offset, RecordState, Rules, SharePartition,
};
