//! The floor for any HTTP gateway on this machine: a bare hyper pass-through proxy that reads no
//! JSON. It forwards every request, body streamed, to the upstream over a pooled keep-alive
//! client with TCP_NODELAY and streams the answer back. `bench/run` measures mcpgate against it.
//!
//! `cargo run --release --example passthrough -- 127.0.0.1:9102 http://127.0.0.1:9101 [THREADS]`
//! (THREADS: worker threads, by default one per CPU, as mcpgate's `--worker-threads`)

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::HOST;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

type Answer = Response<BoxBody<Bytes, hyper::Error>>;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(upstream)) = (args.next(), args.next()) else {
        eprintln!("usage: passthrough LISTEN_ADDR UPSTREAM_BASE_URL [THREADS] (e.g. 127.0.0.1:9102 http://127.0.0.1:9101 1)");
        std::process::exit(2);
    };
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.next() {
        runtime.worker_threads(threads.parse().expect("THREADS is a number"));
    }
    let runtime = runtime.enable_all().build().expect("a runtime");
    runtime.block_on(serve(listen, upstream));
}

async fn serve(listen: String, upstream: String) {
    let listen: SocketAddr = listen.parse().expect("LISTEN_ADDR is host:port");
    let upstream: Uri = upstream.parse().expect("UPSTREAM_BASE_URL is a URL");
    let authority = upstream
        .authority()
        .expect("the upstream URL names a host")
        .clone();

    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<_, Incoming> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(256)
        .build(connector);

    let listener = TcpListener::bind(listen)
        .await
        .expect("the listen address is free");
    eprintln!("passthrough: {listen} -> {upstream}");
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let client = client.clone();
        let authority = authority.clone();
        tokio::spawn(async move {
            let forward = service_fn(move |mut request: Request<Incoming>| {
                let client = client.clone();
                let path = request.uri().path_and_query().cloned();
                let uri = Uri::builder()
                    .scheme("http")
                    .authority(authority.clone())
                    .path_and_query(path.unwrap_or_else(|| "/".parse().unwrap()))
                    .build()
                    .expect("an upstream URI from valid parts");
                *request.uri_mut() = uri;
                // The client names the upstream in Host itself.
                request.headers_mut().remove(HOST);
                async move {
                    Ok::<Answer, hyper::Error>(match client.request(request).await {
                        Ok(answer) => answer.map(BodyExt::boxed),
                        Err(err) => bad_gateway(err.to_string()),
                    })
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), forward)
                .await;
        });
    }
}

fn bad_gateway(detail: String) -> Answer {
    let body = Full::new(Bytes::from(detail))
        .map_err(|never| match never {})
        .boxed();
    let mut answer = Response::new(body);
    *answer.status_mut() = StatusCode::BAD_GATEWAY;
    answer
}
