//! ApiVersions (18): the APIs and versions served, and the finalized feature `share.version=1`
//! that tells clients share groups are enabled (docs/semantics.md §9; Kafka's clients read it from
//! `FinalizedFeatures` of ApiVersions v3+).

use kafka_protocol::messages::api_versions_response::{
    ApiVersion, FinalizedFeatureKey, SupportedFeatureKey,
};
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse, RequestHeader};

use super::util::s;
use super::{served, SERVED};
use crate::server::{ConnCtx, Shared};
use sharecheck_model::ErrorCode;

fn api_keys() -> Vec<ApiVersion> {
    SERVED
        .iter()
        .filter_map(|k| {
            served(*k).map(|(min, max)| {
                ApiVersion::default()
                    .with_api_key(*k as i16)
                    .with_min_version(min)
                    .with_max_version(max)
            })
        })
        .collect()
}

/// Answer to an ApiVersions request at a version this broker does not know (KIP-511): v0 body.
pub fn unsupported() -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(ErrorCode::UNSUPPORTED_VERSION.0)
        .with_api_keys(api_keys())
}

/// `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?` (KIP-511 client software name/version).
fn valid_software(v: &str) -> bool {
    let b = v.as_bytes();
    let edge = |c: u8| c.is_ascii_alphanumeric();
    !b.is_empty()
        && edge(b[0])
        && edge(b[b.len() - 1])
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'.')
}

pub fn handle(
    _shared: &Shared,
    _ctx: &ConnCtx,
    _header: &RequestHeader,
    version: i16,
    req: ApiVersionsRequest,
) -> ApiVersionsResponse {
    let mut resp = ApiVersionsResponse::default().with_api_keys(api_keys());
    if version >= 3
        && !(valid_software(&req.client_software_name)
            && valid_software(&req.client_software_version))
    {
        return resp.with_error_code(ErrorCode::INVALID_REQUEST.0);
    }
    if version >= 3 {
        resp = resp
            .with_supported_features(vec![SupportedFeatureKey::default()
                .with_name(s("share.version"))
                .with_min_version(0)
                .with_max_version(1)])
            .with_finalized_features_epoch(1)
            .with_finalized_features(vec![FinalizedFeatureKey::default()
                .with_name(s("share.version"))
                .with_min_version_level(1)
                .with_max_version_level(1)]);
    }
    resp
}
