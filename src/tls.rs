//! TLS for both legs, built from PEM files: server configs for listeners (a default certificate and
//! per-host ones chosen by SNI, ALPN `http/1.1`, TLS 1.2 and 1.3) and client configs toward upstreams
//! (system roots or a CA file, an optional client certificate). Errors name the file at fault.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::config::{ListenerTls, UpstreamTls};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{cert} and {key}: the key does not match the certificate ({message})")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        message: String,
    },
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn file_error(path: &Path, message: impl ToString) -> TlsError {
    TlsError::File {
        path: path.to_owned(),
        message: message.to_string(),
    }
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, e))?;
    if chain.is_empty() {
        return Err(file_error(path, "no PEM certificate in the file"));
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| file_error(path, e))
}

fn certified_key(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let chain = read_chain(cert)?;
    let key_der = read_key(key)?;
    CertifiedKey::from_der(chain, key_der, provider).map_err(|e| TlsError::Mismatch {
        cert: cert.to_owned(),
        key: key.to_owned(),
        message: e.to_string(),
    })
}

/// Chooses the certificate by SNI; clients without SNI or with an unknown name get the default.
#[derive(Debug)]
struct SniResolver {
    by_host: HashMap<String, Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let chosen = hello
            .server_name()
            .and_then(|name| self.by_host.get(&name.to_ascii_lowercase()));
        Some(chosen.unwrap_or(&self.default).clone())
    }
}

/// A listener's rustls config (reads the files: call it at start and on reload, not per connection).
/// With `http2`, ALPN offers `h2` before `http/1.1` (the client's preference decides among them).
pub fn server_config(tls: &ListenerTls, http2: bool) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider();
    let default = Arc::new(certified_key(&tls.cert, &tls.key, &provider)?);
    let mut by_host = HashMap::new();
    for sni in &tls.sni {
        let key = certified_key(&sni.cert, &sni.key, &provider)?;
        by_host.insert(sni.host.to_ascii_lowercase(), Arc::new(key));
    }
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SniResolver { by_host, default }));
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(Arc::new(config))
}

/// The client config of a plain upstream's pooled connector, which never uses it for `http://`.
pub fn plain_client_config() -> Result<Arc<ClientConfig>, TlsError> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// An upstream's rustls client config: trust the CA file if given, else the system roots.
pub fn client_config(tls: &UpstreamTls) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    match &tls.ca {
        Some(ca) => {
            for cert in read_chain(ca)? {
                roots.add(cert).map_err(|e| file_error(ca, e))?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            for cert in native.certs {
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err(TlsError::File {
                    path: PathBuf::from("(system trust store)"),
                    message: "no system root certificates found; set upstreams.*.tls.ca".into(),
                });
            }
        }
    }
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_root_certificates(roots);
    let mut config = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            let chain = read_chain(cert)?;
            let key_der = read_key(key)?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| TlsError::Mismatch {
                    cert: cert.clone(),
                    key: key.clone(),
                    message: e.to_string(),
                })?
        }
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_roots_load_and_missing_files_are_named() {
        let system = UpstreamTls {
            ca: None,
            server_name: None,
            cert: None,
            key: None,
        };
        assert!(
            client_config(&system).is_ok(),
            "the system trust store is readable"
        );
        let missing = UpstreamTls {
            ca: Some(PathBuf::from("/nonexistent/ca.pem")),
            ..system
        };
        let error = client_config(&missing).unwrap_err().to_string();
        assert!(error.starts_with("/nonexistent/ca.pem: "), "{error}");
        let listener = ListenerTls {
            cert: PathBuf::from("/nonexistent/server.pem"),
            key: PathBuf::from("/nonexistent/server.key"),
            sni: vec![],
        };
        let error = server_config(&listener, false).unwrap_err().to_string();
        assert!(error.starts_with("/nonexistent/server.pem: "), "{error}");
    }
}
