//! One module per subcommand.

pub mod broker;
pub mod check;
pub mod conform;
pub mod fuzz;
pub mod probe;
