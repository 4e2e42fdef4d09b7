//! OpenAPI schemas for input rules a field's type cannot carry (a slug's pattern, a day's
//! range), built from the same constants the use cases check, so the document states what
//! the API enforces. A leaf: imports nothing from the crate.

use std::ops::RangeInclusive;
use utoipa::openapi::{Object, ObjectBuilder, Type};

/// A string matching `pattern` (anchored, ECMA-262 as JSON Schema reads it), of at most
/// `max_chars` characters when given.
pub fn string(pattern: &'static str, max_chars: Option<usize>, description: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .max_length(max_chars)
        .description(Some(description))
        .build()
}

/// An integer in `range`.
pub fn integer(range: RangeInclusive<i64>, description: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
            utoipa::openapi::KnownFormat::Int64,
        )))
        .minimum(Some(*range.start()))
        .maximum(Some(*range.end()))
        .description(Some(description))
        .build()
}
