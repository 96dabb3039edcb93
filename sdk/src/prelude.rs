//! Everything a plugin usually needs: `use biogate_sdk::prelude::*;`.
//!
//! The canonical types of `wit/types.wit`, the trait and error types of the selected
//! plugin kind, the export and logging macros, and the host-service modules.

pub use crate::bindings::biogate::plugin::types::{
    Command, CommandBody, CommandResult, DeleteTemplateArgs, DeviceStatus, DeviceTime, Event, EventBody, InputType,
    Punch, PunchType, StartEnrollmentArgs, Template, TemplateKind, TimeRange, User, UserRole, UserUpdate,
};

pub use crate::config::{self, ConfigError};
pub use crate::kv::{self, KvError};
pub use crate::log::Level;
pub use crate::now_ms;
pub use crate::{debug, error, info, trace, warn};

#[cfg(not(any(feature = "delivery", feature = "dialect")))]
pub use crate::{
    export_transform,
    transform::{Transform, TransformError},
};

#[cfg(not(any(feature = "transform", feature = "dialect")))]
pub use crate::{
    delivery::{Delivery, DeliveryError, RetryInfo},
    export_delivery, http,
};

#[cfg(not(any(feature = "transform", feature = "delivery")))]
pub use crate::{
    commands,
    dialect::{DeviceContext, Dialect, DialectError, DialectReply, HttpRequest, MqttMessage},
    export_dialect,
};

#[cfg(not(target_arch = "wasm32"))]
pub use crate::testing;
