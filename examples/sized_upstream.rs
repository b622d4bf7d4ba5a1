//! A minimal MCP upstream for `bench/growth`: answers of a chosen size and tool lists of a chosen
//! length, so what the gateway costs can be measured as the work grows, with the upstream's own
//! cost as small as it gets.
//!
//! `cargo run --release --example sized_upstream -- 127.0.0.1:9103 TOOLS`
//!
//! - `initialize` opens session `bench` (no state is kept);
//! - `tools/list` lists TOOLS tools, `tool_00000`, `tool_00001`, …, with a small schema each;
//! - `tools/call` of any tool answers a text of `arguments.bytes` bytes, as JSON, or as one SSE
//!   event when `arguments.sse` is true.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(tools)) = (args.next(), args.next()) else {
        eprintln!("usage: sized_upstream LISTEN_ADDR TOOLS (e.g. 127.0.0.1:9103 100)");
        std::process::exit(2);
    };
    let listen: SocketAddr = listen.parse().expect("LISTEN_ADDR is host:port");
    let tools: usize = tools.parse().expect("TOOLS is a number");
    let tool_list: Arc<Vec<Value>> = Arc::new(
        (0..tools)
            .map(|i| {
                json!({
                    "name": format!("tool_{i:05}"),
                    "description": "Answers a text of the requested size.",
                    "inputSchema": {
                        "type": "object",
                        "properties": {"bytes": {"type": "integer"}, "sse": {"type": "boolean"}}
                    }
                })
            })
            .collect(),
    );
    let listener = TcpListener::bind(listen)
        .await
        .expect("the listen address is free");
    eprintln!("sized_upstream: {listen}, {tools} tools");
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let tool_list = tool_list.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| answer(request, tool_list.clone()));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}

async fn answer(
    request: Request<Incoming>,
    tools: Arc<Vec<Value>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return Ok(status(StatusCode::BAD_REQUEST)),
    };
    let Ok(message) = serde_json::from_slice::<Value>(&body) else {
        return Ok(status(StatusCode::BAD_REQUEST));
    };
    let id = message["id"].clone();
    let result = match message["method"].as_str() {
        Some("initialize") => json!({
            "protocolVersion": message["params"]["protocolVersion"],
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "sized-upstream", "version": "1"}
        }),
        Some("tools/list") => json!({"tools": *tools}),
        Some("tools/call") => {
            let arguments = &message["params"]["arguments"];
            let size = arguments["bytes"].as_u64().unwrap_or(0) as usize;
            let result = json!({
                "content": [{"type": "text", "text": "x".repeat(size)}],
                "isError": false
            });
            let text = json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string();
            return Ok(if arguments["sse"] == true {
                with_type(
                    format!("event: message\ndata: {text}\n\n"),
                    "text/event-stream",
                )
            } else {
                with_type(text, "application/json")
            });
        }
        _ if id.is_null() => return Ok(status(StatusCode::ACCEPTED)),
        _ => json!({}),
    };
    let text = json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string();
    let mut response = with_type(text, "application/json");
    response
        .headers_mut()
        .insert("mcp-session-id", "bench".parse().expect("a header value"));
    Ok(response)
}

fn with_type(body: String, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        content_type.parse().expect("a header value"),
    );
    response
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = code;
    response
}
