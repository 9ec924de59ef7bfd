//! Talking to servers without kubectl: the one way to build a kube client for an embedded server
//! (as admin, impersonating a user, or without kube's retry layer), and a plain HTTP GET.

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
