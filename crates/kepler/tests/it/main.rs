//! The `kepler` binary from the outside.

mod score;
mod support;
