//! placeholder while the skeleton is laid
pub mod tls;
