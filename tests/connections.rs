//! Connection limits: half-open connections, the header-read and idle
//! deadlines, the per-client-address cap and its trusted-proxy exemption, and JSON answers to
//! request heads hyper cannot take. A second client address is `127.0.0.2` (all of 127/8 is
//! loopback); the test process raises its own file-descriptor limit for the floods.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use authhost_tests::{Options, TestServer};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinSet;
use tokio::time::timeout;

/// Half a request head: the request line and one header, no blank line.
const HALF_HEAD: &[u8] = b"GET /auth/check HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";

/// Raises the soft limit on open files to the hard one (the floods below need thousands).
fn raise_fd_limit(needed: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls on a struct we own.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        }
    }
    assert!(
        limit.rlim_cur >= needed,
        "this test needs {needed} open files; the hard limit is {}",
        limit.rlim_max
    );
}

fn server_addr(s: &TestServer) -> SocketAddr {
    s.base
        .trim_start_matches("http://")
        .parse()
        .expect("server address")
}

fn server_env(pairs: &[(&str, &str)]) -> Options {
    Options {
        env: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Options::default()
    }
}

/// A connection to `server` from the client address `local`.
async fn connect_from(local: &str, server: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(local.parse().expect("ip"), 0))?;
    socket.connect(server).await
}

/// One answer read from `stream`: status, head, body (by `content-length`).
async fn read_answer(stream: &mut TcpStream) -> std::io::Result<(u16, String, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let status = head[9..12].parse().expect("status");
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).to_string();
    Ok((status, head, body))
}

/// `GET path` on a kept-alive `stream`.
async fn get(stream: &mut TcpStream, path: &str) -> std::io::Result<(u16, String, String)> {
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .await?;
    read_answer(stream).await
}

/// Waits up to `limit` for the server to close `stream` (EOF or reset) without sending
/// anything; the time it took, or `None` when it stayed open. Panics if bytes arrive.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 64];
    match timeout(limit, stream.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => Some(started.elapsed()),
        Ok(Ok(n)) => panic!(
            "the server answered: {:?}",
            String::from_utf8_lossy(&buf[..n])
        ),
        Err(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_connections_from_one_address_do_not_lock_out_another() {
    const FLOOD: usize = 4100;
    raise_fd_limit(FLOOD as u64 + 1000);
    // The defaults: 4096 connections in all, 512 per client address, 10 s for a head.
    let s = TestServer::start().await;
    let addr = server_addr(&s);
    let mut held = Vec::with_capacity(FLOOD);
    let flood_started = Instant::now();
    for _ in 0..FLOOD {
        if let Ok(mut c) = connect_from("127.0.0.1", addr).await {
            // The server may already have closed it (over the cap): a failed write is fine.
            let _ = c.write_all(HALF_HEAD).await;
            held.push(c);
        }
    }
    let flood_took = flood_started.elapsed();
    assert!(held.len() >= FLOOD - 10, "only {} connected", held.len());

    let started = Instant::now();
    let answer = timeout(Duration::from_secs(1), async {
        let mut c = connect_from("127.0.0.2", addr).await?;
        get(&mut c, "/healthz").await
    })
    .await;
    let took = started.elapsed();
    match answer {
        Ok(Ok((status, _, body))) => {
            assert_eq!(status, 200, "{body}");
            assert_eq!(
                serde_json::from_str::<Value>(&body).unwrap()["status"],
                "ok"
            );
        }
        Ok(Err(e)) => panic!("the other client failed: {e}"),
        Err(_) => panic!("the other client was not served within 1 s"),
    }

    // The flooding address holds at most its cap; the rest were closed at once.
    let mut checks = JoinSet::new();
    for mut c in held {
        checks.spawn(async move {
            closed_within(&mut c, Duration::from_millis(500))
                .await
                .is_none()
        });
    }
    let mut still_open = 0;
    while let Some(open) = checks.join_next().await {
        still_open += usize::from(open.unwrap());
    }
    assert!(
        (1..=512).contains(&still_open),
        "{still_open} flood connections still open"
    );
    eprintln!(
        "flood of {FLOOD} took {flood_took:?}; the other client was served in {took:?}; \
         {still_open} flood connections held"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_connections_are_closed_after_the_header_read_timeout() {
    let s = TestServer::start_with(server_env(&[(
        "AUTHHOST_SERVER__HEADER_READ_TIMEOUT_MS",
        "500",
    )]))
    .await;
    let addr = server_addr(&s);
    let mut waits = JoinSet::new();
    // Half heads, a connection that sends nothing, and one that trickles a byte every 100 ms
    // (each byte must not extend the deadline).
    for i in 0..22 {
        let mut c = connect_from("127.0.0.1", addr).await.unwrap();
        let started = Instant::now();
        match i {
            20 => {}
            21 => {
                c.write_all(HALF_HEAD).await.unwrap();
                let (mut read, mut write) = c.into_split();
                tokio::spawn(async move {
                    for _ in 0..50 {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        if write.write_all(b"x").await.is_err() {
                            break;
                        }
                    }
                });
                waits.spawn(async move {
                    let mut buf = [0u8; 64];
                    let closed = matches!(
                        timeout(Duration::from_secs(5), read.read(&mut buf)).await,
                        Ok(Ok(0)) | Ok(Err(_))
                    );
                    (i, closed.then(|| started.elapsed()))
                });
                continue;
            }
            _ => c.write_all(HALF_HEAD).await.unwrap(),
        }
        waits.spawn(async move {
            let closed = closed_within(&mut c, Duration::from_secs(5)).await;
            (i, closed.map(|_| started.elapsed()))
        });
    }
    while let Some(result) = waits.join_next().await {
        let (i, closed) = result.unwrap();
        let took = closed.unwrap_or_else(|| panic!("connection {i} still open after 5 s"));
        assert!(
            took >= Duration::from_millis(450) && took < Duration::from_secs(3),
            "connection {i} closed after {took:?}"
        );
    }
    // The server still serves complete requests.
    let mut c = connect_from("127.0.0.1", addr).await.unwrap();
    assert_eq!(get(&mut c, "/healthz").await.unwrap().0, 200);
    drop(c);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed_after_the_idle_timeout() {
    let s = TestServer::start_with(server_env(&[
        ("AUTHHOST_SERVER__HEADER_READ_TIMEOUT_MS", "300"),
        ("AUTHHOST_SERVER__IDLE_TIMEOUT_MS", "1500"),
    ]))
    .await;
    let addr = server_addr(&s);
    // A new connection must send its first request within the header deadline, not the idle one.
    let mut silent = connect_from("127.0.0.1", addr).await.unwrap();
    let silent_wait =
        tokio::spawn(async move { closed_within(&mut silent, Duration::from_secs(5)).await });

    let mut c = connect_from("127.0.0.1", addr).await.unwrap();
    assert_eq!(get(&mut c, "/healthz").await.unwrap().0, 200);
    // Idle longer than the header deadline: the wait for the next request is the idle one.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(get(&mut c, "/healthz").await.unwrap().0, 200);
    let took = closed_within(&mut c, Duration::from_secs(5))
        .await
        .expect("the idle connection is still open after 5 s");
    assert!(
        took >= Duration::from_millis(1300) && took < Duration::from_secs(4),
        "idle connection closed after {took:?}"
    );
    let silent_took = silent_wait
        .await
        .unwrap()
        .expect("the silent connection is still open after 5 s");
    assert!(
        silent_took >= Duration::from_millis(250) && silent_took < Duration::from_millis(1300),
        "silent connection closed after {silent_took:?}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_client_address_has_a_connection_cap_except_trusted_proxies() {
    let s = TestServer::start_with(server_env(&[
        ("AUTHHOST_SERVER__MAX_CONNECTIONS_PER_CLIENT", "4"),
        ("AUTHHOST_SERVER__TRUSTED_PROXIES", "[\"127.0.0.3\"]"),
    ]))
    .await;
    let addr = server_addr(&s);
    let mut first = Vec::new();
    for _ in 0..4 {
        let mut c = connect_from("127.0.0.1", addr).await.unwrap();
        assert_eq!(get(&mut c, "/healthz").await.unwrap().0, 200);
        first.push(c);
    }
    // The fifth from the same address is closed at once, unanswered.
    let mut fifth = connect_from("127.0.0.1", addr).await.unwrap();
    let _ = fifth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    assert!(
        closed_within(&mut fifth, Duration::from_secs(2))
            .await
            .is_some(),
        "the fifth connection was not closed"
    );
    // Another address is not affected.
    let mut other = connect_from("127.0.0.2", addr).await.unwrap();
    assert_eq!(get(&mut other, "/healthz").await.unwrap().0, 200);
    // A trusted proxy carries many clients: no cap.
    let mut proxied = Vec::new();
    for _ in 0..8 {
        let mut c = connect_from("127.0.0.3", addr).await.unwrap();
        assert_eq!(get(&mut c, "/healthz").await.unwrap().0, 200);
        proxied.push(c);
    }
    // A closed connection gives its place back.
    drop(first.pop());
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let mut c = connect_from("127.0.0.1", addr).await.unwrap();
        if let Ok(Ok((200, _, _))) = timeout(Duration::from_secs(1), get(&mut c, "/healthz")).await
        {
            first.push(c);
            break;
        }
        assert!(Instant::now() < deadline, "the place was not given back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, _, metrics) = get(&mut other, "/metrics").await.unwrap();
    assert_eq!(status, 200);
    assert!(
        metrics.contains("authhost_connections_refused_total{reason=\"per_client\"}"),
        "{metrics}"
    );
    drop((first, proxied, other));
    s.stop().await;
}

/// Writes `request` whole, then reads until the server closes: the answer must arrive in full,
/// not be lost to a reset.
async fn send_raw(addr: SocketAddr, request: Vec<u8>) -> (u16, String, Value) {
    let c = connect_from("127.0.0.1", addr).await.unwrap();
    let (mut read, mut write) = c.into_split();
    let writer = tokio::spawn(async move {
        let _ = write.write_all(&request).await;
        write
    });
    let mut answer = Vec::new();
    timeout(Duration::from_secs(5), read.read_to_end(&mut answer))
        .await
        .expect("the server neither answered nor closed")
        .expect("the answer was lost to a reset");
    drop(writer.await.unwrap());
    let text = String::from_utf8_lossy(&answer).to_string();
    let (head, body) = text.split_once("\r\n\r\n").expect("an answer head");
    let status = head[9..12].parse().expect("status");
    (
        status,
        head.to_ascii_lowercase(),
        serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heads_the_server_cannot_take_get_json_answers() {
    let s = TestServer::start().await;
    let addr = server_addr(&s);
    // Over the 64 KiB head limit: 431 with a JSON body, and the whole answer arrives although
    // the client was still sending.
    for size in [100 * 1024, 3 * 1024 * 1024] {
        let mut request = b"GET /auth/check HTTP/1.1\r\nHost: x\r\nauth-token: ".to_vec();
        request.resize(request.len() + size, b'a');
        request.extend_from_slice(b"\r\n\r\n");
        let (status, head, body) = send_raw(addr, request).await;
        assert_eq!(status, 431, "{head}");
        assert!(head.contains("content-type: application/json"), "{head}");
        assert_eq!(body["error"], "request head too large");
    }
    // A malformed head: 400 with a JSON body.
    let (status, head, body) = send_raw(
        addr,
        b"GET /auth/check HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n".to_vec(),
    )
    .await;
    assert_eq!(status, 400, "{head}");
    assert!(head.contains("content-type: application/json"), "{head}");
    assert_eq!(body["error"], "malformed request");
    // Under the limit, an oversized token reaches the route, which answers it.
    let r = s
        .client
        .get(s.url("check"))
        .header("auth-token", "a".repeat(40 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["authenticated"], false);
    s.stop().await;
}

/// A form body that trickles in is cut off at `header_read_timeout_ms` with 408 JSON: the
/// connection deadlines do not run while a request is handled, so the body has its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_request_body_gets_408_at_the_deadline() {
    let s = TestServer::start_with(server_env(&[(
        "AUTHHOST_SERVER__HEADER_READ_TIMEOUT_MS",
        "500",
    )]))
    .await;
    let mut stream = connect_from("127.0.0.1", server_addr(&s)).await.unwrap();
    stream
        .write_all(
            b"POST /auth/update HTTP/1.1\r\nHost: 127.0.0.1\r\n\
              Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\nusername=",
        )
        .await
        .unwrap();
    let started = Instant::now();
    let trickle = async {
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if stream.write_all(b"a").await.is_err() {
                break;
            }
        }
    };
    let _ = timeout(Duration::from_millis(700), trickle).await;
    let (status, head, body) = timeout(Duration::from_secs(5), read_answer(&mut stream))
        .await
        .expect("an answer within 5 s")
        .unwrap();
    assert_eq!(status, 408, "{head}{body}");
    assert!(started.elapsed() < Duration::from_secs(4));
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("header_read_timeout_ms")
    );
    s.stop().await;
}

/// A client that pipelines requests and never reads the answers is closed once the server's
/// writes have made no progress for `idle_timeout_ms`, instead of holding the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_closed_after_the_idle_timeout() {
    let s =
        TestServer::start_with(server_env(&[("AUTHHOST_SERVER__IDLE_TIMEOUT_MS", "800")])).await;
    let stream = connect_from("127.0.0.1", server_addr(&s)).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let request = b"GET /auth/public-key HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".repeat(100);
    let sent = 20_000;
    let writing = tokio::spawn(async move {
        let mut written = 0;
        while written < sent {
            match timeout(Duration::from_secs(5), writer.write_all(&request)).await {
                Ok(Ok(())) => written += 100,
                _ => break,
            }
        }
        written
    });
    // Answers pile up unread until the socket buffers are full and the server's writes stall.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut answers = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    let mut carry = Vec::new();
    let ended = timeout(Duration::from_secs(10), async {
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    carry.extend_from_slice(&buf[..n]);
                    answers += carry.windows(12).filter(|w| w == b"HTTP/1.1 200").count();
                    let keep = carry.len().saturating_sub(11);
                    carry.drain(..keep);
                }
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the connection stayed open");
    let written = writing.await.unwrap();
    assert!(
        answers < written,
        "{answers} answers to {written} requests: the stalled connection was not closed"
    );
    s.stop().await;
}
