//! TLS: the server's self-signed certificate for 127.0.0.1, localhost and [::1]. kubectl sends
//! a kubeconfig's token only over TLS (client-go reads credentials only "if we are secure"),
//! so the server speaks HTTPS, and the kubeconfig pins this certificate as its CA.

use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

/// The server's certificate and private key. `Debug` never shows the key.
#[derive(Clone)]
pub struct ServerCertificate {
    cert_pem: String,
    key_pem: String,
}

impl ServerCertificate {
    /// A new self-signed ECDSA P-256 certificate naming the loopback names.
    pub fn generate() -> Result<Self, String> {
        let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .map_err(|e| e.to_string())?;
        params.subject_alt_names.extend([
            rcgen::SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()),
            rcgen::SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()),
        ]);
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            "csp-operator embedded API server",
        );
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        // Valid long enough for a development server kept with `up --state`.
        params.not_before = rcgen::date_time_ymd(2024, 1, 1);
        params.not_after = rcgen::date_time_ymd(2124, 1, 1);
        let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
        Ok(Self {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A certificate and key kept as PEM (checked when the server starts).
    pub fn from_pem(cert_pem: String, key_pem: String) -> Self {
        Self { cert_pem, key_pem }
    }

    /// The certificate (public): what a client trusts.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The private key, for keeping it in a private file; never for a log.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The certificate as DER, for kube's `root_cert`.
    pub fn cert_der(&self) -> Result<Vec<u8>, String> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        CertificateDer::from_pem_slice(self.cert_pem.as_bytes())
            .map(|c| c.to_vec())
            .map_err(|e| format!("certificate: {e}"))
    }

    /// The acceptor that serves this certificate (HTTP/1.1 only).
    pub fn acceptor(&self) -> Result<TlsAcceptor, String> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let cert = CertificateDer::from_pem_slice(self.cert_pem.as_bytes())
            .map_err(|e| format!("certificate: {e}"))?;
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())
            .map_err(|_| "private key: not a PEM private key".to_string())?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .map_err(|e| e.to_string())?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

impl std::fmt::Debug for ServerCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerCertificate(<key redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_serve_and_hide_their_key() {
        let cert = ServerCertificate::generate().unwrap();
        assert!(cert.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(!cert.cert_der().unwrap().is_empty());
        assert!(cert.acceptor().is_ok());
        assert_eq!(format!("{cert:?}"), "ServerCertificate(<key redacted>)");
        let kept = ServerCertificate::from_pem(cert.cert_pem().into(), cert.key_pem().into());
        assert!(kept.acceptor().is_ok());
    }
}
