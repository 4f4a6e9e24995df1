//! Just enough of RFC 8941 (structured field values) to read COOP and COEP:
//! an Item whose bare item is a token, with any parameters. A value that is not
//! a valid Item is ignored by browsers, so it counts as invalid here.

/// The token of a structured-field Item, or `None` when the value is not a
/// valid Item or its bare item is not a token.
pub(crate) fn item_token(input: &str) -> Option<String> {
    let mut p = Parser {
        s: input.as_bytes(),
        i: 0,
    };
    p.skip_sp();
    let bare = p.bare_item()?;
    p.parameters()?;
    p.skip_sp();
    if p.i != p.s.len() {
        return None;
    }
    match bare {
        Bare::Token(t) => Some(t),
        Bare::Other => None,
    }
}

enum Bare {
    Token(String),
    Other,
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_sp(&mut self) {
        while self.peek() == Some(b' ') {
            self.i += 1;
        }
    }

    fn bare_item(&mut self) -> Option<Bare> {
        match self.peek()? {
            b'-' | b'0'..=b'9' => self.number().map(|_| Bare::Other),
            b'"' => self.string().map(|_| Bare::Other),
            b':' => self.bytes().map(|_| Bare::Other),
            b'?' => self.boolean().map(|_| Bare::Other),
            c if c.is_ascii_alphabetic() || c == b'*' => Some(Bare::Token(self.token())),
            _ => None,
        }
    }

    fn token(&mut self) -> String {
        let start = self.i;
        self.i += 1;
        while self
            .peek()
            .is_some_and(|c| is_tchar(c) || c == b':' || c == b'/')
        {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }

    fn number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        let (mut int_digits, mut frac_digits, mut seen_dot) = (0, 0, false);
        loop {
            match self.peek() {
                Some(b'0'..=b'9') if seen_dot => frac_digits += 1,
                Some(b'0'..=b'9') => int_digits += 1,
                Some(b'.') if !seen_dot && int_digits > 0 => seen_dot = true,
                _ => break,
            }
            self.i += 1;
        }
        let valid = int_digits > 0
            && if seen_dot {
                int_digits <= 12 && (1..=3).contains(&frac_digits)
            } else {
                int_digits <= 15
            };
        valid.then_some(())
    }

    fn string(&mut self) -> Option<()> {
        self.i += 1;
        loop {
            let c = self.peek()?;
            self.i += 1;
            match c {
                b'"' => return Some(()),
                b'\\' => {
                    let next = self.peek()?;
                    if next != b'"' && next != b'\\' {
                        return None;
                    }
                    self.i += 1;
                }
                0x20..=0x7e => {}
                _ => return None,
            }
        }
    }

    fn bytes(&mut self) -> Option<()> {
        self.i += 1;
        loop {
            let c = self.peek()?;
            self.i += 1;
            match c {
                b':' => return Some(()),
                c if c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=') => {}
                _ => return None,
            }
        }
    }

    fn boolean(&mut self) -> Option<()> {
        self.i += 1;
        match self.peek()? {
            b'0' | b'1' => {
                self.i += 1;
                Some(())
            }
            _ => None,
        }
    }

    fn parameters(&mut self) -> Option<()> {
        while self.peek() == Some(b';') {
            self.i += 1;
            self.skip_sp();
            self.key()?;
            if self.peek() == Some(b'=') {
                self.i += 1;
                self.bare_item()?;
            }
        }
        Some(())
    }

    fn key(&mut self) -> Option<()> {
        match self.peek()? {
            c if c.is_ascii_lowercase() || c == b'*' => self.i += 1,
            _ => return None,
        }
        while self.peek().is_some_and(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'-' | b'.' | b'*')
        }) {
            self.i += 1;
        }
        Some(())
    }
}

/// RFC 9110 `tchar`.
fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

#[cfg(test)]
mod tests {
    use super::item_token;

    #[test]
    fn items() {
        let cases: &[(&str, Option<&str>)] = &[
            ("same-origin", Some("same-origin")),
            ("  require-corp  ", Some("require-corp")),
            ("require-corp; report-to", Some("require-corp")),
            (
                "credentialless; report-to=\"coep-endpoint\"",
                Some("credentialless"),
            ),
            (
                "same-origin;report-to=\"x\";a=1;b=?0;c=:aGk=:;d=1.5;e=tok/x",
                Some("same-origin"),
            ),
            ("Require-Corp", Some("Require-Corp")),
            ("\"require-corp\"", None),
            ("require-corp; report-to=coep endpoint", None),
            ("same-origin, unsafe-none", None),
            ("same-origin; Report-To=x", None),
            ("", None),
            ("42", None),
            ("same-origin; a=1.2345", None),
            ("same-origin; a=\"unterminated", None),
            ("sáme", None),
        ];
        for (input, expected) in cases {
            assert_eq!(item_token(input).as_deref(), *expected, "{input:?}");
        }
    }
}
