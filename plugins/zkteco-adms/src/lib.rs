//! `zkteco-adms`: the ZKTeco "Attendance PUSH" protocol (ADMS, `iclock`) spoken by
//! ZKTeco terminals and their OEMs (eSSL...), as a biogate dialect plugin.
//!
//! The device is always the HTTP client:
//!
//! | request                                  | module           | answer                     |
//! |------------------------------------------|------------------|----------------------------|
//! | `GET /iclock/cdata?SN=..&options=all`    | `handshake`      | `GET OPTION FROM: <sn>` + options, `Date` header |
//! | `POST /iclock/cdata?SN=..&table=..`      | `upload`         | `OK: <n>`, punches and user updates |
//! | `GET /iclock/getrequest?SN=..`           | `getrequest`     | `C:<id>:<command>` lines, or `OK` |
//! | `POST /iclock/devicecmd?SN=..`           | `devicecmd`      | `OK`, command results      |
//! | `GET /iclock/ping?SN=..`                 | here             | `OK`                       |
//!
//! Paths are accepted in any case, with the `.aspx` suffix of eSSL firmware, and with or
//! without the `/iclock` prefix; query parameter names in any case. ADMS is HTTP-only:
//! the MQTT entry points refuse. See this plugin's README.md for the configuration.

use biogate_sdk::prelude::*;

mod attlog;
mod base64;
mod codes;
mod commands;
mod devicecmd;
mod getrequest;
mod handshake;
mod operlog;
mod request;
mod settings;
mod state;
mod time;
mod upload;

use request::Endpoint;
use settings::Settings;

/// The dialect.
pub struct ZktecoAdms;

/// Why the MQTT entry points refuse.
const HTTP_ONLY: &str =
    "the ZKTeco ADMS dialect is HTTP-only: devices push to /iclock/... and poll for commands; there is no MQTT form";

impl Dialect for ZktecoAdms {
    fn identify_http(request: HttpRequest) -> Result<String, DialectError> {
        request::serial(&request)
            .map(str::to_owned)
            .ok_or_else(|| DialectError::BadRequest("ADMS request without an SN query parameter".into()))
    }

    fn handle_http(device: DeviceContext, request: HttpRequest) -> Result<DialectReply, DialectError> {
        let Some(endpoint) = request::endpoint(&request.path) else {
            return Err(DialectError::BadRequest(format!(
                "not an ADMS path: `{}` (expected /iclock/cdata, getrequest, devicecmd or ping)",
                request::excerpt(&request.path)
            )));
        };
        if endpoint == Endpoint::Ping {
            return Ok(DialectReply::text(200, "OK"));
        }
        let settings = Settings::load().map_err(|err| config_error(&device.device_id, &err))?;
        let post = request.method.eq_ignore_ascii_case("POST");
        match endpoint {
            Endpoint::Cdata if post => upload::handle(&device, &request, &settings),
            Endpoint::Cdata => Ok(handshake::handle(&device, &request, &settings)),
            Endpoint::GetRequest => Ok(getrequest::handle(&device, &request, &settings)),
            Endpoint::DeviceCmd => Ok(devicecmd::handle(&device, &request)),
            Endpoint::Ping => Ok(DialectReply::text(200, "OK")),
        }
    }

    fn handle_mqtt(_device: DeviceContext, _topic: String, _payload: Vec<u8>) -> Result<Vec<EventBody>, DialectError> {
        Err(DialectError::BadRequest(HTTP_ONLY.into()))
    }

    fn encode_mqtt_command(_device: DeviceContext, _command: Command) -> Result<MqttMessage, DialectError> {
        Err(DialectError::BadRequest(HTTP_ONLY.into()))
    }
}

/// Logs an invalid plugin config and refuses the request (the device retries later and
/// keeps its records meanwhile).
pub(crate) fn config_error(device: &str, err: &ConfigError) -> DialectError {
    error!(device = device; "{err}");
    DialectError::Refused(err.to_string())
}

export_dialect!(ZktecoAdms);

#[cfg(test)]
mod tests;

// Under `cargo xtask fuzz` (cfg `fuzzing`) every test binary is instrumented for
// libFuzzer, so the unit tests too link its runtime, which comes with bolero.
#[cfg(all(test, fuzzing))]
use biogate_fuzz as _;
