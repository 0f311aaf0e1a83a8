//! API machinery with no I/O: errors as `Status`, selectors, quantities, patches, object helpers.

pub mod object;
pub mod patch;
pub mod quantity;
pub mod selector;
pub mod status;

pub use status::{ApiError, Cause, GroupResource};
