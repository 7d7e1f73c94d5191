//! Issue 15 item 10: clients that send half a request are cut off — headers within
//! `--header-read-timeout-secs`, body chunks within `--body-read-timeout-secs`.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::sqlite_app;

/// Reads until the server closes the connection (or `limit` passes); returns what it sent and
/// how long it took.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(
            limit.saturating_sub(started.elapsed()),
            stream.read(&mut buf),
        )
        .await
        {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    (
        String::from_utf8_lossy(&received).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn half_sent_headers_and_stalled_bodies_are_cut_off() {
    let app = sqlite_app(&[
        "--header-read-timeout-secs".into(),
        "1".into(),
        "--body-read-timeout-secs".into(),
        "1".into(),
    ])
    .await;
    let addr = app.serve().await;

    // Half a request head, then silence: the connection is closed after about a second.
    let mut slow_head = TcpStream::connect(addr).await.unwrap();
    slow_head
        .write_all(b"POST /api/v1/auth/login HTTP/1.1\r\nHost: gateway\r\n")
        .await
        .unwrap();
    let (_, waited) = read_until_closed(&mut slow_head, Duration::from_secs(10)).await;
    assert!(
        waited < Duration::from_secs(5),
        "half-sent headers held for {waited:?}"
    );

    // Complete headers, a tenth of the body, then silence: 408 after about a second.
    let mut slow_body = TcpStream::connect(addr).await.unwrap();
    slow_body
        .write_all(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"email\":",
        )
        .await
        .unwrap();
    let (answer, waited) = read_until_closed(&mut slow_body, Duration::from_secs(10)).await;
    assert!(
        waited < Duration::from_secs(5),
        "stalled body held for {waited:?}: {answer}"
    );
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    // HTTP/2 (h2c with prior knowledge): the preface, empty SETTINGS, then a HEADERS frame
    // that announces 100 bytes and sends 3, then silence: closed after about a second too.
    let mut slow_h2 = TcpStream::connect(addr).await.unwrap();
    let mut h2 = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    h2.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    h2.extend_from_slice(&[0, 0, 100, 1, 4, 0, 0, 0, 1, 0x82, 0x86, 0x84]);
    slow_h2.write_all(&h2).await.unwrap();
    let (_, waited) = read_until_closed(&mut slow_h2, Duration::from_secs(10)).await;
    assert!(
        waited < Duration::from_secs(5),
        "half-sent HTTP/2 headers held for {waited:?}"
    );

    // A prompt client is unaffected.
    let mut prompt = TcpStream::connect(addr).await.unwrap();
    prompt
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (answer, _) = read_until_closed(&mut prompt, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    app.finish().await;
}
