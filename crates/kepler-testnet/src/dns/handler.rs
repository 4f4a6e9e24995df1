//! The hickory-server request handler in front of the zones.
//!
//! hickory's catalog would send a DS question to the child zone when both
//! sides of a cut are hosted; this handler routes it to the parent instead.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use hickory_proto::op::{Edns, Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RecordType};
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;

use super::Zones;
use super::zone::Answer;

/// Answers every question from the fixture zones, after `latency`.
pub struct Handler {
    zones: Zones,
    latency: Duration,
}

impl Handler {
    pub fn new(zones: Zones, latency: Duration) -> Handler {
        Handler { zones, latency }
    }

    /// What to answer: the zone data, or an error code.
    fn decide(&self, request: &Request, dnssec: bool) -> Result<Answer, ResponseCode> {
        if request.metadata.message_type != MessageType::Query
            || request.metadata.op_code != OpCode::Query
        {
            return Err(ResponseCode::NotImp);
        }
        let info = request.request_info().map_err(|_| ResponseCode::FormErr)?;
        let query = info.query;
        if query.query_class() != DNSClass::IN {
            return Err(ResponseCode::Refused);
        }
        let qtype = query.query_type();
        if matches!(qtype, RecordType::AXFR | RecordType::IXFR | RecordType::ANY) {
            return Err(ResponseCode::NotImp);
        }
        let qname = Name::from(query.name().clone());
        self.zones
            .answer(&qname, qtype, dnssec)
            .ok_or(ResponseCode::Refused)
    }

    async fn respond<R: ResponseHandler>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        let dnssec = request.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok);
        let response_edns = request.edns.as_ref().map(|req| {
            let mut edns = Edns::new();
            edns.set_dnssec_ok(req.flags().dnssec_ok);
            edns.set_max_payload(req.max_payload().max(512));
            edns
        });
        let mut builder = MessageResponseBuilder::from_message_request(request);
        if let Some(edns) = &response_edns {
            builder.edns(edns);
        }

        let sent = match self.decide(request, dnssec) {
            Ok(answer) => {
                let mut metadata = Metadata::response_from_request(&request.metadata);
                metadata.authoritative = answer.authoritative;
                // The engine asks us with RD set, as it would ask a recursive resolver.
                metadata.recursion_available = true;
                metadata.response_code = answer.rcode;
                let response = builder.build(
                    metadata,
                    answer.answers.iter(),
                    answer.authorities.iter(),
                    std::iter::empty(),
                    std::iter::empty(),
                );
                response_handle.send_response(response).await
            }
            Err(code) => {
                let response = builder.error_msg(&request.metadata, code);
                response_handle.send_response(response).await
            }
        };
        sent.unwrap_or_else(|error| {
            tracing::debug!(%error, "could not send a DNS response");
            let mut metadata = Metadata::response_from_request(&request.metadata);
            metadata.response_code = ResponseCode::ServFail;
            ResponseInfo::from(Header {
                metadata,
                counts: HeaderCounts::default(),
            })
        })
    }
}

// hickory declares this trait with `#[async_trait]`; this is that expansion
// written out, so the crate needs no proc-macro dependency for one method.
impl RequestHandler for Handler {
    fn handle_request<'life0, 'life1, 'async_trait, R, T>(
        &'life0 self,
        request: &'life1 Request,
        response_handle: R,
    ) -> Pin<Box<dyn Future<Output = ResponseInfo> + Send + 'async_trait>>
    where
        R: 'async_trait + ResponseHandler,
        T: 'async_trait + Time,
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.respond(request, response_handle))
    }
}
