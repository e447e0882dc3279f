//! IncrementalAlterConfigs (44): share-group configs on GROUP resources (type 32), before or after
//! the group exists (docs/semantics.md §2.2, §3, §4.2, §4.3). SET (0) and DELETE (1) only; all
//! changes of one resource apply together or not at all. Other resource types are refused.

use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, RequestHeader,
};

use super::util::s;
use crate::config::INVALID_CONFIG;
use crate::server::{ConnCtx, Shared};
use sharecheck_model::ErrorCode;

const RESOURCE_GROUP: i8 = 32;
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;

pub fn handle(
    shared: &Shared,
    _ctx: &ConnCtx,
    _header: &RequestHeader,
    _version: i16,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut st = shared.state();
    let responses = req
        .resources
        .iter()
        .map(|r| {
            let resp = AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            if r.resource_type != RESOURCE_GROUP {
                return resp
                    .with_error_code(ErrorCode::INVALID_REQUEST.0)
                    .with_error_message(Some(s(format!(
                        "the reference broker alters GROUP configs only, not resource type {}",
                        r.resource_type
                    ))));
            }
            let group = r.resource_name.to_string();
            if group.is_empty() {
                return resp
                    .with_error_code(ErrorCode::INVALID_REQUEST.0)
                    .with_error_message(Some(s("empty group name")));
            }
            let mut next = st.group_configs.get(&group).cloned().unwrap_or_default();
            for c in &r.configs {
                let value = match c.config_operation {
                    OP_SET => match c.value.as_deref() {
                        Some(v) => Some(v),
                        None => {
                            return resp
                                .with_error_code(INVALID_CONFIG)
                                .with_error_message(Some(s(format!("null value for {}", c.name))))
                        }
                    },
                    OP_DELETE => None,
                    op => {
                        return resp
                            .with_error_code(INVALID_CONFIG)
                            .with_error_message(Some(s(format!(
                                "operation {op} does not apply to {} (not a list config)",
                                c.name
                            ))))
                    }
                };
                if let Err((c, m)) = next.set(c.name.as_str(), value, &shared.config) {
                    return resp.with_error_code(c).with_error_message(Some(s(m)));
                }
            }
            if !req.validate_only {
                st.group_configs.insert(group, next);
            }
            resp
        })
        .collect();
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}
