//! What the TLS probe saw, kept apart from what it concludes: `score` reads only
//! these values, so the same evidence always gives the same score.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use chrono::{DateTime, Utc};

use super::suites::{name as suite_name, version_name};

/// Everything the TLS probe observed for one domain and port.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsEvidence {
    pub domain: String,
    pub port: u16,
    /// The vetted addresses the probe was given, in the order tried.
    pub addresses: Vec<IpAddr>,
    /// rustls, TLS 1.2 and 1.3 allowed, ALPN h2 and http/1.1 offered: what a
    /// modern client gets.
    pub main: Result<Handshake, ProbeFailure>,
    /// rustls limited to TLS 1.3.
    pub tls13_only: Result<Handshake, ProbeFailure>,
    /// rustls limited to TLS 1.2: it offers only ECDHE + AEAD suites, so its
    /// suite is the server's preferred strong TLS 1.2 suite.
    pub tls12_only: Result<Handshake, ProbeFailure>,
    /// The certificate chain of the first rustls handshake that reached it.
    pub certificate: Option<CertificateEvidence>,
    /// Hand-built TLS 1.0 ClientHello (legacy_version 0x0301).
    pub tls10: HelloProbe,
    /// Hand-built TLS 1.1 ClientHello (legacy_version 0x0302).
    pub tls11: HelloProbe,
    /// Hand-built TLS 1.2 ClientHello offering a browser-like list (ECDHE and
    /// RSA key exchange, GCM, ChaCha20 and CBC): the suite a typical TLS 1.2 client is given.
    pub tls12_typical: HelloProbe,
    /// Hand-built TLS 1.2 ClientHello offering only suites without forward
    /// secrecy or without AEAD.
    pub tls12_weak_only: HelloProbe,
}

/// Whether HTTPS works at all, and if not, how it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpsStatus {
    /// At least one TLS 1.2/1.3 handshake completed.
    Working,
    /// No address to connect to.
    NoAddresses,
    /// Every address refused (or otherwise failed) the TCP connection.
    NothingListening,
    /// Something accepted the connection, but no TLS 1.2/1.3 handshake completed.
    HandshakeFailed,
    /// The time budget ran out (or the probe could not be set up): nothing can be concluded.
    Inconclusive,
}

impl TlsEvidence {
    /// The first completed rustls handshake: main, then 1.3-only, then 1.2-only.
    pub fn working_handshake(&self) -> Option<&Handshake> {
        [&self.main, &self.tls13_only, &self.tls12_only]
            .into_iter()
            .find_map(|r| r.as_ref().ok())
    }

    pub fn https_status(&self) -> HttpsStatus {
        if self.working_handshake().is_some() {
            return HttpsStatus::Working;
        }
        match &self.main {
            Ok(_) => HttpsStatus::Working,
            Err(f) if f.is_inconclusive() => HttpsStatus::Inconclusive,
            Err(ProbeFailure::NoAddresses) => HttpsStatus::NoAddresses,
            Err(ProbeFailure::Connect { .. }) => HttpsStatus::NothingListening,
            Err(_) => HttpsStatus::HandshakeFailed,
        }
    }
}

/// A completed rustls handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    pub addr: SocketAddr,
    /// Wire value: 0x0303 TLS 1.2, 0x0304 TLS 1.3.
    pub version: u16,
    pub cipher_suite: u16,
    /// e.g. `X25519`.
    pub key_exchange_group: Option<String>,
    /// The protocol the server picked from `h2`, `http/1.1`, if any.
    pub alpn: Option<String>,
}

impl fmt::Display for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} with {}",
            version_name(self.version),
            suite_name(self.cipher_suite)
        )?;
        if let Some(group) = &self.key_exchange_group {
            write!(f, ", key exchange {group}")?;
        }
        if let Some(alpn) = &self.alpn {
            write!(f, ", ALPN {alpn}")?;
        }
        write!(f, " at {}", self.addr)
    }
}

/// One failed TCP connection attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectAttempt {
    pub addr: SocketAddr,
    pub error: String,
    /// The attempt ran out of time rather than being refused.
    pub timed_out: bool,
}

/// Why a sub-probe did not get a complete answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeFailure {
    /// No address was given.
    NoAddresses,
    /// No address accepted the TCP connection.
    Connect { attempts: Vec<ConnectAttempt> },
    /// Connected; the handshake failed (alert, reset, protocol error).
    Handshake {
        addr: Option<SocketAddr>,
        error: String,
    },
    /// The probe's time budget ran out; `addr` is set when it had connected.
    TimedOut { addr: Option<SocketAddr> },
    /// The probe could not be set up on this side (a configuration error).
    Local(String),
}

impl ProbeFailure {
    /// True when the failure says nothing about the server: the budget ran out
    /// (while connecting or handshaking) or the probe could not be set up.
    pub fn is_inconclusive(&self) -> bool {
        match self {
            ProbeFailure::TimedOut { .. } | ProbeFailure::Local(_) => true,
            ProbeFailure::Connect { attempts } => {
                attempts.is_empty() || attempts.iter().any(|a| a.timed_out)
            }
            ProbeFailure::NoAddresses | ProbeFailure::Handshake { .. } => false,
        }
    }
}

impl fmt::Display for ProbeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeFailure::NoAddresses => f.write_str("no address to connect to"),
            ProbeFailure::Connect { attempts } if attempts.is_empty() => {
                f.write_str("no connection attempt was made")
            }
            ProbeFailure::Connect { attempts } => {
                f.write_str("could not connect: ")?;
                for (i, a) in attempts.iter().enumerate() {
                    let sep = if i == 0 { "" } else { "; " };
                    write!(f, "{sep}{} {}", a.addr, a.error)?;
                }
                Ok(())
            }
            ProbeFailure::Handshake {
                addr: Some(addr),
                error,
            } => write!(f, "handshake with {addr} failed: {error}"),
            ProbeFailure::Handshake { addr: None, error } => write!(f, "handshake failed: {error}"),
            ProbeFailure::TimedOut { addr: Some(addr) } => {
                write!(f, "connected to {addr}, then timed out")
            }
            ProbeFailure::TimedOut { addr: None } => {
                f.write_str("timed out before a connection was made")
            }
            ProbeFailure::Local(why) => write!(f, "probe could not be set up: {why}"),
        }
    }
}

/// The server's first answer to a hand-built ClientHello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerAnswer {
    ServerHello {
        version: u16,
        cipher_suite: u16,
    },
    Alert {
        level: u8,
        description: u8,
    },
    /// The server closed the connection after sending `bytes` bytes (none, usually).
    Closed {
        bytes: usize,
    },
    /// Bytes that are not a TLS answer this client can read.
    Unrecognised(String),
}

fn alert_name(description: u8) -> &'static str {
    match description {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        40 => "handshake_failure",
        42 => "bad_certificate",
        47 => "illegal_parameter",
        50 => "decode_error",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        109 => "missing_extension",
        112 => "unrecognized_name",
        _ => "other",
    }
}

impl fmt::Display for ServerAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerAnswer::ServerHello {
                version,
                cipher_suite,
            } => write!(
                f,
                "ServerHello version 0x{version:04x} ({}), suite 0x{cipher_suite:04x} ({})",
                version_name(*version),
                suite_name(*cipher_suite)
            ),
            ServerAnswer::Alert { level, description } => {
                let level = if *level == 2 { "fatal" } else { "warning" };
                write!(
                    f,
                    "{level} alert {description} ({})",
                    alert_name(*description)
                )
            }
            ServerAnswer::Closed { bytes: 0 } => f.write_str("connection closed without an answer"),
            ServerAnswer::Closed { bytes } => write!(f, "connection closed after {bytes} bytes"),
            ServerAnswer::Unrecognised(what) => write!(f, "unreadable answer: {what}"),
        }
    }
}

/// One hand-built ClientHello and what came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelloProbe {
    /// The legacy_version offered.
    pub offered: u16,
    pub outcome: Result<ServerAnswer, ProbeFailure>,
}

impl HelloProbe {
    /// The suite chosen, when the server answered with a ServerHello of exactly
    /// the version offered (i.e. accepted it).
    pub fn accepted_suite(&self) -> Option<u16> {
        match self.outcome {
            Ok(ServerAnswer::ServerHello {
                version,
                cipher_suite,
            }) if version == self.offered => Some(cipher_suite),
            _ => None,
        }
    }

    /// Some(true): accepted. Some(false): refused — an alert, a close, another
    /// version, an unreadable answer, or silence until the deadline after
    /// connecting. None: could not ask (no connection).
    pub fn accepted(&self) -> Option<bool> {
        match &self.outcome {
            Ok(_) => Some(self.accepted_suite().is_some()),
            Err(ProbeFailure::Handshake { .. } | ProbeFailure::TimedOut { addr: Some(_) }) => {
                Some(false)
            }
            Err(_) => None,
        }
    }
}

impl fmt::Display for HelloProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            Ok(answer) => write!(f, "{answer}"),
            Err(failure) => write!(f, "{failure}"),
        }
    }
}

/// The verifier's verdict on the chain, host name and dates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertVerdict {
    Trusted,
    /// Does not chain to a trusted root.
    UntrustedIssuer,
    Expired,
    NotYetValid,
    /// Valid, but not for the domain probed.
    NameMismatch,
    /// Any other verification failure, in the verifier's words.
    Other(String),
}

impl fmt::Display for CertVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertVerdict::Trusted => f.write_str("trusted"),
            CertVerdict::UntrustedIssuer => f.write_str("untrusted issuer"),
            CertVerdict::Expired => f.write_str("expired"),
            CertVerdict::NotYetValid => f.write_str("not yet valid"),
            CertVerdict::NameMismatch => f.write_str("not valid for this name"),
            CertVerdict::Other(why) => write!(f, "invalid: {why}"),
        }
    }
}

/// Public key algorithm of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyKind {
    Rsa,
    Ecdsa,
    Ed25519,
    Ed448,
    Dsa,
    /// Anything else, by OID.
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub kind: KeyKind,
    /// Modulus size for RSA/DSA, field size for elliptic curves; 0 when unknown.
    pub bits: u32,
}

impl fmt::Display for KeyInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            KeyKind::Rsa => "RSA",
            KeyKind::Ecdsa => "ECDSA",
            KeyKind::Ed25519 => "Ed25519",
            KeyKind::Ed448 => "Ed448",
            KeyKind::Dsa => "DSA",
            KeyKind::Other(oid) => oid,
        };
        write!(f, "{kind} {} bits", self.bits)
    }
}

/// One certificate of the chain, as parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSummary {
    pub subject: String,
    pub issuer: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    pub key: KeyInfo,
    /// e.g. `ecdsa-with-SHA256`, or the OID when unnamed.
    pub signature_algorithm: String,
    /// DNS names of the subjectAltName extension.
    pub dns_names: Vec<String>,
}

/// The chain the server presented and what was concluded about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateEvidence {
    pub verdict: CertVerdict,
    /// The verifier's own error text, when it refused the chain.
    pub verifier_error: Option<String>,
    /// As sent, leaf first; an entry is an error when that certificate did not parse.
    pub chain: Vec<Result<CertSummary, String>>,
    /// Whether a subjectAltName DNS name of the leaf covers the domain
    /// (checked even when the verifier stopped earlier, e.g. at the issuer).
    pub name_matches: Option<bool>,
    /// Whole days from the probe to the leaf's notAfter, rounded down
    /// (negative: expired).
    pub days_left: Option<i64>,
}

impl CertificateEvidence {
    pub fn leaf(&self) -> Option<&CertSummary> {
        self.chain.first().and_then(|c| c.as_ref().ok())
    }
}
