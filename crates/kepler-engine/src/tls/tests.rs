//! Scoring from hand-made evidence (table-driven), and the probe against real
//! local servers on 127.0.0.1: rustls with an rcgen CA, a fake TLS 1.0
//! responder, a silent server, a garbage server, and nothing at all.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use chrono::{DateTime, Utc};
use kepler_core::{CheckStatus, GradeCap};

use super::*;

fn localhost() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 443)
}

mod scoring {
    use super::*;

    fn handshake(version: u16, suite: u16) -> Handshake {
        Handshake {
            addr: localhost(),
            version,
            cipher_suite: suite,
            key_exchange_group: Some("X25519".to_owned()),
            alpn: Some("h2".to_owned()),
        }
    }

    fn answer(offered: u16, answer: ServerAnswer) -> HelloProbe {
        HelloProbe {
            offered,
            outcome: Ok(answer),
        }
    }

    fn protocol_alert(offered: u16) -> HelloProbe {
        answer(
            offered,
            ServerAnswer::Alert {
                level: 2,
                description: 70,
            },
        )
    }

    fn hello(offered: u16, version: u16, cipher_suite: u16) -> HelloProbe {
        answer(
            offered,
            ServerAnswer::ServerHello {
                version,
                cipher_suite,
            },
        )
    }

    fn date(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("test date")
            .with_timezone(&Utc)
    }

    /// A server doing everything right.
    fn good() -> TlsEvidence {
        TlsEvidence {
            domain: "strong.test".to_owned(),
            port: 443,
            addresses: vec![localhost().ip()],
            main: Ok(handshake(0x0304, 0x1301)),
            tls13_only: Ok(handshake(0x0304, 0x1301)),
            tls12_only: Ok(handshake(0x0303, 0xc02b)),
            certificate: Some(CertificateEvidence {
                verdict: CertVerdict::Trusted,
                verifier_error: None,
                chain: vec![Ok(CertSummary {
                    subject: "CN=strong.test".to_owned(),
                    issuer: "CN=Kepler Test CA".to_owned(),
                    not_before: date("2025-01-01T00:00:00Z"),
                    not_after: date("2027-01-01T00:00:00Z"),
                    key: KeyInfo {
                        kind: KeyKind::Ecdsa,
                        bits: 256,
                    },
                    signature_algorithm: "ecdsa-with-SHA256".to_owned(),
                    dns_names: vec!["strong.test".to_owned()],
                })],
                name_matches: Some(true),
                days_left: Some(200),
            }),
            tls10: protocol_alert(0x0301),
            tls11: protocol_alert(0x0302),
            tls12_typical: hello(0x0303, 0x0303, 0xc02b),
            tls12_weak_only: answer(
                0x0303,
                ServerAnswer::Alert {
                    level: 2,
                    description: 40,
                },
            ),
        }
    }

    fn refused() -> ProbeFailure {
        let attempt = ConnectAttempt {
            addr: localhost(),
            error: "Connection refused".to_owned(),
            timed_out: false,
        };
        ProbeFailure::Connect {
            attempts: vec![attempt],
        }
    }

    fn handshake_failed() -> ProbeFailure {
        ProbeFailure::Handshake {
            addr: Some(localhost()),
            error: "received fatal alert: ProtocolVersion".to_owned(),
        }
    }

    fn cert(e: &mut TlsEvidence) -> &mut CertificateEvidence {
        e.certificate.as_mut().expect("good() has a certificate")
    }

    fn leaf(e: &mut TlsEvidence) -> &mut CertSummary {
        match cert(e).chain.first_mut() {
            Some(Ok(l)) => l,
            _ => panic!("good() has a leaf"),
        }
    }

    struct Case {
        name: &'static str,
        change: fn(&mut TlsEvidence),
        score: Option<u32>,
        caps: Vec<GradeCap>,
        /// Checks whose status must be as given.
        statuses: Vec<(&'static str, CheckStatus)>,
    }

    fn check(case: Case) {
        let mut e = good();
        (case.change)(&mut e);
        let (category, caps) = score(&e);
        crate::model::assert_every_check_recommends(&category);
        assert_eq!(
            category.score, case.score,
            "{}: {:#?}",
            case.name, category.checks
        );
        assert_eq!(caps, case.caps, "{}", case.name);
        assert_eq!(category.weight, 30);
        for (id, status) in &case.statuses {
            let found = category.checks.iter().find(|c| c.id == *id);
            assert_eq!(
                found.map(|c| c.status),
                Some(*status),
                "{}: check {id} in {:#?}",
                case.name,
                category.checks
            );
        }
        if let Some(score) = category.score {
            // Every point is explained: the score is 100 plus the listed points.
            let sum: i32 = category.checks.iter().map(|c| c.points).sum();
            assert_eq!(
                START + sum,
                score as i32,
                "{}: points do not add up",
                case.name
            );
        }
        let mut ids: Vec<&str> = category.checks.iter().map(|c| c.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(
            ids.len(),
            category.checks.len(),
            "{}: duplicate check ids",
            case.name
        );
    }

    use CheckStatus::{Error, Fail, Info, Pass, Warn};

    #[test]
    fn score_table() {
        let cases = vec![
            Case {
                name: "everything right",
                change: |_| {},
                score: Some(100),
                caps: vec![],
                statuses: vec![
                    ("tls-https", Pass),
                    ("tls-certificate", Pass),
                    ("tls-expiry", Pass),
                    ("tls-key", Pass),
                    ("tls-1.3", Pass),
                    ("tls-1.2", Info),
                    ("tls-legacy-protocols", Pass),
                    ("tls-forward-secrecy", Pass),
                    ("tls-aead", Pass),
                    ("tls-weak-suites", Info),
                    ("tls-alpn-h2", Info),
                ],
            },
            Case {
                name: "expires in 20 days",
                change: |e| cert(e).days_left = Some(20),
                score: Some(95),
                caps: vec![],
                statuses: vec![("tls-expiry", Warn)],
            },
            Case {
                name: "expires in 13 days",
                change: |e| cert(e).days_left = Some(13),
                score: Some(85),
                caps: vec![],
                statuses: vec![("tls-expiry", Warn)],
            },
            Case {
                name: "expires in exactly 30 days",
                change: |e| cert(e).days_left = Some(30),
                score: Some(100),
                caps: vec![],
                statuses: vec![("tls-expiry", Pass)],
            },
            Case {
                name: "no TLS 1.3",
                change: |e| {
                    e.tls13_only = Err(handshake_failed());
                    e.main = Ok(handshake(0x0303, 0xc02b));
                },
                score: Some(95),
                caps: vec![],
                statuses: vec![("tls-1.3", Warn)],
            },
            Case {
                name: "no TLS 1.3 and expiring in 20 days",
                change: |e| {
                    e.tls13_only = Err(handshake_failed());
                    cert(e).days_left = Some(20);
                },
                score: Some(90),
                caps: vec![],
                statuses: vec![("tls-1.3", Warn), ("tls-expiry", Warn)],
            },
            Case {
                name: "TLS 1.0 accepted",
                change: |e| e.tls10 = hello(0x0301, 0x0301, 0xc013),
                score: Some(80),
                caps: vec![],
                statuses: vec![("tls-legacy-protocols", Fail)],
            },
            Case {
                name: "TLS 1.1 accepted, expiring in 13 days: fixed loss first, then the cap",
                change: |e| {
                    e.tls11 = hello(0x0302, 0x0302, 0x002f);
                    cert(e).days_left = Some(13);
                },
                score: Some(80),
                caps: vec![],
                statuses: vec![("tls-legacy-protocols", Fail), ("tls-expiry", Warn)],
            },
            Case {
                name: "many losses already below the cap",
                change: |e| {
                    e.tls10 = hello(0x0301, 0x0301, 0xc013);
                    e.tls13_only = Err(handshake_failed());
                    cert(e).days_left = Some(5);
                },
                score: Some(80),
                caps: vec![],
                statuses: vec![("tls-legacy-protocols", Fail), ("tls-1.3", Warn)],
            },
            Case {
                name: "a TLS 1.0 answer with a higher version is a refusal",
                change: |e| e.tls10 = hello(0x0301, 0x0303, 0xc02f),
                score: Some(100),
                caps: vec![],
                statuses: vec![("tls-legacy-protocols", Pass)],
            },
            Case {
                name: "silence after connecting counts as a refusal",
                change: |e| {
                    e.tls10.outcome = Err(ProbeFailure::TimedOut {
                        addr: Some(localhost()),
                    })
                },
                score: Some(100),
                caps: vec![],
                statuses: vec![("tls-legacy-protocols", Pass)],
            },
            Case {
                name: "legacy probe could not connect: error, no points",
                change: |e| e.tls11.outcome = Err(refused()),
                score: Some(100),
                caps: vec![],
                statuses: vec![("tls-legacy-protocols", Error)],
            },
            Case {
                name: "browser-like TLS 1.2 client gets RSA key exchange",
                change: |e| e.tls12_typical = hello(0x0303, 0x0303, 0x009c),
                score: Some(80),
                caps: vec![],
                statuses: vec![("tls-forward-secrecy", Fail), ("tls-aead", Pass)],
            },
            Case {
                name: "browser-like TLS 1.2 client gets CBC",
                change: |e| e.tls12_typical = hello(0x0303, 0x0303, 0xc013),
                score: Some(80),
                caps: vec![],
                statuses: vec![("tls-forward-secrecy", Pass), ("tls-aead", Fail)],
            },
            Case {
                name: "browser-like TLS 1.2 client gets RSA + CBC and TLS 1.0 is on",
                change: |e| {
                    e.tls12_typical = hello(0x0303, 0x0303, 0x002f);
                    e.tls10 = hello(0x0301, 0x0301, 0x002f);
                },
                score: Some(80),
                caps: vec![],
                statuses: vec![
                    ("tls-forward-secrecy", Fail),
                    ("tls-aead", Fail),
                    ("tls-legacy-protocols", Fail),
                ],
            },
            Case {
                name: "TLS 1.3 only: TLS 1.2 refused everywhere",
                change: |e| {
                    e.tls12_only = Err(handshake_failed());
                    e.tls12_typical = protocol_alert(0x0303);
                },
                score: Some(100),
                caps: vec![],
                statuses: vec![
                    ("tls-forward-secrecy", Pass),
                    ("tls-aead", Pass),
                    ("tls-1.2", Info),
                ],
            },
            Case {
                name: "typical probe lost: the rustls TLS 1.2 suite stands in",
                change: |e| e.tls12_typical.outcome = Err(ProbeFailure::TimedOut { addr: None }),
                score: Some(100),
                caps: vec![],
                statuses: vec![("tls-forward-secrecy", Pass), ("tls-aead", Pass)],
            },
            Case {
                name: "nothing known about TLS 1.2 clients: error, no points",
                change: |e| {
                    e.tls12_typical.outcome = Err(ProbeFailure::TimedOut { addr: None });
                    e.tls12_only = Err(ProbeFailure::TimedOut {
                        addr: Some(localhost()),
                    });
                },
                score: Some(100),
                caps: vec![],
                statuses: vec![
                    ("tls-forward-secrecy", Error),
                    ("tls-aead", Error),
                    ("tls-1.2", Error),
                ],
            },
            Case {
                name: "weak suites served too: information only",
                change: |e| e.tls12_weak_only = hello(0x0303, 0x0303, 0x002f),
                score: Some(100),
                caps: vec![],
                statuses: vec![("tls-weak-suites", Info)],
            },
            Case {
                name: "RSA 1024",
                change: |e| {
                    leaf(e).key = KeyInfo {
                        kind: KeyKind::Rsa,
                        bits: 1024,
                    }
                },
                score: Some(80),
                caps: vec![],
                statuses: vec![("tls-key", Fail)],
            },
            Case {
                name: "RSA 2048",
                change: |e| {
                    leaf(e).key = KeyInfo {
                        kind: KeyKind::Rsa,
                        bits: 2048,
                    }
                },
                score: Some(100),
                caps: vec![],
                statuses: vec![("tls-key", Pass)],
            },
            Case {
                name: "Ed25519",
                change: |e| {
                    leaf(e).key = KeyInfo {
                        kind: KeyKind::Ed25519,
                        bits: 256,
                    }
                },
                score: Some(100),
                caps: vec![],
                statuses: vec![("tls-key", Pass)],
            },
            Case {
                name: "a key type Kepler does not rate: information only",
                change: |e| {
                    leaf(e).key = KeyInfo {
                        kind: KeyKind::Other("1.2.840.10040.4.1.99".into()),
                        bits: 0,
                    }
                },
                score: Some(100),
                caps: vec![],
                statuses: vec![("tls-key", Info)],
            },
            Case {
                name: "an unknown TLS 1.2 suite: information only",
                change: |e| e.tls12_typical = hello(0x0303, 0x0303, 0x1234),
                score: Some(100),
                caps: vec![],
                statuses: vec![("tls-forward-secrecy", Info), ("tls-aead", Info)],
            },
            Case {
                name: "untrusted issuer",
                change: |e| cert(e).verdict = CertVerdict::UntrustedIssuer,
                score: Some(0),
                caps: vec![GradeCap::BadCertificate],
                statuses: vec![("tls-certificate", Fail), ("tls-1.3", Pass)],
            },
            Case {
                name: "name mismatch with other losses",
                change: |e| {
                    cert(e).verdict = CertVerdict::NameMismatch;
                    cert(e).days_left = Some(20);
                    e.tls10 = hello(0x0301, 0x0301, 0xc013);
                },
                score: Some(0),
                caps: vec![GradeCap::BadCertificate],
                statuses: vec![("tls-certificate", Fail), ("tls-legacy-protocols", Fail)],
            },
            Case {
                name: "expired",
                change: |e| {
                    cert(e).verdict = CertVerdict::Expired;
                    cert(e).days_left = Some(-3);
                },
                score: Some(0),
                caps: vec![GradeCap::BadCertificate],
                statuses: vec![("tls-certificate", Fail), ("tls-expiry", Fail)],
            },
            Case {
                name: "dates say expired even though the verifier said trusted",
                change: |e| cert(e).days_left = Some(-1),
                score: Some(0),
                caps: vec![GradeCap::BadCertificate],
                statuses: vec![("tls-certificate", Fail)],
            },
            Case {
                name: "not yet valid",
                change: |e| cert(e).verdict = CertVerdict::NotYetValid,
                score: Some(0),
                caps: vec![GradeCap::BadCertificate],
                statuses: vec![("tls-certificate", Fail)],
            },
            Case {
                name: "nothing listening",
                change: |e| {
                    e.main = Err(refused());
                    e.tls13_only = Err(refused());
                    e.tls12_only = Err(refused());
                    e.certificate = None;
                },
                score: Some(0),
                caps: vec![GradeCap::NoHttps],
                statuses: vec![("tls-https", Fail)],
            },
            Case {
                name: "no addresses",
                change: |e| {
                    e.main = Err(ProbeFailure::NoAddresses);
                    e.tls13_only = Err(ProbeFailure::NoAddresses);
                    e.tls12_only = Err(ProbeFailure::NoAddresses);
                },
                score: Some(0),
                caps: vec![GradeCap::NoHttps],
                statuses: vec![("tls-https", Fail)],
            },
            Case {
                name: "speaks only TLS 1.0: no working HTTPS, legacy shown",
                change: |e| {
                    e.main = Err(handshake_failed());
                    e.tls13_only = Err(handshake_failed());
                    e.tls12_only = Err(handshake_failed());
                    e.tls10 = hello(0x0301, 0x0301, 0x002f);
                },
                score: Some(0),
                caps: vec![GradeCap::NoHttps],
                statuses: vec![("tls-https", Fail), ("tls-legacy-protocols", Fail)],
            },
            Case {
                name: "only the TLS 1.2 handshake got through: HTTPS works",
                change: |e| {
                    e.main = Err(ProbeFailure::TimedOut {
                        addr: Some(localhost()),
                    });
                    e.tls13_only = Err(handshake_failed());
                },
                score: Some(95),
                caps: vec![],
                statuses: vec![("tls-https", Pass), ("tls-1.3", Warn)],
            },
            Case {
                name: "timed out: could not look, category unmeasured",
                change: |e| {
                    e.main = Err(ProbeFailure::TimedOut {
                        addr: Some(localhost()),
                    });
                    e.tls13_only = Err(ProbeFailure::TimedOut {
                        addr: Some(localhost()),
                    });
                    e.tls12_only = Err(ProbeFailure::TimedOut {
                        addr: Some(localhost()),
                    });
                },
                score: None,
                caps: vec![],
                statuses: vec![("tls-https", Error)],
            },
        ];
        for case in cases {
            check(case);
        }
    }

    #[test]
    fn evidence_says_what_was_seen() {
        let mut e = good();
        e.tls10 = hello(0x0301, 0x0301, 0xc013);
        let (category, _) = score(&e);
        let legacy = category
            .checks
            .iter()
            .find(|c| c.id == "tls-legacy-protocols")
            .expect("listed");
        assert!(
            legacy
                .evidence
                .contains("TLS 1.0 accepted: ServerHello version 0x0301 (TLS 1.0), suite 0xc013"),
            "{}",
            legacy.evidence
        );
        assert!(
            legacy
                .evidence
                .contains("TLS 1.1 refused: fatal alert 70 (protocol_version)"),
            "{}",
            legacy.evidence
        );
        assert_eq!(legacy.points, -20);
        assert!(legacy.recommendation.contains("Disable TLS 1.0"));
    }

    #[test]
    fn statuses_distinguish_how_https_failed() {
        let mut e = good();
        e.main = Err(refused());
        e.tls13_only = Err(refused());
        e.tls12_only = Err(refused());
        assert_eq!(e.https_status(), HttpsStatus::NothingListening);
        e.main = Err(handshake_failed());
        assert_eq!(e.https_status(), HttpsStatus::HandshakeFailed);
        e.main = Err(ProbeFailure::NoAddresses);
        assert_eq!(e.https_status(), HttpsStatus::NoAddresses);
        let silent = ConnectAttempt {
            addr: localhost(),
            error: "timed out".to_owned(),
            timed_out: true,
        };
        e.main = Err(ProbeFailure::Connect {
            attempts: vec![silent],
        });
        assert_eq!(e.https_status(), HttpsStatus::Inconclusive);
        e.tls12_only = Ok(handshake(0x0303, 0xc02f));
        assert_eq!(e.https_status(), HttpsStatus::Working);
    }
}

mod live {
    use std::sync::Arc;
    use std::time::Duration;

    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use rustls::{RootCertStore, ServerConfig};
    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};
    use tokio::task::JoinHandle;
    use tokio_rustls::TlsAcceptor;

    use super::*;
    use crate::tls::hello::server_hello_record;

    const BUDGET: Duration = Duration::from_secs(5);

    struct Ca {
        issuer: Issuer<'static, KeyPair>,
        der: CertificateDer<'static>,
    }

    impl Ca {
        fn new(name: &str) -> Ca {
            let key = KeyPair::generate().expect("CA key");
            let mut params = CertificateParams::new(Vec::new()).expect("CA params");
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, name);
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            let cert = params.self_signed(&key).expect("CA certificate");
            Ca {
                der: cert.der().clone(),
                issuer: Issuer::new(params, key),
            }
        }

        fn roots(&self) -> Arc<RootCertStore> {
            let mut roots = RootCertStore::empty();
            roots.add(self.der.clone()).expect("CA is a valid anchor");
            Arc::new(roots)
        }

        /// A leaf for `name`, valid over [from, until].
        fn leaf(&self, name: &str, from: (i32, u8, u8), until: (i32, u8, u8)) -> Arc<ServerConfig> {
            let key = KeyPair::generate().expect("leaf key");
            let mut params = CertificateParams::new(vec![name.to_owned()]).expect("leaf params");
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, name);
            params.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
            params.not_after = rcgen::date_time_ymd(until.0, until.1, until.2);
            let cert = params
                .signed_by(&key, &self.issuer)
                .expect("leaf certificate");
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
            let mut config = ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone(), self.der.clone()], key)
            .expect("server config");
            config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            Arc::new(config)
        }
    }

    const VALID_FROM: (i32, u8, u8) = (2020, 1, 1);
    const VALID_UNTIL: (i32, u8, u8) = (2090, 1, 1);

    /// How the test server treats each connection.
    #[derive(Clone)]
    enum Behaviour {
        /// Plain rustls.
        Tls(Arc<ServerConfig>),
        /// rustls, but a ClientHello with legacy_version 0x0301 gets a hand-made
        /// TLS 1.0 ServerHello (like a server that still speaks TLS 1.0).
        TlsAndLegacy(Arc<ServerConfig>),
        /// rustls after a pause before reading anything.
        SlowTls(Arc<ServerConfig>, Duration),
        /// Accepts and never sends.
        Silent,
        /// Answers anything with HTTP.
        Http,
    }

    struct Server {
        port: u16,
        task: JoinHandle<()>,
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    async fn serve(behaviour: Behaviour) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let port = listener.local_addr().expect("bound").port();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(handle(stream, behaviour.clone()));
            }
        });
        Server { port, task }
    }

    async fn rustls(stream: TcpStream, config: Arc<ServerConfig>) {
        if let Ok(mut tls) = TlsAcceptor::from(config).accept(stream).await {
            let _ = tls.shutdown().await;
        }
    }

    async fn handle(mut stream: TcpStream, behaviour: Behaviour) {
        match behaviour {
            Behaviour::Tls(config) => rustls(stream, config).await,
            Behaviour::TlsAndLegacy(config) => {
                let mut head = [0u8; 11];
                let mut seen = 0;
                for _ in 0..100 {
                    seen = stream.peek(&mut head).await.unwrap_or(0);
                    if seen >= head.len() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                if seen >= head.len() && head[9..11] == [0x03, 0x01] {
                    let _ = stream.write_all(&server_hello_record(0x0301, 0xc013)).await;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                } else {
                    rustls(stream, config).await;
                }
            }
            Behaviour::SlowTls(config, pause) => {
                tokio::time::sleep(pause).await;
                rustls(stream, config).await;
            }
            Behaviour::Silent => tokio::time::sleep(Duration::from_secs(30)).await,
            Behaviour::Http => {
                let _ = stream
                    .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                    .await;
            }
        }
    }

    fn domain(name: &str) -> Domain {
        Domain::parse(name).expect("test domain")
    }

    async fn run(
        name: &str,
        port: u16,
        roots: Arc<RootCertStore>,
        budget: Duration,
    ) -> TlsEvidence {
        probe(
            &domain(name),
            &[IpAddr::V4(Ipv4Addr::LOCALHOST)],
            port,
            roots,
            budget,
        )
        .await
    }

    fn find<'a>(checks: &'a [kepler_core::Check], id: &str) -> &'a kepler_core::Check {
        checks
            .iter()
            .find(|c| c.id == id)
            .unwrap_or_else(|| panic!("no check {id} in {checks:#?}"))
    }

    #[tokio::test]
    async fn trusted_server_passes_everything() {
        let ca = Ca::new("Kepler Test CA");
        let server = serve(Behaviour::Tls(ca.leaf(
            "strong.test",
            VALID_FROM,
            VALID_UNTIL,
        )))
        .await;
        let e = run("strong.test", server.port, ca.roots(), BUDGET).await;

        assert_eq!(e.https_status(), HttpsStatus::Working);
        let main = e.main.as_ref().expect("main handshake");
        assert_eq!((main.version, main.alpn.as_deref()), (0x0304, Some("h2")));
        assert_eq!(
            main.addr,
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), server.port)
        );
        assert_eq!(e.tls13_only.as_ref().map(|h| h.version), Ok(0x0304));
        assert_eq!(e.tls12_only.as_ref().map(|h| h.version), Ok(0x0303));
        let cert = e.certificate.as_ref().expect("certificate recorded");
        assert_eq!(cert.verdict, CertVerdict::Trusted);
        assert_eq!(cert.name_matches, Some(true));
        assert_eq!(cert.chain.len(), 2);
        let leaf = cert.leaf().expect("leaf parsed");
        assert_eq!(
            leaf.key,
            KeyInfo {
                kind: KeyKind::Ecdsa,
                bits: 256
            }
        );
        assert_eq!(leaf.signature_algorithm, "ecdsa-with-SHA256");
        assert_eq!(leaf.dns_names, vec!["strong.test".to_owned()]);
        assert!(cert.days_left.is_some_and(|d| d > 20_000));
        // rustls refuses TLS 1.0/1.1 and weak-only offers; it serves the browser-like offer ECDHE+GCM.
        assert_eq!(e.tls10.accepted(), Some(false), "{}", e.tls10);
        assert_eq!(e.tls11.accepted(), Some(false), "{}", e.tls11);
        assert_eq!(
            e.tls12_weak_only.accepted(),
            Some(false),
            "{}",
            e.tls12_weak_only
        );
        assert_eq!(
            e.tls12_typical.accepted_suite(),
            Some(0xc02b),
            "{}",
            e.tls12_typical
        );

        let (category, caps) = score(&e);
        crate::model::assert_every_check_recommends(&category);
        assert_eq!(category.score, Some(100), "{:#?}", category.checks);
        assert!(caps.is_empty());
        for id in [
            "tls-https",
            "tls-certificate",
            "tls-expiry",
            "tls-key",
            "tls-1.3",
            "tls-legacy-protocols",
        ] {
            assert_eq!(find(&category.checks, id).status, CheckStatus::Pass, "{id}");
        }
    }

    #[tokio::test]
    async fn wrong_name_is_a_bad_certificate() {
        let ca = Ca::new("Kepler Test CA");
        let server = serve(Behaviour::Tls(ca.leaf(
            "other.test",
            VALID_FROM,
            VALID_UNTIL,
        )))
        .await;
        let e = run("strong.test", server.port, ca.roots(), BUDGET).await;

        let cert = e.certificate.as_ref().expect("certificate recorded");
        assert_eq!(cert.verdict, CertVerdict::NameMismatch);
        assert_eq!(cert.name_matches, Some(false));
        // The handshake still completed, so version and suite are known.
        assert_eq!(e.main.as_ref().map(|h| h.version), Ok(0x0304));
        let (category, caps) = score(&e);
        crate::model::assert_every_check_recommends(&category);
        assert_eq!(
            (category.score, caps),
            (Some(0), vec![GradeCap::BadCertificate])
        );
        let check = find(&category.checks, "tls-certificate");
        assert!(
            check.evidence.contains("not valid for this name"),
            "{}",
            check.evidence
        );
        assert!(check.evidence.contains("other.test"), "{}", check.evidence);
    }

    #[tokio::test]
    async fn expired_leaf_is_a_bad_certificate() {
        let ca = Ca::new("Kepler Test CA");
        let server = serve(Behaviour::Tls(ca.leaf(
            "expired.test",
            (2020, 1, 1),
            (2021, 1, 1),
        )))
        .await;
        let e = run("expired.test", server.port, ca.roots(), BUDGET).await;

        let cert = e.certificate.as_ref().expect("certificate recorded");
        assert_eq!(cert.verdict, CertVerdict::Expired);
        assert!(cert.days_left.is_some_and(|d| d < -1000));
        let (category, caps) = score(&e);
        crate::model::assert_every_check_recommends(&category);
        assert_eq!(
            (category.score, caps),
            (Some(0), vec![GradeCap::BadCertificate])
        );
        let certificate = find(&category.checks, "tls-certificate");
        assert!(
            certificate.evidence.starts_with("certificate expired"),
            "{}",
            certificate.evidence
        );
        let expiry = find(&category.checks, "tls-expiry");
        assert_eq!(expiry.status, CheckStatus::Fail);
        assert!(expiry.evidence.contains("expired"), "{}", expiry.evidence);
    }

    #[tokio::test]
    async fn unknown_ca_is_a_bad_certificate() {
        let ca = Ca::new("Kepler Test CA");
        let stranger = Ca::new("Someone Else");
        let server = serve(Behaviour::Tls(ca.leaf(
            "strong.test",
            VALID_FROM,
            VALID_UNTIL,
        )))
        .await;
        let e = run("strong.test", server.port, stranger.roots(), BUDGET).await;
        assert_eq!(
            e.certificate.as_ref().map(|c| c.verdict.clone()),
            Some(CertVerdict::UntrustedIssuer)
        );
        // With no anchors at all the chain is just as untrusted, and nothing panics.
        let e = run(
            "strong.test",
            server.port,
            Arc::new(RootCertStore::empty()),
            BUDGET,
        )
        .await;
        assert_eq!(
            e.certificate.as_ref().map(|c| c.verdict.clone()),
            Some(CertVerdict::UntrustedIssuer)
        );
        assert_eq!(score(&e).1, vec![GradeCap::BadCertificate]);
    }

    #[tokio::test]
    async fn nothing_listening_is_no_https() {
        let port = {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            listener.local_addr().expect("bound").port()
        };
        let ca = Ca::new("Kepler Test CA");
        let e = run("down.test", port, ca.roots(), BUDGET).await;
        assert_eq!(
            e.https_status(),
            HttpsStatus::NothingListening,
            "{:?}",
            e.main
        );
        assert!(e.certificate.is_none());
        let (category, caps) = score(&e);
        crate::model::assert_every_check_recommends(&category);
        assert_eq!((category.score, caps), (Some(0), vec![GradeCap::NoHttps]));
        let https = find(&category.checks, "tls-https");
        assert!(
            https.evidence.starts_with("nothing accepted a connection"),
            "{}",
            https.evidence
        );

        let e = probe(&domain("down.test"), &[], 443, ca.roots(), BUDGET).await;
        assert_eq!(e.https_status(), HttpsStatus::NoAddresses);
        assert_eq!(score(&e).1, vec![GradeCap::NoHttps]);
    }

    #[tokio::test]
    async fn a_non_tls_server_is_no_https() {
        let server = serve(Behaviour::Http).await;
        let e = run("weak.test", server.port, Ca::new("CA").roots(), BUDGET).await;
        assert_eq!(
            e.https_status(),
            HttpsStatus::HandshakeFailed,
            "{:?}",
            e.main
        );
        assert!(
            matches!(
                e.tls10.outcome,
                Ok(ServerAnswer::Unrecognised(_)) | Ok(ServerAnswer::Closed { .. })
            ),
            "{}",
            e.tls10
        );
        assert_eq!(score(&e).1, vec![GradeCap::NoHttps]);
    }

    #[tokio::test]
    async fn tls10_still_accepted_caps_at_the_b_band() {
        let ca = Ca::new("Kepler Test CA");
        let server = serve(Behaviour::TlsAndLegacy(ca.leaf(
            "mixed.test",
            VALID_FROM,
            VALID_UNTIL,
        )))
        .await;
        let e = run("mixed.test", server.port, ca.roots(), BUDGET).await;

        assert_eq!(e.tls10.accepted_suite(), Some(0xc013), "{}", e.tls10);
        assert_eq!(e.tls11.accepted(), Some(false), "{}", e.tls11);
        let (category, caps) = score(&e);
        crate::model::assert_every_check_recommends(&category);
        assert!(caps.is_empty());
        assert_eq!(
            category.score,
            Some(B_BAND_CEILING as u32),
            "{:#?}",
            category.checks
        );
        assert_eq!(kepler_core::record::grade_for(B_BAND_CEILING as u32), "B-");
        let legacy = find(&category.checks, "tls-legacy-protocols");
        assert_eq!(legacy.status, CheckStatus::Fail);
        assert!(
            legacy
                .evidence
                .contains("TLS 1.0 accepted: ServerHello version 0x0301"),
            "{}",
            legacy.evidence
        );
    }

    #[tokio::test]
    async fn silent_server_stops_at_the_budget_and_is_inconclusive() {
        let server = serve(Behaviour::Silent).await;
        let budget = Duration::from_millis(600);
        let started = std::time::Instant::now();
        let e = run("slow.test", server.port, Ca::new("CA").roots(), budget).await;
        let took = started.elapsed();
        assert!(
            took >= budget && took < budget + Duration::from_millis(500),
            "took {took:?}"
        );
        assert_eq!(e.https_status(), HttpsStatus::Inconclusive);
        assert!(
            matches!(e.main, Err(ProbeFailure::TimedOut { addr: Some(_) })),
            "{:?}",
            e.main
        );
        let (category, caps) = score(&e);
        crate::model::assert_every_check_recommends(&category);
        assert_eq!(category.score, None);
        assert!(caps.is_empty());
        assert_eq!(
            find(&category.checks, "tls-https").status,
            CheckStatus::Error
        );
    }

    #[tokio::test]
    async fn sub_probes_run_concurrently() {
        // Every connection waits 400 ms before the server reads: seven probes one
        // after another would need 2.8 s.
        let ca = Ca::new("Kepler Test CA");
        let pause = Duration::from_millis(400);
        let server = serve(Behaviour::SlowTls(
            ca.leaf("strong.test", VALID_FROM, VALID_UNTIL),
            pause,
        ))
        .await;
        let started = std::time::Instant::now();
        let e = run("strong.test", server.port, ca.roots(), BUDGET).await;
        let took = started.elapsed();
        assert_eq!(e.https_status(), HttpsStatus::Working);
        assert!(took < Duration::from_millis(1500), "took {took:?}");
    }

    #[tokio::test]
    async fn an_address_that_refuses_is_skipped() {
        let ca = Ca::new("Kepler Test CA");
        let server = serve(Behaviour::Tls(ca.leaf(
            "strong.test",
            VALID_FROM,
            VALID_UNTIL,
        )))
        .await;
        // 127.0.0.2 is loopback on Linux but nothing listens there on this port.
        let addrs = [
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
            IpAddr::V4(Ipv4Addr::LOCALHOST),
        ];
        let e = probe(
            &domain("strong.test"),
            &addrs,
            server.port,
            ca.roots(),
            BUDGET,
        )
        .await;
        let main = e.main.as_ref().expect("second address works");
        assert_eq!(main.addr.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
}
