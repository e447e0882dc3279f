//! Sockets, framing and dispatch.
//!
//! One task accepts connections; each connection has a reader task (frames, with a size cap and an
//! idle deadline) and a task that serves its requests strictly in order, as Kafka does. A request
//! frame is refused — the connection is closed — when its length prefix exceeds the cap, its API key
//! or version is not served, its header does not decode, or its body does not fit the API's schema
//! ([`crate::guard`]) or does not decode. ApiVersions at an unknown version gets Kafka's v0 answer
//! with UNSUPPORTED_VERSION instead. One more task fires acquisition-lock deadlines and fences
//! members that stopped heartbeating.

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures::{FutureExt, StreamExt};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;

use crate::api;
use crate::config::BrokerConfig;
use crate::state::State;

/// Counters behind [`crate::BrokerStats`].
#[derive(Debug, Default)]
pub struct Stats {
    pub connections: AtomicU64,
    pub open_connections: AtomicU64,
    pub requests: AtomicU64,
    pub rejected_frames: AtomicU64,
    pub panics: AtomicU64,
    pub restarts: AtomicU64,
}

/// What every task shares.
pub struct Shared {
    pub config: BrokerConfig,
    pub addr: SocketAddr,
    /// The address the broker gives out for itself.
    pub advertised: SocketAddr,
    state: Mutex<State>,
    /// Records may have become acquirable (produce, release, expiry, restart): long-polling
    /// ShareFetches look again.
    pub wake: Notify,
    /// A lock deadline was added: the timer task looks again.
    pub timer_wake: Notify,
    /// Cancelled when the broker stops.
    pub shutdown: CancellationToken,
    /// Cancelled (and replaced) by a restart: every connection accepted before it closes.
    generation: Mutex<CancellationToken>,
    next_conn: AtomicU64,
    pub stats: Stats,
}

fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves consistent-enough plain data; keep serving.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    pub fn new(config: BrokerConfig, addr: SocketAddr) -> Shared {
        let shutdown = CancellationToken::new();
        let generation = Mutex::new(shutdown.child_token());
        Shared {
            advertised: config.advertised.unwrap_or(addr),
            config,
            addr,
            state: Mutex::new(State::new()),
            wake: Notify::new(),
            timer_wake: Notify::new(),
            shutdown,
            generation,
            next_conn: AtomicU64::new(1),
            stats: Stats::default(),
        }
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        relock(&self.state)
    }

    pub fn restart(&self) {
        self.state().restart(&self.config);
        let fresh = self.shutdown.child_token();
        let old = std::mem::replace(&mut *relock(&self.generation), fresh);
        old.cancel();
        self.stats.restarts.fetch_add(1, Ordering::Relaxed);
        self.wake.notify_waiters();
        self.trace(|| "restart: connections, sessions and locks dropped".to_string());
    }

    pub fn trace(&self, line: impl FnOnce() -> String) {
        if self.config.trace {
            eprintln!("broker: {}", line());
        }
    }
}

/// One connection, as handlers see it.
pub struct ConnCtx {
    pub id: u64,
    pub peer: SocketAddr,
    /// Cancelled when the client side is gone (EOF or read error).
    pub closed: CancellationToken,
    /// Cancelled by a restart or shutdown.
    pub generation: CancellationToken,
}

/// What to do with a request.
pub enum Reply {
    /// Send this frame (length prefix included).
    Send(Bytes),
    /// Send nothing (Produce with acks=0).
    Nothing,
    /// Close the connection.
    Close(String),
}

pub async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let accepted = tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, peer)) => {
                let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
                let generation = relock(&shared.generation).clone();
                shared.stats.connections.fetch_add(1, Ordering::Relaxed);
                shared
                    .stats
                    .open_connections
                    .fetch_add(1, Ordering::Relaxed);
                let s = shared.clone();
                tokio::spawn(async move {
                    let ctx = ConnCtx {
                        id,
                        peer,
                        closed: CancellationToken::new(),
                        generation,
                    };
                    let served = AssertUnwindSafe(connection(&s, &ctx, stream))
                        .catch_unwind()
                        .await;
                    if served.is_err() {
                        s.stats.panics.fetch_add(1, Ordering::Relaxed);
                        eprintln!("broker: connection {id} from {peer}: handler panicked");
                    }
                    // Whatever ended the connection, its share sessions end with it (§6.3).
                    let changed = s.state().connection_closed(&s.config, id);
                    if changed {
                        s.wake.notify_waiters();
                    }
                    s.stats.open_connections.fetch_sub(1, Ordering::Relaxed);
                    s.trace(|| format!("conn {id} from {peer}: closed"));
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                shared.trace(|| format!("accept: {e}"));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

pub async fn timer_loop(shared: Arc<Shared>) {
    let mut next_sweep = Instant::now();
    loop {
        let now = Instant::now();
        let (changed, next) = {
            let mut st = shared.state();
            let changed = st.expire_due(&shared.config, now);
            if now >= next_sweep {
                st.expire_members(&shared.config, now);
                next_sweep = now + Duration::from_secs(1);
            }
            (changed, st.next_deadline())
        };
        if changed {
            shared.wake.notify_waiters();
        }
        let until = next.map_or(next_sweep, |d| d.min(next_sweep));
        tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            _ = tokio::time::sleep_until(until.into()) => {}
            _ = shared.timer_wake.notified() => {}
        }
    }
}

async fn connection(shared: &Arc<Shared>, ctx: &ConnCtx, stream: TcpStream) {
    shared.trace(|| format!("conn {} from {}: open", ctx.id, ctx.peer));
    let _ = stream.set_nodelay(true);
    let (rd, mut wr) = stream.into_split();
    let codec = LengthDelimitedCodec::builder()
        .length_field_length(4)
        .max_frame_length(shared.config.max_frame_bytes)
        .new_codec();
    let mut frames = FramedRead::new(rd, codec);
    let (tx, mut rx) = mpsc::channel::<BytesMut>(4);
    let closed = ctx.closed.clone();
    let generation = ctx.generation.clone();
    let idle = shared.config.idle_timeout;
    let s = shared.clone();
    let id = ctx.id;
    let reader = tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                _ = generation.cancelled() => break,
                r = tokio::time::timeout(idle, frames.next()) => r,
            };
            match next {
                Ok(Some(Ok(frame))) => {
                    if tx.send(frame).await.is_err() {
                        break;
                    }
                }
                Ok(Some(Err(e))) => {
                    s.stats.rejected_frames.fetch_add(1, Ordering::Relaxed);
                    s.trace(|| format!("conn {id}: bad frame: {e}"));
                    break;
                }
                Ok(None) => break,
                Err(_) => {
                    s.trace(|| format!("conn {id}: idle for {idle:?}, closing"));
                    break;
                }
            }
        }
        closed.cancel();
    });
    loop {
        let frame = tokio::select! {
            _ = ctx.generation.cancelled() => break,
            f = rx.recv() => f,
        };
        let Some(frame) = frame else {
            break;
        };
        match dispatch(shared, ctx, frame.freeze()).await {
            Reply::Send(bytes) => {
                shared.stats.requests.fetch_add(1, Ordering::Relaxed);
                let write = tokio::time::timeout(shared.config.write_timeout, wr.write_all(&bytes));
                let ok = tokio::select! {
                    _ = ctx.generation.cancelled() => false,
                    r = write => matches!(r, Ok(Ok(()))),
                };
                if !ok {
                    break;
                }
            }
            Reply::Nothing => {
                shared.stats.requests.fetch_add(1, Ordering::Relaxed);
            }
            Reply::Close(why) => {
                shared.stats.rejected_frames.fetch_add(1, Ordering::Relaxed);
                shared.trace(|| format!("conn {}: closing: {why}", ctx.id));
                break;
            }
        }
    }
    reader.abort();
    let _ = tokio::time::timeout(Duration::from_millis(100), wr.shutdown()).await;
}

/// The correlation id sits at bytes 4..8 of every request header version.
fn correlation_id(frame: &[u8]) -> Option<i32> {
    frame
        .get(4..8)
        .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Why a request cannot be served: the connection is closed with this reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProtocolError(pub String);

/// Decodes a request body; a decoder panic is caught and reported as an error.
pub fn decode_body<R: Decodable>(body: &mut Bytes, version: i16) -> Result<R, ProtocolError> {
    match std::panic::catch_unwind(AssertUnwindSafe(|| R::decode(body, version))) {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Err(ProtocolError(format!("undecodable body: {e}"))),
        Err(_) => Err(ProtocolError("the decoder panicked".to_string())),
    }
}

/// Frames a response: length prefix, response header (its version from the message), body.
pub fn encode_response<R: Encodable + HeaderVersion>(
    resp: &R,
    version: i16,
    correlation_id: i32,
) -> Result<Bytes, ProtocolError> {
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, R::header_version(version))
        .map_err(|e| ProtocolError(format!("cannot encode the response header: {e}")))?;
    resp.encode(&mut buf, version)
        .map_err(|e| ProtocolError(format!("cannot encode the response: {e}")))?;
    let n = i32::try_from(buf.len() - 4)
        .map_err(|_| ProtocolError("response too large".to_string()))?;
    buf[..4].copy_from_slice(&n.to_be_bytes());
    Ok(buf.freeze())
}

async fn dispatch(shared: &Arc<Shared>, ctx: &ConnCtx, frame: Bytes) -> Reply {
    match dispatch_inner(shared, ctx, frame).await {
        Ok(r) => r,
        Err(why) => Reply::Close(why.0),
    }
}

async fn dispatch_inner(
    shared: &Arc<Shared>,
    ctx: &ConnCtx,
    frame: Bytes,
) -> Result<Reply, ProtocolError> {
    if frame.len() < 8 {
        return Err(ProtocolError(format!(
            "a request frame of {} bytes has no header",
            frame.len()
        )));
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let api_key =
        ApiKey::try_from(key).map_err(|_| ProtocolError(format!("unknown API key {key}")))?;
    let Some(range) = api::served(api_key) else {
        return Err(ProtocolError(format!(
            "API {api_key:?} ({key}) is not served"
        )));
    };
    if api_key == ApiKey::ApiVersions && !(range.0..=range.1).contains(&version) {
        // KIP-511: answer an unknown ApiVersions version in the v0 format with UNSUPPORTED_VERSION.
        let corr = correlation_id(&frame).unwrap_or(0);
        shared.trace(|| format!("conn {}: ApiVersions v{version} unsupported", ctx.id));
        return encode_response(&api::api_versions::unsupported(), 0, corr).map(Reply::Send);
    }
    if !(range.0..=range.1).contains(&version) {
        return Err(ProtocolError(format!(
            "{api_key:?} v{version} is not served (v{}-v{})",
            range.0, range.1
        )));
    }
    let mut buf = frame;
    let header_version = api_key.request_header_version(version);
    let header = match std::panic::catch_unwind(AssertUnwindSafe(|| {
        RequestHeader::decode(&mut buf, header_version)
    })) {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => return Err(ProtocolError(format!("undecodable request header: {e}"))),
        Err(_) => return Err(ProtocolError("the header decoder panicked".to_string())),
    };
    sharecheck_client::guard::check(key, version, buf.chunk())
        .map_err(|e| ProtocolError(e.to_string()))?;
    shared.trace(|| {
        format!(
            "conn {}: {api_key:?} v{version} corr {} client {:?}",
            ctx.id,
            header.correlation_id,
            header.client_id.as_deref().unwrap_or("")
        )
    });
    api::serve(shared, ctx, api_key, version, header, buf).await
}
