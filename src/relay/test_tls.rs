//! Test-only TLS legs: real rustls sessions over in-memory pipes, with a certificate made in the
//! test, and a tunnel whose both legs are TLS.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::io::DuplexStream;
use tokio_rustls::{client, server, TlsAcceptor, TlsConnector};

use super::test_io::{Setup, Tunnel};

/// The test client's end of its TLS session with the relay, and the test backend's.
pub(super) type ClientPeer = client::TlsStream<DuplexStream>;
pub(super) type UpstreamPeer = server::TlsStream<DuplexStream>;

const NAME: &str = "relay.test";

/// A server config with a certificate for `NAME`, and a client config that trusts its CA.
fn configs() -> (Arc<ServerConfig>, Arc<ClientConfig>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec![NAME.to_string()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let server = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![CertificateDer::from(cert.der().to_vec())], key)
        .unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from(ca.der().to_vec())).unwrap();
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (Arc::new(server), Arc::new(client))
}

/// A TLS session over a pipe of `pipe` bytes each way, once its handshake is done.
async fn session(
    pipe: usize,
    configs: &(Arc<ServerConfig>, Arc<ClientConfig>),
) -> (ClientPeer, UpstreamPeer) {
    let (client_io, server_io) = tokio::io::duplex(pipe);
    let name = ServerName::try_from(NAME).unwrap();
    let (client, server) = tokio::join!(
        TlsConnector::from(configs.1.clone()).connect(name, client_io),
        TlsAcceptor::from(configs.0.clone()).accept(server_io),
    );
    (
        client.expect("client handshake"),
        server.expect("server handshake"),
    )
}

/// A tunnel whose both legs are TLS over pipes of the setup's sizes, as the proxy would hand them
/// over (boxed); the test's peers are the client's and the backend's ends of those sessions.
pub(super) async fn tls_tunnel(setup: Setup) -> Tunnel<ClientPeer, UpstreamPeer> {
    let configs = configs();
    let (client_peer, client_leg) = session(setup.client_pipe, &configs).await;
    let (upstream_leg, upstream_peer) = session(setup.upstream_pipe, &configs).await;
    // TLS legs cannot reset; nothing sets these.
    let no_reset = || Arc::new(AtomicBool::new(false));
    Tunnel::over(
        setup,
        (Box::new(client_leg), client_peer, no_reset()),
        (Box::new(upstream_leg), upstream_peer, no_reset()),
    )
}
