//! Talking to servers without kubectl: the one way to build a kube client for an embedded server
//! (as admin, impersonating a user, or without kube's retry layer), a plain HTTP GET, and raw
//! HTTPS requests to an embedded server (any Host, any header, any body).

use csp_operator::apiserver::ApiServer;
use std::net::SocketAddr;

/// A kube client for `server` in the making; [`ClientFor::build`] finishes it.
pub struct ClientFor {
    config: kube::Config,
}

/// A client for `server` that acts as the admin (no impersonation, kube's default retries).
pub fn client_for(server: &ApiServer) -> ClientFor {
    let mut config = kube::Config::new(server.url().parse().expect("server URL"));
    config.auth_info.token = Some(server.token().to_string().into());
    config.root_cert = Some(vec![server.certificate().cert_der().expect("certificate")]);
    ClientFor { config }
}

impl ClientFor {
    /// Acts as `user` (in `groups`), so the embedded server enforces RBAC on its requests.
    pub fn impersonating(mut self, user: &str, groups: &[&str]) -> ClientFor {
        self.config.auth_info.impersonate = Some(user.to_string());
        if !groups.is_empty() {
            self.config.auth_info.impersonate_groups =
                Some(groups.iter().map(|g| g.to_string()).collect());
        }
        self
    }

    /// Without kube's default retry layer (which retries 429/503/504 by itself).
    pub fn without_retries(mut self) -> ClientFor {
        self.config.default_retry = false;
        self
    }

    pub fn build(self) -> kube::Client {
        kube::Client::try_from(self.config).expect("client")
    }
}

/// A loopback address nobody listens on yet (for a metrics server to bind).
pub fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
}

/// `GET path` over plain HTTP/1.1 (in a worker thread): the status code (0 when nothing answers)
/// and the whole response.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let path = path.to_string();
    tokio::task::spawn_blocking(move || blocking_get(addr, &path))
        .await
        .expect("join")
}

fn blocking_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return (0, String::new());
    };
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let code = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, out)
}

/// A raw HTTP/1.1 request (`Connection: close`); [`Raw::send`] sends it over TLS to a server.
pub struct Raw {
    head: String,
    body: Vec<u8>,
    declare_length: bool,
}

impl Raw {
    /// `method path` with `Host: 127.0.0.1:<port>` and no credentials.
    pub fn new(server: &ApiServer, method: &str, path: &str) -> Raw {
        Raw {
            head: format!(
                "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
                server.addr()
            ),
            body: Vec::new(),
            declare_length: true,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Raw {
        self.head.push_str(&format!("{name}: {value}\r\n"));
        self
    }

    /// The admin's token of `server`.
    pub fn admin(self, server: &ApiServer) -> Raw {
        let token = server.token().to_string();
        self.bearer(&token)
    }

    pub fn bearer(self, token: &str) -> Raw {
        self.header("Authorization", &format!("Bearer {token}"))
    }

    /// Replaces the Host header (the first line after the request line).
    pub fn host(mut self, host: &str) -> Raw {
        let start = self.head.find("Host: ").expect("host header");
        let end = start + self.head[start..].find("\r\n").expect("line end");
        self.head
            .replace_range(start..end, &format!("Host: {host}"));
        self
    }

    pub fn body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Raw {
        self.body = body.into();
        self.header("Content-Type", content_type)
    }

    /// Sends the body chunked (no Content-Length).
    pub fn chunked(mut self) -> Raw {
        self.declare_length = false;
        self.header("Transfer-Encoding", "chunked")
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = self.head.clone().into_bytes();
        if self.declare_length {
            out.extend(format!("Content-Length: {}\r\n\r\n", self.body.len()).bytes());
            out.extend(&self.body);
            return out;
        }
        out.extend(b"\r\n");
        for chunk in self.body.chunks(64 * 1024) {
            out.extend(format!("{:x}\r\n", chunk.len()).bytes());
            out.extend(chunk);
            out.extend(b"\r\n");
        }
        out.extend(b"0\r\n\r\n");
        out
    }

    /// Sends it over TLS (trusting the server's certificate): the status code and the whole
    /// response. The server may answer before the body is all sent (a 413); the rest is dropped.
    pub async fn send(&self, server: &ApiServer) -> (u16, String) {
        let out = self.exchange(server).await;
        let out = String::from_utf8_lossy(&out).into_owned();
        let code = out
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (code, out)
    }

    /// Like [`Raw::send`], for a binary answer: the status code, the head (status line and
    /// headers) and the body's bytes as they came (the server answers with a Content-Length).
    pub async fn send_bytes(&self, server: &ApiServer) -> (u16, String, Vec<u8>) {
        let out = self.exchange(server).await;
        let split = out
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(out.len());
        let head = String::from_utf8_lossy(&out[..split]).into_owned();
        let body = out.get(split + 4..).unwrap_or_default().to_vec();
        let code = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (code, head, body)
    }

    async fn exchange(&self, server: &ApiServer) -> Vec<u8> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tls = tls_connect(server).await;
        let (mut reader, mut writer) = tokio::io::split(&mut tls);
        let request = self.bytes();
        let write = async move {
            let _ = writer.write_all(&request).await;
            let _ = writer.flush().await;
        };
        let read = async move {
            let mut out = Vec::new();
            let _ = reader.read_to_end(&mut out).await;
            out
        };
        let (_, out) = tokio::join!(write, read);
        out
    }
}

/// A TLS connection to `server` that trusts its certificate (and nothing else).
pub async fn tls_connect(
    server: &ApiServer,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    let der = server.certificate().cert_der().expect("certificate");
    roots.add(CertificateDer::from(der)).expect("root");
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(server.addr())
        .await
        .expect("connect");
    let name = ServerName::try_from("127.0.0.1").expect("name");
    connector.connect(name, tcp).await.expect("TLS handshake")
}
