//! placeholder while the skeleton is laid
pub mod fetch;
pub mod hygiene;
pub mod tls;
pub mod web;
