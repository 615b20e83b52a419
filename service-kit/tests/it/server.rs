//! The HTTP server's connection limits, on [`service_kit::server::serve`]
//! itself with a one-route router: no broker or database is involved.
//! Clients on other loopback addresses (127.0.0.2, …) stand for other
//! machines.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use service_kit::server::{ServerLimits, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;

/// The HTTP/2 connection preface, and the half of it a stalling client sends.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HALF_H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n";

/// Longest a test waits for the server to close a connection: far past
/// the 1 s header timeout, so only a server that never closes fails.
const CLOSE_WITHIN: Duration = Duration::from_secs(10);

struct Server {
    address: SocketAddr,
    shutdown: CancellationToken,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn limits() -> ServerLimits {
    ServerLimits {
        header_read_timeout: Duration::from_secs(1),
        max_connections: 16,
        max_connections_per_address: 4,
        ..ServerLimits::default()
    }
}

async fn start(limits: ServerLimits) -> Server {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = Router::new().route("/healthz", get(|| async { "ok" }));
    let shutdown = CancellationToken::new();
    tokio::spawn(serve(listener, router, limits, shutdown.clone()));
    Server { address, shutdown }
}

/// A connection from `from` (a loopback address) to `server`.
async fn connect_from(from: Ipv4Addr, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind((from, 0).into()).unwrap();
    socket.connect(server).await.unwrap()
}

/// Whether the server closes `stream` within [`CLOSE_WITHIN`], reading
/// (and discarding) whatever it sends first.
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buffer = [0u8; 1024];
    tokio::time::timeout(CLOSE_WITHIN, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// `GET /healthz` over HTTP/1.1 on a new connection from `from`: the
/// status line, or why there was none within 5 s.
async fn get_healthz_from(from: Ipv4Addr, server: SocketAddr) -> Result<String, String> {
    tokio::time::timeout(Duration::from_secs(5), async {
        let mut stream = connect_from(from, server).await;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: oms\r\nConnection: close\r\n\r\n")
            .await
            .map_err(|e| e.to_string())?;
        let mut answer = Vec::new();
        stream
            .read_to_end(&mut answer)
            .await
            .map_err(|e| e.to_string())?;
        let answer = String::from_utf8_lossy(&answer).into_owned();
        Ok(answer.lines().next().unwrap_or_default().to_owned())
    })
    .await
    .unwrap_or_else(|_| Err("no answer within 5 s".to_owned()))
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_header_timeout() {
    let server = start(limits()).await;
    let mut silent = connect_from(Ipv4Addr::LOCALHOST, server.address).await;
    assert!(
        closed_by_server(&mut silent).await,
        "a connection that sent nothing was still open after {CLOSE_WITHIN:?} (header timeout 1 s)"
    );
}

#[tokio::test]
async fn half_an_http2_preface_is_closed_after_the_header_timeout() {
    let server = start(limits()).await;
    let mut stalled = connect_from(Ipv4Addr::LOCALHOST, server.address).await;
    stalled.write_all(HALF_H2_PREFACE).await.unwrap();
    assert!(
        closed_by_server(&mut stalled).await,
        "a connection that sent half the HTTP/2 preface was still open after {CLOSE_WITHIN:?}"
    );
}

#[tokio::test]
async fn an_http2_connection_without_a_request_is_closed_after_the_header_timeout() {
    let server = start(limits()).await;
    let mut idle = connect_from(Ipv4Addr::LOCALHOST, server.address).await;
    idle.write_all(H2_PREFACE).await.unwrap();
    // An empty SETTINGS frame: the preface is complete, no stream follows.
    idle.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap();
    assert!(
        closed_by_server(&mut idle).await,
        "an HTTP/2 connection that opened no stream was still open after {CLOSE_WITHIN:?}"
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let server = start(ServerLimits {
        idle_timeout: Duration::from_secs(1),
        ..limits()
    })
    .await;
    let mut stream = connect_from(Ipv4Addr::LOCALHOST, server.address).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: oms\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 256];
    let n = stream.read(&mut answer).await.unwrap();
    assert!(
        String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer[..n])
    );
    assert!(
        closed_by_server(&mut stream).await,
        "a keep-alive connection idle after its answer was still open after {CLOSE_WITHIN:?}"
    );
}

#[tokio::test]
async fn http2_advertises_its_bound_on_concurrent_streams() {
    let server = start(ServerLimits {
        http2_max_concurrent_streams: 7,
        ..limits()
    })
    .await;
    let mut stream = connect_from(Ipv4Addr::LOCALHOST, server.address).await;
    stream.write_all(H2_PREFACE).await.unwrap();
    stream
        .write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0])
        .await
        .unwrap();
    // The server's first frame is its SETTINGS: 6-byte (id, value) pairs.
    let mut header = [0u8; 9];
    stream.read_exact(&mut header).await.unwrap();
    assert_eq!(header[3], 4, "the first frame is not SETTINGS: {header:?}");
    let length =
        usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
    let mut payload = vec![0u8; length];
    stream.read_exact(&mut payload).await.unwrap();
    let settings: Vec<(u16, u32)> = payload
        .chunks_exact(6)
        .map(|s| {
            (
                u16::from_be_bytes([s[0], s[1]]),
                u32::from_be_bytes([s[2], s[3], s[4], s[5]]),
            )
        })
        .collect();
    const MAX_CONCURRENT_STREAMS: u16 = 3;
    assert!(
        settings.contains(&(MAX_CONCURRENT_STREAMS, 7)),
        "SETTINGS_MAX_CONCURRENT_STREAMS is not 7: {settings:?}"
    );
}

/// The reproduction, scaled down: one address opens the whole
/// connection cap's worth of silent sockets; a client on another address
/// still gets its answer, and the refusals show in a metric.
#[tokio::test]
async fn with_the_cap_full_of_silent_sockets_a_new_client_still_gets_its_answer() {
    let metrics = service_kit::health::prometheus();
    let limits = limits();
    let server = start(limits).await;
    let mut silent = Vec::new();
    for _ in 0..limits.max_connections {
        silent.push(connect_from(Ipv4Addr::LOCALHOST, server.address).await);
    }
    // Let the server accept what it will.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let answer = get_healthz_from(Ipv4Addr::new(127, 0, 0, 2), server.address).await;
    assert_eq!(
        answer.as_deref(),
        Ok("HTTP/1.1 200 OK"),
        "a new client was not answered while one address held {} silent connections",
        limits.max_connections
    );
    let rendered = metrics.render();
    assert!(
        rendered.lines().any(
            |line| line.starts_with("oms_http_connections_refused_total")
                && line.contains("reason=\"per_address\"")
        ),
        "no per-address refusals in the metrics:\n{rendered}"
    );
    drop(silent);
}

/// An HTTP client's pool keeps more keep-alive connections open than it
/// uses at once. When one address's share is full of idle keep-alive
/// connections, its new connection is served, and the connection idle the
/// longest is closed to make room.
#[tokio::test]
async fn a_full_share_of_idle_keep_alive_connections_makes_room_for_a_new_one() {
    let limits = limits();
    let server = start(limits).await;
    let mut pool = Vec::new();
    for _ in 0..limits.max_connections_per_address {
        let mut stream = connect_from(Ipv4Addr::LOCALHOST, server.address).await;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: oms\r\n\r\n")
            .await
            .unwrap();
        let mut answer = [0u8; 256];
        let n = stream.read(&mut answer).await.unwrap();
        assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 200"));
        pool.push(stream);
    }
    let answer = get_healthz_from(Ipv4Addr::LOCALHOST, server.address).await;
    assert_eq!(
        answer.as_deref(),
        Ok("HTTP/1.1 200 OK"),
        "a new connection from an address whose share is full of idle ones"
    );
    assert!(
        closed_by_server(&mut pool[0]).await,
        "the connection idle the longest was not closed to make room"
    );
}
