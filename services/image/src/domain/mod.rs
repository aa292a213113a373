//! Pure rules: what an upload is (sniffed format), and turning it into the stored variants.

pub mod format;
pub mod process;

pub use format::Format;
pub use process::{Limits, Processed, Rejected, Variant, process};
