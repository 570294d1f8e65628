//! `TokenService::verify_user_token` (and the `accept_own_token` fast path) on arbitrary input:
//! never a panic; and a valid token's header and payload with any other signature are refused.
#![no_main]

use std::sync::{Arc, OnceLock};

use authhost::config::{Config, EnvMap};
use authhost::keys::KeyRing;
use authhost::tokens::TokenService;
use libfuzzer_sys::fuzz_target;

struct Fixture {
    service: TokenService,
    /// `header.payload` of a valid user token, and its signature.
    signed: String,
    signature: String,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        authhost::crypto::install();
        let (private, public) = authhost::keys::generate_pem_pair().expect("keygen");
        let mut env = EnvMap::new();
        env.insert("PRIVATE_KEY".into(), private);
        env.insert("PUBLIC_KEY".into(), public);
        let config = Config::from_toml_str("", &env).expect("config");
        let keys = KeyRing::load(&config).expect("keys");
        let service = TokenService::new(&config, Arc::new(keys));
        let token = service.mint_user_token("user-1", None, None).expect("mint");
        let (signed, signature) = token.rsplit_once('.').expect("three parts");
        Fixture {
            signed: signed.to_string(),
            signature: signature.to_string(),
            service,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = f.service.verify_user_token(text);
    let _ = f.service.accept_own_token(text);
    // The fuzzer's bytes as the signature of a genuine header and payload.
    if text != f.signature {
        let forged = format!("{}.{text}", f.signed);
        assert!(f.service.verify_user_token(&forged).is_err(), "{forged}");
        assert!(f.service.accept_own_token(&forged).is_none(), "{forged}");
    }
});
