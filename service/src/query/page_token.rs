//! Opaque page tokens of `ListEvents`: the keyset position of the last returned event,
//! bound to the filters of the request that produced it.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use prost::Message;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::proto::ListEventsRequest;
use crate::store::Cursor;

/// Decoded content of a page token.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Token {
    /// Fingerprint of the request's filters.
    f: String,
    /// Time of the last returned event, microseconds since the epoch.
    t: i64,
    /// Id of the last returned event.
    i: String,
}

/// Reason a page token was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PageTokenError {
    /// The token is not one this server issued.
    #[error("page_token is malformed; pass the next_page_token of a previous response unchanged")]
    Malformed,
    /// The token belongs to a request with other filters.
    #[error("page_token was issued for different filters; repeat the request without page_token to start over")]
    FilterMismatch,
}

/// Fingerprint of every field of the request except the paging fields.
pub fn fingerprint(request: &ListEventsRequest) -> String {
    let mut filters = request.clone();
    filters.page_size = 0;
    filters.page_token.clear();
    let digest = Sha256::digest(filters.encode_to_vec());
    URL_SAFE_NO_PAD.encode(&digest[..12])
}

/// Encodes the position after `cursor` for the request with `fingerprint`.
pub fn encode(fingerprint: &str, cursor: &Cursor) -> String {
    let token = Token {
        f: fingerprint.to_owned(),
        t: cursor.occurred_at_us,
        i: cursor.event_id.clone(),
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&token).expect("token serializes"))
}

/// Decodes `token`, checking that it was issued for `fingerprint`.
pub fn decode(fingerprint: &str, token: &str) -> Result<Cursor, PageTokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| PageTokenError::Malformed)?;
    let token: Token = serde_json::from_slice(&bytes).map_err(|_| PageTokenError::Malformed)?;
    if token.f != fingerprint {
        return Err(PageTokenError::FilterMismatch);
    }
    Ok(Cursor {
        occurred_at_us: token.t,
        event_id: token.i,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(service: &str) -> ListEventsRequest {
        ListEventsRequest {
            service: service.into(),
            ..Default::default()
        }
    }

    #[test]
    fn token_round_trips() {
        let f = fingerprint(&request("billing"));
        let cursor = Cursor {
            occurred_at_us: 1_767_225_600_000_001,
            event_id: "e-😀".into(),
        };
        assert_eq!(decode(&f, &encode(&f, &cursor)).unwrap(), cursor);
    }

    #[test]
    fn fingerprint_ignores_paging_fields() {
        let mut paged = request("billing");
        paged.page_size = 7;
        paged.page_token = "x".into();
        assert_eq!(fingerprint(&paged), fingerprint(&request("billing")));
    }

    #[test]
    fn token_of_other_filters_is_rejected() {
        let cursor = Cursor {
            occurred_at_us: 1,
            event_id: "e".into(),
        };
        let token = encode(&fingerprint(&request("billing")), &cursor);
        let err = decode(&fingerprint(&request("shipping")), &token).unwrap_err();
        assert_eq!(err, PageTokenError::FilterMismatch);
    }

    #[test]
    fn garbage_token_is_malformed() {
        let f = fingerprint(&request("billing"));
        assert_eq!(decode(&f, "%%%").unwrap_err(), PageTokenError::Malformed);
        assert_eq!(decode(&f, "e30").unwrap_err(), PageTokenError::Malformed);
    }
}
