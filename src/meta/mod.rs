//! API machinery with no I/O: errors as `Status`, selectors, quantities, durations, cron
//! schedules, image references, patches, managed fields, object helpers, and the name and label
//! validators.

pub mod cron;
pub mod duration;
pub mod image;
pub mod label_selector;
pub mod managed_fields;
pub mod object;
pub mod patch;
pub mod quantity;
pub mod selector;
pub mod status;
pub mod validation;

pub use status::{ApiError, Cause, GroupResource};
