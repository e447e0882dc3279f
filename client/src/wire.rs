//! One Kafka connection: framing, correlation ids, header versions, ApiVersions negotiation and a
//! deadline on every request.
//!
//! `kafka-protocol` 0.18 only encodes and decodes messages (it has no connection layer); everything that
//! makes a byte stream into request/response pairs lives here:
//!
//! * frames are a 4-byte big-endian length plus the payload (`LengthDelimitedCodec`, with the
//!   maximum raised to [`MAX_FRAME_LEN`] so a large ShareFetch response fits);
//! * every request carries a fresh correlation id and the response must echo it;
//! * header versions come from the message's `HeaderVersion` (the ApiVersions response header is
//!   always v0, which the crate encodes);
//! * ApiVersions is negotiated once per connection, with the v0 fallback Kafka uses when it does
//!   not know the requested ApiVersions version (error 35 UNSUPPORTED_VERSION in a v0 body);
//! * every other API is sent at the highest version both sides support;
//! * each request has a deadline; a connection whose request timed out or came back with the wrong
//!   correlation id is *poisoned* (a late answer could be mistaken for the next one) and refuses
//!   further requests;
//! * security as [`Security`] says (`--command-config`): a TLS handshake (rustls) before any frame,
//!   then ApiVersions, then SaslHandshake v1 + SaslAuthenticate (PLAIN, SCRAM-SHA-256/512), all
//!   within the connect deadline; when the broker gives the session a lifetime
//!   (`connections.max.reauth.ms`, KIP-368) the connection authenticates again before it ends.
//!   Authentication exchanges are never shown to the observer (they carry credentials).
//!
//! Kafka error codes are data ([`ErrorCode`]), never errors of this layer: a response carrying
//! UNKNOWN_TOPIC_ID is a successful exchange.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Buf, Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Message, Request, StrBytes};
use serde::Serialize;
use sharecheck_model::ErrorCode;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::scram::{Hash, ScramClient};
use crate::security::{Mechanism, Security};
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
use tokio_util::codec::{Framed, LengthDelimitedCodec, LengthDelimitedCodecError};

/// Largest response frame accepted (64 MiB): larger than any fetch response the suite asks for,
/// small enough that a corrupt length prefix cannot make us allocate gigabytes.
pub const MAX_FRAME_LEN: usize = 64 * 1024 * 1024;

/// Default deadline for connecting and for each request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// `ClientSoftwareName` sent in ApiVersions v3+ (must match `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?`).
pub const CLIENT_SOFTWARE_NAME: &str = "sharecheck";

/// `ClientSoftwareVersion` sent in ApiVersions v3+.
pub const CLIENT_SOFTWARE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Default `client.id` in request headers.
pub const DEFAULT_CLIENT_ID: &str = "sharecheck";

// ---------------------------------------------------------------------------------------------
// Kafka error codes as data

/// Whether Kafka marks the error retriable (from kafka-protocol's table of Kafka's errors).
pub fn is_retriable(code: ErrorCode) -> bool {
    ResponseError::try_from_code(code.0).is_some_and(|e| e.is_retriable())
}

/// The name of an API key, e.g. `ShareFetch`, or `Api(1234)` for keys the crate does not know.
pub fn api_name(key: i16) -> String {
    match ApiKey::try_from(key) {
        Ok(k) => format!("{k:?}"),
        Err(_) => format!("Api({key})"),
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

/// Why an exchange with a broker failed. Kafka error codes inside a decoded response are *not*
/// wire errors.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{addr}: no connection and ApiVersions answer within {timeout:?}")]
    ConnectTimeout { addr: String, timeout: Duration },
    #[error("{addr}: {api} v{version} got no response within {timeout:?}")]
    Timeout {
        addr: String,
        api: String,
        version: i16,
        timeout: Duration,
    },
    #[error("{addr} closed the connection{}", if *.partial { " in the middle of a response frame" } else { "" })]
    Closed { addr: String, partial: bool },
    #[error("{addr}: response frame longer than the {max}-byte limit")]
    FrameTooLarge { addr: String, max: usize },
    #[error("{addr}: I/O error: {source}")]
    Io {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot encode {api} v{version}: {message}")]
    Encode {
        api: String,
        version: i16,
        message: String,
    },
    #[error("{addr}: cannot decode the {api} v{version} response: {message}")]
    Decode {
        addr: String,
        api: String,
        version: i16,
        message: String,
    },
    #[error("{addr}: response correlation id {got} does not match the request's {expected}")]
    CorrelationMismatch {
        addr: String,
        expected: i32,
        got: i32,
    },
    #[error("{addr}: no {api} version in common (sharecheck v{client_min}-v{client_max}, broker {broker})")]
    NoCommonVersion {
        addr: String,
        api: String,
        client_min: i16,
        client_max: i16,
        broker: String,
    },
    #[error("{addr}: ApiVersions answered {code}")]
    ApiVersions { addr: String, code: ErrorCode },
    #[error("{addr}: connection unusable after an earlier failure: {reason}")]
    Poisoned { addr: String, reason: String },
    /// The TLS handshake failed (a plaintext listener, an untrusted or misnamed certificate).
    #[error("{addr}: TLS handshake failed: {message}")]
    Tls { addr: String, message: String },
    /// What came back is not Kafka framing as the security settings expect it (a plaintext client
    /// answered by a TLS listener).
    #[error("{addr}: {message}")]
    WrongProtocol { addr: String, message: String },
    /// SASL refused: wrong credentials, a mechanism the listener does not enable, a server that
    /// cannot prove it knows the password. Never carries the password.
    #[error("{addr}: authentication failed ({mechanism} as {user}): {message}")]
    Authentication {
        addr: String,
        mechanism: String,
        user: String,
        message: String,
    },
}

impl WireError {
    /// True when the failure means the broker could not be reached, stopped answering, or
    /// will not let us in (TLS, authentication) — as opposed to a protocol-level problem with
    /// what it said.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            WireError::Connect { .. }
                | WireError::ConnectTimeout { .. }
                | WireError::Timeout { .. }
                | WireError::Closed { .. }
                | WireError::Io { .. }
                | WireError::Poisoned { .. }
                | WireError::Tls { .. }
                | WireError::WrongProtocol { .. }
                | WireError::Authentication { .. }
        )
    }

    /// True when the broker refused the TLS handshake or the credentials.
    pub fn is_security(&self) -> bool {
        matches!(
            self,
            WireError::Tls { .. }
                | WireError::WrongProtocol { .. }
                | WireError::Authentication { .. }
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Versions

/// What a broker said in ApiVersions: its API ranges and features.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BrokerVersions {
    /// The ApiVersions version the answer was decoded with.
    pub api_versions_version: i16,
    /// API key → (min, max) version the broker supports.
    pub apis: BTreeMap<i16, (i16, i16)>,
    /// Feature name → (min, max) version the broker software supports (v3+).
    pub supported_features: BTreeMap<String, (i16, i16)>,
    /// Feature name → (min, max) *finalized* level in the cluster (v3+). Level-0 features are
    /// absent.
    pub finalized_features: BTreeMap<String, (i16, i16)>,
    pub finalized_features_epoch: i64,
}

impl BrokerVersions {
    /// Build from a decoded ApiVersions response.
    pub fn from_response(resp: &ApiVersionsResponse, decoded_at: i16) -> Self {
        BrokerVersions {
            api_versions_version: decoded_at,
            apis: resp
                .api_keys
                .iter()
                .map(|k| (k.api_key, (k.min_version, k.max_version)))
                .collect(),
            supported_features: resp
                .supported_features
                .iter()
                .map(|f| (f.name.to_string(), (f.min_version, f.max_version)))
                .collect(),
            finalized_features: resp
                .finalized_features
                .iter()
                .map(|f| {
                    (
                        f.name.to_string(),
                        (f.min_version_level, f.max_version_level),
                    )
                })
                .collect(),
            finalized_features_epoch: resp.finalized_features_epoch,
        }
    }

    /// The broker's (min, max) for an API, if it advertises it.
    pub fn broker_range(&self, key: ApiKey) -> Option<(i16, i16)> {
        self.apis.get(&(key as i16)).copied()
    }

    /// The highest version both this client (kafka-protocol 0.18) and the broker support.
    pub fn negotiate(&self, key: ApiKey) -> Option<i16> {
        let (bmin, bmax) = self.broker_range(key)?;
        negotiate_range(key, bmin, bmax)
    }

    /// The finalized level of a feature; 0 when the broker does not list it (Kafka omits level-0
    /// features).
    pub fn finalized_level(&self, feature: &str) -> i16 {
        self.finalized_features
            .get(feature)
            .map(|(_, max)| *max)
            .unwrap_or(0)
    }

    /// The highest version of both ShareFetch and ShareAcknowledge advertised (0: neither); 2 means
    /// RENEW and acquire modes ([`crate::v2`]).
    pub fn share_rpc_version(&self) -> i16 {
        match (
            self.broker_range(ApiKey::ShareFetch),
            self.broker_range(ApiKey::ShareAcknowledge),
        ) {
            (Some((_, f)), Some((_, a))) => f.min(a),
            _ => 0,
        }
    }

    /// `share.version` finalized level: ≥ 1 means share groups are enabled (docs/semantics.md §9).
    pub fn share_version(&self) -> i16 {
        self.finalized_level("share.version")
    }
}

/// Highest version in both `key.valid_versions()` and `bmin..=bmax`.
pub fn negotiate_range(key: ApiKey, bmin: i16, bmax: i16) -> Option<i16> {
    let ours = key.valid_versions();
    let lo = ours.min.max(bmin);
    let hi = ours.max.min(bmax);
    (lo <= hi).then_some(hi)
}

// ---------------------------------------------------------------------------------------------
// Observation hook

/// One finished (or failed) exchange, for runners that record a history.
#[derive(Clone, Debug, Serialize)]
pub struct WireEvent {
    pub broker: String,
    pub api_key: i16,
    pub api: String,
    pub version: i16,
    pub correlation_id: i32,
    /// Wall-clock time the request was written.
    pub sent_at: SystemTime,
    /// Send → receive (or → failure).
    pub elapsed: Duration,
    /// `Debug` rendering of the request.
    pub request: String,
    /// What came back.
    pub outcome: ExchangeOutcome,
}

/// What an exchange gave, as an observer sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExchangeOutcome {
    /// `Debug` rendering of the decoded response.
    Response(String),
    /// The exchange failed; the error in words.
    Failed(String),
}

impl ExchangeOutcome {
    /// Whether a response was decoded.
    pub fn is_ok(&self) -> bool {
        matches!(self, ExchangeOutcome::Response(_))
    }
}

/// Called after every exchange on a connection that has one.
pub type Observer = Arc<dyn Fn(&WireEvent) + Send + Sync>;

/// A decoded response with the facts of its exchange.
#[derive(Clone, Debug)]
pub struct Exchange<T> {
    pub api_key: i16,
    pub version: i16,
    pub correlation_id: i32,
    pub sent_at: SystemTime,
    pub elapsed: Duration,
    pub response: T,
}

// ---------------------------------------------------------------------------------------------
// Connection

/// How to open a [`Connection`].
#[derive(Clone)]
pub struct ConnectOptions {
    /// Deadline for TCP connect + ApiVersions together, and the default per-request deadline.
    pub timeout: Duration,
    /// `client.id` in request headers.
    pub client_id: String,
    pub observer: Option<Observer>,
    /// TLS and SASL (`--command-config`); PLAINTEXT by default.
    pub security: Arc<Security>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            timeout: DEFAULT_TIMEOUT,
            client_id: DEFAULT_CLIENT_ID.to_string(),
            observer: None,
            security: Arc::new(Security::plaintext()),
        }
    }
}

impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("timeout", &self.timeout)
            .field("client_id", &self.client_id)
            .field("observer", &self.observer.is_some())
            .field("security", &self.security.describe())
            .finish()
    }
}

/// The byte stream under the frames: plain TCP or TLS over it.
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// One TCP connection to one broker, with negotiated versions. Requests are strictly sequential.
pub struct Connection {
    addr: String,
    framed: Framed<Stream, LengthDelimitedCodec>,
    next_correlation_id: i32,
    security: Arc<Security>,
    /// When the SASL session must be renewed (KIP-368), if the broker gave it a lifetime.
    reauth_at: Option<Instant>,
    /// How many times the SASL session was renewed on this connection.
    reauthentications: u32,
    client_id: StrBytes,
    timeout: Duration,
    versions: BrokerVersions,
    poisoned: Option<String>,
    observer: Option<Observer>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("addr", &self.addr)
            .field("next_correlation_id", &self.next_correlation_id)
            .field("poisoned", &self.poisoned)
            .finish()
    }
}

fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(4)
        .max_frame_length(MAX_FRAME_LEN)
        .new_codec()
}

impl Connection {
    /// Connect and negotiate versions, all within `timeout`.
    pub async fn connect(addr: &str, timeout: Duration) -> Result<Connection, WireError> {
        let opts = ConnectOptions {
            timeout,
            ..ConnectOptions::default()
        };
        Self::connect_with(addr, &opts).await
    }

    /// Connect and negotiate versions, all within `opts.timeout`.
    pub async fn connect_with(addr: &str, opts: &ConnectOptions) -> Result<Connection, WireError> {
        let deadline = Instant::now() + opts.timeout;
        let stream = match tokio::time::timeout(opts.timeout, TcpStream::connect(addr)).await {
            Err(_) => {
                return Err(WireError::ConnectTimeout {
                    addr: addr.to_string(),
                    timeout: opts.timeout,
                })
            }
            Ok(Err(source)) => {
                return Err(WireError::Connect {
                    addr: addr.to_string(),
                    source,
                })
            }
            Ok(Ok(s)) => s,
        };
        // Small request/response exchanges: do not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let stream = match &opts.security.tls {
            None => Stream::Plain(stream),
            Some(tls) => {
                let remaining = deadline.saturating_duration_since(Instant::now());
                Stream::Tls(Box::new(tls_handshake(addr, stream, tls, remaining).await?))
            }
        };
        let mut conn = Connection {
            addr: addr.to_string(),
            framed: Framed::new(stream, codec()),
            next_correlation_id: 1,
            security: opts.security.clone(),
            reauth_at: None,
            reauthentications: 0,
            client_id: StrBytes::from_string(opts.client_id.clone()),
            timeout: opts.timeout,
            versions: BrokerVersions::default(),
            poisoned: None,
            observer: opts.observer.clone(),
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        let plaintext = opts.security.tls.is_none();
        let timed_out = |e: WireError| {
            match e {
            WireError::Timeout { .. } => WireError::ConnectTimeout {
                addr: addr.to_string(),
                timeout: opts.timeout,
            },
            // A TLS listener answers a plaintext ApiVersions with a TLS alert, whose first bytes
            // (0x15 0x03 0x03 0x00) read as a 352 MB frame length.
            WireError::FrameTooLarge { .. } if plaintext => WireError::WrongProtocol {
                addr: addr.to_string(),
                message: "the first answer is not a Kafka frame (its length prefix is over 64 MiB), as when a TLS listener answers a plaintext client: set security.protocol=SSL or SASL_SSL in --command-config".into(),
            },
            e => e,
        }
        };
        conn.versions = conn.negotiate(remaining).await.map_err(timed_out)?;
        if conn.security.sasl.is_some() {
            conn.authenticate(deadline).await.map_err(timed_out)?;
        }
        Ok(conn)
    }

    /// SaslHandshake v1 then SaslAuthenticate round(s), all before `deadline` (KIP-152). Not
    /// observed: the exchanges carry credentials. Sets the re-authentication time from the
    /// session lifetime the broker gives (KIP-368: at 85 % of it, as Kafka's client does at
    /// 85–95 %).
    async fn authenticate(&mut self, deadline: Instant) -> Result<(), WireError> {
        let Some(creds) = self.security.sasl.clone() else {
            return Ok(());
        };
        let addr = self.addr.clone();
        let refused = |message: String| WireError::Authentication {
            addr: addr.clone(),
            mechanism: creds.mechanism.name().to_string(),
            user: creds.username.clone(),
            message,
        };
        let left = || deadline.saturating_duration_since(Instant::now());
        let handshake = SaslHandshakeRequest::default()
            .with_mechanism(StrBytes::from_static_str(creds.mechanism.name()));
        let version = self
            .versions
            .negotiate(ApiKey::SaslHandshake)
            .filter(|v| *v >= 1)
            .ok_or_else(|| {
                refused("the broker does not offer SaslHandshake v1 (is the listener SASL?)".into())
            })?;
        let resp = self.exchange_quiet(&handshake, version, left()).await?;
        match ErrorCode(resp.error_code) {
            ErrorCode::NONE => {}
            ErrorCode::UNSUPPORTED_SASL_MECHANISM => {
                let enabled: Vec<&str> = resp.mechanisms.iter().map(|m| m.as_str()).collect();
                return Err(refused(format!(
                    "the listener does not enable {} (it enables: {})",
                    creds.mechanism.name(),
                    if enabled.is_empty() {
                        "none".to_string()
                    } else {
                        enabled.join(", ")
                    }
                )));
            }
            code => return Err(refused(format!("SaslHandshake answered {code}"))),
        }
        let auth_version = self
            .versions
            .negotiate(ApiKey::SaslAuthenticate)
            .ok_or_else(|| refused("the broker does not offer SaslAuthenticate".into()))?;
        let user = creds.username.as_str();
        let password = creds.password.expose();
        let lifetime_ms = match creds.mechanism {
            Mechanism::Plain => {
                let mut token = Vec::with_capacity(user.len() + password.len() + 2);
                token.push(0);
                token.extend_from_slice(user.as_bytes());
                token.push(0);
                token.extend_from_slice(password.as_bytes());
                let (_, lifetime) = self
                    .sasl_round(token, auth_version, left(), &refused)
                    .await?;
                lifetime
            }
            Mechanism::ScramSha256 | Mechanism::ScramSha512 => {
                let hash = if creds.mechanism == Mechanism::ScramSha256 {
                    Hash::Sha256
                } else {
                    Hash::Sha512
                };
                let mut scram = ScramClient::new(hash, user, password);
                let (server_first, _) = self
                    .sasl_round(scram.first(), auth_version, left(), &refused)
                    .await?;
                let fin = scram
                    .final_message(&server_first)
                    .map_err(|e| refused(e.to_string()))?;
                let (server_final, lifetime) =
                    self.sasl_round(fin, auth_version, left(), &refused).await?;
                scram
                    .verify(&server_final)
                    .map_err(|e| refused(e.to_string()))?;
                lifetime
            }
        };
        self.reauth_at = (lifetime_ms > 0).then(|| {
            Instant::now() + Duration::from_millis((lifetime_ms as u64).saturating_mul(85) / 100)
        });
        Ok(())
    }

    /// One SaslAuthenticate round: the server's bytes and the session lifetime (v1+, else 0).
    async fn sasl_round(
        &mut self,
        token: Vec<u8>,
        version: i16,
        timeout: Duration,
        refused: &impl Fn(String) -> WireError,
    ) -> Result<(Vec<u8>, i64), WireError> {
        let req = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token));
        let resp = self.exchange_quiet(&req, version, timeout).await?;
        let code = ErrorCode(resp.error_code);
        if !code.is_none() {
            let said = resp
                .error_message
                .as_ref()
                .map(|m| format!(": {}", m.as_str()))
                .unwrap_or_default();
            return Err(refused(format!("{code}{said}")));
        }
        Ok((resp.auth_bytes.to_vec(), resp.session_lifetime_ms))
    }

    /// An exchange the observer does not see (authentication).
    async fn exchange_quiet<R: Request>(
        &mut self,
        req: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response, WireError> {
        let correlation_id = self.take_correlation_id();
        self.exchange_inner(req, version, correlation_id, timeout)
            .await
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// What the broker advertised in ApiVersions.
    pub fn versions(&self) -> &BrokerVersions {
        &self.versions
    }

    /// How many times the SASL session was renewed on this connection (KIP-368).
    pub fn reauthentications(&self) -> u32 {
        self.reauthentications
    }

    /// When the SASL session will be renewed, if the broker gave it a lifetime.
    pub fn reauthenticates_at(&self) -> Option<Instant> {
        self.reauth_at
    }

    /// The default per-request deadline.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    pub fn set_observer(&mut self, observer: Option<Observer>) {
        self.observer = observer;
    }

    /// Set when an earlier failure left the stream in an unknown state.
    pub fn poisoned(&self) -> Option<&str> {
        self.poisoned.as_deref()
    }

    /// The version `R` will be sent at: the highest both sides support.
    pub fn version_for<R: Request>(&self) -> Result<i16, WireError> {
        let key = ApiKey::try_from(R::KEY).map_err(|_| WireError::Encode {
            api: api_name(R::KEY),
            version: -1,
            message: "API key unknown to kafka-protocol".to_string(),
        })?;
        self.versions
            .negotiate(key)
            .ok_or_else(|| WireError::NoCommonVersion {
                addr: self.addr.clone(),
                api: api_name(R::KEY),
                client_min: R::VERSIONS.min,
                client_max: R::VERSIONS.max,
                broker: match self.versions.broker_range(key) {
                    Some((lo, hi)) => format!("v{lo}-v{hi}"),
                    None => "does not advertise it".to_string(),
                },
            })
    }

    /// Send `req` at the negotiated version with the default deadline; return the response.
    pub async fn send<R>(&mut self, req: &R) -> Result<R::Response, WireError>
    where
        R: Request + fmt::Debug,
        R::Response: fmt::Debug,
    {
        Ok(self.exchange(req).await?.response)
    }

    /// Like [`send`](Self::send), returning timings and the version used too.
    pub async fn exchange<R>(&mut self, req: &R) -> Result<Exchange<R::Response>, WireError>
    where
        R: Request + fmt::Debug,
        R::Response: fmt::Debug,
    {
        self.exchange_with(req, None, None).await
    }

    /// Send `req` at `version` (default: negotiated) with `timeout` (default: the connection's).
    /// An explicit version is sent as given, even one the broker does not advertise (for error
    /// tests); it must still be one kafka-protocol can encode.
    pub async fn exchange_with<R>(
        &mut self,
        req: &R,
        version: Option<i16>,
        timeout: Option<Duration>,
    ) -> Result<Exchange<R::Response>, WireError>
    where
        R: Request + fmt::Debug,
        R::Response: fmt::Debug,
    {
        let version = match version {
            Some(v) => v,
            None => self.version_for::<R>()?,
        };
        let timeout = timeout.unwrap_or(self.timeout);
        if self.reauth_at.is_some_and(|at| Instant::now() >= at) && self.poisoned.is_none() {
            // KIP-368: renew the SASL session on this connection before the broker closes it.
            self.authenticate(Instant::now() + timeout).await?;
            self.reauthentications += 1;
        }
        let correlation_id = self.take_correlation_id();
        let sent_at = SystemTime::now();
        let started = Instant::now();
        let result = self
            .exchange_inner(req, version, correlation_id, timeout)
            .await;
        let elapsed = started.elapsed();
        if let Some(obs) = &self.observer {
            let event = WireEvent {
                broker: self.addr.clone(),
                api_key: R::KEY,
                api: api_name(R::KEY),
                version,
                correlation_id,
                sent_at,
                elapsed,
                request: format!("{req:?}"),
                outcome: match &result {
                    Ok(r) => ExchangeOutcome::Response(format!("{r:?}")),
                    Err(e) => ExchangeOutcome::Failed(e.to_string()),
                },
            };
            obs(&event);
        }
        result.map(|response| Exchange {
            api_key: R::KEY,
            version,
            correlation_id,
            sent_at,
            elapsed,
            response,
        })
    }

    fn take_correlation_id(&mut self) -> i32 {
        let id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.checked_add(1).unwrap_or(1);
        id
    }

    async fn exchange_inner<R: Request>(
        &mut self,
        req: &R,
        version: i16,
        correlation_id: i32,
        timeout: Duration,
    ) -> Result<R::Response, WireError> {
        let frame = encode_request(req, version, correlation_id, &self.client_id)?;
        let mut body = self
            .round_trip(
                frame,
                R::KEY,
                version,
                correlation_id,
                <R::Response as HeaderVersion>::header_version(version),
                timeout,
            )
            .await?;
        decode_body::<R::Response>(R::KEY, &mut body, version).map_err(|e| WireError::Decode {
            addr: self.addr.clone(),
            api: api_name(R::KEY),
            version,
            message: e.to_string(),
        })
    }

    /// Write one frame, read one frame, check the correlation id; returns the body after the
    /// response header.
    async fn round_trip(
        &mut self,
        frame: Bytes,
        api_key: i16,
        version: i16,
        correlation_id: i32,
        response_header_version: i16,
        timeout: Duration,
    ) -> Result<Bytes, WireError> {
        if let Some(reason) = &self.poisoned {
            return Err(WireError::Poisoned {
                addr: self.addr.clone(),
                reason: reason.clone(),
            });
        }
        let io = async {
            self.framed
                .send(frame)
                .await
                .map_err(|e| map_io(&self.addr, e))?;
            match self.framed.next().await {
                None => Err(WireError::Closed {
                    addr: self.addr.clone(),
                    partial: false,
                }),
                Some(Err(e)) => Err(map_io(&self.addr, e)),
                Some(Ok(buf)) => Ok(buf),
            }
        };
        let buf: BytesMut = match tokio::time::timeout(timeout, io).await {
            Err(_) => {
                let err = WireError::Timeout {
                    addr: self.addr.clone(),
                    api: api_name(api_key),
                    version,
                    timeout,
                };
                self.poisoned = Some(err.to_string());
                return Err(err);
            }
            Ok(Err(e)) => {
                self.poisoned = Some(e.to_string());
                return Err(e);
            }
            Ok(Ok(buf)) => buf,
        };
        let mut body = buf.freeze();
        let header = ResponseHeader::decode(&mut body, response_header_version).map_err(|e| {
            WireError::Decode {
                addr: self.addr.clone(),
                api: api_name(api_key),
                version,
                message: format!("response header: {e}"),
            }
        })?;
        if header.correlation_id != correlation_id {
            let err = WireError::CorrelationMismatch {
                addr: self.addr.clone(),
                expected: correlation_id,
                got: header.correlation_id,
            };
            self.poisoned = Some(err.to_string());
            return Err(err);
        }
        Ok(body)
    }

    /// ApiVersions at the highest version kafka-protocol knows; on UNSUPPORTED_VERSION (answered
    /// in a v0 body) retry once at the broker's highest.
    async fn negotiate(&mut self, timeout: Duration) -> Result<BrokerVersions, WireError> {
        let deadline = Instant::now() + timeout;
        let mut version = ApiVersionsRequest::VERSIONS.max;
        loop {
            let req = ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str(CLIENT_SOFTWARE_NAME))
                .with_client_software_version(StrBytes::from_static_str(CLIENT_SOFTWARE_VERSION));
            let correlation_id = self.take_correlation_id();
            let frame = encode_request(&req, version, correlation_id, &self.client_id)?;
            let remaining = deadline.saturating_duration_since(Instant::now());
            let sent_at = SystemTime::now();
            let started = Instant::now();
            let body = self
                .round_trip(
                    frame,
                    ApiVersionsRequest::KEY,
                    version,
                    correlation_id,
                    0,
                    remaining,
                )
                .await;
            let decoded = body.and_then(|body| self.decode_api_versions(body, version));
            if let Some(obs) = &self.observer {
                obs(&WireEvent {
                    broker: self.addr.clone(),
                    api_key: ApiVersionsRequest::KEY,
                    api: api_name(ApiVersionsRequest::KEY),
                    version,
                    correlation_id,
                    sent_at,
                    elapsed: started.elapsed(),
                    request: format!("{req:?}"),
                    outcome: match &decoded {
                        Ok((r, _)) => ExchangeOutcome::Response(format!("{r:?}")),
                        Err(e) => ExchangeOutcome::Failed(e.to_string()),
                    },
                });
            }
            let (resp, decoded_at) = decoded?;
            let code = ErrorCode(resp.error_code);
            if code == ErrorCode::UNSUPPORTED_VERSION {
                let broker_max = resp
                    .api_keys
                    .iter()
                    .find(|k| k.api_key == ApiVersionsRequest::KEY)
                    .map(|k| k.max_version);
                match broker_max {
                    Some(m) if m < version && m >= ApiVersionsRequest::VERSIONS.min => {
                        version = m;
                        continue;
                    }
                    _ => {
                        return Err(WireError::ApiVersions {
                            addr: self.addr.clone(),
                            code,
                        })
                    }
                }
            }
            if !code.is_none() {
                return Err(WireError::ApiVersions {
                    addr: self.addr.clone(),
                    code,
                });
            }
            return Ok(BrokerVersions::from_response(&resp, decoded_at));
        }
    }

    /// Decode an ApiVersions body: at `version`, or at v0 when the error code (the first field
    /// in every version) is UNSUPPORTED_VERSION.
    fn decode_api_versions(
        &self,
        body: Bytes,
        version: i16,
    ) -> Result<(ApiVersionsResponse, i16), WireError> {
        let derr = |v: i16, message: String| WireError::Decode {
            addr: self.addr.clone(),
            api: api_name(ApiVersionsRequest::KEY),
            version: v,
            message,
        };
        if body.len() < 2 {
            return Err(derr(version, "body shorter than an error code".to_string()));
        }
        let code = i16::from_be_bytes([body[0], body[1]]);
        let at = if code == ErrorCode::UNSUPPORTED_VERSION.0 {
            0
        } else {
            version
        };
        let mut b = body;
        let resp = decode_body::<ApiVersionsResponse>(ApiVersionsRequest::KEY, &mut b, at)
            .map_err(|e| derr(at, e.to_string()))?;
        Ok((resp, at))
    }
}

/// The TLS handshake on a fresh TCP stream, within `timeout`; the server name is the host of
/// `addr` (an IP address or a DNS name).
async fn tls_handshake(
    addr: &str,
    stream: TcpStream,
    tls: &crate::security::Tls,
    timeout: Duration,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, WireError> {
    let host = addr
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(addr)
        .trim_start_matches('[')
        .trim_end_matches(']');
    let name =
        rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| WireError::Tls {
            addr: addr.to_string(),
            message: format!("'{host}' is not a host name or address: {e}"),
        })?;
    let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
    match tokio::time::timeout(timeout, connector.connect(name, stream)).await {
        Err(_) => Err(WireError::ConnectTimeout {
            addr: addr.to_string(),
            timeout,
        }),
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => {
            let closed = matches!(
                e.kind(),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
            );
            Err(WireError::Tls {
                addr: addr.to_string(),
                message: if closed {
                    format!("{e} (the broker closed the connection: is this listener TLS? see security.protocol)")
                } else if e.to_string().contains("UnknownIssuer") {
                    format!(
                        "{e} (the broker's certificate is not signed by a CA in ssl.truststore.*)"
                    )
                } else if e.to_string().contains("NotValidForName") {
                    format!("{e} (the certificate does not name {host}; ssl.endpoint.identification.algorithm= (empty) skips the name check)")
                } else {
                    e.to_string()
                },
            })
        }
    }
}

fn map_io(addr: &str, e: std::io::Error) -> WireError {
    if e.get_ref()
        .is_some_and(|inner| inner.is::<LengthDelimitedCodecError>())
    {
        return WireError::FrameTooLarge {
            addr: addr.to_string(),
            max: MAX_FRAME_LEN,
        };
    }
    // TLS alerts after the handshake (TLS 1.3 checks the client's certificate after the client
    // finished): tokio-rustls passes rustls' error inside the io::Error.
    if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        let hint = match tls {
            rustls::Error::AlertReceived(
                rustls::AlertDescription::BadCertificate
                | rustls::AlertDescription::CertificateRequired
                | rustls::AlertDescription::UnknownCA
                | rustls::AlertDescription::CertificateUnknown,
            ) => " (the broker refused our client certificate: with ssl.client.auth=required it needs ssl.keystore.* signed by a CA it trusts)",
            _ => "",
        };
        return WireError::Tls {
            addr: addr.to_string(),
            message: format!("{tls}{hint}"),
        };
    }
    // tokio-util reports EOF inside a frame as an `Other` error "bytes remaining on stream".
    if e.kind() == std::io::ErrorKind::Other && e.to_string().contains("bytes remaining") {
        return WireError::Closed {
            addr: addr.to_string(),
            partial: true,
        };
    }
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof
        | std::io::ErrorKind::ConnectionReset
        | std::io::ErrorKind::ConnectionAborted
        | std::io::ErrorKind::BrokenPipe => WireError::Closed {
            addr: addr.to_string(),
            partial: false,
        },
        _ => WireError::Io {
            addr: addr.to_string(),
            source: e,
        },
    }
}

/// Request header + body, without the length prefix (the codec adds it).
pub fn encode_request<R: Request>(
    req: &R,
    version: i16,
    correlation_id: i32,
    client_id: &StrBytes,
) -> Result<Bytes, WireError> {
    let eerr = |message: String| WireError::Encode {
        api: api_name(R::KEY),
        version,
        message,
    };
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(client_id.clone()));
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, <R as HeaderVersion>::header_version(version))
        .map_err(|e| eerr(format!("header: {e}")))?;
    req.encode(&mut buf, version)
        .map_err(|e| eerr(e.to_string()))?;
    Ok(buf.freeze())
}

/// Decode the response body of API `key` at `version`, after the guard has walked it against
/// the response schema (no length read off the wire sizes an allocation larger than the frame),
/// and insist that it is consumed exactly (leftover bytes mean a wrong version or header guess).
pub fn decode_body<T: Decodable>(
    key: i16,
    body: &mut Bytes,
    version: i16,
) -> Result<T, DecodeError> {
    crate::guard::check_response(key, version, body).map_err(DecodeError::Guard)?;
    let value = T::decode(body, version).map_err(|e| DecodeError::Body(e.to_string()))?;
    if body.has_remaining() {
        return Err(DecodeError::Trailing(body.remaining()));
    }
    Ok(value)
}

/// Why a response body could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// It does not fit the response schema (before kafka-protocol saw it).
    #[error("{0}")]
    Guard(crate::guard::GuardError),
    /// kafka-protocol's decoder refused it.
    #[error("{0}")]
    Body(String),
    /// Bytes were left over after the body (a wrong version or header guess).
    #[error("{0} trailing bytes after the body")]
    Trailing(usize),
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::api_versions_response::{ApiVersion, FinalizedFeatureKey};
    use kafka_protocol::messages::{MetadataRequest, MetadataResponse};
    use kafka_protocol::protocol::decode_request_header_from_buffer;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    /// Guard so that a broken test fails instead of hanging.
    const GUARD: Duration = Duration::from_secs(10);

    fn api_versions_response(share_version: Option<i16>) -> ApiVersionsResponse {
        let mut keys = Vec::new();
        for key in [
            ApiKey::ApiVersions,
            ApiKey::Metadata,
            ApiKey::ShareFetch,
            ApiKey::ShareAcknowledge,
        ] {
            let r = key.valid_versions();
            keys.push(
                ApiVersion::default()
                    .with_api_key(key as i16)
                    .with_min_version(r.min)
                    .with_max_version(if key == ApiKey::ShareFetch { 2 } else { r.max }),
            );
        }
        let mut resp = ApiVersionsResponse::default().with_api_keys(keys);
        if let Some(level) = share_version {
            resp.finalized_features = vec![FinalizedFeatureKey::default()
                .with_name(StrBytes::from_static_str("share.version"))
                .with_min_version_level(level)
                .with_max_version_level(level)];
        }
        resp
    }

    /// Encode a response frame payload (header + body) the way a broker would.
    fn response_payload<T: Encodable + HeaderVersion>(resp: &T, version: i16, corr: i32) -> Bytes {
        let mut buf = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(corr)
            .encode(&mut buf, T::header_version(version))
            .unwrap();
        resp.encode(&mut buf, version).unwrap();
        buf.freeze()
    }

    /// A fake broker that reads frames and hands each decoded header + body to `answer`, which
    /// returns the frames to write back (none = stay silent).
    async fn fake_broker<F>(answer: F) -> (String, tokio::task::JoinHandle<Vec<RequestHeader>>)
    where
        F: Fn(&RequestHeader, Bytes) -> Vec<Bytes> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let handle = tokio::spawn(async move {
            let (sock, _) = listener.accept().await.unwrap();
            let mut framed = Framed::new(sock, codec());
            let mut seen = Vec::new();
            while let Some(Ok(frame)) = framed.next().await {
                let mut frame = frame.freeze();
                let header = decode_request_header_from_buffer(&mut frame).unwrap();
                for out in answer(&header, frame) {
                    framed.send(out).await.unwrap();
                }
                seen.push(header);
            }
            seen
        });
        (addr, handle)
    }

    fn standard_answer(header: &RequestHeader, mut body: Bytes) -> Vec<Bytes> {
        let v = header.request_api_version;
        match ApiKey::try_from(header.request_api_key).unwrap() {
            ApiKey::ApiVersions => {
                let req = ApiVersionsRequest::decode(&mut body, v).unwrap();
                assert_eq!(req.client_software_name.as_str(), CLIENT_SOFTWARE_NAME);
                vec![response_payload(
                    &api_versions_response(Some(1)),
                    v,
                    header.correlation_id,
                )]
            }
            ApiKey::Metadata => {
                let resp = MetadataResponse::default().with_cluster_id(Some(StrBytes::from("c1")));
                vec![response_payload(&resp, v, header.correlation_id)]
            }
            _ => vec![],
        }
    }

    #[tokio::test]
    async fn round_trip_negotiates_versions_and_features() {
        let (addr, server) = fake_broker(standard_answer).await;
        let mut conn = tokio::time::timeout(GUARD, Connection::connect(&addr, GUARD))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(conn.versions().api_versions_version, 4);
        assert_eq!(conn.versions().share_version(), 1);
        // Broker offers ShareFetch v1-v2, the crate v1 only.
        assert_eq!(conn.versions().negotiate(ApiKey::ShareFetch), Some(1));
        assert_eq!(
            conn.versions().negotiate(ApiKey::Metadata),
            Some(ApiKey::Metadata.valid_versions().max)
        );
        // Not advertised: typed refusal.
        assert!(conn
            .versions()
            .negotiate(ApiKey::ShareGroupHeartbeat)
            .is_none());
        let ex = conn.exchange(&MetadataRequest::default()).await.unwrap();
        assert_eq!(ex.response.cluster_id.as_deref(), Some("c1"));
        assert_eq!(ex.version, 13);
        assert_eq!(ex.correlation_id, 2);
        let err = conn
            .send(&kafka_protocol::messages::ShareGroupHeartbeatRequest::default())
            .await
            .unwrap_err();
        assert!(matches!(err, WireError::NoCommonVersion { .. }), "{err}");
        drop(conn);
        let seen = server.await.unwrap();
        // Header versions: ApiVersions v4 → request header v2; Metadata v13 → v2.
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].request_api_key, 18);
        assert_eq!(seen[0].client_id.as_deref(), Some(DEFAULT_CLIENT_ID));
        assert_eq!(seen[1].request_api_key, 3);
    }

    #[tokio::test]
    async fn api_versions_falls_back_on_unsupported_version() {
        let (addr, server) = fake_broker(|header, mut body| {
            let v = header.request_api_version;
            if v > 3 {
                // What Kafka does for an ApiVersions version it does not know: error 35 in a
                // v0 body listing its ranges.
                let resp = ApiVersionsResponse::default()
                    .with_error_code(35)
                    .with_api_keys(vec![ApiVersion::default()
                        .with_api_key(18)
                        .with_min_version(0)
                        .with_max_version(3)]);
                return vec![response_payload(&resp, 0, header.correlation_id)];
            }
            let _ = ApiVersionsRequest::decode(&mut body, v).unwrap();
            vec![response_payload(
                &api_versions_response(None),
                v,
                header.correlation_id,
            )]
        })
        .await;
        let conn = tokio::time::timeout(GUARD, Connection::connect(&addr, GUARD))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(conn.versions().api_versions_version, 3);
        assert_eq!(conn.versions().share_version(), 0);
        drop(conn);
        let seen = server.await.unwrap();
        let versions: Vec<i16> = seen.iter().map(|h| h.request_api_version).collect();
        assert_eq!(versions, vec![4, 3]);
    }

    #[tokio::test]
    async fn connect_refused_is_a_connect_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let err = tokio::time::timeout(GUARD, Connection::connect(&addr, GUARD))
            .await
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, WireError::Connect { .. }), "{err}");
        assert!(err.is_unreachable());
    }

    #[tokio::test]
    async fn silent_listener_hits_the_deadline() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let _keep = tokio::spawn(async move {
            let (sock, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(sock);
        });
        let started = Instant::now();
        let err = tokio::time::timeout(
            GUARD,
            Connection::connect(&addr, Duration::from_millis(300)),
        )
        .await
        .unwrap()
        .unwrap_err();
        assert!(matches!(err, WireError::ConnectTimeout { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn request_deadline_poisons_the_connection() {
        // Answers ApiVersions, then goes silent.
        let (addr, _server) = fake_broker(|header, body| {
            if header.request_api_key == 18 {
                standard_answer(header, body)
            } else {
                vec![]
            }
        })
        .await;
        let mut conn = Connection::connect(&addr, GUARD).await.unwrap();
        conn.set_timeout(Duration::from_millis(200));
        let err = tokio::time::timeout(GUARD, conn.send(&MetadataRequest::default()))
            .await
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, WireError::Timeout { .. }), "{err}");
        let err = conn.send(&MetadataRequest::default()).await.unwrap_err();
        assert!(matches!(err, WireError::Poisoned { .. }), "{err}");
    }

    #[tokio::test]
    async fn correlation_id_mismatch_is_refused() {
        let (addr, _server) = fake_broker(|header, body| {
            if header.request_api_key == 18 {
                return standard_answer(header, body);
            }
            vec![response_payload(
                &MetadataResponse::default(),
                header.request_api_version,
                header.correlation_id + 7,
            )]
        })
        .await;
        let mut conn = Connection::connect(&addr, GUARD).await.unwrap();
        let err = tokio::time::timeout(GUARD, conn.send(&MetadataRequest::default()))
            .await
            .unwrap()
            .unwrap_err();
        match err {
            WireError::CorrelationMismatch { expected, got, .. } => {
                assert_eq!((expected, got), (2, 9));
            }
            other => panic!("unexpected {other}"),
        }
        assert!(conn.poisoned().is_some());
    }

    /// A raw-socket fake broker: answers ApiVersions properly, then writes `tail` raw bytes and
    /// closes.
    async fn raw_tail_broker(tail: Vec<u8>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (sock, _) = listener.accept().await.unwrap();
            let mut framed = Framed::new(sock, codec());
            let frame = framed.next().await.unwrap().unwrap();
            let mut frame = frame.freeze();
            let header = decode_request_header_from_buffer(&mut frame).unwrap();
            for out in standard_answer(&header, frame) {
                framed.send(out).await.unwrap();
            }
            let _second = framed.next().await;
            let mut sock = framed.into_inner();
            sock.write_all(&tail).await.unwrap();
            sock.flush().await.unwrap();
            // Drop closes the socket.
        });
        addr
    }

    #[tokio::test]
    async fn truncated_frame_is_a_partial_close() {
        let mut tail = 100u32.to_be_bytes().to_vec();
        tail.extend_from_slice(&[0u8; 10]);
        let addr = raw_tail_broker(tail).await;
        let mut conn = Connection::connect(&addr, GUARD).await.unwrap();
        let err = tokio::time::timeout(GUARD, conn.send(&MetadataRequest::default()))
            .await
            .unwrap()
            .unwrap_err();
        assert!(
            matches!(err, WireError::Closed { partial: true, .. }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn oversized_length_prefix_is_refused() {
        let addr = raw_tail_broker(0x7fff_ffffu32.to_be_bytes().to_vec()).await;
        let mut conn = Connection::connect(&addr, GUARD).await.unwrap();
        let err = tokio::time::timeout(GUARD, conn.send(&MetadataRequest::default()))
            .await
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, WireError::FrameTooLarge { .. }), "{err}");
    }

    #[tokio::test]
    async fn garbage_body_is_a_decode_error() {
        // A correct header followed by three junk bytes.
        let (addr, _server) = fake_broker(|header, body| {
            if header.request_api_key == 18 {
                return standard_answer(header, body);
            }
            let mut buf = BytesMut::new();
            ResponseHeader::default()
                .with_correlation_id(header.correlation_id)
                .encode(&mut buf, 1)
                .unwrap();
            buf.extend_from_slice(&[1, 2, 3]);
            vec![buf.freeze()]
        })
        .await;
        let mut conn = Connection::connect(&addr, GUARD).await.unwrap();
        let err = tokio::time::timeout(GUARD, conn.send(&MetadataRequest::default()))
            .await
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, WireError::Decode { .. }), "{err}");
    }

    #[tokio::test]
    async fn observer_sees_every_exchange() {
        let (addr, _server) = fake_broker(standard_answer).await;
        let events = Arc::new(std::sync::Mutex::new(Vec::<WireEvent>::new()));
        let sink = events.clone();
        let opts = ConnectOptions {
            observer: Some(Arc::new(move |e: &WireEvent| {
                sink.lock().unwrap().push(e.clone())
            })),
            ..ConnectOptions::default()
        };
        let mut conn = Connection::connect_with(&addr, &opts).await.unwrap();
        conn.send(&MetadataRequest::default()).await.unwrap();
        let events = events.lock().unwrap();
        let apis: Vec<&str> = events.iter().map(|e| e.api.as_str()).collect();
        assert_eq!(apis, vec!["ApiVersions", "Metadata"]);
        assert!(events.iter().all(|e| e.outcome.is_ok()));
    }

    /// The model's error table (from Kafka's `Errors.java`) agrees with kafka-protocol's on every
    /// code both know, and retriability comes from the crate.
    #[test]
    fn error_names_agree_with_kafka_protocol() {
        let snake = |camel: &str| {
            let mut out = String::new();
            for (i, ch) in camel.chars().enumerate() {
                if ch.is_ascii_uppercase() && i > 0 {
                    out.push('_');
                }
                out.push(ch.to_ascii_uppercase());
            }
            out
        };
        let mut compared = 0;
        for (code, name) in ErrorCode::ALL.iter().filter(|(c, _)| c.0 != 0) {
            if let Some(e) = ResponseError::try_from_code(code.0) {
                if !matches!(e, ResponseError::Unknown(_)) {
                    assert_eq!(snake(&format!("{e:?}")), *name, "code {}", code.0);
                    compared += 1;
                }
            }
        }
        assert!(compared > 100, "{compared}");
        assert!(is_retriable(ErrorCode::NOT_LEADER_OR_FOLLOWER));
        assert!(!is_retriable(ErrorCode::INVALID_RECORD_STATE));
    }

    #[test]
    fn negotiation_picks_highest_common_version() {
        assert_eq!(negotiate_range(ApiKey::ShareFetch, 1, 2), Some(1));
        assert_eq!(negotiate_range(ApiKey::ShareFetch, 0, 0), None);
        assert_eq!(negotiate_range(ApiKey::Produce, 3, 12), Some(12));
        assert_eq!(negotiate_range(ApiKey::Produce, 14, 20), None);
    }
}
