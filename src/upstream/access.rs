//! How the gateway reaches the upstream: the headers that carry its credentials
//! (`--upstream-header`), the certificates it trusts (`--upstream-ca`), and the URL as it is
//! shown to people (with its secrets left out).

use std::path::Path;
use std::sync::Arc;

use http::{header, HeaderName, HeaderValue};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use super::UpstreamConfigError;
use crate::protocol::headers::{LAST_EVENT_ID, PROTOCOL_VERSION, SESSION_ID};

/// The URL as logs, `/readyz` and error messages show it: without user name, password, query
/// (`?api_key=…`) or fragment, where credentials are often put.
pub fn redacted(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    // Neither fails for http(s) URLs, the only ones the upstream client takes.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// Headers the gateway writes itself on every upstream request: configured ones must not
/// replace them (a fixed `Mcp-Session-Id` would put every agent in one upstream session).
const RESERVED: [HeaderName; 10] = [
    header::HOST,
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
    header::ACCEPT,
    SESSION_ID,
    PROTOCOL_VERSION,
    LAST_EVENT_ID,
    crate::protocol::modern::METHOD_HEADER,
    crate::protocol::modern::NAME_HEADER,
];

/// Reads `--upstream-header` specs, `NAME: VALUE` or `NAME: env:VARIABLE` (the value read from
/// the environment, through `env`, now). Values are marked sensitive, so that no `Debug` of a
/// request shows them.
pub fn headers(
    specs: &[String],
    env: impl Fn(&str) -> Option<String>,
) -> Result<Vec<(HeaderName, HeaderValue)>, UpstreamConfigError> {
    specs
        .iter()
        .map(|spec| {
            // The value is never quoted in an error: it is a credential.
            let (name, value) = spec
                .split_once(':')
                .ok_or(UpstreamConfigError::HeaderSpec)?;
            let name = name.trim();
            let header = HeaderName::try_from(name)
                .map_err(|_| UpstreamConfigError::HeaderName(name.to_owned()))?;
            if RESERVED.contains(&header) {
                return Err(UpstreamConfigError::ReservedHeader(header));
            }
            let value = value.trim();
            let value = match value.strip_prefix("env:") {
                Some(variable) => env(variable).ok_or_else(|| UpstreamConfigError::HeaderEnv {
                    header: header.clone(),
                    variable: variable.to_owned(),
                })?,
                None => value.to_owned(),
            };
            let mut value = HeaderValue::try_from(value)
                .map_err(|_| UpstreamConfigError::HeaderValue(header.clone()))?;
            value.set_sensitive(true);
            Ok((header, value))
        })
        .collect()
}

/// HTTP, and HTTPS trusting the webpki roots and, with `--upstream-ca`, the CA certificates
/// in that PEM file as well.
pub fn connector(
    tcp: HttpConnector,
    ca: Option<&Path>,
) -> Result<HttpsConnector<HttpConnector>, UpstreamConfigError> {
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match ca {
        None => builder.with_webpki_roots(),
        Some(path) => builder.with_tls_config(tls_trusting(path)?),
    };
    Ok(builder.https_or_http().enable_http1().wrap_connector(tcp))
}

fn tls_trusting(path: &Path) -> Result<rustls::ClientConfig, UpstreamConfigError> {
    let failed = |detail: String| UpstreamConfigError::Ca {
        path: path.to_owned(),
        detail,
    };
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|err| failed(err.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| failed(err.to_string()))?;
    if certificates.is_empty() {
        return Err(failed("no PEM certificate in it".into()));
    }
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for certificate in certificates {
        roots
            .add(certificate)
            .map_err(|err| failed(err.to_string()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| failed(err.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_urls_keep_no_credentials_or_query() {
        for (url, shown) in [
            (
                "http://user:PASSWORD@127.0.0.1:9000/mcp?api_key=SECRET#x",
                "http://127.0.0.1:9000/mcp",
            ),
            (
                "https://token@mcp.example.com/mcp",
                "https://mcp.example.com/mcp",
            ),
            ("http://[::1]:8080/mcp", "http://[::1]:8080/mcp"),
        ] {
            assert_eq!(redacted(&url.parse().unwrap()), shown);
        }
    }

    #[test]
    fn header_values_come_as_given_or_from_the_environment() {
        let env = |variable: &str| (variable == "KEY").then(|| "from-env".to_owned());
        let specs = [
            "X-Api-Key: env:KEY".to_owned(),
            "Authorization: Bearer a:b".to_owned(),
        ];
        let got = headers(&specs, env).unwrap();
        assert_eq!(got[0].0, "x-api-key");
        assert_eq!(got[0].1, "from-env");
        assert!(got[0].1.is_sensitive());
        assert_eq!(got[1].0, header::AUTHORIZATION);
        assert_eq!(got[1].1, "Bearer a:b");
    }

    #[test]
    fn bad_header_specs_are_refused_without_showing_the_value() {
        let none = |_: &str| None;
        for (spec, says) in [
            ("X-Api-Key SECRET", "NAME: VALUE"),
            ("Bad Name: SECRET", "not a valid header name"),
            ("Mcp-Session-Id: SECRET", "sets this header itself"),
            ("Host: SECRET", "sets this header itself"),
            ("X-Api-Key: env:MISSING", "MISSING is not set"),
            ("X-Api-Key: SECRET\u{7f}", "not a valid header value"),
        ] {
            let err = headers(&[spec.to_owned()], none).unwrap_err().to_string();
            assert!(err.contains(says), "{spec}: {err}");
            assert!(!err.contains("SECRET"), "{spec}: {err}");
        }
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = tls_trusting(&empty).unwrap_err().to_string();
        assert!(err.contains("no PEM certificate"), "{err}");
        let missing = tls_trusting(&dir.path().join("missing.pem")).unwrap_err();
        assert!(missing.to_string().contains("--upstream-ca"), "{missing}");
    }
}
