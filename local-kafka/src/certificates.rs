//! A certificate authority made on the spot, and the server certificates
//! it signs, for TLS listeners on loopback: the broker's SASL_SSL
//! listener, a test's PostgreSQL. Clients trust the authority's
//! certificate (`ssl.ca.location`, `sslrootcert`) and verify the server's
//! name against it, as they would in production. The keys are written
//! beside the data they protect and never leave the machine; this is for
//! local runs and tests, not for production, where the certificates come
//! from the operator's own authority.

use std::path::Path;

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// A certificate authority whose key exists only in this process.
pub struct Authority {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A server certificate and its private key, both PEM.
pub struct ServerCertificate {
    /// The certificate (`CERTIFICATE`).
    pub certificate_pem: String,
    /// Its private key, unencrypted PKCS#8 (`PRIVATE KEY`).
    pub key_pem: String,
}

impl Authority {
    /// A new authority named `name` (its certificate's common name).
    ///
    /// # Errors
    /// When the key or the certificate cannot be made.
    pub fn new(name: &str) -> anyhow::Result<Self> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate()?)
            .context("making the certificate authority")?;
        Ok(Self { issuer })
    }

    /// The authority's certificate, PEM: what clients trust.
    pub fn certificate_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `names` (host names or IP addresses, each
    /// a subject alternative name), signed by this authority.
    ///
    /// # Errors
    /// When the key or the certificate cannot be made.
    pub fn issue(&self, names: &[&str]) -> anyhow::Result<ServerCertificate> {
        let names: Vec<String> = names.iter().map(|&n| n.to_owned()).collect();
        let mut params = CertificateParams::new(names.clone())?;
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_default(),
        );
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate()?;
        let certificate = params
            .signed_by(&key, &self.issuer)
            .context("signing the server certificate")?;
        Ok(ServerCertificate {
            certificate_pem: certificate.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// Writes `content` to `path`, readable by its owner only (a key).
///
/// # Errors
/// When the file cannot be written.
pub fn write_private(path: &Path, content: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(content.as_bytes())?;
    // `mode` applies to a new file only.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}
