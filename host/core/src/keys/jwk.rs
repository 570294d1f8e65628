//! The public key as a JWK, with its RFC 7638 thumbprint (jsonwebtoken's) as `kid`.

use aws_lc_rs::rsa::PublicKey;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, Jwk, KeyAlgorithm, PublicKeyUse, RSAKeyParameters,
    RSAKeyType, ThumbprintHash,
};

/// `(n, e)` base64url, and the JWK with its RFC 7638 thumbprint as `kid`.
pub fn jwk_of(key: &PublicKey) -> ((String, String), serde_json::Value) {
    let n = URL_SAFE_NO_PAD.encode(key.modulus().big_endian_without_leading_zero());
    let e = URL_SAFE_NO_PAD.encode(key.exponent().big_endian_without_leading_zero());
    let mut jwk = Jwk {
        common: CommonParameters {
            public_key_use: Some(PublicKeyUse::Signature),
            key_algorithm: Some(KeyAlgorithm::RS256),
            ..Default::default()
        },
        algorithm: AlgorithmParameters::RSA(RSAKeyParameters {
            key_type: RSAKeyType::RSA,
            n: n.clone(),
            e: e.clone(),
        }),
    };
    // The thumbprint covers only `e`, `kty` and `n` (RFC 7638 §3.2), so it is taken before the
    // `kid` is set. For an RSA key it cannot fail; the fallback keeps the JWK usable anyway.
    jwk.common.key_id = jwk.thumbprint(ThumbprintHash::SHA256).ok();
    let value = serde_json::to_value(&jwk).unwrap_or_default();
    ((n, e), value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::digest;

    /// The thumbprint is the one RFC 7638 §3 defines: SHA-256 over the required members in
    /// lexicographic order, without whitespace.
    #[test]
    fn the_kid_is_the_rfc_7638_thumbprint() {
        crate::crypto::install();
        let (private, _) = super::super::generate_pem_pair().expect("keygen");
        let block = pem::parse(private.trim()).expect("pem");
        let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(block.contents()).expect("key");
        use aws_lc_rs::signature::KeyPair as _;
        let ((n, e), jwk) = jwk_of(pair.public_key());
        let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
        let expected =
            URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical.as_bytes()));
        assert_eq!(jwk["kid"], expected.as_str());
        assert_eq!(
            jwk,
            serde_json::json!({
                "kty": "RSA", "use": "sig", "alg": "RS256", "kid": expected, "n": n, "e": e,
            })
        );
    }
}
