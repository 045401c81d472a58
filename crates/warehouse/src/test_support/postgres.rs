//! A PostgreSQL wire-protocol stand-in for what the local cluster cannot show: it trusts
//! loopback connections, so a wrong password is never refused there. This server speaks
//! just enough of protocol 3.0 to ask for a cleartext password and refuse it with the
//! `ErrorResponse` PostgreSQL sends (`28P01`), for the connector's and the catalog's tests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

/// A one-connection stand-in for a PostgreSQL server that asks for a cleartext password,
/// records it, and refuses it the way PostgreSQL does (`28P01`). The local cluster
/// trusts loopback connections, so a wrong password cannot be shown against it.
pub async fn refusing_password_server() -> (u16, tokio::task::JoinHandle<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        // startup message: length (incl. itself), protocol 3.0, key/value pairs
        let len = sock.read_i32().await.unwrap() as usize;
        let mut startup = vec![0; len - 4];
        sock.read_exact(&mut startup).await.unwrap();
        assert_eq!(&startup[..4], &196608i32.to_be_bytes(), "protocol 3.0");
        // AuthenticationCleartextPassword
        sock.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3])
            .await
            .unwrap();
        assert_eq!(sock.read_u8().await.unwrap(), b'p');
        let len = sock.read_i32().await.unwrap() as usize;
        let mut password = vec![0; len - 4];
        sock.read_exact(&mut password).await.unwrap();
        password.pop(); // NUL
        let mut fields = Vec::new();
        for (tag, value) in [
            (b'S', "FATAL"),
            (b'V', "FATAL"),
            (b'C', "28P01"),
            (b'M', "password authentication failed for user \"reader\""),
        ] {
            fields.push(tag);
            fields.extend_from_slice(value.as_bytes());
            fields.push(0);
        }
        fields.push(0);
        let mut msg = vec![b'E'];
        msg.extend_from_slice(&((fields.len() + 4) as i32).to_be_bytes());
        msg.extend_from_slice(&fields);
        sock.write_all(&msg).await.unwrap();
        let _ = sock.shutdown().await;
        String::from_utf8(password).unwrap()
    });
    (port, handle)
}
