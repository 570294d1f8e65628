//! The crypto ceiling: RSA-2048 PKCS#1 v1.5 SHA-256 signs and verifies per second with
//! aws-lc-rs (what authhost signs permission tokens with), on one thread and on all cores.
//! Prints `sign_1 verify_1 sign_all verify_all threads` on one line.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{self, KeyPair as _, UnparsedPublicKey};

fn rate(threads: usize, seconds: f64, work: Arc<dyn Fn() + Send + Sync>) -> f64 {
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let work = work.clone();
            std::thread::spawn(move || {
                let start = Instant::now();
                let mut n = 0u64;
                while start.elapsed() < Duration::from_secs_f64(seconds) {
                    work();
                    n += 1;
                }
                n as f64 / start.elapsed().as_secs_f64()
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap_or(0.0)).sum()
}

fn main() {
    let seconds: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let pair = Arc::new(KeyPair::generate(KeySize::Rsa2048).expect("keygen"));
    let message = b"eyJhbGciOiJSUzI1NiJ9.eyJ1c2VyaWQiOiJ4IiwicGVybWlzc2lvbnMiOnt9fQ".to_vec();
    let mut sig = vec![0u8; pair.public_modulus_len()];
    pair.sign(
        &signature::RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        &message,
        &mut sig,
    )
    .expect("sign");
    let public = pair.public_key().as_ref().to_vec();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);

    let (p, m) = (pair.clone(), message.clone());
    let sign: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
        let mut out = vec![0u8; p.public_modulus_len()];
        p.sign(
            &signature::RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            &m,
            &mut out,
        )
        .expect("sign");
    });
    let verify: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
        UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &public)
            .verify(&message, &sig)
            .expect("verify");
    });
    let sign_1 = rate(1, seconds, sign.clone());
    let verify_1 = rate(1, seconds, verify.clone());
    let sign_all = rate(threads, seconds, sign);
    let verify_all = rate(threads, seconds, verify);
    println!("{sign_1:.0} {verify_1:.0} {sign_all:.0} {verify_all:.0} {threads}");
}
