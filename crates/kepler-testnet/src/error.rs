//! Why a testnet could not start.

use std::net::SocketAddr;
use std::path::PathBuf;

/// A testnet that could not be brought up.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot bind {what} on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("no port was free on every fixture address for {what} after {attempts} attempts")]
    NoSharedPort { what: &'static str, attempts: u32 },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("certificate generation failed: {0}")]
    Pki(#[from] rcgen::Error),
    #[error("TLS configuration failed: {0}")]
    Tls(#[from] rustls::Error),
    #[error("fixture zone {zone} is invalid: {reason}")]
    Zone { zone: String, reason: String },
    #[error("DNSSEC signing failed for {zone}: {reason}")]
    Signing { zone: String, reason: String },
}
