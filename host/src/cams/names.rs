//! The Cams names of the canonical enums: punch `Type`, `InputType`, template `Type`.
use crate::plugin::bindings::types::{InputType, PunchType, TemplateKind};

/// The Cams `Type` name of a punch type (`CheckIn`, `OverTimeOut`, ...).
pub fn punch_type_name(kind: PunchType) -> &'static str {
    match kind {
        PunchType::CheckIn => "CheckIn",
        PunchType::CheckOut => "CheckOut",
        PunchType::BreakIn => "BreakIn",
        PunchType::BreakOut => "BreakOut",
        PunchType::OverTimeIn => "OverTimeIn",
        PunchType::OverTimeOut => "OverTimeOut",
        PunchType::MealIn => "MealIn",
        PunchType::MealOut => "MealOut",
    }
}

/// The Cams `InputType` name (`Fingerprint`, `Finger Vein`, ...; `Unknown` when unknown).
pub fn input_type_name(kind: InputType) -> &'static str {
    match kind {
        InputType::Fingerprint => "Fingerprint",
        InputType::Face => "Face",
        InputType::Palm => "Palm",
        InputType::FingerVein => "Finger Vein",
        InputType::Iris => "Iris",
        InputType::Retina => "Retina",
        InputType::Card => "Card",
        InputType::Password => "Password",
        InputType::Unknown => "Unknown",
    }
}

/// The Cams template `Type` name.
pub fn template_kind_name(kind: TemplateKind) -> &'static str {
    match kind {
        TemplateKind::Fingerprint => "Fingerprint",
        TemplateKind::Face => "Face",
        TemplateKind::Palm => "Palm",
        TemplateKind::FingerVein => "Finger Vein",
        TemplateKind::Iris => "Iris",
        TemplateKind::Retina => "Retina",
        TemplateKind::Card => "Card",
        TemplateKind::Password => "Password",
    }
}
