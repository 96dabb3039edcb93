//! What the generated OpenAPI document cannot say from the handlers' annotations alone,
//! added once the routes are collected: the answers every operation shares (401 behind
//! the admin key, 503 at the connection cap or the disk reserve), the rules of a user id
//! wherever one is a path parameter, and the device creation body (`id` required).
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{Schema, SchemaType, Type};
use utoipa::openapi::{ContentBuilder, ObjectBuilder, OpenApi, Ref, RefOr, ResponseBuilder};

use crate::field::MAX_USER_ID;

/// A user id: 1 to 64 characters, none a control character, not blank
/// (`field::check_user_id`).
const USER_ID_PATTERN: &str = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$";

/// Adds to `api` what the annotations cannot declare.
pub(super) fn complete(api: &mut OpenApi) {
    for item in api.paths.paths.values_mut() {
        let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
        for operation in operations.into_iter().flatten() {
            declare_common_responses(operation);
            declare_user_id_rules(operation);
        }
    }
    require_device_id(api);
}

fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    let body = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
    RefOr::T(ResponseBuilder::new().description(description).content("application/json", body).build())
}

/// 401 on every operation behind the admin key; 503 on every operation (the listener's
/// connection cap, code 45; for writes also the disk reserve, code 44).
fn declare_common_responses(operation: &mut Operation) {
    let responses = &mut operation.responses.responses;
    if operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
        responses.entry("401".into()).or_insert_with(|| {
            error_response("The admin API key is missing or wrong (7): send `Authorization: Bearer <key>`")
        });
    }
    responses.entry("503".into()).or_insert_with(|| {
        error_response(
            "The gateway is at its connection cap (45), or for a write the disk is below its reserve (44): \
             send again after `Retry-After`",
        )
    });
}

/// The `user_id` path parameter takes what `field::check_user_id` accepts.
fn declare_user_id_rules(operation: &mut Operation) {
    for parameter in operation.parameters.iter_mut().flatten() {
        let RefOr::T(parameter) = parameter else { continue };
        if parameter.name == "user_id" && parameter.parameter_in == ParameterIn::Path {
            let schema = ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::String))
                .min_length(Some(1))
                .max_length(Some(MAX_USER_ID))
                .pattern(Some(USER_ID_PATTERN))
                .build();
            parameter.schema = Some(RefOr::T(Schema::Object(schema)));
        }
    }
}

/// `POST /v1/devices` takes `DeviceChanges` with `id` required: declared as `NewDevice`.
fn require_device_id(api: &mut OpenApi) {
    let Some(components) = api.components.as_mut() else { return };
    let Some(RefOr::T(Schema::Object(changes))) = components.schemas.get("DeviceChanges") else { return };
    let mut new_device = changes.clone();
    new_device.required = vec!["id".into()];
    new_device.description = Some("A device to create: `DeviceChanges` with `id` required.".into());
    components.schemas.insert("NewDevice".into(), RefOr::T(Schema::Object(new_device)));
    let create = api.paths.paths.get_mut("/v1/devices").and_then(|item| item.post.as_mut());
    let Some(RefOr::T(body)) = create.and_then(|operation| operation.request_body.as_mut()) else { return };
    if let Some(RefOr::T(content)) = body.content.get_mut("application/json") {
        content.schema = Some(RefOr::Ref(Ref::from_schema_name("NewDevice")));
    }
}
