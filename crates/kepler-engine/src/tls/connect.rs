//! TCP connection to the first vetted address that accepts. Names are never
//! resolved here: the caller hands over addresses it has already checked.

use std::net::{IpAddr, SocketAddr};

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::evidence::{ConnectAttempt, ProbeFailure};

/// Tries `addrs` in order until one accepts. Each attempt gets an equal share
/// of the time left, so one silent address cannot eat the budget of the rest.
pub async fn connect(
    addrs: &[IpAddr],
    port: u16,
    deadline: Instant,
) -> Result<(TcpStream, SocketAddr), ProbeFailure> {
    if addrs.is_empty() {
        return Err(ProbeFailure::NoAddresses);
    }
    let mut attempts = Vec::new();
    for (i, ip) in addrs.iter().enumerate() {
        let addr = SocketAddr::new(*ip, port);
        let now = Instant::now();
        if now >= deadline {
            if attempts.is_empty() {
                return Err(ProbeFailure::TimedOut { addr: None });
            }
            let error = "not tried: the time budget was spent".to_owned();
            attempts.push(ConnectAttempt {
                addr,
                error,
                timed_out: true,
            });
            break;
        }
        let left = u32::try_from(addrs.len() - i).unwrap_or(u32::MAX);
        let share = (deadline - now) / left;
        match tokio::time::timeout(share, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => return Ok((stream, addr)),
            Ok(Err(e)) => attempts.push(ConnectAttempt {
                addr,
                error: e.to_string(),
                timed_out: false,
            }),
            Err(_) => attempts.push(ConnectAttempt {
                addr,
                error: "timed out".to_owned(),
                timed_out: true,
            }),
        }
    }
    Err(ProbeFailure::Connect { attempts })
}
