//! The field names a type reads or writes, found by driving its `serde::Deserialize` with a
//! tracing deserializer (no sample values needed): the contract test compares them with the
//! gateway's OpenAPI document, so a renamed or removed field fails a test instead of printing
//! `?` at a user.

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};

/// What a type looks like on the wire, as far as field names go.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Shape {
    /// A number, string, boolean, enum or anything whose inside is not named (JSON values).
    #[default]
    Scalar,
    /// An object with these fields (wire names), each with its shape.
    Struct(Vec<(String, Shape)>),
    /// An array of this.
    Seq(Box<Shape>),
    /// A map with free keys (or a struct with a flattened part, which serde reads as a map):
    /// its field names cannot be listed.
    Map,
}

/// Why a type cannot be traced.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TraceError(String);

impl de::Error for TraceError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        TraceError(msg.to_string())
    }
}

/// The shape `T` reads.
pub fn of<T: DeserializeOwned>() -> Result<Shape, TraceError> {
    let mut shape = Shape::Scalar;
    T::deserialize(Tracer { slot: &mut shape })?;
    Ok(shape)
}

struct Tracer<'a> {
    slot: &'a mut Shape,
}

macro_rules! scalar {
    ($($method:ident => $visit:ident($($value:expr)?)),* $(,)?) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
            *self.slot = Shape::Scalar;
            visitor.$visit($($value)?)
        })*
    };
}

impl<'de> de::Deserializer<'de> for Tracer<'_> {
    type Error = TraceError;

    scalar! {
        deserialize_bool => visit_bool(false),
        deserialize_i8 => visit_i64(0),
        deserialize_i16 => visit_i64(0),
        deserialize_i32 => visit_i64(0),
        deserialize_i64 => visit_i64(0),
        deserialize_u8 => visit_u64(0),
        deserialize_u16 => visit_u64(0),
        deserialize_u32 => visit_u64(0),
        deserialize_u64 => visit_u64(0),
        deserialize_f32 => visit_f64(0.0),
        deserialize_f64 => visit_f64(0.0),
        deserialize_char => visit_char('x'),
        deserialize_str => visit_str(""),
        deserialize_string => visit_str(""),
        deserialize_bytes => visit_bytes(&[]),
        deserialize_byte_buf => visit_bytes(&[]),
        deserialize_unit => visit_unit(),
        deserialize_identifier => visit_str(""),
        deserialize_ignored_any => visit_unit(),
    }

    // Untyped (a `serde_json::Value`): nothing to name.
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        *self.slot = Shape::Scalar;
        visitor.visit_unit()
    }

    // Optional or not, a field has the same name.
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        visitor.visit_some(self)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        let mut item = Shape::Scalar;
        let value = visitor.visit_seq(OneItem {
            slot: Some(&mut item),
        })?;
        *self.slot = Shape::Seq(Box::new(item));
        Ok(value)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        *self.slot = Shape::Map;
        visitor.visit_map(Fields {
            fields: Vec::new(),
            next: 0,
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        let mut traced: Vec<(String, Shape)> = fields
            .iter()
            .map(|f| ((*f).to_owned(), Shape::Scalar))
            .collect();
        let value = visitor.visit_map(Fields {
            fields: traced.iter_mut().collect(),
            next: 0,
        })?;
        *self.slot = Shape::Struct(traced);
        Ok(value)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        *self.slot = Shape::Scalar;
        let first = variants
            .first()
            .ok_or_else(|| TraceError("an enum without variants".to_owned()))?;
        visitor.visit_enum(FirstVariant { name: first })
    }
}

/// A sequence of one traced item.
struct OneItem<'a> {
    slot: Option<&'a mut Shape>,
}

impl<'de> SeqAccess<'de> for OneItem<'_> {
    type Error = TraceError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, TraceError> {
        match self.slot.take() {
            Some(slot) => seed.deserialize(Tracer { slot }).map(Some),
            None => Ok(None),
        }
    }
}

/// A struct's fields, each given once with a traced value.
struct Fields<'a> {
    fields: Vec<&'a mut (String, Shape)>,
    next: usize,
}

impl<'de> MapAccess<'de> for Fields<'_> {
    type Error = TraceError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, TraceError> {
        let Some(field) = self.fields.get(self.next) else {
            return Ok(None);
        };
        let name: &str = &field.0;
        seed.deserialize(name.to_owned().into_deserializer())
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, TraceError> {
        let field = self
            .fields
            .get_mut(self.next)
            .ok_or_else(|| TraceError("a value without a key".to_owned()))?;
        self.next += 1;
        seed.deserialize(Tracer { slot: &mut field.1 })
    }
}

/// An enum answered with its first variant, as a unit.
struct FirstVariant {
    name: &'static str,
}

impl<'de> EnumAccess<'de> for FirstVariant {
    type Error = TraceError;
    type Variant = UnitOnly;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, UnitOnly), TraceError> {
        let value = seed.deserialize(self.name.into_deserializer())?;
        Ok((value, UnitOnly))
    }
}

struct UnitOnly;

impl<'de> VariantAccess<'de> for UnitOnly {
    type Error = TraceError;

    fn unit_variant(self) -> Result<(), TraceError> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, TraceError> {
        let mut ignored = Shape::Scalar;
        seed.deserialize(Tracer { slot: &mut ignored })
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        _visitor: V,
    ) -> Result<V::Value, TraceError> {
        Err(TraceError("tuple variants are not traced".to_owned()))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, TraceError> {
        Err(TraceError("struct variants are not traced".to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Inner {
        e164_number: Option<String>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    enum Phase {
        Running,
        Paused,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Outer {
        next_cursor: Option<String>,
        items: Vec<Inner>,
        phase: Phase,
        count: u32,
        extra: serde_json::Value,
        labels: std::collections::BTreeMap<String, String>,
    }

    #[test]
    fn names_every_wire_field_with_nested_shapes() {
        let shape = of::<Outer>().unwrap();
        let inner = Shape::Struct(vec![("e164Number".to_owned(), Shape::Scalar)]);
        assert_eq!(
            shape,
            Shape::Struct(vec![
                ("nextCursor".to_owned(), Shape::Scalar),
                ("items".to_owned(), Shape::Seq(Box::new(inner))),
                ("phase".to_owned(), Shape::Scalar),
                ("count".to_owned(), Shape::Scalar),
                ("extra".to_owned(), Shape::Scalar),
                ("labels".to_owned(), Shape::Map),
            ])
        );
    }
}
