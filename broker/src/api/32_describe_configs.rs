//! DescribeConfigs (32): GROUP resources (type 32) list the share-group configs with their
//! effective values (source GROUP_CONFIG when set, DEFAULT_CONFIG otherwise); the BROKER resource
//! (type 4) lists the share-group bounds; TOPIC resources (type 2) have no configs here.

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse, RequestHeader};

use super::util::s;
use crate::config::broker_configs;
use crate::server::{ConnCtx, Shared};
use sharecheck_model::ErrorCode;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const RESOURCE_GROUP: i8 = 32;

const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;
const SOURCE_GROUP: i8 = 8;

const TYPE_STRING: i8 = 2;
const TYPE_INT: i8 = 3;

fn entry(
    version: i16,
    name: &str,
    value: String,
    source: i8,
    ty: i8,
    read_only: bool,
) -> DescribeConfigsResourceResult {
    let e = DescribeConfigsResourceResult::default()
        .with_name(s(name))
        .with_value(Some(s(value)))
        .with_read_only(read_only)
        .with_config_source(source);
    if version >= 3 {
        e.with_config_type(ty)
    } else {
        e
    }
}

pub fn handle(
    shared: &Shared,
    _ctx: &ConnCtx,
    _header: &RequestHeader,
    version: i16,
    req: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let st = shared.state();
    let results = req
        .resources
        .iter()
        .map(|r| {
            let result = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            let wanted = |name: &str| {
                r.configuration_keys
                    .as_ref()
                    .is_none_or(|keys| keys.iter().any(|k| k.as_str() == name))
            };
            match r.resource_type {
                RESOURCE_GROUP => {
                    let overrides = st
                        .group_configs
                        .get(r.resource_name.as_str())
                        .cloned()
                        .unwrap_or_default();
                    let configs = overrides
                        .describe(&shared.config)
                        .into_iter()
                        .filter(|(name, _, _)| wanted(name))
                        .map(|(name, value, set)| {
                            let ty = if value.parse::<i64>().is_ok() {
                                TYPE_INT
                            } else {
                                TYPE_STRING
                            };
                            let source = if set { SOURCE_GROUP } else { SOURCE_DEFAULT };
                            entry(version, name, value, source, ty, false)
                        })
                        .collect();
                    result.with_configs(configs)
                }
                RESOURCE_BROKER => {
                    let configs = broker_configs(&shared.config)
                        .into_iter()
                        .filter(|(name, _)| wanted(name))
                        .map(|(name, value)| {
                            entry(version, name, value, SOURCE_STATIC_BROKER, TYPE_INT, true)
                        })
                        .collect();
                    result.with_configs(configs)
                }
                RESOURCE_TOPIC => {
                    if st.topics.contains_key(r.resource_name.as_str()) {
                        result
                    } else {
                        result
                            .with_error_code(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.0)
                            .with_error_message(Some(s("This server does not host this topic.")))
                    }
                }
                other => result
                    .with_error_code(ErrorCode::INVALID_REQUEST.0)
                    .with_error_message(Some(s(format!("resource type {other} is not supported")))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}
