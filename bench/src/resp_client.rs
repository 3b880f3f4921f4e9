//! A bare RESP connection for load generation: encode commands, read replies and pushes with
//! `redis-protocol`'s decoder.

use bytes::{Bytes, BytesMut};
use redis_protocol::resp3::decode::complete::decode_bytes_mut;
use redis_protocol::resp3::types::BytesFrame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct RespConn {
    stream: TcpStream,
    rbuf: BytesMut,
    wbuf: BytesMut,
}

/// Appends one command as a RESP array of bulk strings.
pub fn encode_command(out: &mut BytesMut, parts: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", parts.len()).as_bytes());
    for p in parts {
        out.extend_from_slice(format!("${}\r\n", p.len()).as_bytes());
        out.extend_from_slice(p);
        out.extend_from_slice(b"\r\n");
    }
}

impl RespConn {
    /// Connects and switches to RESP3 (HELLO 3), so nulls and maps come typed.
    pub async fn connect(addr: &str) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let mut conn = RespConn { stream, rbuf: BytesMut::with_capacity(64 * 1024), wbuf: BytesMut::new() };
        conn.call(&[b"HELLO", b"3"]).await?;
        Ok(conn)
    }

    /// Queues a command; nothing is sent until [`RespConn::flush`].
    pub fn queue(&mut self, parts: &[&[u8]]) {
        encode_command(&mut self.wbuf, parts);
    }

    pub async fn flush(&mut self) -> std::io::Result<()> {
        self.stream.write_all(&self.wbuf).await?;
        self.wbuf.clear();
        Ok(())
    }

    /// The next frame (reply or push).
    pub async fn read_frame(&mut self) -> std::io::Result<BytesFrame> {
        loop {
            if let Some((frame, _, _)) = decode_bytes_mut(&mut self.rbuf).map_err(|e| std::io::Error::other(e.to_string()))? {
                return Ok(frame);
            }
            if self.stream.read_buf(&mut self.rbuf).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// Sends one command and waits for its reply.
    pub async fn call(&mut self, parts: &[&[u8]]) -> std::io::Result<BytesFrame> {
        self.queue(parts);
        self.flush().await?;
        self.read_frame().await
    }
}

/// The payload of a `message` push (RESP2 array or RESP3 push), if the frame is one.
pub fn message_payload(frame: &BytesFrame) -> Option<&Bytes> {
    let items = match frame {
        BytesFrame::Push { data, .. } | BytesFrame::Array { data, .. } => data,
        _ => return None,
    };
    match (items.first(), items.get(2)) {
        (Some(BytesFrame::BlobString { data: kind, .. }), Some(BytesFrame::BlobString { data, .. })) if &kind[..] == b"message" => {
            Some(data)
        }
        _ => None,
    }
}
