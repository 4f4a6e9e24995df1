//! SPF record syntax (RFC 7208 §4.5, §5, §6, §7 and the ABNF of §12).

use std::net::{Ipv4Addr, Ipv6Addr};

/// A mechanism's qualifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Qualifier {
    /// `+` (the default).
    Pass,
    /// `-`.
    Fail,
    /// `~`.
    SoftFail,
    /// `?`.
    Neutral,
}

impl Qualifier {
    /// As written in front of `all`.
    pub fn symbol(self) -> &'static str {
        match self {
            Qualifier::Pass => "+",
            Qualifier::Fail => "-",
            Qualifier::SoftFail => "~",
            Qualifier::Neutral => "?",
        }
    }
}

/// One mechanism; domain-specs are kept as written (macros unexpanded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mechanism {
    All,
    Include(String),
    A(Option<String>),
    Mx(Option<String>),
    Ptr(Option<String>),
    Ip4(String),
    Ip6(String),
    Exists(String),
}

impl Mechanism {
    /// Whether evaluating it queries DNS (RFC 7208 §4.6.4).
    pub fn queries_dns(&self) -> bool {
        matches!(
            self,
            Mechanism::Include(_)
                | Mechanism::A(_)
                | Mechanism::Mx(_)
                | Mechanism::Ptr(_)
                | Mechanism::Exists(_)
        )
    }
}

/// A qualified mechanism.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub qualifier: Qualifier,
    pub mechanism: Mechanism,
}

/// A parsed SPF record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SpfRecord {
    pub directives: Vec<Directive>,
    pub redirect: Option<String>,
    pub exp: Option<String>,
}

impl SpfRecord {
    /// The first `all` directive's qualifier; terms after it never match.
    pub fn all(&self) -> Option<Qualifier> {
        self.directives
            .iter()
            .find(|d| d.mechanism == Mechanism::All)
            .map(|d| d.qualifier)
    }

    /// The `redirect` target, unless an `all` mechanism makes it unreachable (§6.1).
    pub fn effective_redirect(&self) -> Option<&str> {
        if self.all().is_some() {
            None
        } else {
            self.redirect.as_deref()
        }
    }
}

/// Whether a TXT string is an SPF record: `v=spf1` then a space or the end (§4.5).
pub fn is_spf(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() >= 6
        && bytes[..6].eq_ignore_ascii_case(b"v=spf1")
        && (bytes.len() == 6 || bytes[6] == b' ')
}

/// Parses an SPF record, or says which term is wrong.
pub fn parse(text: &str) -> Result<SpfRecord, String> {
    if !is_spf(text) {
        return Err("the record does not start with \"v=spf1\"".into());
    }
    let mut record = SpfRecord::default();
    for term in text[6..].split(' ').filter(|t| !t.is_empty()) {
        if term.bytes().any(|b| !(0x21..=0x7e).contains(&b)) {
            return Err(format!(
                "term {term:?} holds a character outside printable ASCII"
            ));
        }
        let delimiter = term.find([':', '/', '=']);
        if let Some(i) = delimiter.filter(|i| term.as_bytes()[*i] == b'=') {
            modifier(&mut record, &term[..i], &term[i + 1..])
                .map_err(|why| format!("modifier {term:?}: {why}"))?;
        } else {
            let directive = directive(term).map_err(|why| format!("mechanism {term:?}: {why}"))?;
            record.directives.push(directive);
        }
    }
    Ok(record)
}

fn modifier(record: &mut SpfRecord, name: &str, value: &str) -> Result<(), String> {
    let valid_name = name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !valid_name {
        return Err("not a valid modifier name".into());
    }
    let slot = match name.to_ascii_lowercase().as_str() {
        "redirect" => &mut record.redirect,
        "exp" => &mut record.exp,
        // Unknown modifiers are ignored (§6), but their value must still be a macro-string.
        _ => return macro_string(value),
    };
    if slot.is_some() {
        return Err("appears more than once (§6)".into());
    }
    domain_spec(value)?;
    *slot = Some(value.to_owned());
    Ok(())
}

fn directive(term: &str) -> Result<Directive, String> {
    let (qualifier, rest) = match term.as_bytes()[0] {
        b'+' => (Qualifier::Pass, &term[1..]),
        b'-' => (Qualifier::Fail, &term[1..]),
        b'~' => (Qualifier::SoftFail, &term[1..]),
        b'?' => (Qualifier::Neutral, &term[1..]),
        _ => (Qualifier::Pass, term),
    };
    let split = rest.find([':', '/']).unwrap_or(rest.len());
    let (name, arg) = rest.split_at(split);
    let spec = arg.strip_prefix(':');
    let mechanism = match name.to_ascii_lowercase().as_str() {
        "all" if arg.is_empty() => Mechanism::All,
        "all" => return Err("`all` takes no argument".into()),
        "include" => Mechanism::Include(required_spec(spec)?),
        "exists" => Mechanism::Exists(required_spec(spec)?),
        "a" => Mechanism::A(spec_with_cidr(arg)?),
        "mx" => Mechanism::Mx(spec_with_cidr(arg)?),
        "ptr" => Mechanism::Ptr(match spec {
            Some(s) => Some(domain_spec(s).map(|()| s.to_owned())?),
            None if arg.is_empty() => None,
            None => return Err("`ptr` takes no CIDR length".into()),
        }),
        "ip4" => Mechanism::Ip4(ip4(spec.ok_or("needs an address")?)?),
        "ip6" => Mechanism::Ip6(ip6(spec.ok_or("needs an address")?)?),
        "" => return Err("missing mechanism name".into()),
        _ => return Err("unknown mechanism".into()),
    };
    Ok(Directive {
        qualifier,
        mechanism,
    })
}

fn required_spec(spec: Option<&str>) -> Result<String, String> {
    let spec = spec.ok_or("needs a domain")?;
    domain_spec(spec)?;
    Ok(spec.to_owned())
}

/// `[":" domain-spec] [dual-cidr-length]` of `a` and `mx`.
fn spec_with_cidr(arg: &str) -> Result<Option<String>, String> {
    let (spec, cidr) = match arg.find('/') {
        Some(i) => (&arg[..i], Some(&arg[i..])),
        None => (arg, None),
    };
    if let Some(cidr) = cidr {
        dual_cidr(cidr)?;
    }
    match spec.strip_prefix(':') {
        Some(s) => domain_spec(s).map(|()| Some(s.to_owned())),
        None if spec.is_empty() => Ok(None),
        None => Err("unexpected text after the mechanism name".into()),
    }
}

fn cidr_len(text: &str, max: u8) -> Result<(), String> {
    let ok = !text.is_empty()
        && text.len() <= 3
        && text.bytes().all(|b| b.is_ascii_digit())
        && !(text.len() > 1 && text.starts_with('0'))
        && text.parse::<u8>().is_ok_and(|n| n <= max);
    if ok {
        Ok(())
    } else {
        Err(format!("CIDR length {text:?} is not 0 to {max}"))
    }
}

/// `/n`, `//m` or `/n//m`.
fn dual_cidr(text: &str) -> Result<(), String> {
    if let Some(v6) = text.strip_prefix("//") {
        return cidr_len(v6, 128);
    }
    let rest = text.strip_prefix('/').ok_or("bad CIDR length")?;
    match rest.split_once("//") {
        Some((v4, v6)) => cidr_len(v4, 32).and_then(|()| cidr_len(v6, 128)),
        None => cidr_len(rest, 32),
    }
}

fn ip4(text: &str) -> Result<String, String> {
    let (addr, len) = text
        .split_once('/')
        .map_or((text, None), |(a, l)| (a, Some(l)));
    addr.parse::<Ipv4Addr>()
        .map_err(|_| format!("{addr:?} is not an IPv4 address"))?;
    if let Some(len) = len {
        cidr_len(len, 32)?;
    }
    Ok(text.to_owned())
}

fn ip6(text: &str) -> Result<String, String> {
    let (addr, len) = text
        .split_once('/')
        .map_or((text, None), |(a, l)| (a, Some(l)));
    addr.parse::<Ipv6Addr>()
        .map_err(|_| format!("{addr:?} is not an IPv6 address"))?;
    if let Some(len) = len {
        cidr_len(len, 128)?;
    }
    Ok(text.to_owned())
}

/// `macro-string` (§7.1): literal characters and `%{...}`, `%%`, `%_`, `%-`.
fn macro_string(text: &str) -> Result<(), String> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            i += 1;
            continue;
        }
        match bytes.get(i + 1) {
            Some(b'%' | b'_' | b'-') => i += 2,
            Some(b'{') => {
                let close = text[i..].find('}').ok_or("unterminated macro")? + i;
                macro_expand(&text[i + 2..close])?;
                i = close + 1;
            }
            _ => return Err("a lone `%` (write `%%` for a percent sign)".into()),
        }
    }
    Ok(())
}

/// The inside of `%{...}`: letter, optional digits, optional `r`, delimiters.
fn macro_expand(body: &str) -> Result<(), String> {
    let mut chars = body.chars();
    let letter = chars.next().ok_or("empty macro")?;
    if !"slodiphcrtvSLODIPHCRTV".contains(letter) {
        return Err(format!("unknown macro letter {letter:?}"));
    }
    let rest: String = chars.collect();
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    let rest = &rest[digits..];
    let rest = rest.strip_prefix(['r', 'R']).unwrap_or(rest);
    if rest.chars().all(|c| ".-+,/_=".contains(c)) {
        Ok(())
    } else {
        Err(format!("bad macro %{{{body}}}"))
    }
}

/// `domain-spec = macro-string domain-end` (§7.1). Without macros, the name must
/// end in a top label that is letters, digits and hyphens with at least one letter.
fn domain_spec(spec: &str) -> Result<(), String> {
    if spec.is_empty() {
        return Err("empty domain".into());
    }
    macro_string(spec)?;
    if spec.ends_with('}') {
        return Ok(()); // domain-end may be a macro-expand
    }
    let name = spec.strip_suffix('.').unwrap_or(spec);
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() < 2 && !spec.contains('%') {
        return Err(format!("{spec:?} is not a fully qualified domain name"));
    }
    if labels.iter().any(|l| l.is_empty() || l.len() > 63) {
        return Err(format!("{spec:?} has an empty or over-long label"));
    }
    let top = labels[labels.len() - 1];
    let top_ok = top.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && top.bytes().any(|b| b.is_ascii_alphabetic())
        && !top.starts_with('-')
        && !top.ends_with('-');
    if !top_ok {
        return Err(format!("{spec:?} does not end in a valid top-level label"));
    }
    if !spec.contains('%') && name.len() > 253 {
        return Err(format!("{spec:?} is longer than 253 characters"));
    }
    Ok(())
}

/// Expands the macros a static analysis can know: `%{d}` (the current domain)
/// and the escapes. Anything that depends on the sender (`%{i}`, `%{s}`, ...)
/// gives `None`: the term cannot be resolved ahead of a real message.
pub fn expand_static(spec: &str, domain: &str) -> Option<String> {
    if !spec.contains('%') {
        return Some(spec.trim_end_matches('.').to_ascii_lowercase());
    }
    let mut out = String::new();
    let mut rest = spec;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after
            .strip_prefix("{d}")
            .or_else(|| after.strip_prefix("{D}"))
        {
            out.push_str(domain);
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('%') {
            out.push('%');
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('_') {
            out.push(' ');
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('-') {
            out.push_str("%20");
            rest = tail;
        } else {
            return None;
        }
    }
    out.push_str(rest);
    Some(out.trim_end_matches('.').to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> SpfRecord {
        parse(text).unwrap_or_else(|e| panic!("{text:?} was refused: {e}"))
    }

    fn bad(text: &str) {
        assert!(parse(text).is_err(), "{text:?} was accepted");
    }

    #[test]
    fn recognises_spf_records() {
        for (text, spf) in [
            ("v=spf1 -all", true),
            ("v=spf1", true),
            ("V=SPF1 ~all", true),
            ("v=spf10 -all", false),
            ("v=spf1-all", false),
            ("spf1 -all", false),
            ("google-site-verification=abc", false),
            ("", false),
        ] {
            assert_eq!(is_spf(text), spf, "{text:?}");
        }
    }

    #[test]
    fn parses_every_mechanism_and_modifier() {
        let r = ok(
            "v=spf1 +a a:mail.example.com/24//64 mx mx:example.net//48 ptr ptr:example.org \
                    ip4:192.0.2.0/24 ip6:2001:db8::/32 exists:%{i}._spf.example.com include:_spf.google.com \
                    ?all redirect=_spf.example.com exp=explain.%{d} other=thing",
        );
        use Mechanism::*;
        let mechanisms: Vec<&Mechanism> = r.directives.iter().map(|d| &d.mechanism).collect();
        assert_eq!(
            mechanisms,
            [
                &A(None),
                &A(Some("mail.example.com".into())),
                &Mx(None),
                &Mx(Some("example.net".into())),
                &Ptr(None),
                &Ptr(Some("example.org".into())),
                &Ip4("192.0.2.0/24".into()),
                &Ip6("2001:db8::/32".into()),
                &Exists("%{i}._spf.example.com".into()),
                &Include("_spf.google.com".into()),
                &All,
            ]
        );
        assert_eq!(r.all(), Some(Qualifier::Neutral));
        assert_eq!(r.redirect.as_deref(), Some("_spf.example.com"));
        assert_eq!(
            r.effective_redirect(),
            None,
            "an `all` makes redirect unreachable"
        );
        assert_eq!(r.exp.as_deref(), Some("explain.%{d}"));
    }

    #[test]
    fn qualifiers_and_case() {
        let r = ok("v=spf1 -ALL");
        assert_eq!(r.all(), Some(Qualifier::Fail));
        assert_eq!(ok("v=spf1 ~all").all(), Some(Qualifier::SoftFail));
        assert_eq!(ok("v=spf1 all").all(), Some(Qualifier::Pass));
        assert_eq!(ok("v=spf1  include:a.example  -all ").directives.len(), 2);
        assert_eq!(
            ok("v=spf1 redirect=_spf.example.com").effective_redirect(),
            Some("_spf.example.com")
        );
    }

    #[test]
    fn refuses_bad_syntax() {
        bad("v=spf1 include");
        bad("v=spf1 include:");
        bad("v=spf1 ip4:300.1.1.1");
        bad("v=spf1 ip4:192.0.2.0/33");
        bad("v=spf1 ip4:192.0.2.0/024");
        bad("v=spf1 ip6:2001:db8::/129");
        bad("v=spf1 ip6:not-an-address");
        bad("v=spf1 a/33");
        bad("v=spf1 mx//129");
        bad("v=spf1 all:example.com");
        bad("v=spf1 include:localhost");
        bad("v=spf1 include:example.123");
        bad("v=spf1 foo:example.com");
        bad("v=spf1 -");
        bad("v=spf1 redirect=a.example redirect=b.example");
        bad("v=spf1 exists:%{x}.example.com");
        bad("v=spf1 include:50%.example.com");
        bad("v=spf1 1bad=modifier");
        bad("v=spf1 ip4:192.0.2.1\u{7f}");
    }

    #[test]
    fn static_macro_expansion() {
        assert_eq!(
            expand_static("_spf.Example.COM.", "x.test"),
            Some("_spf.example.com".into())
        );
        assert_eq!(expand_static("%{d}", "x.test"), Some("x.test".into()));
        assert_eq!(
            expand_static("_spf.%{d}", "x.test"),
            Some("_spf.x.test".into())
        );
        assert_eq!(expand_static("%{i}._spf.%{d}", "x.test"), None);
    }
}
