//! A minimal Kafka protocol client for the one admin request the operator needs and rdkafka's
//! Rust API does not offer: `IncrementalAlterConfigs` (API key 44, version 0). The legacy
//! `AlterConfigs` that rdkafka wraps replaces a topic's whole config and is not implemented by
//! every Kafka-protocol broker (tansu has only the incremental one), while
//! `IncrementalAlterConfigs` (Kafka ≥ 2.3) sets or deletes individual keys — exactly what
//! drift correction wants. See `docs/adr/0005-operator-kafka-admin-and-test-control-plane.md`.
//!
//! Encoding and decoding are pure functions with byte-level tests; [`alter_topic_config`] is the
//! thin TCP shell (one connection per call, to the first bootstrap server that accepts it).

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const API_KEY_INCREMENTAL_ALTER_CONFIGS: i16 = 44;
const API_VERSION: i16 = 0;
const RESOURCE_TYPE_TOPIC: i8 = 2;
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
/// Responses larger than this are not what we asked for.
const MAX_RESPONSE: usize = 1 << 20;

/// One change to one config key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Set(String, String),
    Delete(String),
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("no bootstrap server reachable ({0})")]
    Unreachable(String),
    #[error("broker connection failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("broker did not answer within {0:?}")]
    Timeout(Duration),
    #[error("malformed response: {0}")]
    Malformed(&'static str),
    #[error("broker refused the config change of {resource}: {} ({code}){}", error_name(*.code), .message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Rejected {
        resource: String,
        code: i16,
        message: Option<String>,
    },
}

/// Kafka's names for the error codes this request can return.
pub fn error_name(code: i16) -> &'static str {
    match code {
        3 => "UNKNOWN_TOPIC_OR_PARTITION",
        7 => "REQUEST_TIMED_OUT",
        29 => "TOPIC_AUTHORIZATION_FAILED",
        31 => "CLUSTER_AUTHORIZATION_FAILED",
        35 => "UNSUPPORTED_VERSION",
        40 => "INVALID_CONFIG",
        41 => "NOT_CONTROLLER",
        42 => "INVALID_REQUEST",
        44 => "POLICY_VIOLATION",
        _ => "UNKNOWN_SERVER_ERROR",
    }
}

fn put_string(buf: &mut Vec<u8>, s: &str) {
    let len = i16::try_from(s.len()).unwrap_or(i16::MAX);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(&s.as_bytes()[..usize::try_from(len).unwrap_or(0)]);
}

fn put_nullable_string(buf: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => put_string(buf, s),
        None => buf.extend_from_slice(&(-1i16).to_be_bytes()),
    }
}

fn put_array_len(buf: &mut Vec<u8>, n: usize) {
    buf.extend_from_slice(&i32::try_from(n).unwrap_or(i32::MAX).to_be_bytes());
}

/// The size-prefixed request frame (request header v1 + body v0).
pub fn encode_request(
    correlation_id: i32,
    client_id: &str,
    topic: &str,
    changes: &[Change],
) -> Vec<u8> {
    let mut body = Vec::with_capacity(64);
    body.extend_from_slice(&API_KEY_INCREMENTAL_ALTER_CONFIGS.to_be_bytes());
    body.extend_from_slice(&API_VERSION.to_be_bytes());
    body.extend_from_slice(&correlation_id.to_be_bytes());
    put_nullable_string(&mut body, Some(client_id));
    put_array_len(&mut body, 1); // resources
    body.push(RESOURCE_TYPE_TOPIC.to_be_bytes()[0]);
    put_string(&mut body, topic);
    put_array_len(&mut body, changes.len());
    for change in changes {
        match change {
            Change::Set(key, value) => {
                put_string(&mut body, key);
                body.push(OP_SET.to_be_bytes()[0]);
                put_nullable_string(&mut body, Some(value));
            }
            Change::Delete(key) => {
                put_string(&mut body, key);
                body.push(OP_DELETE.to_be_bytes()[0]);
                put_nullable_string(&mut body, None);
            }
        }
    }
    body.push(0); // validate_only = false
    let mut frame = Vec::with_capacity(body.len() + 4);
    frame.extend_from_slice(&i32::try_from(body.len()).unwrap_or(i32::MAX).to_be_bytes());
    frame.extend_from_slice(&body);
    frame
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], WireError> {
        if self.buf.len() < n {
            return Err(WireError::Malformed("truncated"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    fn i8(&mut self) -> Result<i8, WireError> {
        Ok(i8::from_be_bytes([self.take(1)?[0]]))
    }
    fn i16(&mut self) -> Result<i16, WireError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self) -> Result<i32, WireError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn nullable_string(&mut self) -> Result<Option<String>, WireError> {
        let len = self.i16()?;
        if len < 0 {
            return Ok(None);
        }
        let bytes = self.take(usize::try_from(len).map_err(|_| WireError::Malformed("length"))?)?;
        String::from_utf8(bytes.to_vec())
            .map(Some)
            .map_err(|_| WireError::Malformed("string is not UTF-8"))
    }
}

/// Decodes a response body (without its size prefix); `Ok` when every resource succeeded.
pub fn decode_response(expected_correlation_id: i32, body: &[u8]) -> Result<(), WireError> {
    let mut r = Reader { buf: body };
    if r.i32()? != expected_correlation_id {
        return Err(WireError::Malformed("correlation id mismatch"));
    }
    let _throttle_time_ms = r.i32()?;
    let n = r.i32()?;
    for _ in 0..n.max(0) {
        let code = r.i16()?;
        let message = r.nullable_string()?.filter(|m| !m.is_empty());
        let _resource_type = r.i8()?;
        let resource = r.nullable_string()?.unwrap_or_default();
        if code != 0 {
            return Err(WireError::Rejected {
                resource,
                code,
                message,
            });
        }
    }
    Ok(())
}

/// Sets/deletes config keys of one topic through the first reachable bootstrap server.
pub async fn alter_topic_config(
    bootstrap: &str,
    topic: &str,
    changes: &[Change],
    timeout: Duration,
) -> Result<(), WireError> {
    let correlation_id = i32::from_be_bytes(
        uuid::Uuid::new_v4().as_bytes()[..4]
            .try_into()
            .unwrap_or([0; 4]),
    ) & 0x7fff_ffff;
    let frame = encode_request(correlation_id, crate::MANAGER, topic, changes);
    let mut last_error = String::from("no servers listed");
    for server in bootstrap
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let exchange = async {
            let mut stream = TcpStream::connect(server).await?;
            stream.write_all(&frame).await?;
            let size = stream.read_i32().await?;
            let size = usize::try_from(size).map_err(|_| WireError::Malformed("negative size"))?;
            if size > MAX_RESPONSE {
                return Err(WireError::Malformed("response too large"));
            }
            let mut body = vec![0; size];
            stream.read_exact(&mut body).await?;
            decode_response(correlation_id, &body)
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(Err(WireError::Io(e))) => last_error = format!("{server}: {e}"),
            Ok(result) => return result,
            Err(_) => return Err(WireError::Timeout(timeout)),
        }
    }
    Err(WireError::Unreachable(last_error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bytes_follow_the_v0_layout() {
        let frame = encode_request(
            7,
            "op",
            "t",
            &[
                Change::Set("retention.ms".into(), "60000".into()),
                Change::Delete("x".into()),
            ],
        );
        let mut expected: Vec<u8> = vec![];
        let body: Vec<u8> = [
            &44i16.to_be_bytes()[..], // api key
            &0i16.to_be_bytes()[..],  // api version
            &7i32.to_be_bytes()[..],  // correlation id
            &2i16.to_be_bytes()[..],
            b"op",                   // client id
            &1i32.to_be_bytes()[..], // one resource
            &[2u8][..],              // TOPIC
            &1i16.to_be_bytes()[..],
            b"t",
            &2i32.to_be_bytes()[..], // two configs
            &12i16.to_be_bytes()[..],
            b"retention.ms",
            &[0u8][..],
            &5i16.to_be_bytes()[..],
            b"60000",
            &1i16.to_be_bytes()[..],
            b"x",
            &[1u8][..],
            &(-1i16).to_be_bytes()[..],
            &[0u8][..], // validate_only
        ]
        .concat();
        expected.extend_from_slice(&i32::try_from(body.len()).expect("small").to_be_bytes());
        expected.extend_from_slice(&body);
        assert_eq!(frame, expected);
    }

    fn response(correlation: i32, results: &[(i16, Option<&str>, &str)]) -> Vec<u8> {
        let mut b = vec![];
        b.extend_from_slice(&correlation.to_be_bytes());
        b.extend_from_slice(&0i32.to_be_bytes());
        b.extend_from_slice(&i32::try_from(results.len()).expect("small").to_be_bytes());
        for (code, message, name) in results {
            b.extend_from_slice(&code.to_be_bytes());
            put_nullable_string(&mut b, *message);
            b.push(2);
            put_string(&mut b, name);
        }
        b
    }

    #[test]
    fn a_successful_response_decodes_to_ok() {
        assert!(decode_response(9, &response(9, &[(0, Some(""), "t")])).is_ok());
        assert!(decode_response(9, &response(9, &[(0, None, "t")])).is_ok());
    }

    #[test]
    fn an_error_code_becomes_a_rejection_naming_the_error() {
        let err = decode_response(9, &response(9, &[(40, Some("bad value"), "t")]))
            .expect_err("rejected");
        assert!(matches!(err, WireError::Rejected { code: 40, .. }));
        assert_eq!(
            err.to_string(),
            "broker refused the config change of t: INVALID_CONFIG (40): bad value"
        );
    }

    #[test]
    fn mismatched_or_truncated_responses_are_malformed() {
        assert!(matches!(
            decode_response(1, &response(2, &[])),
            Err(WireError::Malformed(_))
        ));
        let mut short = response(1, &[(0, None, "topic")]);
        short.truncate(short.len() - 2);
        assert!(matches!(
            decode_response(1, &short),
            Err(WireError::Malformed(_))
        ));
    }
}
