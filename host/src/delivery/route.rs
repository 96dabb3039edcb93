//! How the operator declares a route (`[routes.<name>]`): which devices, which transform
//! plugins in which order, and which sink.
use serde::Deserialize;

/// One route.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Device ids this route takes events from; `["*"]` (the default) means every device.
    #[serde(default = "every_device")]
    pub devices: Vec<String>,
    /// Transform plugins applied in order before the sink.
    #[serde(default)]
    pub transforms: Vec<String>,
    /// Where the events go.
    pub sink: SinkConfig,
    /// Waits between attempts (`["5s", "5m", ...]`); default: Standard Webhooks' schedule.
    #[serde(default)]
    pub retry_schedule: Option<Vec<String>>,
    /// Time limit of one callback request, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Allow callback URLs on private, loopback and link-local addresses (off by default:
    /// server-side request forgery protection).
    #[serde(default)]
    pub allow_private_networks: bool,
}

fn default_timeout_ms() -> u64 {
    15_000
}

fn every_device() -> Vec<String> {
    vec!["*".into()]
}

impl RouteConfig {
    /// Whether the route takes events of `device_id`.
    pub fn matches_device(&self, device_id: &str) -> bool {
        self.devices.iter().any(|d| d == "*" || d == device_id)
    }
}

/// A route's destination.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SinkConfig {
    /// HTTP POST to the customer's callback URL (`?stgid=<device>` is added).
    Callback {
        url: String,
        /// Body format.
        #[serde(default)]
        format: CallbackFormat,
        /// Standard Webhooks signing secret (`whsec_...`); generated when absent.
        #[serde(default)]
        secret: Option<String>,
    },
    /// A delivery plugin.
    Plugin { plugin: String },
}

/// Callback body formats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallbackFormat {
    /// The Cams v3 `RealTime` form.
    #[default]
    CamsV3,
    /// The seed's flat form (`DeviceSN`, `EmployeeCode`, `AttendanceLog`, `Type`, `Direction`).
    Flat,
}
