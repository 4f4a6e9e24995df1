//! Stream wrappers: the `--latency` delay on a connection's first byte, and a
//! stream that replays bytes already read (so a ClientHello can be peeked at
//! and then handed to rustls).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// Delays the first byte the server sends by a fixed time, so every
/// connection shows one extra round trip.
#[derive(Debug)]
pub struct Delayed<S> {
    inner: S,
    delay: Duration,
    state: DelayState,
}

#[derive(Debug)]
enum DelayState {
    Waiting,
    Sleeping(Pin<Box<Sleep>>),
    Done,
}

impl<S> Delayed<S> {
    pub fn new(inner: S, delay: Duration) -> Self {
        let state = if delay.is_zero() {
            DelayState::Done
        } else {
            DelayState::Waiting
        };
        Delayed {
            inner,
            delay,
            state,
        }
    }

    /// Waits out the delay if this is the first write.
    fn poll_delay(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            match &mut self.state {
                DelayState::Done => return Poll::Ready(()),
                DelayState::Waiting => {
                    self.state = DelayState::Sleeping(Box::pin(tokio::time::sleep(self.delay)));
                }
                DelayState::Sleeping(sleep) => {
                    ready!(sleep.as_mut().poll(cx));
                    self.state = DelayState::Done;
                }
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Delayed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Delayed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_delay(cx));
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Reads `prefix` first, then the inner stream; writes go straight through.
#[derive(Debug)]
pub struct Prefixed<S> {
    prefix: Vec<u8>,
    pos: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    pub fn new(prefix: Vec<u8>, inner: S) -> Self {
        Prefixed {
            prefix,
            pos: 0,
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.pos < self.prefix.len() {
            let rest = &self.prefix[self.pos..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            self.pos += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn the_first_write_waits_and_later_ones_do_not() {
        let (client, server) = tokio::io::duplex(64);
        let mut server = Delayed::new(server, Duration::from_millis(100));
        let mut client = client;
        let start = tokio::time::Instant::now();
        server.write_all(b"a").await.expect("write");
        assert!(start.elapsed() >= Duration::from_millis(100));
        let second = tokio::time::Instant::now();
        server.write_all(b"b").await.expect("write");
        assert!(second.elapsed() < Duration::from_millis(1));
        let mut got = [0u8; 2];
        client.read_exact(&mut got).await.expect("read");
        assert_eq!(&got, b"ab");
    }

    #[tokio::test]
    async fn prefixed_replays_then_continues() {
        let (mut client, server) = tokio::io::duplex(64);
        client.write_all(b"world").await.expect("write");
        drop(client);
        let mut stream = Prefixed::new(b"hello ".to_vec(), server);
        let mut all = String::new();
        stream.read_to_string(&mut all).await.expect("read");
        assert_eq!(all, "hello world");
    }
}
