//! Every Observatory result this engine can give: its name, score modifier,
//! whether the Observatory counts it as a passed test, and Kepler's own wording.

/// How a result reads to the owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The Observatory counts the test as passed.
    Pass,
    /// Passed, but there was nothing to judge (no cookies, no scripts, no HTTP).
    Neutral,
    /// The Observatory counts the test as failed.
    Fail,
}

/// One result of one test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub name: &'static str,
    pub modifier: i32,
    pub kind: Kind,
    pub description: &'static str,
    pub recommendation: &'static str,
}

impl Outcome {
    pub fn passes(&self) -> bool {
        !matches!(self.kind, Kind::Fail)
    }
}

macro_rules! outcomes {
    ($($id:ident = $name:literal, $modifier:literal, $kind:ident, $desc:literal, $rec:literal;)*) => {
        $(pub(crate) const $id: Outcome =
            Outcome { name: $name, modifier: $modifier, kind: Kind::$kind, description: $desc, recommendation: $rec };)*
        /// All results, for the documentation check.
        #[cfg(test)]
        pub(crate) const ALL: &[Outcome] = &[$($id),*];
    };
}

outcomes! {
    // content-security-policy
    CSP_DEFAULT_SRC_NONE = "csp-implemented-with-no-unsafe-default-src-none", 10, Pass,
        "CSP in force with default-src 'none' and no unsafe sources.", "Keep the policy in step with the page: add a source only when the page needs it, and watch violation reports (report-to).";
    CSP_NO_UNSAFE = "csp-implemented-with-no-unsafe", 5, Pass,
        "CSP in force without 'unsafe-inline' or 'unsafe-eval' for scripts.", "Consider default-src 'none' and allowing only what each resource type needs.";
    CSP_UNSAFE_STYLE_ONLY = "csp-implemented-with-unsafe-inline-in-style-src-only", 0, Pass,
        "CSP in force; only style-src allows unsafe or overly broad sources.", "Remove 'unsafe-inline', data: and broad sources from style-src.";
    CSP_INSECURE_PASSIVE = "csp-implemented-with-insecure-scheme-in-passive-content-only", -10, Pass,
        "CSP in force, but this HTTPS site lets images or media load over http:.", "Allow only https: sources in img-src and media-src (or default-src).";
    CSP_UNSAFE_EVAL = "csp-implemented-with-unsafe-eval", -10, Fail,
        "CSP in force, but it allows 'unsafe-eval'.", "Stop using eval() and remove 'unsafe-eval' from the policy.";
    CSP_UNSAFE_INLINE = "csp-implemented-with-unsafe-inline", -20, Fail,
        "CSP in force but unsafe: script-src allows 'unsafe-inline', data: or a broad source, or object-src/script-src are unrestricted.", "Restrict script-src and object-src (or default-src) to specific sources, without 'unsafe-inline' or data:; use nonces or hashes for inline scripts.";
    CSP_INSECURE_SCHEME = "csp-implemented-with-insecure-scheme", -20, Fail,
        "CSP in force, but this HTTPS site lets active content load over http:.", "Remove http: (and ftp:) sources from the policy.";
    CSP_DUPLICATE_DIRECTIVES = "csp-implemented-but-duplicate-directives", 0, Pass,
        "CSP in force, but report-uri or report-to appears more than once.", "Keep a single report-uri and report-to directive.";
    CSP_INVALID = "csp-header-invalid", -25, Fail,
        "The Content-Security-Policy cannot be parsed (empty or duplicate directives, or 'strict-dynamic' without a nonce or hash).", "Fix the policy's syntax; each directive once per policy.";
    CSP_NOT_IMPLEMENTED = "csp-not-implemented", -25, Fail,
        "No Content-Security-Policy is in force.", "Send a Content-Security-Policy header, starting from default-src 'none' and allowing what the site needs.";
    CSP_REPORT_ONLY = "csp-not-implemented-but-reporting-enabled", -25, Fail,
        "Only Content-Security-Policy-Report-Only is sent: violations are reported, nothing is blocked.", "Once the reports are clean, send the same policy as Content-Security-Policy.";

    // cookies
    COOKIES_ALL_GOOD_SAMESITE = "cookies-secure-with-httponly-sessions-and-samesite", 5, Pass,
        "Every cookie is Secure, session cookies are HttpOnly, and every cookie sets SameSite.", "Give every new cookie Secure, SameSite and (for sessions) HttpOnly too; prefer the __Host- prefix for session cookies.";
    COOKIES_ALL_GOOD = "cookies-secure-with-httponly-sessions", 0, Pass,
        "Every cookie is Secure and session cookies are HttpOnly, but some lack SameSite.", "Add SameSite=Lax or Strict to every cookie.";
    COOKIES_NOT_FOUND = "cookies-not-found", 0, Neutral,
        "No cookies were set.", "If the site starts setting cookies, set Secure and SameSite on each, and HttpOnly on session cookies.";
    COOKIES_NO_SECURE_HSTS = "cookies-without-secure-flag-but-protected-by-hsts", -5, Fail,
        "Some cookies lack Secure, though HSTS keeps them off plain HTTP.", "Add the Secure attribute to every cookie.";
    COOKIES_SESSION_NO_SECURE_HSTS = "cookies-session-without-secure-flag-but-protected-by-hsts", -10, Fail,
        "A session cookie lacks Secure, though HSTS keeps it off plain HTTP.", "Add the Secure attribute to session cookies.";
    COOKIES_NO_SECURE = "cookies-without-secure-flag", -20, Fail,
        "Some cookies lack Secure and can travel over plain HTTP.", "Add the Secure attribute to every cookie and deploy HSTS.";
    COOKIES_SAMESITE_INVALID = "cookies-samesite-flag-invalid", -20, Fail,
        "A cookie's SameSite is not Strict, Lax or None, or is None without Secure.", "Use SameSite=Strict or Lax (None only together with Secure).";
    COOKIES_ANTICSRF_NO_SAMESITE = "cookies-anticsrf-without-samesite-flag", -20, Fail,
        "An anti-CSRF cookie is set without SameSite.", "Set SameSite=Strict or Lax on anti-CSRF cookies.";
    COOKIES_SESSION_NO_HTTPONLY = "cookies-session-without-httponly-flag", -30, Fail,
        "A session cookie lacks HttpOnly, so scripts can read it.", "Add HttpOnly to session and login cookies.";
    COOKIES_SESSION_NO_SECURE = "cookies-session-without-secure-flag", -40, Fail,
        "A session cookie lacks Secure and can travel over plain HTTP.", "Add Secure to session cookies and deploy HSTS.";

    // cross-origin-resource-sharing
    CORS_NOT_IMPLEMENTED = "cross-origin-resource-sharing-not-implemented", 0, Neutral,
        "No CORS headers: content is not shared with other origins.", "Add CORS headers only if another site must read this content, and then name the allowed origins.";
    CORS_PUBLIC = "cross-origin-resource-sharing-implemented-with-public-access", 0, Pass,
        "Access-Control-Allow-Origin: * shares public content with any origin, without credentials.", "Fine for public content; never add Access-Control-Allow-Credentials, and serve private data from a path without *.";
    CORS_RESTRICTED = "cross-origin-resource-sharing-implemented-with-restricted-access", 0, Pass,
        "CORS shares content with specific origins only.", "Review the allowed origins when partners change; never reflect the request's Origin unchecked.";
    CORS_UNIVERSAL = "cross-origin-resource-sharing-implemented-with-universal-access", -50, Fail,
        "CORS reflects any Origin and allows credentials: any site can read signed-in visitors' data.", "Allow only a fixed list of origins when credentials are allowed, or use * without Access-Control-Allow-Credentials.";

    // redirection
    REDIRECT_ALL_PRELOADED = "redirection-all-redirects-preloaded", 0, Pass,
        "Every host in the redirect chain is on the HSTS preload list.", "Keep includeSubDomains and preload in the HSTS header of every host, or the hosts may be dropped from the list.";
    REDIRECT_TO_HTTPS = "redirection-to-https", 0, Pass,
        "HTTP redirects to HTTPS on the same host first and ends on HTTPS.", "Keep the redirect permanent (301 or 308); preloading HSTS (hstspreload.org) removes even the first plain-HTTP request.";
    REDIRECT_NO_HTTP = "redirection-not-needed-no-http", 0, Neutral,
        "Nothing answers on HTTP, so no redirection is needed.", "If you open port 80 later, make it redirect to HTTPS on the same host.";
    REDIRECT_OFF_HOST = "redirection-off-host-from-http", -5, Fail,
        "The first redirect from HTTP goes to HTTPS on another host, so this host's HSTS is never set.", "Redirect to HTTPS on the same host first, then to the other host.";
    REDIRECT_NOT_HTTPS_FIRST = "redirection-not-to-https-on-initial-redirection", -10, Fail,
        "HTTP eventually reaches HTTPS, but the first redirect goes to another HTTP URL.", "Make the first redirect go to HTTPS on the same host.";
    REDIRECT_NOT_TO_HTTPS = "redirection-not-to-https", -20, Fail,
        "HTTP redirects, but the chain ends on an HTTP URL.", "Redirect HTTP to HTTPS on the same host.";
    REDIRECT_MISSING = "redirection-missing", -20, Fail,
        "HTTP serves content without redirecting to HTTPS.", "Redirect every HTTP request to HTTPS on the same host.";
    REDIRECT_INVALID_CERT = "redirection-invalid-cert", -20, Fail,
        "The redirect chain reaches an HTTPS server whose certificate is not trusted.", "Install a certificate valid for the name from a trusted CA.";

    // referrer-policy
    REFERRER_PRIVATE = "referrer-policy-private", 5, Pass,
        "Referrer-Policy is no-referrer, same-origin, strict-origin or strict-origin-when-cross-origin.", "Keep the header on every response, including error pages and redirects.";
    REFERRER_NOT_IMPLEMENTED = "referrer-policy-not-implemented", 0, Pass,
        "No Referrer-Policy (browsers default to strict-origin-when-cross-origin).", "Send Referrer-Policy: strict-origin-when-cross-origin (or stricter) for the bonus.";
    REFERRER_UNSAFE = "referrer-policy-unsafe", -5, Fail,
        "Referrer-Policy leaks full URLs or origins: origin, origin-when-cross-origin, unsafe-url or no-referrer-when-downgrade.", "Use strict-origin-when-cross-origin or stricter.";
    REFERRER_INVALID = "referrer-policy-header-invalid", -5, Fail,
        "Referrer-Policy holds no recognised value.", "Use strict-origin-when-cross-origin or stricter.";

    // strict-transport-security
    HSTS_PRELOADED = "hsts-preloaded", 5, Pass,
        "The domain is on the HSTS preload list.", "Keep max-age of a year or more with includeSubDomains and preload, and keep HTTPS working on every subdomain.";
    HSTS_SIX_MONTHS = "hsts-implemented-max-age-at-least-six-months", 0, Pass,
        "Strict-Transport-Security max-age is at least six months.", "Consider preloading: includeSubDomains, preload, max-age of a year or more, then submit to hstspreload.org.";
    HSTS_SHORT = "hsts-implemented-max-age-less-than-six-months", -10, Fail,
        "Strict-Transport-Security max-age is under six months (15552000 s).", "Raise max-age to at least 15552000; a year (31536000) is usual.";
    HSTS_NOT_IMPLEMENTED = "hsts-not-implemented", -20, Fail,
        "The HTTPS response sends no Strict-Transport-Security.", "Send Strict-Transport-Security: max-age=31536000 (roll out with a shorter max-age first).";
    HSTS_INVALID = "hsts-header-invalid", -20, Fail,
        "Strict-Transport-Security cannot be understood (missing or unreadable max-age, or sent twice).", "Send exactly one header with a numeric max-age.";
    HSTS_NO_HTTPS = "hsts-not-implemented-no-https", -20, Fail,
        "No HTTPS response, so HSTS cannot be set.", "Serve the site over HTTPS with a valid certificate.";
    HSTS_INVALID_CERT = "hsts-invalid-cert", -20, Fail,
        "The HTTPS certificate is not trusted, so browsers ignore HSTS.", "Install a certificate valid for the name from a trusted CA.";

    // subresource-integrity
    SRI_ALL_SECURE = "sri-implemented-and-all-scripts-loaded-securely", 5, Pass,
        "Scripts use SRI and load from the same site over HTTPS.", "Update each integrity hash whenever a script file changes, or browsers will block it.";
    SRI_EXTERNAL_SECURE = "sri-implemented-and-external-scripts-loaded-securely", 5, Pass,
        "External scripts use SRI and load over HTTPS.", "Pin external scripts to fixed versions and update the integrity hash with each upgrade.";
    SRI_NOT_HTML = "sri-not-implemented-response-not-html", 0, Neutral,
        "The response is not HTML, so SRI does not apply.", "If this URL starts serving HTML with external scripts, add integrity attributes to them.";
    SRI_NO_SCRIPTS = "sri-not-implemented-but-no-scripts-loaded", 0, Neutral,
        "The page loads no scripts.", "If the page adds external scripts, load them over https: with integrity attributes.";
    SRI_SAME_ORIGIN = "sri-not-implemented-but-all-scripts-loaded-from-secure-origin", 0, Pass,
        "Scripts load only from the same site.", "Add integrity attributes for the bonus.";
    SRI_EXTERNAL_NO_SRI = "sri-not-implemented-but-external-scripts-loaded-securely", -5, Fail,
        "External scripts load over HTTPS but without SRI.", "Add integrity (and crossorigin) attributes to external scripts.";
    SRI_EXTERNAL_INSECURE = "sri-implemented-but-external-scripts-not-loaded-securely", -20, Fail,
        "External scripts use SRI but load over http: or a protocol-relative //URL.", "Load external scripts over https:.";
    SRI_NONE_INSECURE = "sri-not-implemented-and-external-scripts-not-loaded-securely", -50, Fail,
        "External scripts load over http: or a protocol-relative //URL, without SRI.", "Load external scripts over https: and add integrity attributes.";

    // x-content-type-options
    XCTO_NOSNIFF = "x-content-type-options-nosniff", 0, Pass,
        "X-Content-Type-Options: nosniff.", "Keep sending it on every response, and make sure each response's Content-Type is correct.";
    XCTO_NOT_IMPLEMENTED = "x-content-type-options-not-implemented", -5, Fail,
        "No X-Content-Type-Options header.", "Send X-Content-Type-Options: nosniff.";
    XCTO_INVALID = "x-content-type-options-header-invalid", -5, Fail,
        "X-Content-Type-Options holds something other than nosniff.", "Send X-Content-Type-Options: nosniff, once.";

    // x-frame-options
    XFO_VIA_CSP = "x-frame-options-implemented-via-csp", 5, Pass,
        "Framing is controlled by the CSP frame-ancestors directive.", "Keep frame-ancestors as narrow as the site allows ('none' or 'self' unless others must frame it).";
    XFO_SAMEORIGIN_DENY = "x-frame-options-sameorigin-or-deny", 5, Pass,
        "X-Frame-Options is DENY or SAMEORIGIN.", "Also send CSP frame-ancestors ('none' or 'self'), the modern control that supersedes X-Frame-Options.";
    XFO_ALLOW_FROM = "x-frame-options-allow-from-origin", 0, Pass,
        "X-Frame-Options uses ALLOW-FROM, which browsers ignore.", "Use CSP frame-ancestors to allow specific origins.";
    XFO_NOT_IMPLEMENTED = "x-frame-options-not-implemented", -20, Fail,
        "Neither X-Frame-Options nor CSP frame-ancestors: the site can be framed (clickjacking).", "Send CSP frame-ancestors 'none' (or 'self'), or X-Frame-Options: DENY.";
    XFO_INVALID = "x-frame-options-header-invalid", -20, Fail,
        "X-Frame-Options cannot be understood.", "Send X-Frame-Options: DENY or SAMEORIGIN, or CSP frame-ancestors.";

    // cross-origin-resource-policy
    CORP_SAME_ORIGIN = "corp-implemented-with-same-origin", 10, Pass,
        "Cross-Origin-Resource-Policy: same-origin.", "Switch a resource to same-site or cross-origin only if other origins must embed it.";
    CORP_SAME_SITE = "corp-implemented-with-same-site", 10, Pass,
        "Cross-Origin-Resource-Policy: same-site.", "Use same-origin where subdomains need not embed the resource.";
    CORP_CROSS_ORIGIN = "corp-implemented-with-cross-origin", 0, Pass,
        "Cross-Origin-Resource-Policy: cross-origin (any site may embed).", "Use same-site or same-origin unless other sites must embed this resource.";
    CORP_NOT_IMPLEMENTED = "corp-not-implemented", 0, Neutral,
        "No Cross-Origin-Resource-Policy (browsers default to cross-origin).", "Send Cross-Origin-Resource-Policy: same-site or same-origin for the bonus.";
    CORP_INVALID = "corp-header-invalid", -5, Fail,
        "Cross-Origin-Resource-Policy holds no recognised value.", "Use same-origin, same-site or cross-origin.";

    // cross-origin-opener-policy
    COOP_SAME_ORIGIN = "coop-implemented-with-same-origin", 10, Pass,
        "Cross-Origin-Opener-Policy: same-origin isolates the page from cross-origin openers.", "Test sign-in and payment pop-ups after changes; with COEP too, the page gets cross-origin isolation.";
    COOP_SAME_ORIGIN_ALLOW_POPUPS = "coop-implemented-with-same-origin-allow-popups", 10, Pass,
        "Cross-Origin-Opener-Policy: same-origin-allow-popups.", "Move to same-origin once no pop-up the page opens needs to talk back to it.";
    COOP_NOOPENER_ALLOW_POPUPS = "coop-implemented-with-noopener-allow-popups", 10, Pass,
        "Cross-Origin-Opener-Policy: noopener-allow-popups.", "Keep it on pages that open pop-ups; use same-origin on pages that do not.";
    COOP_UNSAFE_NONE = "coop-implemented-with-unsafe-none", 0, Pass,
        "Cross-Origin-Opener-Policy: unsafe-none (the browser default).", "Use same-origin (or same-origin-allow-popups) for the bonus.";
    COOP_NOT_IMPLEMENTED = "coop-not-implemented", 0, Neutral,
        "No Cross-Origin-Opener-Policy.", "Send Cross-Origin-Opener-Policy: same-origin for the bonus.";
    COOP_INVALID = "coop-header-invalid", -5, Fail,
        "Cross-Origin-Opener-Policy is not a valid structured-field token or is sent twice.", "Send one header: same-origin, same-origin-allow-popups, noopener-allow-popups or unsafe-none.";

    // cross-origin-embedder-policy
    COEP_REQUIRE_CORP = "coep-implemented-with-require-corp", 10, Pass,
        "Cross-Origin-Embedder-Policy: require-corp.", "Make every embedded cross-origin resource send CORP or CORS headers, or it will be blocked.";
    COEP_CREDENTIALLESS = "coep-implemented-with-credentialless", 10, Pass,
        "Cross-Origin-Embedder-Policy: credentialless.", "Switch to require-corp if embedded cross-origin resources need cookies; they now load without them.";
    COEP_UNSAFE_NONE = "coep-implemented-with-unsafe-none", 0, Pass,
        "Cross-Origin-Embedder-Policy: unsafe-none (the browser default).", "Use require-corp or credentialless for the bonus.";
    COEP_NOT_IMPLEMENTED = "coep-not-implemented", 0, Neutral,
        "No Cross-Origin-Embedder-Policy.", "Send Cross-Origin-Embedder-Policy: require-corp or credentialless for the bonus.";
    COEP_INVALID = "coep-header-invalid", -5, Fail,
        "Cross-Origin-Embedder-Policy is not a valid structured-field token or is sent twice.", "Send one header: require-corp, credentialless or unsafe-none.";
}
