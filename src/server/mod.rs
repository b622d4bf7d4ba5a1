//! Serving a built gateway: bind, serve on one event loop per worker, stop when told.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::gateway::{Gateway, Phase};
use crate::{reload, transport};

mod balance;

pub use balance::Connections;
use balance::{Balancer, Incoming};

#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source} (is another process using it? pick one with --listen)")]
pub struct BindError {
    addr: SocketAddr,
    source: std::io::Error,
}

pub async fn bind(addr: SocketAddr) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| BindError { addr, source })
}

/// Serves the gateway on `listener` (and the admin API on `--admin-listen`, metrics on
/// `--metrics-listen`, if set) until `shutdown` completes, then closes the listeners, answers
/// held calls and lets requests in flight finish. Background upkeep (idle sessions,
/// limiter state, approval expiry, policy reloads) runs alongside, on the caller's runtime.
///
/// Requests are served by `workers` event loops, one thread each, all accepting from the one
/// listening socket (Envoy's model): a connection, its calls and the upstream connections they
/// use (one pool per thread) stay on one thread, so a call is never handed between threads.
/// A loop hands a connection it accepted to the loop serving fewest (`balance.rs`). What they
/// share is the gateway's state: sessions, limits, policy, approvals.
pub async fn serve(
    gateway: Arc<Gateway>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The admin API has its own listener with --admin-listen, else it shares the agents' one.
    // /metrics is served on --metrics-listen and on the admin listener, never beside MCP.
    let admin = crate::admin::router(gateway.clone());
    let metrics = transport::metrics_router(gateway.clone());
    let (admin, beside_mcp) = match (gateway.config.approvals.admin_listen, admin) {
        (Some(addr), Some(router)) => {
            let router = match &metrics {
                Some(metrics) => router.merge(metrics.clone()),
                None => router,
            };
            (Some((TcpListener::bind(addr).await?, router)), None)
        }
        (None, router) => (None, router),
        (Some(_), None) => (None, None),
    };
    let metrics = match (gateway.config.metrics_listen, metrics) {
        (Some(addr), Some(router)) => Some((TcpListener::bind(addr).await?, router)),
        _ => None,
    };
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let limits = &gateway.config.limits;
    let listener = listener.into_std()?;
    let mut finished = Vec::new();
    // One dispatch, cloned: what the routes share (e.g. the legacy streams) is shared by all.
    let dispatch = transport::Dispatch::gateway(gateway.clone(), beside_mcp);
    for (index, balancer) in balance::balancers(&gateway.connections)
        .into_iter()
        .enumerate()
    {
        finished.push(start_worker(
            index,
            balancer,
            listener.try_clone()?,
            dispatch.clone(),
            limits.clone(),
            stopping.clone(),
        )?);
    }
    drop(listener);
    for (listener, router) in admin.into_iter().chain(metrics) {
        let (done, router_finished) = oneshot::channel();
        let (limits, stopping) = (limits.clone(), stopping.clone());
        let dispatch = transport::Dispatch::router(router, gateway.audit.as_ref());
        tokio::spawn(async move {
            serve_connections(listener, None, dispatch, limits, stopping).await;
            let _ = done.send(());
        });
        finished.push(router_finished);
    }
    let upkeep = tokio::spawn(upkeep(gateway.clone()));
    let watcher = reload::watch(gateway.clone());
    shutdown.await;
    // Held calls are answered now (telling the agent to repeat the call), not cut.
    gateway.readiness.enter(Phase::Stopping);
    let _ = stop.send(true);
    for done in finished {
        if done.await.is_err() {
            tracing::error!("a worker stopped before its connections were done");
        }
    }
    upkeep.abort();
    drop(watcher);
    // Records with no answer waiting on them (sessions ended at shutdown, expiries) are on the
    // disk before the process ends.
    if let Some(audit) = &gateway.audit {
        audit.written().await;
    }
    Ok(())
}

/// One worker: a thread running its own event loop that serves what it accepts on `listener`
/// until `stopping` turns true and its connections are done; `finished` then resolves.
fn start_worker(
    index: usize,
    balancer: Balancer,
    listener: std::net::TcpListener,
    dispatch: transport::Dispatch,
    limits: crate::config::Limits,
    stopping: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<oneshot::Receiver<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (done, finished) = oneshot::channel();
    std::thread::Builder::new()
        .name(format!("mcpgate-worker-{index}"))
        .spawn(move || {
            runtime.block_on(async move {
                match TcpListener::from_std(listener) {
                    Ok(listener) => {
                        serve_connections(listener, Some(balancer), dispatch, limits, stopping)
                            .await
                    }
                    Err(err) => tracing::error!(error = %err, "a worker cannot use the listener"),
                }
            });
            let _ = done.send(());
        })?;
    Ok(finished)
}

/// Accepts connections on one listener (and, for a worker, those other workers hand it) until
/// `stopping` turns true, then waits for the open ones to finish what they were doing.
async fn serve_connections(
    listener: TcpListener,
    mut balancer: Option<Balancer>,
    dispatch: transport::Dispatch,
    limits: crate::config::Limits,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    // HTTP/1.1 only, as MCP's streamable HTTP is spoken; no upgrades.
    let mut connections = http1::Builder::new();
    connections
        .timer(TokioTimer::new())
        // A client that trickles its headers (slowloris) is cut after this long.
        .header_read_timeout(limits.request_read_timeout)
        // hyper answers 431 past this; it refuses buffers under 8 KiB.
        .max_buf_size(limits.max_header_bytes.max(8192));
    let graceful = GracefulShutdown::new();
    tokio::spawn(keep_a_timer_due());
    let serve = |incoming: Incoming| {
        let Incoming { tcp, peer, served } = incoming;
        let dispatch = dispatch.clone();
        let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            let dispatch = dispatch.clone();
            async move { Ok::<_, Infallible>(dispatch.serve(request, peer).await) }
        });
        let connection = connections.serve_connection(TokioIo::new(tcp), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "connection ended with an error");
            }
            drop(served);
        });
    };
    loop {
        let incoming = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    // Agents make many small calls: Nagle's delay would add up to 40 ms to each.
                    let _ = tcp.set_nodelay(true);
                    match &balancer {
                        None => Incoming { tcp, peer, served: None },
                        Some(balancer) => match balancer.place(tcp, peer) {
                            Ok(Some(incoming)) => incoming,
                            Ok(None) => continue,
                            Err(err) => {
                                tracing::debug!(error = %err, "an accepted connection was lost");
                                continue;
                            }
                        },
                    }
                }
                Err(err) => {
                    // Out of file descriptors or the like: back off instead of spinning.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            Some(handed) = async {
                match &mut balancer {
                    Some(balancer) => balancer.handed().await,
                    None => std::future::pending().await,
                }
            } => handed,
            () = async { let _ = stopping.wait_for(|stop| *stop).await; } => break,
        };
        serve(incoming);
    }
    drop(listener);
    for incoming in balancer.as_mut().map(Balancer::close).unwrap_or_default() {
        serve(incoming);
    }
    graceful.shutdown().await;
}

/// Keeps a timer due within a second on this event loop, for as long as the loop runs.
///
/// tokio's timer wakes its loop (a system call, an `eventfd` write) for each timer set sooner
/// than the earliest one the loop knew of when it last slept, and for every timer set after it
/// slept with none. With answers waiting for the audit writer, every connection of a busy loop
/// is mid-request when the loop sleeps, so none has its header-read timer: each connection's
/// next request then set one, and each cost a system call (a third of one per call in
/// bench/run). Beside a timer always due within a second, the 30-second ones never come first.
async fn keep_a_timer_due() {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
    }
}

async fn upkeep(gateway: Arc<Gateway>) {
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    loop {
        tick.tick().await;
        gateway.state.sweep(Instant::now());
        gateway.expire_approvals();
        gateway.end_idle_sessions().await;
    }
}
