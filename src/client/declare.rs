//! Declaring the configuration of an input or output of a bus: the bus's connection keys at the
//! top level of the component, beside its own, and one shared connection struct in the code.

/// Declares `pub struct $name` with `pub connection: $conn` and the component's own fields,
/// read from one YAML mapping holding both: the connection's `first` keys, then the
/// component's, then the connection's `last` ones.
///
/// Why not `#[serde(flatten)]`: flatten buffers the keys before their values are
/// deserialized, so an error inside one loses its file:line:column, `deny_unknown_fields` no
/// longer applies (unknown keys go to the flattened part), and the "expected one of" list of an
/// unknown key (which `sluice check` also uses to find the other unknown keys of the mapping)
/// would not name the connection's keys. So the keys are written out as one plain struct of
/// the same name, in a `keys` module: serde and schemars see the same struct, the same fields in
/// the same order, as when each component declared them itself, and what they read is then
/// moved into the component's struct. Each field is its docs, at most one `#[serde(...)]`, and
/// `pub name: Type,`.
macro_rules! connected_config {
    (
        $(#[doc = $doc:tt])*
        pub struct $name:ident {
            $( $(#[doc = $fdoc:tt])* $(#[serde $fserde:tt])? pub $field:ident : $fty:ty, )*
        }
        connection $conn:path {
            first { $( $(#[doc = $adoc:tt])* $(#[serde $aserde:tt])? $afield:ident : $aty:ty, )* }
            last { $( $(#[doc = $zdoc:tt])* $(#[serde $zserde:tt])? $zfield:ident : $zty:ty, )* }
        }
    ) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone)]
        pub struct $name {
            /// How it connects: keys written at the top level of the input or output.
            pub connection: $conn,
            $( $(#[doc = $fdoc])* pub $field: $fty, )*
        }

        /// The keys of the input or output as they are written.
        mod keys {
            // The types and default functions the fields name, if any.
            #[allow(unused_imports)]
            use super::*;

            $(#[doc = $doc])*
            #[derive(::serde::Deserialize, ::schemars::JsonSchema)]
            #[serde(deny_unknown_fields)]
            pub(super) struct $name {
                $( $(#[doc = $adoc])* $(#[serde $aserde])? pub(super) $afield: $aty, )*
                $( $(#[doc = $fdoc])* $(#[serde $fserde])? pub(super) $field: $fty, )*
                $( $(#[doc = $zdoc])* $(#[serde $zserde])? pub(super) $zfield: $zty, )*
            }
        }

        impl From<keys::$name> for $name {
            fn from(keys: keys::$name) -> Self {
                // A path cannot name a struct in an expression; an alias can.
                type Connection = $conn;
                $name {
                    connection: Connection {
                        $( $afield: keys.$afield, )*
                        $( $zfield: keys.$zfield, )*
                    },
                    $( $field: keys.$field, )*
                }
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                <keys::$name as ::serde::Deserialize<'de>>::deserialize(deserializer).map(Self::from)
            }
        }

        impl ::schemars::JsonSchema for $name {
            fn schema_name() -> ::std::borrow::Cow<'static, str> {
                <keys::$name as ::schemars::JsonSchema>::schema_name()
            }

            fn schema_id() -> ::std::borrow::Cow<'static, str> {
                <keys::$name as ::schemars::JsonSchema>::schema_id()
            }

            fn json_schema(generator: &mut ::schemars::SchemaGenerator) -> ::schemars::Schema {
                <keys::$name as ::schemars::JsonSchema>::json_schema(generator)
            }
        }
    };
}

pub(crate) use connected_config;
