//! The conformance side of sharecheck: the trace format, the scenario catalog, targets, the runner
//! (steps → requests → a typed history), the oracle (history + spec → verdict), reports, the probe
//! and the fuzzer. The wire client lives in `sharecheck-client`; the rules in `sharecheck-model`.

pub mod cleanup;
pub mod fuzz;
pub mod history;
pub mod oracle;
pub mod probe;
pub mod report;
pub mod run;
pub mod scenario;
pub mod soak;
pub mod soak_report;
pub mod target;
pub mod trace;
