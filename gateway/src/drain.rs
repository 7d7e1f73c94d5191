//! Draining on SIGTERM ([`crate::http::server::serve_draining`]): the gateway stops taking new calls but keeps every call it
//! is proxying until that call ends or the drain deadline (`SWITCHBOARD_DRAIN_SECONDS`) passes,
//! then exits.
//!
//! Why not axum's graceful shutdown alone: it stops accepting connections at once (so the
//! runtimes' last events and the carriers' status callbacks of the calls still running would
//! be refused) and does not wait for upgraded connections (it would cut every proxied media
//! stream). So the order is: readiness turns false (`/readyz` 503, so the Service stops sending
//! new traffic), new inbound and campaign calls are refused (503, `calls::admission`), HTTP
//! keeps being served while media streams are open, streams still open at the deadline are
//! closed (1001 going away), HTTP stays up [`crate::http::server::LAST_EVENTS_GRACE`] longer for the calls' last
//! events and status callbacks, and only then does the HTTP server shut down gracefully.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The drain state one gateway process shares between readiness, call admission and the
/// media proxy (cheap to clone).
#[derive(Clone, Debug)]
pub struct Drain {
    draining: Arc<AtomicBool>,
    streams: Arc<watch::Sender<usize>>,
    expired: CancellationToken,
}

impl Default for Drain {
    fn default() -> Self {
        Self {
            draining: Arc::default(),
            streams: Arc::new(watch::channel(0).0),
            expired: CancellationToken::new(),
        }
    }
}

/// One proxied media stream, counted while it lives.
#[derive(Debug)]
pub struct StreamGuard {
    streams: Arc<watch::Sender<usize>>,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.streams.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl Drain {
    /// Whether the process is draining (readiness false, no new calls).
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Starts draining.
    pub fn start(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Counts a media stream until the guard is dropped.
    pub fn stream(&self) -> StreamGuard {
        self.streams.send_modify(|n| *n += 1);
        StreamGuard {
            streams: self.streams.clone(),
        }
    }

    /// Media streams open now.
    pub fn open_streams(&self) -> usize {
        *self.streams.borrow()
    }

    /// Cancelled when the drain deadline has passed: streams still open close then.
    pub fn expired(&self) -> CancellationToken {
        self.expired.clone()
    }

    /// Waits until no media stream is open or `deadline` has passed (then closes the rest);
    /// `true` when every stream ended by itself.
    pub async fn wait_for_streams(&self, deadline: Duration) -> bool {
        let mut streams = self.streams.subscribe();
        let ended = tokio::time::timeout(deadline, streams.wait_for(|n| *n == 0))
            .await
            .is_ok_and(|r| r.is_ok());
        if !ended {
            self.expired.cancel();
        }
        ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn draining_waits_for_streams_and_cuts_them_at_the_deadline() {
        let drain = Drain::default();
        assert!(drain.wait_for_streams(Duration::from_millis(10)).await);
        let drain = Drain::default();
        let stream = drain.stream();
        let waiter = {
            let drain = drain.clone();
            tokio::spawn(async move { drain.wait_for_streams(Duration::from_secs(5)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(drain.open_streams(), 1);
        drop(stream);
        assert!(waiter.await.unwrap());
        assert!(!drain.expired().is_cancelled());

        let _stuck = drain.stream();
        assert!(!drain.wait_for_streams(Duration::from_millis(20)).await);
        assert!(drain.expired().is_cancelled());
    }
}
