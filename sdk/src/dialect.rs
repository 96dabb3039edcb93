//! Dialect plugins: speak a vendor's device protocol. They turn device traffic (HTTP
//! requests, MQTT messages) into canonical events, and queued commands
//! ([`crate::commands`]) into device traffic.
//!
//! ```
//! use biogate_sdk::prelude::*;
//!
//! /// A toy protocol: `GET /punch?sn=<serial>&user=<id>&t=<unix seconds>`.
//! struct Toy;
//!
//! impl Dialect for Toy {
//!     fn identify_http(request: HttpRequest) -> Result<String, DialectError> {
//!         request.query_param("sn").map(str::to_owned)
//!             .ok_or_else(|| DialectError::BadRequest("missing sn".into()))
//!     }
//!
//!     fn handle_http(device: DeviceContext, request: HttpRequest) -> Result<DialectReply, DialectError> {
//!         let user = request.query_param("user").unwrap_or_default();
//!         let t = request.query_param("t").and_then(|t| t.parse().ok()).unwrap_or(0);
//!         let punch = Punch::new(user, DeviceTime::new(t, device.utc_offset_minutes));
//!         Ok(DialectReply::text(200, "OK").with_events(vec![EventBody::Punch(punch)]))
//!     }
//! }
//!
//! export_dialect!(Toy);
//! ```

use crate::prelude::{Command, EventBody};

pub use crate::bindings::exports::biogate::plugin::dialect_handler::{
    DeviceContext, DialectError, DialectReply, HttpRequest, MqttMessage,
};

/// A device dialect plugin. `handle_mqtt` and `encode_mqtt_command` default to refusing,
/// for dialects that only speak HTTP.
pub trait Dialect {
    /// Which device sent this request (its serial number), read from the request alone.
    /// The gateway refuses unknown or disabled devices before calling `handle_http`.
    fn identify_http(request: HttpRequest) -> Result<String, DialectError>;

    /// Handles one request of a registered device: the reply for the device and the
    /// events the request carried (the gateway journals them durably before replying).
    fn handle_http(device: DeviceContext, request: HttpRequest) -> Result<DialectReply, DialectError>;

    /// Handles one MQTT message of a registered device, returning the events it carried.
    fn handle_mqtt(device: DeviceContext, topic: String, payload: Vec<u8>) -> Result<Vec<EventBody>, DialectError> {
        let _ = (device, topic, payload);
        Err(DialectError::BadRequest("this dialect does not speak MQTT".into()))
    }

    /// Encodes one command as an MQTT message for the device.
    fn encode_mqtt_command(device: DeviceContext, command: Command) -> Result<MqttMessage, DialectError> {
        let _ = (device, command);
        Err(DialectError::BadRequest("this dialect does not speak MQTT".into()))
    }
}

impl HttpRequest {
    /// The first query parameter named `name`.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The first header named `name` (header names arrive lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

impl DialectReply {
    /// A `text/plain` reply with no events.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: body.into().into_bytes(),
            events: Vec::new(),
        }
    }

    /// The same reply, carrying `events`.
    pub fn with_events(mut self, events: Vec<EventBody>) -> Self {
        self.events = events;
        self
    }
}

/// Exports a type implementing [`Dialect`] as the component's
/// `biogate:plugin/dialect-handler` interface. Use it once, at the crate's top level,
/// with the name of a type declared in the crate.
#[macro_export]
macro_rules! export_dialect {
    ($ty:ident) => {
        impl $crate::bindings::exports::biogate::plugin::dialect_handler::Guest for $ty {
            fn identify_http(
                request: $crate::dialect::HttpRequest,
            ) -> ::core::result::Result<$crate::__private::String, $crate::dialect::DialectError> {
                <$ty as $crate::dialect::Dialect>::identify_http(request)
            }

            fn handle_http(
                device: $crate::dialect::DeviceContext,
                request: $crate::dialect::HttpRequest,
            ) -> ::core::result::Result<$crate::dialect::DialectReply, $crate::dialect::DialectError> {
                <$ty as $crate::dialect::Dialect>::handle_http(device, request)
            }

            fn handle_mqtt(
                device: $crate::dialect::DeviceContext,
                topic: $crate::__private::String,
                payload: $crate::__private::Vec<u8>,
            ) -> ::core::result::Result<
                $crate::__private::Vec<$crate::prelude::EventBody>,
                $crate::dialect::DialectError,
            > {
                <$ty as $crate::dialect::Dialect>::handle_mqtt(device, topic, payload)
            }

            fn encode_mqtt_command(
                device: $crate::dialect::DeviceContext,
                command: $crate::prelude::Command,
            ) -> ::core::result::Result<$crate::dialect::MqttMessage, $crate::dialect::DialectError> {
                <$ty as $crate::dialect::Dialect>::encode_mqtt_command(device, command)
            }
        }

        #[cfg(target_arch = "wasm32")]
        $crate::bindings::export!($ty with_types_in $crate::bindings);
    };
}

#[cfg(test)]
mod tests {
    use crate::bindings::exports::biogate::plugin::dialect_handler::Guest;
    use crate::prelude::*;

    struct Echo;

    impl Dialect for Echo {
        fn identify_http(request: HttpRequest) -> Result<String, DialectError> {
            request.header("x-serial").map(str::to_owned).ok_or_else(|| DialectError::Refused("no serial".into()))
        }

        fn handle_http(device: DeviceContext, _: HttpRequest) -> Result<DialectReply, DialectError> {
            let sent = commands::take_pending(&device.device_id, 10).len();
            Ok(DialectReply::text(200, format!("{sent} commands")))
        }
    }

    crate::export_dialect!(Echo);

    fn request() -> HttpRequest {
        HttpRequest {
            method: "GET".into(),
            path: "/x".into(),
            query: vec![],
            headers: vec![("x-serial".into(), "SN1".into())],
            body: vec![],
        }
    }

    #[test]
    fn exported_guest_calls_the_trait_and_defaults() {
        assert_eq!(<Echo as Guest>::identify_http(request()), Ok("SN1".into()));
        let device = DeviceContext { device_id: "SN1".into(), label: "door".into(), utc_offset_minutes: 0 };
        testing::push_command("SN1", Command { operation_id: "op".into(), body: CommandBody::Reboot });
        let reply = <Echo as Guest>::handle_http(device.clone(), request()).unwrap();
        assert_eq!(reply.body, b"1 commands");
        assert!(<Echo as Guest>::handle_mqtt(device, "t".into(), vec![]).is_err());
    }
}
