//! Stage configuration structs: one declaration gives the struct, its serde behaviour
//! (unknown keys rejected, every field defaulted) and the option documentation that
//! `cascade docs`, `validate` and the reference page are generated from.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Documentation of one stage option.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OptionDoc {
    /// Key in the pipeline file.
    pub name: &'static str,
    /// Rust type of the value (e.g. `f64`, `Vec<String>`).
    pub type_name: &'static str,
    /// The default, as TOML.
    pub default: String,
    /// What the option does, with its unit.
    pub doc: String,
}

/// A stage's configuration: deserialised from its table in the pipeline file.
pub trait StageConfig:
    DeserializeOwned + Serialize + Default + Clone + Send + Sync + 'static
{
    /// Documentation of every option, in declaration order.
    fn options() -> Vec<OptionDoc>;
}

/// Declares a stage configuration struct.
///
/// Every field has a doc comment (with its unit) and a default; the struct rejects unknown
/// keys and fills missing ones from the defaults.
///
/// ```
/// cascade_pipeline::stage_config! {
///     /// Tailcuts cleaning options.
///     pub struct Example {
///         /// Picture threshold (p.e.).
///         picture_threshold_pe: f64 = 10.0,
///         /// Keep pixels without neighbours.
///         keep_isolated_pixels: bool = false,
///     }
/// }
/// use cascade_pipeline::StageConfig;
/// assert_eq!(Example::default().picture_threshold_pe, 10.0);
/// assert_eq!(Example::options()[1].default, "false");
/// ```
#[macro_export]
macro_rules! stage_config {
    (
        $(#[doc = $struct_doc:literal])*
        pub struct $name:ident {
            $(
                $(#[doc = $doc:literal])*
                $(#[serde($($serde:tt)*)])?
                $field:ident : $type:ty = $default:expr
            ),* $(,)?
        }
    ) => {
        $(#[doc = $struct_doc])*
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct $name {
            $(
                $(#[doc = $doc])*
                $(#[serde($($serde)*)])?
                pub $field: $type,
            )*
        }

        impl Default for $name {
            fn default() -> Self {
                Self { $($field: $default,)* }
            }
        }

        impl $crate::StageConfig for $name {
            fn options() -> Vec<$crate::OptionDoc> {
                let defaults = Self::default();
                vec![$(
                    $crate::OptionDoc {
                        // `r#where` is the option `where`.
                        name: stringify!($field).trim_start_matches("r#"),
                        type_name: stringify!($type),
                        default: $crate::config::toml_value_text(&defaults.$field),
                        doc: [$($doc.trim()),*].join(" "),
                    },
                )*]
            }
        }
    };
}

/// A value as it would be written in a pipeline file.
#[doc(hidden)]
pub fn toml_value_text<T: Serialize>(value: &T) -> String {
    #[derive(Serialize)]
    struct Wrapper<'a, T: Serialize> {
        v: &'a T,
    }
    match toml::to_string(&Wrapper { v: value }) {
        // A table value serialises as a `[v]` section: show it as an inline table.
        Ok(text) if text.trim_start().starts_with("[v]") => {
            let entries: Vec<&str> = text
                .lines()
                .skip(1)
                .filter(|l| !l.trim().is_empty())
                .collect();
            format!("{{ {} }}", entries.join(", "))
        }
        Ok(text) if text.trim().is_empty() => "(none)".to_string(),
        Ok(text) => text.trim().trim_start_matches("v = ").to_string(),
        Err(_) => "(none)".to_string(),
    }
}
