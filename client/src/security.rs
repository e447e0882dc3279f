//! How a connection is secured, taken the way Kafka's own tools take it: a Java properties file
//! (`--command-config FILE`) with `security.protocol`, `ssl.*` and `sasl.*` keys.
//!
//! * `security.protocol`: `PLAINTEXT` (default), `SSL`, `SASL_PLAINTEXT`, `SASL_SSL`.
//! * TLS (rustls, ring provider): `ssl.truststore.location` (a PEM file; `ssl.truststore.type`
//!   PEM) or `ssl.truststore.certificates` (PEM inline); without either, the system's CA bundle
//!   (`SSL_CERT_FILE`, else `/etc/ssl/certs/ca-certificates.crt`). mTLS: `ssl.keystore.location`
//!   (one PEM file with the private key and the certificate chain; `ssl.keystore.type` PEM) or
//!   `ssl.keystore.key` + `ssl.keystore.certificate.chain` inline. `ssl.endpoint.identification.algorithm`
//!   `https` (default) checks the broker's name against its certificate; empty does not (the chain
//!   is still verified). `ssl.enabled.protocols` / `ssl.protocol`: TLSv1.2, TLSv1.3.
//!   JKS and PKCS12 stores are refused with the keytool/openssl command that converts them.
//! * SASL: `sasl.mechanism` `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`; the credentials from
//!   `sasl.jaas.config` (`PlainLoginModule` or `ScramLoginModule`, `username="…" password="…"`)
//!   or from `sasl.username` / `sasl.password`.
//!
//! The password is a [`Secret`]: it prints as `***` in every `Debug` and `Display`, so no report,
//! history or log of a run can carry it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// A credential: kept for the handshake, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself, for the handshake only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// `security.protocol`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Plaintext => "PLAINTEXT",
            Protocol::Ssl => "SSL",
            Protocol::SaslPlaintext => "SASL_PLAINTEXT",
            Protocol::SaslSsl => "SASL_SSL",
        }
    }
    fn tls(self) -> bool {
        matches!(self, Protocol::Ssl | Protocol::SaslSsl)
    }
    fn sasl(self) -> bool {
        matches!(self, Protocol::SaslPlaintext | Protocol::SaslSsl)
    }
}

/// `sasl.mechanism`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl Mechanism {
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// Who authenticates, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaslCredentials {
    pub mechanism: Mechanism,
    pub username: String,
    pub password: Secret,
}

/// TLS as set up from the properties.
#[derive(Clone)]
pub struct Tls {
    /// The rustls client configuration (roots, client certificate, versions).
    pub config: Arc<rustls::ClientConfig>,
    /// Whether the broker's name is checked against its certificate.
    pub verify_hostname: bool,
    /// Whether a client certificate is presented (mTLS).
    pub client_certificate: bool,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("verify_hostname", &self.verify_hostname)
            .field("client_certificate", &self.client_certificate)
            .finish()
    }
}

/// How every connection of a run is secured.
#[derive(Clone, Debug)]
pub struct Security {
    pub protocol: Protocol,
    pub tls: Option<Tls>,
    pub sasl: Option<SaslCredentials>,
    /// The properties file it came from.
    pub source: Option<PathBuf>,
}

impl Default for Security {
    fn default() -> Self {
        Security::plaintext()
    }
}

/// Why client properties cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    /// A file (the properties, a PEM file) cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not Java properties as written.
    #[error("{path}:{line}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// A key has a value sharecheck cannot use (the reason says what would work).
    #[error("{key}={value}: {reason}")]
    Unsupported {
        key: String,
        value: String,
        reason: String,
    },
    /// A key the protocol needs is missing.
    #[error("{key} is needed: {why}")]
    Missing { key: String, why: String },
    /// A PEM file or inline PEM is unusable.
    #[error("{what}: {message}")]
    Pem { what: String, message: String },
    /// rustls refused the configuration.
    #[error("TLS setup: {0}")]
    Tls(String),
}

impl SecurityError {
    /// Whether the failure is a file that cannot be read (exit 66) rather than one that says
    /// something unusable (exit 65).
    pub fn is_unreadable(&self) -> bool {
        matches!(self, SecurityError::Io { .. })
    }
}

impl Security {
    pub fn plaintext() -> Self {
        Security {
            protocol: Protocol::Plaintext,
            tls: None,
            sasl: None,
            source: None,
        }
    }

    /// Whether nothing is secured.
    pub fn is_plaintext(&self) -> bool {
        self.protocol == Protocol::Plaintext
    }

    /// One line for reports, without secrets: `SASL_SSL, SCRAM-SHA-512 as alice`.
    pub fn describe(&self) -> String {
        let mut s = self.protocol.name().to_string();
        if let Some(t) = &self.tls {
            if t.client_certificate {
                s.push_str(", client certificate");
            }
            if !t.verify_hostname {
                s.push_str(", no hostname check");
            }
        }
        if let Some(c) = &self.sasl {
            s.push_str(&format!(", {} as {}", c.mechanism.name(), c.username));
        }
        s
    }

    /// Read a Kafka client properties file; relative PEM paths are taken from the current
    /// directory, as Kafka's tools take them.
    pub fn from_file(path: &Path) -> Result<Security, SecurityError> {
        let text = std::fs::read_to_string(path).map_err(|source| SecurityError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let props = parse_properties(&text).map_err(|(line, message)| SecurityError::Syntax {
            path: path.to_path_buf(),
            line,
            message,
        })?;
        let mut s = Security::from_properties(&props)?;
        s.source = Some(path.to_path_buf());
        Ok(s)
    }

    /// From parsed properties. Keys that do not concern security (`client.id`, timeouts) are
    /// ignored, as Kafka's tools ignore the keys they do not use.
    pub fn from_properties(props: &BTreeMap<String, String>) -> Result<Security, SecurityError> {
        let get = |k: &str| props.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let protocol = match get("security.protocol")
            .unwrap_or("PLAINTEXT")
            .to_ascii_uppercase()
            .as_str()
        {
            "PLAINTEXT" => Protocol::Plaintext,
            "SSL" => Protocol::Ssl,
            "SASL_PLAINTEXT" => Protocol::SaslPlaintext,
            "SASL_SSL" => Protocol::SaslSsl,
            other => {
                return Err(SecurityError::Unsupported {
                    key: "security.protocol".into(),
                    value: other.into(),
                    reason: "expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL".into(),
                })
            }
        };
        let tls = if protocol.tls() {
            Some(tls_from(props)?)
        } else {
            None
        };
        let sasl = if protocol.sasl() {
            Some(sasl_from(props)?)
        } else {
            None
        };
        Ok(Security {
            protocol,
            tls,
            sasl,
            source: None,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// SASL

fn sasl_from(props: &BTreeMap<String, String>) -> Result<SaslCredentials, SecurityError> {
    let get = |k: &str| props.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let mech = get("sasl.mechanism").unwrap_or("GSSAPI");
    let mechanism = match mech.to_ascii_uppercase().as_str() {
        "PLAIN" => Mechanism::Plain,
        "SCRAM-SHA-256" => Mechanism::ScramSha256,
        "SCRAM-SHA-512" => Mechanism::ScramSha512,
        _ => {
            return Err(SecurityError::Unsupported {
                key: "sasl.mechanism".into(),
                value: mech.into(),
                reason: if get("sasl.mechanism").is_none() {
                    "not set, so Kafka's default GSSAPI (Kerberos), which sharecheck does not speak; set PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512".into()
                } else {
                    "sharecheck speaks PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512".into()
                },
            })
        }
    };
    let (mut username, mut password) = (None, None);
    if let Some(jaas) = get("sasl.jaas.config") {
        let (module, options) = parse_jaas(jaas)?;
        let known = [
            "org.apache.kafka.common.security.plain.PlainLoginModule",
            "org.apache.kafka.common.security.scram.ScramLoginModule",
        ];
        if !known.contains(&module.as_str()) {
            return Err(SecurityError::Unsupported {
                key: "sasl.jaas.config".into(),
                value: module,
                reason: "sharecheck takes credentials from PlainLoginModule or ScramLoginModule"
                    .into(),
            });
        }
        username = options.get("username").cloned();
        password = options.get("password").cloned();
    }
    if let Some(u) = get("sasl.username") {
        username = Some(u.to_string());
    }
    if let Some(p) = props.get("sasl.password") {
        password = Some(p.clone());
    }
    let username = username
        .filter(|u| !u.is_empty())
        .ok_or(SecurityError::Missing {
            key: "sasl.jaas.config (username=\"…\") or sasl.username".into(),
            why: format!("{} needs a user name", mechanism.name()),
        })?;
    let password = password.ok_or(SecurityError::Missing {
        key: "sasl.jaas.config (password=\"…\") or sasl.password".into(),
        why: format!("{} needs a password", mechanism.name()),
    })?;
    Ok(SaslCredentials {
        mechanism,
        username,
        password: Secret(password),
    })
}

/// `LoginModuleClass required key="value" key2=value2;` → (class, options). Kafka's `sasl.jaas.config`
/// holds exactly one login module.
fn parse_jaas(text: &str) -> Result<(String, BTreeMap<String, String>), SecurityError> {
    let bad = |why: &str| {
        SecurityError::Unsupported {
        key: "sasl.jaas.config".into(),
        // The value may hold the password: never echo it.
        value: "…".into(),
        reason: format!("not a JAAS login module entry ({why}); expected `ModuleClass required username=\"…\" password=\"…\";`"),
    }
    };
    let mut chars = text.trim().chars().peekable();
    let word = |chars: &mut std::iter::Peekable<std::str::Chars>| {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut w = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() || c == '=' || c == ';' {
                break;
            }
            w.push(c);
            chars.next();
        }
        w
    };
    let module = word(&mut chars);
    if module.is_empty() {
        return Err(bad("no login module class"));
    }
    let flag = word(&mut chars);
    if !["required", "requisite", "sufficient", "optional"].contains(&flag.as_str()) {
        return Err(bad("no control flag after the class"));
    }
    let mut options = BTreeMap::new();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.peek() {
            None => return Err(bad("no `;` at the end")),
            Some(';') => {
                chars.next();
                break;
            }
            _ => {}
        }
        let key = word(&mut chars);
        if key.is_empty() || chars.next() != Some('=') {
            return Err(bad("an option without `=`"));
        }
        let value = if chars.peek() == Some(&'"') {
            chars.next();
            let mut v = String::new();
            loop {
                match chars.next() {
                    None => return Err(bad("an unterminated quoted value")),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => v.push(c),
                        None => return Err(bad("an unterminated quoted value")),
                    },
                    Some(c) => v.push(c),
                }
            }
            v
        } else {
            word(&mut chars)
        };
        options.insert(key, value);
    }
    if chars.any(|c| !c.is_whitespace()) {
        return Err(bad("text after the `;` (one login module only)"));
    }
    Ok((module, options))
}

// ---------------------------------------------------------------------------------------------
// TLS

fn tls_from(props: &BTreeMap<String, String>) -> Result<Tls, SecurityError> {
    let get = |k: &str| props.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let provider = Arc::new(rustls::crypto::ring::default_provider());

    // Store types: PEM only; say how to convert the JDK's.
    for (key, store) in [
        ("ssl.truststore.type", "ssl.truststore.location"),
        ("ssl.keystore.type", "ssl.keystore.location"),
    ] {
        let ty = get(key)
            .map(str::to_ascii_uppercase)
            .or_else(|| get(store).map(|l| guess_store_type(l).to_string()));
        if let Some(ty) = ty.filter(|t| t != "PEM") {
            return Err(SecurityError::Unsupported {
                key: key.into(),
                value: ty,
                reason: if key.starts_with("ssl.truststore") {
                    "sharecheck reads PEM trust stores; convert with `keytool -exportcert -rfc -keystore STORE -alias ALIAS > ca.pem` and set ssl.truststore.type=PEM".into()
                } else {
                    "sharecheck reads PEM key stores (key and chain in one file); convert with `openssl pkcs12 -in STORE.p12 -nodes > client.pem` and set ssl.keystore.type=PEM".into()
                },
            });
        }
    }

    // Trust.
    let mut roots = RootCertStore::empty();
    let (what, pem) = if let Some(inline) = get("ssl.truststore.certificates") {
        (
            "ssl.truststore.certificates".to_string(),
            inline.replace("\\n", "\n").into_bytes(),
        )
    } else if let Some(loc) = get("ssl.truststore.location") {
        (
            format!("ssl.truststore.location {loc}"),
            read(Path::new(loc))?,
        )
    } else {
        let loc = std::env::var("SSL_CERT_FILE")
            .unwrap_or_else(|_| "/etc/ssl/certs/ca-certificates.crt".to_string());
        (
            format!("the system CA bundle {loc}"),
            read(Path::new(&loc))?,
        )
    };
    let certs = certificates(&what, &pem)?;
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(SecurityError::Pem {
            what,
            message: "no usable CA certificate".into(),
        });
    }

    let verify_hostname = match props
        .get("ssl.endpoint.identification.algorithm")
        .map(|v| v.trim().to_ascii_lowercase())
    {
        None => true,
        Some(v) if v == "https" => true,
        Some(v) if v.is_empty() => false,
        Some(v) => {
            return Err(SecurityError::Unsupported {
                key: "ssl.endpoint.identification.algorithm".into(),
                value: v,
                reason: "expected https (check the broker's name) or empty (do not)".into(),
            })
        }
    };

    // Versions.
    let mut versions: Vec<&'static rustls::SupportedProtocolVersion> = Vec::new();
    let listed = get("ssl.enabled.protocols")
        .or_else(|| get("ssl.protocol"))
        .unwrap_or("TLSv1.2,TLSv1.3");
    for v in listed.split(',').map(str::trim).filter(|v| !v.is_empty()) {
        match v {
            "TLSv1.3" | "TLS" => versions.push(&rustls::version::TLS13),
            "TLSv1.2" => versions.push(&rustls::version::TLS12),
            other => {
                return Err(SecurityError::Unsupported {
                    key: "ssl.enabled.protocols".into(),
                    value: other.into(),
                    reason: "sharecheck speaks TLSv1.2 and TLSv1.3".into(),
                })
            }
        }
    }
    if listed == "TLS" {
        versions.push(&rustls::version::TLS12);
    }

    let roots = Arc::new(roots);
    let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(|e| SecurityError::Tls(e.to_string()))?;
    let verifier = Arc::new(Verifier {
        inner: webpki,
        verify_hostname,
    });
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| SecurityError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);

    // Client certificate (mTLS).
    let key_and_chain = if let Some(key) = get("ssl.keystore.key") {
        let chain = get("ssl.keystore.certificate.chain").ok_or(SecurityError::Missing {
            key: "ssl.keystore.certificate.chain".into(),
            why: "ssl.keystore.key is set".into(),
        })?;
        let key = key.replace("\\n", "\n").into_bytes();
        let chain = chain.replace("\\n", "\n").into_bytes();
        Some((
            private_key("ssl.keystore.key", &key, props)?,
            certificates("ssl.keystore.certificate.chain", &chain)?,
        ))
    } else if let Some(loc) = get("ssl.keystore.location") {
        let what = format!("ssl.keystore.location {loc}");
        let pem = read(Path::new(loc))?;
        Some((private_key(&what, &pem, props)?, certificates(&what, &pem)?))
    } else {
        None
    };
    let client_certificate = key_and_chain.is_some();
    let config = match key_and_chain {
        Some((key, chain)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| SecurityError::Tls(format!("client certificate: {e}")))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Tls {
        config: Arc::new(config),
        verify_hostname,
        client_certificate,
    })
}

fn guess_store_type(location: &str) -> &'static str {
    let l = location.to_ascii_lowercase();
    if l.ends_with(".jks") {
        "JKS"
    } else if l.ends_with(".p12") || l.ends_with(".pfx") || l.ends_with(".pkcs12") {
        "PKCS12"
    } else {
        // Kafka's default type is JKS, but a file named .pem/.crt/anything else is read as PEM
        // and refused below with a clear message if it is not.
        "PEM"
    }
}

fn read(path: &Path) -> Result<Vec<u8>, SecurityError> {
    std::fs::read(path).map_err(|source| SecurityError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn certificates(what: &str, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, SecurityError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| SecurityError::Pem {
            what: what.to_string(),
            message: format!("not PEM certificates: {e}"),
        })?;
    if certs.is_empty() {
        return Err(SecurityError::Pem {
            what: what.to_string(),
            message: "no `-----BEGIN CERTIFICATE-----` in it".into(),
        });
    }
    Ok(certs)
}

fn private_key(
    what: &str,
    pem: &[u8],
    props: &BTreeMap<String, String>,
) -> Result<PrivateKeyDer<'static>, SecurityError> {
    if pem
        .windows(b"ENCRYPTED PRIVATE KEY".len())
        .any(|w| w == b"ENCRYPTED PRIVATE KEY")
    {
        let hint = if props.contains_key("ssl.key.password") {
            " (ssl.key.password is set)"
        } else {
            ""
        };
        return Err(SecurityError::Pem {
            what: what.to_string(),
            message: format!("the private key is encrypted{hint}; sharecheck reads unencrypted PKCS#8 keys: `openssl pkcs8 -topk8 -nocrypt -in key.pem`"),
        });
    }
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| SecurityError::Pem {
        what: what.to_string(),
        message: format!("no private key in it ({e})"),
    })
}

/// WebPKI verification of the chain; the name check only with `ssl.endpoint.identification.algorithm=https`.
#[derive(Debug)]
struct Verifier {
    inner: Arc<WebPkiServerVerifier>,
    verify_hostname: bool,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.verify_hostname => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

// ---------------------------------------------------------------------------------------------
// Java properties

/// Parse Java properties text (`java.util.Properties.load`): `key=value`, `key: value` or
/// `key value`; `#` and `!` comment lines; a trailing `\` continues the line; `\t`, `\n`, `\uXXXX`
/// and `\=`-style escapes. Later keys win. Errors are (1-based line, message).
pub fn parse_properties(text: &str) -> Result<BTreeMap<String, String>, (usize, String)> {
    let mut out = BTreeMap::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let first = i + 1;
        let mut logical = lines[i].trim_start().to_string();
        i += 1;
        if logical.is_empty() || logical.starts_with('#') || logical.starts_with('!') {
            continue;
        }
        // Continuations: an odd number of trailing backslashes.
        while ends_with_odd_backslashes(&logical) {
            logical.pop();
            match lines.get(i) {
                Some(next) => {
                    logical.push_str(next.trim_start());
                    i += 1;
                }
                None => break,
            }
        }
        let (key, value) = split_key_value(&logical);
        let key = unescape(key).map_err(|m| (first, m))?;
        let value = unescape(value).map_err(|m| (first, m))?;
        out.insert(key, value);
    }
    Ok(out)
}

fn ends_with_odd_backslashes(s: &str) -> bool {
    s.chars().rev().take_while(|&c| c == '\\').count() % 2 == 1
}

/// The key ends at the first unescaped `=`, `:` or whitespace; the separator and whitespace around
/// it are dropped.
fn split_key_value(line: &str) -> (&str, &str) {
    let bytes = line.as_bytes();
    let mut k = 0;
    while k < bytes.len() {
        match bytes[k] {
            b'\\' => k += 2,
            b'=' | b':' | b' ' | b'\t' | b'\x0c' => break,
            _ => k += 1,
        }
    }
    let k = k.min(bytes.len());
    let key = &line[..k];
    let mut rest = line[k..].trim_start_matches([' ', '\t', '\x0c']);
    if let Some(r) = rest.strip_prefix(['=', ':']) {
        rest = r.trim_start_matches([' ', '\t', '\x0c']);
    }
    (key, rest)
}

fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            None => {}
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let code = u32::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 4)
                    .and_then(char::from_u32)
                    .ok_or_else(|| format!("malformed \\u escape `\\u{hex}`"))?;
                out.push(code);
            }
            Some(other) => out.push(other),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(text: &str) -> BTreeMap<String, String> {
        parse_properties(text).unwrap()
    }

    #[test]
    fn java_properties_as_java_reads_them() {
        let p = props(
            "# comment\n! also\n\na=1\nb : 2\nc 3\nd=x\\\n   y\ne=tab\\tend\nf=\\u0041\\=\ng\n  h = spaced value  \na=later\n",
        );
        assert_eq!(p["a"], "later");
        assert_eq!(p["b"], "2");
        assert_eq!(p["c"], "3");
        assert_eq!(p["d"], "xy");
        assert_eq!(p["e"], "tab\tend");
        assert_eq!(p["f"], "A=");
        assert_eq!(p["g"], "");
        assert_eq!(p["h"], "spaced value  ");
        assert!(parse_properties("k=\\u12").is_err());
        assert_eq!(parse_properties("\n\nk=\\uZZZZ").unwrap_err().0, 3);
    }

    #[test]
    fn plaintext_is_the_default_and_other_keys_are_ignored() {
        let s = Security::from_properties(&props("client.id=x\nrequest.timeout.ms=5\n")).unwrap();
        assert!(s.is_plaintext());
        assert!(s.tls.is_none() && s.sasl.is_none());
    }

    #[test]
    fn sasl_credentials_from_jaas_or_plain_keys_and_never_printed() {
        let s = Security::from_properties(&props(
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\n\
             sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \\\n  username=\"alice\" password=\"s3cr=et;x y\";\n",
        ))
        .unwrap();
        let c = s.sasl.as_ref().unwrap();
        assert_eq!(c.mechanism, Mechanism::ScramSha512);
        assert_eq!(c.username, "alice");
        assert_eq!(c.password.expose(), "s3cr=et;x y");
        let shown = format!("{s:?} {} {}", s.describe(), c.password);
        assert!(!shown.contains("s3cr"), "{shown}");
        assert_eq!(s.describe(), "SASL_PLAINTEXT, SCRAM-SHA-512 as alice");

        let s = Security::from_properties(&props(
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.username=bob\nsasl.password=pw\n",
        ))
        .unwrap();
        assert_eq!(s.sasl.unwrap().username, "bob");
    }

    #[test]
    fn unusable_sasl_settings_are_named_without_the_password() {
        let err = |t: &str| {
            Security::from_properties(&props(t))
                .unwrap_err()
                .to_string()
        };
        let e = err("security.protocol=SASL_PLAINTEXT\nsasl.username=u\nsasl.password=p\n");
        assert!(e.contains("GSSAPI"), "{e}");
        let e = err("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=OAUTHBEARER\n");
        assert!(e.contains("OAUTHBEARER"), "{e}");
        let e = err("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.username=u\n");
        assert!(e.contains("password"), "{e}");
        let e = err(
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n\
             sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\" password=\"hunter2\"\n",
        );
        assert!(e.contains("`;`") && !e.contains("hunter2"), "{e}");
        let e = err("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n\
             sasl.jaas.config=com.sun.security.auth.module.Krb5LoginModule required;\n");
        assert!(e.contains("Krb5LoginModule"), "{e}");
        let e = err("security.protocol=TLS\n");
        assert!(e.contains("SASL_SSL"), "{e}");
    }

    #[test]
    fn jdk_stores_are_refused_with_the_conversion() {
        let e = Security::from_properties(&props(
            "security.protocol=SSL\nssl.truststore.location=/x/truststore.jks\n",
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("JKS") && e.contains("keytool -exportcert"),
            "{e}"
        );
        let e = Security::from_properties(&props(
            "security.protocol=SSL\nssl.truststore.type=PKCS12\nssl.truststore.location=/x/t\n",
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("PKCS12"), "{e}");
    }

    #[test]
    fn a_missing_pem_file_is_an_unreadable_file() {
        let e = Security::from_properties(&props(
            "security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location=/nonexistent/ca.pem\n",
        ))
        .unwrap_err();
        assert!(e.is_unreadable(), "{e}");
        assert!(e.to_string().contains("/nonexistent/ca.pem"));
    }

    #[test]
    fn a_file_that_is_not_pem_is_named() {
        let dir = std::env::temp_dir().join(format!("sharecheck-sec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("ca.pem");
        std::fs::write(&f, "not a certificate\n").unwrap();
        let e = Security::from_properties(&props(&format!(
            "security.protocol=SSL\nssl.truststore.location={}\n",
            f.display()
        )))
        .unwrap_err()
        .to_string();
        assert!(e.contains("BEGIN CERTIFICATE"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
