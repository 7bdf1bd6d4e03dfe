//! The server's edge: how connections are accepted, limited and reclaimed.
//!
//! Every listener (devices, over TLS; the admin API) keeps at most
//! [`EdgeConfig::max_connections`] connections. Each connection records when it last
//! received a byte, and whether the server is working on one of its requests. When the cap
//! is reached, a new connection takes the place of the one that has been silent longest —
//! if it has been silent for at least [`EdgeConfig::stall_after`] and the server is not
//! working for it — so clients that open connections and then send nothing (slow headers,
//! a body that never finishes, a TLS handshake left half done, an idle keep-alive) cannot
//! keep others out; when every connection is busy, new ones wait in the listen backlog. Independently, request headers must arrive within
//! [`EdgeConfig::header_timeout`] (also the keep-alive idle limit) and a request body
//! within [`EdgeConfig::body_timeout`] (HTTP 408), and a TLS handshake within
//! [`EdgeConfig::tls_handshake_timeout`].
//!
//! The defaults keep a 2-core server with 1,024 file descriptors answering while 1,000
//! stalled clients hold connections (`tests/edge.rs`).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Connection limits and timeouts (`edge` in the configuration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EdgeConfig {
    /// Connections held at once per listener (keep it well below the process's file
    /// descriptor limit: storage and outgoing connections need some).
    pub max_connections: usize,
    /// A connection silent this long may be closed to make room for a new one when the cap
    /// is reached, milliseconds.
    pub stall_after_ms: u64,
    /// Request headers (and the next request on a kept-alive connection) must arrive
    /// within this, seconds.
    pub header_timeout_secs: u64,
    /// A request body must arrive within this, seconds (then HTTP 408).
    pub body_timeout_secs: u64,
    /// A TLS handshake must complete within this, seconds.
    pub tls_handshake_timeout_secs: u64,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        Self {
            max_connections: 768,
            stall_after_ms: 250,
            header_timeout_secs: 30,
            body_timeout_secs: 30,
            tls_handshake_timeout_secs: 10,
        }
    }
}

impl EdgeConfig {
    /// See [`EdgeConfig::stall_after_ms`].
    pub fn stall_after(&self) -> Duration {
        Duration::from_millis(self.stall_after_ms)
    }

    /// See [`EdgeConfig::header_timeout_secs`].
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_secs.max(1))
    }

    /// See [`EdgeConfig::body_timeout_secs`].
    pub fn body_timeout(&self) -> Duration {
        Duration::from_secs(self.body_timeout_secs.max(1))
    }

    /// See [`EdgeConfig::tls_handshake_timeout_secs`].
    pub fn tls_handshake_timeout(&self) -> Duration {
        Duration::from_secs(self.tls_handshake_timeout_secs.max(1))
    }
}

/// When a connection last received bytes (milliseconds since the listener started), and
/// how many of its requests the server is working on.
#[derive(Debug)]
struct Activity {
    last: AtomicU64,
    busy: AtomicU64,
}

/// A connection's activity record, for the request handlers (in each request's
/// extensions): [`ConnectionActivity::working`] marks the time the server spends on a
/// request whose body has arrived, so the connection is not taken for a stalled one.
#[derive(Debug, Clone)]
pub struct ConnectionActivity(Arc<Activity>);

impl ConnectionActivity {
    /// Marks the connection busy until the guard is dropped.
    pub fn working(&self) -> Working {
        self.0.busy.fetch_add(1, Ordering::Relaxed);
        Working(self.0.clone())
    }
}

/// See [`ConnectionActivity::working`].
#[derive(Debug)]
pub struct Working(Arc<Activity>);

impl Drop for Working {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The connections of one listener.
#[derive(Debug)]
struct Registry {
    started: Instant,
    next_id: AtomicU64,
    live: Mutex<HashMap<u64, (Arc<Activity>, tokio::task::AbortHandle)>>,
}

impl Registry {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn len(&self) -> usize {
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Closes the connection silent longest if it has been silent at least `stall`.
    /// Returns whether one was closed.
    fn evict_stalled(&self, stall: Duration) -> bool {
        let now = self.now_ms();
        let stall = u64::try_from(stall.as_millis()).unwrap_or(u64::MAX);
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        let oldest = live
            .iter()
            .filter(|(_, (a, _))| a.busy.load(Ordering::Relaxed) == 0)
            .map(|(id, (a, _))| (*id, a.last.load(Ordering::Relaxed)))
            .min_by_key(|(_, last)| *last);
        match oldest {
            Some((id, last)) if now.saturating_sub(last) >= stall => {
                if let Some((_, handle)) = live.remove(&id) {
                    handle.abort();
                }
                true
            }
            _ => false,
        }
    }
}

/// A TCP stream that records when it last received bytes.
#[derive(Debug)]
pub struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
    registry: Arc<Registry>,
}

impl Tracked {
    /// The connection's activity record (put it in each request's extensions).
    pub fn activity(&self) -> ConnectionActivity {
        ConnectionActivity(self.activity.clone())
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let now = self.registry.now_ms();
            self.activity.last.store(now, Ordering::Relaxed);
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Accepts connections on `listener` forever, within `config`'s cap, and runs `serve`
/// for each on its own task.
pub async fn accept_loop<F, Fut>(listener: TcpListener, config: EdgeConfig, serve: F)
where
    F: Fn(Tracked) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let registry = Arc::new(Registry {
        started: Instant::now(),
        next_id: AtomicU64::new(0),
        live: Mutex::new(HashMap::new()),
    });
    let serve = Arc::new(serve);
    loop {
        // Room first: make some by closing a stalled connection, or wait for one.
        while registry.len() >= config.max_connections.max(1) {
            if !registry.evict_stalled(config.stall_after()) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                // Out of descriptors (or a transient error): shed a stalled connection and
                // try again shortly.
                tracing::warn!(error = %e, "accept failed");
                registry.evict_stalled(Duration::ZERO);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let id = registry.next_id.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity {
            last: AtomicU64::new(registry.now_ms()),
            busy: AtomicU64::new(0),
        });
        let stream = Tracked {
            inner: tcp,
            activity: activity.clone(),
            registry: registry.clone(),
        };
        // Registered before it runs, removed when it ends (or is aborted).
        let mut live = registry.live.lock().unwrap_or_else(PoisonError::into_inner);
        let (registry2, serve2) = (registry.clone(), serve.clone());
        let task = tokio::spawn(async move {
            serve2(stream).await;
            registry2
                .live
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&id);
        });
        live.insert(id, (activity, task.abort_handle()));
    }
}
