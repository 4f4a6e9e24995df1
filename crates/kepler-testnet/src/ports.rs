//! Binding one port on many loopback addresses at once.
//!
//! Every fixture web server shares one HTTP and one HTTPS port (the engine has a
//! single `http_port`/`https_port`), so a random port must be free on every
//! address; when one is taken somewhere, all are released and another is tried.

use std::io;
use std::net::{IpAddr, SocketAddr};

use tokio::net::{TcpListener, UdpSocket};

use crate::error::StartError;

const ATTEMPTS: u32 = 32;

/// Binds TCP listeners on `port` (or a shared random one when `None`) on every
/// address, in order.
pub async fn bind_shared(
    what: &'static str,
    addrs: &[IpAddr],
    port: Option<u16>,
) -> Result<(u16, Vec<TcpListener>), StartError> {
    let Some(&first) = addrs.first() else {
        return Ok((port.unwrap_or(0), Vec::new()));
    };
    for _ in 0..ATTEMPTS {
        let first_addr = SocketAddr::new(first, port.unwrap_or(0));
        let first_listener =
            TcpListener::bind(first_addr)
                .await
                .map_err(|source| StartError::Bind {
                    what,
                    addr: first_addr,
                    source,
                })?;
        let chosen = first_listener
            .local_addr()
            .map_err(|source| StartError::Bind {
                what,
                addr: first_addr,
                source,
            })?
            .port();
        let mut listeners = vec![first_listener];
        let mut clash = false;
        for &ip in &addrs[1..] {
            let addr = SocketAddr::new(ip, chosen);
            match TcpListener::bind(addr).await {
                Ok(listener) => listeners.push(listener),
                Err(e) if port.is_none() && e.kind() == io::ErrorKind::AddrInUse => {
                    clash = true;
                    break;
                }
                Err(source) => return Err(StartError::Bind { what, addr, source }),
            }
        }
        if !clash {
            return Ok((chosen, listeners));
        }
    }
    Err(StartError::NoSharedPort {
        what,
        attempts: ATTEMPTS,
    })
}

/// Binds UDP and TCP on the same port of one address (a DNS server).
pub async fn bind_udp_tcp(
    ip: IpAddr,
    port: Option<u16>,
) -> Result<(UdpSocket, TcpListener), StartError> {
    for _ in 0..ATTEMPTS {
        let addr = SocketAddr::new(ip, port.unwrap_or(0));
        let udp = UdpSocket::bind(addr)
            .await
            .map_err(|source| StartError::Bind {
                what: "DNS (UDP)",
                addr,
                source,
            })?;
        let udp_addr = udp.local_addr().map_err(|source| StartError::Bind {
            what: "DNS (UDP)",
            addr,
            source,
        })?;
        match TcpListener::bind(udp_addr).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if port.is_none() && e.kind() == io::ErrorKind::AddrInUse => continue,
            Err(source) => {
                return Err(StartError::Bind {
                    what: "DNS (TCP)",
                    addr: udp_addr,
                    source,
                });
            }
        }
    }
    Err(StartError::NoSharedPort {
        what: "DNS",
        attempts: ATTEMPTS,
    })
}

/// Whether IPv6 loopback can be bound here (some containers have no `::1`).
pub fn ipv6_loopback_available() -> bool {
    std::net::TcpListener::bind((std::net::Ipv6Addr::LOCALHOST, 0)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[tokio::test]
    async fn one_port_on_every_address() {
        let addrs: Vec<IpAddr> = vec![
            Ipv4Addr::new(127, 0, 11, 1).into(),
            Ipv4Addr::new(127, 0, 11, 2).into(),
        ];
        let (port, listeners) = bind_shared("test", &addrs, None).await.expect("bind");
        assert_ne!(port, 0);
        assert_eq!(listeners.len(), 2);
        for (listener, ip) in listeners.iter().zip(&addrs) {
            assert_eq!(
                listener.local_addr().expect("addr"),
                SocketAddr::new(*ip, port)
            );
        }
    }

    #[tokio::test]
    async fn a_fixed_port_taken_anywhere_is_an_error() {
        let squatter = TcpListener::bind((Ipv4Addr::new(127, 0, 11, 4), 0))
            .await
            .expect("bind");
        let held = squatter.local_addr().expect("addr").port();
        let addrs: Vec<IpAddr> = vec![
            Ipv4Addr::new(127, 0, 11, 3).into(),
            Ipv4Addr::new(127, 0, 11, 4).into(),
        ];
        let err = bind_shared("test", &addrs, Some(held))
            .await
            .expect_err("port is taken");
        assert!(
            matches!(err, StartError::Bind { addr, .. } if addr.port() == held),
            "{err}"
        );
    }
}
