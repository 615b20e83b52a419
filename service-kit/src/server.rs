//! The HTTP server: the router on hyper, with the limits that keep slow,
//! silent or greedy clients from holding a service.
//!
//! ## Guarantees
//! - **A request head in time, whatever the protocol**: a new connection
//!   has [`ServerLimits::header_read_timeout`] (`OMS_HTTP_HEADER_TIMEOUT_SECS`)
//!   to deliver a complete request head, over HTTP/1.1 or HTTP/2 alike.
//!   A client that sends nothing, half the HTTP/2 preface, a preface and
//!   no stream, or trickles its headers (slowloris) is disconnected: the
//!   time counts from the connection's opening, through protocol detection.
//! - **No idle connection for ever**: once a connection has no request in
//!   flight, it is closed after [`ServerLimits::idle_timeout`]
//!   (`OMS_HTTP_IDLE_TIMEOUT_SECS`), HTTP/1.1 keep-alive and HTTP/2 alike
//!   (HTTP/2 gets a GOAWAY first).
//! - **HTTP/2 liveness and streams**: the server pings an HTTP/2 peer every
//!   [`HTTP2_KEEP_ALIVE_INTERVAL`] and drops it when a ping goes unanswered
//!   for the header timeout; a connection carries at most
//!   [`ServerLimits::http2_max_concurrent_streams`] concurrent requests
//!   (`OMS_HTTP2_MAX_CONCURRENT_STREAMS`), and its header list at most
//!   [`HTTP2_MAX_HEADER_LIST_BYTES`].
//! - **Request timeout**: a request that takes longer than
//!   [`ServerLimits::request_timeout`] (`OMS_HTTP_REQUEST_TIMEOUT_SECS`) is
//!   answered 408 and its handler dropped.
//! - **Connection cap**: at most [`ServerLimits::max_connections`]
//!   (`OMS_HTTP_MAX_CONNECTIONS`) are open; the next client waits in the
//!   listen backlog until one closes, and nothing is spawned for it.
//! - **A share per address**: one client address holds at most
//!   [`ServerLimits::max_connections_per_address`]
//!   (`OMS_HTTP_MAX_CONNECTIONS_PER_ADDRESS`) of them, so one address
//!   cannot take the edge down alone. When its share is full, its
//!   keep-alive connection idle the longest (one that served a request and
//!   has none in flight) is closed to make room, as HTTP clients' pools
//!   keep more connections than they use at once
//!   (`oms_http_connections_evicted_total`); when every one is busy or has
//!   sent no request yet, the new connection is closed at once and counted
//!   in `oms_http_connections_refused_total{reason="per_address"}`. A
//!   closed connection may take up to a second to finish closing, beyond
//!   the share. Behind a reverse proxy
//!   (`OMS_CLIENT_IP_HEADER` set) every connection comes from the proxy,
//!   and the share is the whole cap.
//! - **Peer address**: every request carries the client's socket address
//!   as axum's [`ConnectInfo`], for per-address limits.
//! - **Graceful shutdown**: on shutdown the listener closes, open
//!   connections finish their requests in flight, then close.
//!
//! `oms_http_connections_open` is the number of open connections.

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// How often the server pings an HTTP/2 peer to see that it is there.
pub const HTTP2_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(20);

/// The largest HTTP/2 header list (decoded) the server accepts.
pub const HTTP2_MAX_HEADER_LIST_BYTES: u32 = 64 * 1024;

/// How long a connection asked to close (idle, or at shutdown) may take to
/// do so before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The limits of [`serve`].
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// Time a client has to send a request's headers; a new connection's
    /// first request head must be complete within it.
    pub header_read_timeout: Duration,
    /// Time a request may take, from its headers to its answer.
    pub request_timeout: Duration,
    /// Open connections at most.
    pub max_connections: usize,
    /// Open connections from one client address at most.
    pub max_connections_per_address: usize,
    /// Time a connection may stay open with no request in flight, after
    /// its first request.
    pub idle_timeout: Duration,
    /// Concurrent streams (requests) on one HTTP/2 connection at most.
    pub http2_max_concurrent_streams: u32,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_connections_per_address: 64,
            idle_timeout: Duration::from_secs(60),
            http2_max_concurrent_streams: 64,
        }
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: CancellationToken,
) {
    let router = router.layer(tower_http::timeout::TimeoutLayer::with_status_code(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        limits.request_timeout,
    ));
    let open = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let per_address = Shares::new(limits.max_connections_per_address.max(1));
    let connections = TaskTracker::new();
    loop {
        let permit = tokio::select! {
            () = shutdown.cancelled() => break,
            permit = open.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, for instance: wait, do not spin.
                    tracing::warn!(error = %error, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let activity = Arc::new(Activity::new());
        let evicted = CancellationToken::new();
        let share = match per_address.take(peer.ip(), &activity, &evicted) {
            Admission::Admitted(share) => share,
            Admission::AdmittedInPlaceOf(share) => {
                metrics::counter!("oms_http_connections_evicted_total").increment(1);
                share
            }
            Admission::Refused => {
                metrics::counter!("oms_http_connections_refused_total", "reason" => "per_address")
                    .increment(1);
                tracing::debug!(%peer, "connection refused: its address holds its share of the cap");
                drop(stream);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = hyper::service::service_fn({
            let (router, activity) = (router.clone(), activity.clone());
            move |request: axum::http::Request<Incoming>| {
                let in_flight = activity.begin();
                let mut request = request.map(Body::new);
                request.extensions_mut().insert(ConnectInfo(peer));
                let answer = router.clone().oneshot(request);
                async move {
                    let response = answer.await?;
                    // In flight until the answer's body is sent (dropped).
                    Ok::<_, std::convert::Infallible>(response.map(|body| {
                        Body::new(body.map_frame(move |frame| {
                            let _in_flight = &in_flight;
                            frame
                        }))
                    }))
                }
            }
        });
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let _permit = permit;
            let _share = share;
            let _open = OpenGauge::new();
            let mut builder = Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout);
            builder
                .http2()
                .timer(TokioTimer::new())
                .keep_alive_interval(HTTP2_KEEP_ALIVE_INTERVAL)
                .keep_alive_timeout(limits.header_read_timeout)
                .max_concurrent_streams(limits.http2_max_concurrent_streams)
                .max_header_list_size(HTTP2_MAX_HEADER_LIST_BYTES);
            let mut connection =
                pin!(builder.serve_connection_with_upgrades(TokioIo::new(stream), service));
            let ended = tokio::select! {
                result = connection.as_mut() => Some(result),
                () = shutdown.cancelled() => None,
                () = activity.expired(limits) => {
                    tracing::debug!(%peer, "closing a connection without a request in time");
                    None
                }
                () = evicted.cancelled() => {
                    tracing::debug!(%peer, "closing an idle connection to make room for its address's new one");
                    None
                }
            };
            let result = match ended {
                Some(result) => result,
                None => {
                    connection.as_mut().graceful_shutdown();
                    let in_flight_may_finish = if shutdown.is_cancelled() {
                        limits.request_timeout
                    } else {
                        CLOSE_GRACE
                    };
                    match tokio::time::timeout(in_flight_may_finish, connection.as_mut()).await {
                        Ok(result) => result,
                        Err(_) => Ok(()),
                    }
                }
            };
            if let Err(error) = result {
                tracing::debug!(error = %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// What a connection is doing: requests in flight, and since when it has
/// had none.
struct Activity {
    state: Mutex<ActivityState>,
    changed: Notify,
}

struct ActivityState {
    in_flight: usize,
    idle_since: Instant,
    served: bool,
}

impl Activity {
    fn new() -> Self {
        Self {
            state: Mutex::new(ActivityState {
                in_flight: 0,
                idle_since: Instant::now(),
                served: false,
            }),
            changed: Notify::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ActivityState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A request head arrived: it is in flight until the guard is dropped.
    fn begin(self: &Arc<Self>) -> InFlight {
        {
            let mut state = self.state();
            state.in_flight += 1;
            state.served = true;
        }
        self.changed.notify_waiters();
        InFlight(self.clone())
    }

    /// Since when the connection has been idle, if it has served a request
    /// and has none in flight now.
    fn idle_after_serving(&self) -> Option<Instant> {
        let state = self.state();
        (state.served && state.in_flight == 0).then_some(state.idle_since)
    }

    /// Resolves once the connection has had no request in flight for too
    /// long: the header timeout before its first request, the idle timeout
    /// after.
    async fn expired(&self, limits: ServerLimits) {
        loop {
            let changed = self.changed.notified();
            let mut changed = pin!(changed);
            changed.as_mut().enable();
            let deadline = {
                let state = self.state();
                (state.in_flight == 0).then(|| {
                    state.idle_since
                        + if state.served {
                            limits.idle_timeout
                        } else {
                            limits.header_read_timeout
                        }
                })
            };
            match deadline {
                None => changed.await,
                Some(deadline) => tokio::select! {
                    biased;
                    () = changed => {}
                    () = tokio::time::sleep_until(deadline) => return,
                },
            }
        }
    }
}

/// A request in flight on its connection.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        {
            let mut state = self.0.state();
            state.in_flight = state.in_flight.saturating_sub(1);
            state.idle_since = Instant::now();
        }
        self.0.changed.notify_waiters();
    }
}

/// Open connections per client address.
#[derive(Clone)]
struct Shares {
    open: Arc<Mutex<SharesState>>,
    max: usize,
}

#[derive(Default)]
struct SharesState {
    by_address: HashMap<IpAddr, Vec<Held>>,
    next_id: u64,
}

/// One connection in its address's share.
struct Held {
    id: u64,
    activity: Arc<Activity>,
    evicted: CancellationToken,
}

/// Whether a new connection has room in its address's share.
enum Admission {
    Admitted(Share),
    /// The address's longest-idle keep-alive connection was asked to close.
    AdmittedInPlaceOf(Share),
    Refused,
}

impl Shares {
    fn new(max: usize) -> Self {
        Self {
            open: Arc::default(),
            max,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, SharesState> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A place in `address`'s share for a connection whose `activity` it
    /// watches and that `evicted` asks to close. When the share is full,
    /// the address's connection that served a request and has been idle
    /// longest makes room (an HTTP client's pool keeps more connections
    /// open than it uses at once); when every one is busy or has not sent
    /// a request yet, the newcomer is refused.
    fn take(
        &self,
        address: IpAddr,
        activity: &Arc<Activity>,
        evicted: &CancellationToken,
    ) -> Admission {
        let mut state = self.state();
        state.next_id += 1;
        let id = state.next_id;
        let held = state.by_address.entry(address).or_default();
        let mut admission: fn(Share) -> Admission = Admission::Admitted;
        if held.len() >= self.max {
            let idle = held
                .iter()
                .enumerate()
                .filter_map(|(index, h)| {
                    h.activity.idle_after_serving().map(|since| (since, index))
                })
                .min();
            let Some((_, index)) = idle else {
                return Admission::Refused;
            };
            held.swap_remove(index).evicted.cancel();
            admission = Admission::AdmittedInPlaceOf;
        }
        held.push(Held {
            id,
            activity: activity.clone(),
            evicted: evicted.clone(),
        });
        admission(Share {
            shares: self.clone(),
            address,
            id,
        })
    }
}

/// One connection's place in its address's share.
struct Share {
    shares: Shares,
    address: IpAddr,
    id: u64,
}

impl Drop for Share {
    fn drop(&mut self) {
        let mut state = self.shares.state();
        if let Some(held) = state.by_address.get_mut(&self.address) {
            held.retain(|h| h.id != self.id);
            if held.is_empty() {
                state.by_address.remove(&self.address);
            }
        }
    }
}

/// Counts a connection in `oms_http_connections_open` while it lives.
struct OpenGauge;

impl OpenGauge {
    fn new() -> Self {
        metrics::gauge!("oms_http_connections_open").increment(1.0);
        Self
    }
}

impl Drop for OpenGauge {
    fn drop(&mut self) {
        metrics::gauge!("oms_http_connections_open").decrement(1.0);
    }
}
