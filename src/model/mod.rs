//! One transformer, parameterised by an architecture description rather than copied per model.

pub mod vmath;
