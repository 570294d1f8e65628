//! `verify-client ISSUER SERVICE TOKEN`: finds the host's JWKS through its RFC 8414 metadata,
//! then prints the claims of a valid permission token, or why it is not valid (exit 1).
//!
//! Example against the default configuration:
//! `verify-client http://127.0.0.1:8000/auth/ example "$PERMISSION_TOKEN"`

use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [issuer, service, token] = args.as_slice() else {
        eprintln!("usage: verify-client ISSUER SERVICE TOKEN");
        return ExitCode::from(2);
    };
    verify_client::init();
    let result = match verify_client::discover(issuer).await {
        Ok(found) => match verify_client::fetch_jwks_at(&found.jwks_uri).await {
            Ok(keys) => verify_client::verify(token, &keys, issuer, service),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    match result {
        Ok(claims) => {
            println!("{claims:#}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
