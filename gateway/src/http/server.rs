//! The HTTP server loop: axum's router on hyper, with the connection-level limits that
//! `axum::serve` has no setting for.
//!
//! Why not `axum::serve`: it gives hyper no timer, so hyper's header-read timeout is off and a
//! client that sends half a request line holds a connection (and its task) for as long as it
//! likes. Here each connection is served by hyper-util's auto (HTTP/1.1 and h2c) builder, as
//! `axum::serve` does, with a Tokio timer and `header_read_timeout`; request bodies get an
//! idle timeout in the router ([`crate::http::app`]). Graceful shutdown works as in
//! `axum::serve`: stop accepting, ask every connection to finish its requests, wait for them.
//!
//! HTTP/2 (h2c, prior knowledge) has no header-read timeout in hyper. Two settings stand in
//! for it: a connection must complete its first request's headers within
//! `header_read_timeout` (else it is closed, as HTTP/1.1's would be), and afterwards hyper
//! pings every `header_read_timeout` and closes a connection whose peer does not answer
//! within as long. What stays open is a peer that answers pings and trickles new streams'
//! headers: bounded per connection by hyper's defaults (200 concurrent streams, 16 KiB of
//! header list each), like an idle HTTP/1.1 keep-alive connection.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::state::AppState;

/// Serves `router` on `listener` until `shutdown` completes, then drains open connections.
/// Each request carries `ConnectInfo<SocketAddr>` (per-IP rate limits read it).
/// `header_read_timeout`: how long a client may take to send a request's headers.
pub async fn serve<F>(
    listener: TcpListener,
    router: Router,
    header_read_timeout: Duration,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    // Dropping `signal_tx` tells every connection to shut down gracefully; `close_tx.closed()`
    // completes when every connection task has dropped its `close_rx`.
    let (signal_tx, signal_rx) = watch::channel(());
    let (close_tx, close_rx) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        // Set once the connection's first request has arrived (its headers complete).
        let first_request = Arc::new(AtomicBool::new(false));
        let arrived = first_request.clone();
        let service = TowerToHyperService::new(router.map_request(
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                arrived.store(true, Ordering::Relaxed);
                request.extensions_mut().insert(ConnectInfo(peer));
                request.map(axum::body::Body::new)
            },
        ));
        let mut signal_rx = signal_rx.clone();
        let close_rx = close_rx.clone();
        tokio::spawn(async move {
            let mut builder = Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout);
            builder
                .http2()
                .timer(TokioTimer::new())
                .keep_alive_interval(header_read_timeout)
                .keep_alive_timeout(header_read_timeout)
                .enable_connect_protocol();
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            tokio::pin!(connection);
            // HTTP/2's stand-in for the header-read timeout (HTTP/1.1 has hyper's own): no
            // first request within the timeout, no connection.
            let no_first_request = async {
                tokio::time::sleep(header_read_timeout).await;
                if first_request.load(Ordering::Relaxed) {
                    std::future::pending::<()>().await;
                }
            };
            let result = tokio::select! {
                result = connection.as_mut() => result,
                // `Err` once the server drops the sender: shutting down.
                _ = signal_rx.changed() => {
                    connection.as_mut().graceful_shutdown();
                    connection.as_mut().await
                }
                () = no_first_request => {
                    connection.as_mut().graceful_shutdown();
                    // A peer that does not even read the GOAWAY is dropped.
                    tokio::time::timeout(header_read_timeout, connection.as_mut())
                        .await
                        .unwrap_or(Ok(()))
                }
            };
            if let Err(error) = result {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
            drop(close_rx);
        });
    }
    drop(signal_rx);
    drop(close_rx);
    drop(listener);
    drop(signal_tx);
    close_tx.closed().await;
    Ok(())
}

/// How long HTTP stays up after the last proxied call ended, for that call's last events.
pub const LAST_EVENTS_GRACE: Duration = Duration::from_secs(5);

/// Serves the gateway on `listener` until `shutdown` resolves, then drains (see [`crate::drain`]) for at most `state.config.drain_seconds` and returns.
pub async fn serve_draining(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let drain = state.drain.clone();
    let deadline = Duration::from_secs(state.config.drain_seconds);
    let header_read_timeout = Duration::from_secs(state.config.header_read_timeout_secs.max(1));
    // The gateway's own server loop: axum::serve has no header-read timeout (issue 15).
    serve(
        listener,
        crate::app(state),
        header_read_timeout,
        async move {
            shutdown.await;
            drain.start();
            let open = drain.open_streams();
            tracing::info!(
                open_streams = open,
                deadline_secs = deadline.as_secs(),
                "draining: no new calls; waiting for the proxied calls to end"
            );
            let started = tokio::time::Instant::now();
            let graceful = drain.wait_for_streams(deadline).await;
            // The calls' last runtime events and carrier status callbacks follow the end of
            // their streams; keep answering them a little longer (within the deadline).
            let left = deadline.saturating_sub(started.elapsed());
            tokio::time::sleep(LAST_EVENTS_GRACE.min(left)).await;
            tracing::info!(graceful, "drain complete; closing the HTTP server");
        },
    )
    .await
}
