//! Key generation and key files: a fresh RSA-2048 pair, `authhost keygen`'s files (the private
//! one mode 0600, never overwritten), and the development pair in `data_dir`.

use std::path::{Path, PathBuf};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;

use super::parse::public_pem;
use super::{KeyError, invalid};

/// A fresh RSA-2048 key pair as (private PKCS#8 PEM, public SPKI PEM).
pub fn generate_pem_pair() -> Result<(String, String), KeyError> {
    let pair = KeyPair::generate(KeySize::Rsa2048)
        .map_err(|_| invalid("keygen", "RSA key generation failed"))?;
    let der = pair
        .as_der()
        .map_err(|_| invalid("keygen", "cannot encode the private key"))?;
    let private = pem::encode(&pem::Pem::new("PRIVATE KEY", der.as_ref().to_vec()));
    Ok((private, public_pem(pair.public_key())?))
}

/// Writes a new key pair as `private.pem` (mode 0600) and `public.pem` into `dir`.
pub fn write_pair(
    dir: &Path,
    private_name: &str,
    public_name: &str,
) -> Result<(PathBuf, String, String), KeyError> {
    std::fs::create_dir_all(dir).map_err(|source| KeyError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let (private, public) = generate_pem_pair()?;
    let priv_path = dir.join(private_name);
    write_secret_file(&priv_path, &private)?;
    let pub_path = dir.join(public_name);
    std::fs::write(&pub_path, &public).map_err(|source| KeyError::Write {
        path: pub_path,
        source,
    })?;
    Ok((priv_path, private, public))
}

fn write_secret_file(path: &Path, text: &str) -> Result<(), KeyError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|source| KeyError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    file.write_all(text.as_bytes())
        .map_err(|source| KeyError::Write {
            path: path.to_path_buf(),
            source,
        })
}

/// The development private key in `data_dir`, generated on first use. Several processes may
/// start at once (`cargo run` and `authhost token`): the key is written whole to a temporary
/// file and hard-linked into place, so exactly one wins and the others read its key.
pub fn dev_keys(data_dir: &Path) -> Result<(PathBuf, String), KeyError> {
    let priv_path = data_dir.join("dev-private.pem");
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| {
            invalid(
                "server.data_dir",
                format!("cannot read {}: {e}", p.display()),
            )
        })
    };
    if priv_path.exists() {
        return Ok((priv_path.clone(), read(&priv_path)?));
    }
    std::fs::create_dir_all(data_dir).map_err(|source| KeyError::Write {
        path: data_dir.to_path_buf(),
        source,
    })?;
    let (private, public) = generate_pem_pair()?;
    let tmp = data_dir.join(format!(".dev-private.pem.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    write_secret_file(&tmp, &private)?;
    let linked = std::fs::hard_link(&tmp, &priv_path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            let pub_path = data_dir.join("dev-public.pem");
            std::fs::write(&pub_path, &public).map_err(|source| KeyError::Write {
                path: pub_path,
                source,
            })?;
            Ok((priv_path, private))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok((priv_path.clone(), read(&priv_path)?))
        }
        Err(source) => Err(KeyError::Write {
            path: priv_path,
            source,
        }),
    }
}
