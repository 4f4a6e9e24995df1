//! DNS and HTTPS as tables, for the mail area's unit tests.

use std::collections::HashMap;

use futures::future::BoxFuture;

use super::{MailDns, PolicyResponse, PolicySource};
use crate::net::{LookupError, MxRecord};

/// DNS as a table; every name not listed is NXDOMAIN.
#[derive(Debug, Default)]
pub struct FakeDns {
    pub txt: HashMap<String, Result<Vec<String>, LookupError>>,
    pub addresses: HashMap<String, Result<usize, LookupError>>,
    pub mx: HashMap<String, Result<Vec<MxRecord>, LookupError>>,
}

impl FakeDns {
    /// TXT records as (name, text) pairs; a name may appear several times.
    pub fn new(records: &[(&str, &str)]) -> FakeDns {
        let mut dns = FakeDns::default();
        for (name, text) in records {
            dns.add_txt(name, text);
        }
        dns
    }

    pub fn add_txt(&mut self, name: &str, text: &str) {
        if let Ok(list) = self
            .txt
            .entry(name.to_owned())
            .or_insert_with(|| Ok(vec![]))
        {
            list.push(text.to_owned());
        }
    }

    pub fn with_addresses(mut self, name: &str, answer: Result<usize, LookupError>) -> FakeDns {
        self.addresses.insert(name.to_owned(), answer);
        self
    }

    /// MX hosts by name (preference 10 each); `Err` for a void or failed answer.
    pub fn with_mx(mut self, name: &str, answer: Result<Vec<String>, LookupError>) -> FakeDns {
        let records = answer.map(|hosts| {
            hosts
                .into_iter()
                .map(|exchange| MxRecord {
                    preference: 10,
                    exchange,
                })
                .collect()
        });
        self.mx.insert(name.to_owned(), records);
        self
    }

    pub fn with_mx_records(mut self, name: &str, records: Vec<MxRecord>) -> FakeDns {
        self.mx.insert(name.to_owned(), Ok(records));
        self
    }
}

impl MailDns for FakeDns {
    fn txt<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<String>, LookupError>> {
        let answer = self
            .txt
            .get(name)
            .cloned()
            .unwrap_or(Err(LookupError::NxDomain));
        Box::pin(async move { answer })
    }
    fn addresses<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<usize, LookupError>> {
        let answer = self
            .addresses
            .get(name)
            .cloned()
            .unwrap_or(Err(LookupError::NxDomain));
        Box::pin(async move { answer })
    }
    fn mx<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<MxRecord>, LookupError>> {
        let answer = self
            .mx
            .get(name)
            .cloned()
            .unwrap_or(Err(LookupError::NxDomain));
        Box::pin(async move { answer })
    }
}

/// HTTPS as a table of URL → response; anything else fails to connect.
#[derive(Debug, Default)]
pub struct FakeWeb {
    pub pages: HashMap<String, PolicyResponse>,
}

impl FakeWeb {
    pub fn with_policy(mut self, url: &str, body: &str) -> FakeWeb {
        let response = PolicyResponse {
            status: 200,
            content_type: Some("text/plain".into()),
            body: body.as_bytes().to_vec(),
        };
        self.pages.insert(url.to_owned(), response);
        self
    }
}

impl PolicySource for FakeWeb {
    fn get<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<PolicyResponse, String>> {
        let answer = self
            .pages
            .get(url)
            .cloned()
            .ok_or_else(|| format!("cannot connect for {url}"));
        Box::pin(async move { answer })
    }
}
