//! A WebSocket test client speaking Herald's JSON envelope, on tokio-tungstenite.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::TestServer;

pub struct Ws {
    pub stream: WebSocketStream<TcpStream>,
    next_id: u64,
}

impl TestServer {
    /// A WebSocket connection to `/ws` (with `query`, e.g. `?password=pw`).
    pub async fn ws_with(&self, query: &str) -> Ws {
        let tcp = TcpStream::connect(self.http).await.expect("connect");
        let url = format!("ws://{}/ws{query}", self.http);
        let (stream, _) = tokio_tungstenite::client_async(url, tcp).await.expect("handshake");
        Ws { stream, next_id: 1 }
    }

    pub async fn ws(&self) -> Ws {
        self.ws_with("").await
    }
}

impl Ws {
    /// Wraps a connection whose handshake the test made itself (with headers of its own).
    pub fn from_stream(stream: WebSocketStream<TcpStream>) -> Ws {
        Ws { stream, next_id: 1 }
    }

    pub async fn send_text(&mut self, text: impl Into<String>) {
        self.stream.send(Message::Text(text.into().into())).await.expect("send");
    }

    /// Sends a request and returns its id, without waiting for the reply.
    pub async fn send(&mut self, cmd: Value) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send_text(json!({"id": id, "cmd": cmd}).to_string()).await;
        id
    }

    /// The next JSON message (reply or push), skipping pings; panics after 5 s or on close.
    pub async fn recv(&mut self) -> Value {
        loop {
            match self.next_message().await {
                Some(Message::Text(t)) => return serde_json::from_str(&t).expect("JSON"),
                Some(Message::Ping(_) | Message::Pong(_)) => continue,
                other => panic!("expected a JSON message, got {other:?}"),
            }
        }
    }

    /// One request, its whole reply envelope.
    pub async fn call(&mut self, cmd: Value) -> Value {
        let id = self.send(cmd).await;
        let reply = self.recv().await;
        assert_eq!(reply["id"], json!(id), "reply out of order: {reply}");
        reply
    }

    /// One request, its result (panics on an error reply).
    pub async fn result(&mut self, cmd: Value) -> Value {
        let reply = self.call(cmd).await;
        assert!(reply.get("error").is_none(), "unexpected error: {reply}");
        reply["result"].clone()
    }

    async fn next_message(&mut self) -> Option<Message> {
        tokio::time::timeout(Duration::from_secs(5), self.stream.next())
            .await
            .expect("timed out waiting for a WebSocket message")
            .map(|m| m.expect("WebSocket read"))
    }

    /// Reads until the server's close frame and returns its code and reason (skipping other messages).
    pub async fn closed(&mut self) -> (u16, String) {
        loop {
            match self.next_message().await {
                Some(Message::Close(Some(frame))) => return (u16::from(frame.code), frame.reason.to_string()),
                Some(Message::Close(None)) | None => return (u16::from(CloseCode::Status), String::new()),
                Some(_) => continue,
            }
        }
    }
}
