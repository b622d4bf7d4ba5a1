//! Reading the request headers the streamable HTTP transport defines.

use axum::http::{header, HeaderMap, HeaderName, HeaderValue};

use super::error::GatewayError;
use crate::protocol::headers::{PROTOCOL_VERSION, SESSION_ID};
use crate::protocol::version;

/// How the client can take an answer to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerFormat {
    /// The client listed `text/event-stream`: relay streams as streams.
    Stream,
    /// JSON only (or a bare `*/*`, as curl sends): collect a streamed answer into one JSON body.
    Json,
}

pub fn require_json_content(headers: &HeaderMap) -> Result<(), GatewayError> {
    let value = headers.get(header::CONTENT_TYPE).map(|v| v.as_bytes());
    let essence = value
        .and_then(|v| v.split(|&b| b == b';').next())
        .map(<[u8]>::trim_ascii)
        .unwrap_or_default();
    if essence.eq_ignore_ascii_case(b"application/json") {
        Ok(())
    } else {
        let value = String::from_utf8_lossy(value.unwrap_or_default()).into_owned();
        Err(GatewayError::UnsupportedMediaType(value))
    }
}

/// Reads Accept without allocating: it is on every request's path.
pub fn answer_format(headers: &HeaderMap) -> Result<AnswerFormat, GatewayError> {
    let Some(accept) = headers.get(header::ACCEPT) else {
        return Ok(AnswerFormat::Json);
    };
    let mut json = false;
    let mut stream = false;
    for range in accept.as_bytes().split(|&b| b == b',') {
        let mut parts = range.split(|&b| b == b';');
        let media = parts.next().unwrap_or_default().trim_ascii();
        let refused = parts.any(|p| {
            p.trim_ascii()
                .strip_prefix(b"q=")
                .and_then(|q| std::str::from_utf8(q).ok())
                .is_some_and(|q| q.trim().parse::<f32>() == Ok(0.0))
        });
        if refused {
            continue;
        }
        let is = |name: &[u8]| media.eq_ignore_ascii_case(name);
        if is(b"application/json") || is(b"application/*") || is(b"*/*") {
            json = true;
        } else if is(b"text/event-stream") || is(b"text/*") {
            stream = true;
        }
    }
    match (json, stream) {
        (_, true) => Ok(AnswerFormat::Stream),
        (true, false) => Ok(AnswerFormat::Json),
        (false, false) => Err(GatewayError::NotAcceptable(
            String::from_utf8_lossy(accept.as_bytes()).into_owned(),
        )),
    }
}

/// GET opens a stream, so its Accept must allow one.
pub fn require_event_stream(headers: &HeaderMap) -> Result<(), GatewayError> {
    match answer_format(headers) {
        Ok(AnswerFormat::Stream) => Ok(()),
        _ => Err(GatewayError::NotAcceptable(
            headers
                .get(header::ACCEPT)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_default(),
        )),
    }
}

/// The `Mcp-Session-Id`. Sent twice it is refused: which copy counts is a guess, and a proxy in
/// front may have guessed the other way.
pub fn session_id(headers: &HeaderMap) -> Result<Option<&str>, GatewayError> {
    Ok(single(headers, SESSION_ID)?.and_then(|v| v.to_str().ok()))
}

fn single(headers: &HeaderMap, name: HeaderName) -> Result<Option<&HeaderValue>, GatewayError> {
    let mut values = headers.get_all(&name).iter();
    let first = values.next();
    match values.next() {
        Some(_) => Err(GatewayError::RepeatedHeader(name.to_string())),
        None => Ok(first),
    }
}

/// The request's protocol version when it names one (one the gateway speaks); `None` when the
/// header is absent, and the session's negotiated revision applies (or, before there is a
/// session, the one the transports spec assumes).
pub fn declared_version(headers: &HeaderMap) -> Result<Option<&'static str>, GatewayError> {
    let Some(value) = single(headers, PROTOCOL_VERSION)? else {
        return Ok(None);
    };
    version::spoken(value.as_bytes()).map(Some).ok_or_else(|| {
        GatewayError::UnsupportedProtocolVersion {
            requested: String::from_utf8_lossy(value.as_bytes()).into_owned(),
        }
    })
}

/// Transports spec: servers MUST validate Origin to stop DNS rebinding. Browsers always send it
/// on cross-origin requests; agents outside a browser send none, which is fine.
pub fn check_origin(headers: &HeaderMap, allowed: &[String]) -> Result<(), GatewayError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = String::from_utf8_lossy(origin.as_bytes());
    if is_loopback_origin(&origin) || allowed.iter().any(|a| a.eq_ignore_ascii_case(&origin)) {
        Ok(())
    } else {
        Err(GatewayError::ForbiddenOrigin(origin.into_owned()))
    }
}

fn is_loopback_origin(origin: &str) -> bool {
    let Some(rest) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    let host = if let Some(v6) = rest.strip_prefix('[') {
        v6.split(']')
            .next()
            .map(|h| if h == "::1" { "::1" } else { "" })
    } else {
        rest.split(':').next()
    };
    let port_ok = |after_host: &str| {
        after_host.is_empty()
            || after_host
                .strip_prefix(':')
                .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    };
    match host {
        Some(h @ ("localhost" | "127.0.0.1")) => port_ok(&rest[h.len()..]),
        Some("::1") => port_ok(&rest["[::1]".len()..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with(name: axum::http::HeaderName, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn accept_decides_between_stream_json_and_refusal() {
        let cases = [
            (
                "application/json, text/event-stream",
                Some(AnswerFormat::Stream),
            ),
            ("text/event-stream", Some(AnswerFormat::Stream)),
            ("application/json", Some(AnswerFormat::Json)),
            ("*/*", Some(AnswerFormat::Json)),
            ("text/html", None),
            ("application/json;q=0, text/html", None),
        ];
        for (accept, expected) in cases {
            match (answer_format(&with(header::ACCEPT, accept)), expected) {
                (Ok(got), Some(expected)) => assert_eq!(got, expected, "{accept}"),
                (Err(GatewayError::NotAcceptable(refused)), None) => assert_eq!(refused, accept),
                (got, _) => panic!("{accept}: {got:?}"),
            }
        }
        assert_eq!(
            answer_format(&HeaderMap::new()).ok(),
            Some(AnswerFormat::Json)
        );
    }

    #[test]
    fn loopback_origins_pass_and_foreign_ones_need_the_allow_list() {
        for origin in [
            "http://localhost:3000",
            "http://127.0.0.1",
            "https://[::1]:8080",
        ] {
            assert!(
                check_origin(&with(header::ORIGIN, origin), &[]).is_ok(),
                "{origin}"
            );
        }
        for origin in [
            "http://evil.example",
            "http://localhost.evil.example",
            "http://127.0.0.1.evil.example:80",
            "null",
        ] {
            assert!(
                matches!(
                    check_origin(&with(header::ORIGIN, origin), &[]),
                    Err(GatewayError::ForbiddenOrigin(refused)) if refused == origin
                ),
                "{origin}"
            );
        }
        let allowed = vec!["https://app.example".to_string()];
        assert!(check_origin(&with(header::ORIGIN, "https://app.example"), &allowed).is_ok());
    }

    #[test]
    fn content_type_must_be_json() {
        assert!(require_json_content(&with(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8"
        ))
        .is_ok());
        assert!(matches!(
            require_json_content(&with(header::CONTENT_TYPE, "text/plain")),
            Err(GatewayError::UnsupportedMediaType(refused)) if refused == "text/plain"
        ));
        assert!(matches!(
            require_json_content(&HeaderMap::new()),
            Err(GatewayError::UnsupportedMediaType(refused)) if refused.is_empty()
        ));
    }

    #[test]
    fn protocol_version_header_is_validated() {
        let ok = with(PROTOCOL_VERSION, "2025-06-18");
        assert_eq!(declared_version(&ok).unwrap(), Some("2025-06-18"));
        assert!(matches!(
            declared_version(&with(PROTOCOL_VERSION, "2026-07-28")),
            Err(GatewayError::UnsupportedProtocolVersion { requested }) if requested == "2026-07-28"
        ));
        assert_eq!(declared_version(&HeaderMap::new()).unwrap(), None);
    }

    #[test]
    fn a_session_id_or_version_sent_twice_is_refused() {
        let mut twice = with(SESSION_ID, "aaaa");
        twice.append(SESSION_ID, HeaderValue::from_static("bbbb"));
        assert!(matches!(
            session_id(&twice),
            Err(GatewayError::RepeatedHeader(name)) if name == "mcp-session-id"
        ));
        assert_eq!(session_id(&with(SESSION_ID, "aaaa")).unwrap(), Some("aaaa"));
        let mut twice = with(PROTOCOL_VERSION, "2025-06-18");
        twice.append(PROTOCOL_VERSION, HeaderValue::from_static("2025-03-26"));
        assert!(matches!(
            declared_version(&twice),
            Err(GatewayError::RepeatedHeader(name)) if name == "mcp-protocol-version"
        ));
    }
}
