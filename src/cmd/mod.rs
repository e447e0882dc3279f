//! One module per subcommand, and what the commands that reach a broker share (`target`).

pub mod broker;
pub mod check;
pub mod cleanup;
pub mod conform;
pub mod design_export;
pub mod fuzz;
pub mod heartbeat;
pub mod judge;
pub mod matrix;
pub mod probe;
pub mod soak;
pub mod target;
