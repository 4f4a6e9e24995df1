//! Listeners axum can serve: plain TCP with the latency delay, TLS (handshakes
//! done off the accept loop, with the legacy-TLS branch for `mixed.test`), and
//! the silent server for `slow.test`.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

use super::legacy;
use crate::stream::{Delayed, Prefixed};

/// How long a client may take to finish a TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A first record larger than this is not worth reading before rustls sees it.
const MAX_FIRST_RECORD: usize = 16_384 + 2048;

/// Plain TCP; each connection's first byte out waits `latency`.
#[derive(Debug)]
pub struct PlainListener {
    inner: TcpListener,
    latency: Duration,
}

impl PlainListener {
    pub fn new(inner: TcpListener, latency: Duration) -> Self {
        PlainListener { inner, latency }
    }
}

impl axum::serve::Listener for PlainListener {
    type Io = Delayed<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, peer)) => return (Delayed::new(stream, self.latency), peer),
                // Out of file descriptors and the like: back off, keep serving.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// One HTTPS site's TLS side.
#[derive(Clone)]
pub struct TlsSite {
    pub acceptor: TlsAcceptor,
    /// For the legacy responder: the leaf certificate (DER) to show TLS 1.0/1.1 clients.
    pub legacy_certificate: Option<Arc<Vec<u8>>>,
}

impl std::fmt::Debug for TlsSite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSite")
            .field("legacy", &self.legacy_certificate.is_some())
            .finish_non_exhaustive()
    }
}

pub type TlsIo = TlsStream<Prefixed<Delayed<TcpStream>>>;

/// Completed TLS connections, fed by a background accept loop.
#[derive(Debug)]
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsIo, SocketAddr)>,
    local: SocketAddr,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept loop only ends at shutdown, which also ends the server.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// Starts accepting TLS on `listener` until `cancel`; returns the listener to serve.
pub fn tls_listener(
    listener: TcpListener,
    site: TlsSite,
    latency: Duration,
    cancel: CancellationToken,
) -> io::Result<(TlsListener, tokio::task::JoinHandle<()>)> {
    let local = listener.local_addr()?;
    let (tx, rx) = mpsc::channel(64);
    let task = tokio::spawn(async move {
        let mut handshakes = JoinSet::new();
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((tcp, peer)) => {
                        let site = site.clone();
                        let tx = tx.clone();
                        handshakes.spawn(async move {
                            let stream = Delayed::new(tcp, latency);
                            if let Ok(Some(tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(stream, &site)).await {
                                // The server may be gone at shutdown; nothing to do then.
                                let _ = tx.send((tls, peer)).await;
                            }
                        });
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                },
                Some(_) = handshakes.join_next(), if !handshakes.is_empty() => {}
            }
        }
    });
    Ok((TlsListener { ready: rx, local }, task))
}

/// The TLS handshake, or the legacy answer (then `None`: nothing to serve).
async fn handshake(mut stream: Delayed<TcpStream>, site: &TlsSite) -> Option<TlsIo> {
    let mut first = Vec::new();
    if let Some(certificate) = &site.legacy_certificate {
        first = read_first_record(&mut stream).await.ok()?;
        if let Some(hello) = legacy::parse_client_hello(&first)
            && let Some(version) = legacy::legacy_version(&hello)
        {
            let random: [u8; 32] = rand::random();
            let flight = legacy::server_flight(version, &hello.cipher_suites, random, certificate)
                .unwrap_or_else(|| legacy::handshake_failure(version));
            let _ = stream.write_all(&flight).await;
            let _ = stream.shutdown().await;
            return None;
        }
    }
    site.acceptor
        .accept(Prefixed::new(first, stream))
        .await
        .ok()
}

/// Reads one TLS record (header and body), or whatever arrives when it does
/// not look like one, so rustls can reject it properly.
async fn read_first_record(stream: &mut Delayed<TcpStream>) -> io::Result<Vec<u8>> {
    let mut header = [0u8; 5];
    stream.read_exact(&mut header).await?;
    let mut record = header.to_vec();
    let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
    if header[0] == 22 && len <= MAX_FIRST_RECORD {
        let mut body = vec![0u8; len];
        stream.read_exact(&mut body).await?;
        record.extend_from_slice(&body);
    }
    Ok(record)
}

/// Accepts connections and sends nothing; each is closed after `hold`.
pub async fn silent(listener: TcpListener, hold: Duration, cancel: CancellationToken) {
    let mut held = JoinSet::new();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    held.spawn(async move {
                        tokio::time::sleep(hold).await;
                        drop(stream);
                    });
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            },
            Some(_) = held.join_next(), if !held.is_empty() => {}
        }
    }
}
