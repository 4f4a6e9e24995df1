//! DNSSEC over a network that loses packets: a lost DS answer is a network
//! failure, not a broken chain of trust, and must not cost a secure zone its marks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use kepler_core::config::EngineSettings;
use kepler_engine::Engine;
use kepler_engine::net::DnssecStatus;
use kepler_testnet::{Testnet, TestnetOptions};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// A DNS forwarder in front of the testnet's server that silently drops every
/// UDP query for DS records of `name`, as a congested network would, until
/// `name`'s SOA is asked for a second time (the resolver asking afresh); it
/// forwards everything else, TCP untouched. However many attempts the resolver
/// makes of one look-up, all of them are lost.
struct LossyForwarder {
    addr: SocketAddr,
    lost: Arc<AtomicUsize>,
}

impl LossyForwarder {
    async fn start(upstream: SocketAddr, name: &'static str) -> LossyForwarder {
        let udp = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("UDP bind"));
        let addr = udp.local_addr().expect("UDP address");
        let tcp = TcpListener::bind(addr).await.expect("TCP bind beside UDP");
        let lost = Arc::new(AtomicUsize::new(0));

        let counter = lost.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65_535];
            let mut soa_queries = 0;
            loop {
                let Ok((len, client)) = udp.recv_from(&mut buf).await else {
                    return;
                };
                let query = buf[..len].to_vec();
                let asked = asked_for(&query, name);
                if asked == Some(RecordType::SOA) {
                    soa_queries += 1;
                }
                if asked == Some(RecordType::DS) && soa_queries < 2 {
                    counter.fetch_add(1, Ordering::SeqCst);
                    continue;
                }
                let udp = udp.clone();
                tokio::spawn(async move {
                    let hop = UdpSocket::bind("127.0.0.1:0").await.expect("UDP bind");
                    hop.send_to(&query, upstream).await.expect("forward");
                    let mut answer = vec![0u8; 65_535];
                    if let Ok(Ok(n)) =
                        tokio::time::timeout(Duration::from_secs(5), hop.recv(&mut answer)).await
                    {
                        let _ = udp.send_to(&answer[..n], client).await;
                    }
                });
            }
        });
        tokio::spawn(async move {
            while let Ok((mut client, _)) = tcp.accept().await {
                tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        LossyForwarder { addr, lost }
    }
}

/// The type of the first question of `datagram` about `name`, if any.
fn asked_for(datagram: &[u8], name: &str) -> Option<RecordType> {
    let message = Message::from_vec(datagram).ok()?;
    message
        .queries
        .iter()
        .find(|q| q.name().to_ascii().trim_end_matches('.') == name)
        .map(|q| q.query_type())
}

#[tokio::test]
async fn a_lost_ds_answer_is_not_a_bogus_zone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let net = Testnet::start(TestnetOptions::in_dir(dir.path()))
        .await
        .expect("testnet starts");
    let settings = net.engine_settings();
    let upstream = settings.resolver.expect("the testnet names its resolver");
    let forwarder = LossyForwarder::start(upstream, "strong.test").await;
    let engine = Engine::new(&EngineSettings {
        resolver: Some(forwarder.addr),
        probe_timeout: Duration::from_secs(2),
        ..settings
    })
    .expect("engine builds");

    let status = engine
        .net()
        .dnssec_status("strong.test", RecordType::SOA)
        .await;
    assert!(
        forwarder.lost.load(Ordering::SeqCst) > 0,
        "the forwarder lost the first DS look-ups"
    );
    assert_eq!(status, DnssecStatus::Secure);
    net.shutdown().await;
}
