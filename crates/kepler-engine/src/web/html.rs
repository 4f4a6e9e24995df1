//! The few facts the Observatory reads from a page's HTML: script and stylesheet
//! tags (for subresource integrity) and `<meta>` policies.

use scraper::{Html, Selector};
use serde::{Deserialize, Serialize};

/// Tags kept per kind, so a hostile page cannot inflate the evidence.
const MAX_TAGS: usize = 500;
/// Longest attribute value kept.
const MAX_ATTR: usize = 2048;

/// What the page's markup declares.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HtmlFacts {
    /// Every `<script>`, in document order; inline ones have no `src`.
    pub scripts: Vec<ScriptTag>,
    /// `<link rel=stylesheet>` tags (recorded for the owner; the Observatory
    /// scores scripts only).
    pub stylesheets: Vec<StylesheetTag>,
    /// `<meta http-equiv="Content-Security-Policy" content=…>` values.
    pub meta_csp: Vec<String>,
    /// The last `<meta name="referrer" content=…>`.
    pub meta_referrer: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptTag {
    pub src: Option<String>,
    pub integrity: Option<String>,
    pub crossorigin: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StylesheetTag {
    pub href: String,
    pub integrity: Option<String>,
}

impl HtmlFacts {
    /// Extracts the facts; the HTML5 parser accepts any input.
    pub fn from_html(text: &str) -> HtmlFacts {
        let doc = Html::parse_document(text);
        let mut facts = HtmlFacts::default();
        for el in doc.select(&selector("script")).take(MAX_TAGS) {
            let v = el.value();
            facts.scripts.push(ScriptTag {
                // An empty src is no src (the DOM property is falsy).
                src: attr(v.attr("src")).filter(|s| !s.is_empty()),
                integrity: attr(v.attr("integrity")).filter(|s| !s.trim().is_empty()),
                crossorigin: attr(v.attr("crossorigin")),
            });
        }
        for el in doc.select(&selector("link[rel][href]")).take(MAX_TAGS) {
            let v = el.value();
            let is_stylesheet = v.attr("rel").is_some_and(|r| {
                r.split_ascii_whitespace()
                    .any(|t| t.eq_ignore_ascii_case("stylesheet"))
            });
            if let (true, Some(href)) = (is_stylesheet, attr(v.attr("href"))) {
                facts.stylesheets.push(StylesheetTag {
                    href,
                    integrity: attr(v.attr("integrity")),
                });
            }
        }
        for el in doc.select(&selector("meta")) {
            let v = el.value();
            let content = v.attr("content");
            let is_referrer = v
                .attr("name")
                .is_some_and(|n| n.trim().eq_ignore_ascii_case("referrer"));
            if let (Some(equiv), Some(content)) = (v.attr("http-equiv"), content) {
                if equiv.trim().eq_ignore_ascii_case("content-security-policy")
                    && facts.meta_csp.len() < MAX_TAGS
                {
                    facts.meta_csp.push(clip(content));
                }
            } else if let (true, Some(content)) = (is_referrer, content) {
                // Not http-equiv, but the Observatory treats it as one.
                facts.meta_referrer = Some(clip(content));
            }
        }
        facts
    }
}

fn selector(css: &str) -> Selector {
    Selector::parse(css).expect("static selectors are valid CSS")
}

fn attr(value: Option<&str>) -> Option<String> {
    value.map(clip)
}

fn clip(value: &str) -> String {
    if value.len() <= MAX_ATTR {
        return value.to_owned();
    }
    let mut end = MAX_ATTR;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_scripts_styles_and_meta() {
        let page = r#"<!doctype html><html><head>
            <meta http-equiv="Content-Security-Policy" content="default-src 'self'">
            <meta name="Referrer" content="origin">
            <meta name="referrer" content="no-referrer">
            <link rel="stylesheet preload" href="https://cdn.example/a.css" integrity="sha384-x">
            <link rel="icon" href="/favicon.ico">
            <script src="https://cdn.example/a.js" integrity="sha384-y" crossorigin="anonymous"></script>
            <script>inline()</script>
            <script src=""></script>
            </head><body></body></html>"#;
        let facts = HtmlFacts::from_html(page);
        assert_eq!(facts.meta_csp, vec!["default-src 'self'".to_owned()]);
        assert_eq!(facts.meta_referrer.as_deref(), Some("no-referrer"));
        assert_eq!(facts.stylesheets.len(), 1);
        assert_eq!(facts.stylesheets[0].integrity.as_deref(), Some("sha384-x"));
        assert_eq!(facts.scripts.len(), 3);
        assert_eq!(
            facts.scripts[0].src.as_deref(),
            Some("https://cdn.example/a.js")
        );
        assert_eq!(facts.scripts[0].crossorigin.as_deref(), Some("anonymous"));
        assert_eq!(facts.scripts[1].src, None);
        assert_eq!(facts.scripts[2].src, None);
    }

    #[test]
    fn garbage_is_still_parsed_without_panic() {
        let facts = HtmlFacts::from_html("\u{0}<script src=x.js><<<<meta http-equiv");
        assert_eq!(facts.scripts.len(), 1);
    }
}
