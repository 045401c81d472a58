//! The request side of the tests' one-thread HTTP receivers: read one HTTP/1.1 request
//! (headers, then `Content-Length` bytes of body) from an accepted connection.

use serde_json::Value;
use std::io::Read;

/// Reads one request from `stream`; its body parsed as JSON (`Null` when it is missing or
/// not JSON).
pub fn read_json_body(stream: &mut impl Read) -> Value {
    let mut request = Vec::new();
    let mut buffer = [0_u8; 4096];
    // (body start, request end) once the headers are in
    let mut wanted: Option<(usize, usize)> = None;
    while let Ok(read) = stream.read(&mut buffer) {
        if read == 0 {
            break;
        }
        request.extend_from_slice(&buffer[..read]);
        if wanted.is_none() {
            if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                let headers = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
                let length = headers
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                wanted = Some((end + 4, end + 4 + length));
            }
        }
        if wanted.is_some_and(|(_, total)| request.len() >= total) {
            break;
        }
    }
    wanted
        .and_then(|(start, total)| request.get(start..total))
        .and_then(|body| serde_json::from_slice::<Value>(body).ok())
        .unwrap_or(Value::Null)
}
