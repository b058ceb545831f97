//! The configuration as a TOML file documenting itself (`trackwire print-config`): every field
//! with its doc comment, read from the schema the config types derive, and its value; optional
//! fields that are unset are printed commented out.

use std::collections::HashMap;
use std::fmt::Write;

use anyhow::Context;
use utoipa::openapi::{RefOr, schema};
use utoipa::{PartialSchema, ToSchema};

use super::Config;

/// `config` as TOML, each field preceded by its doc lines.
pub fn render(config: &Config) -> anyhow::Result<String> {
    let schema = Schema::of_config()?;
    let toml::Value::Table(values) = toml::Value::try_from(config).context("serialising the configuration")? else {
        anyhow::bail!("the configuration is not a table");
    };
    let mut out = String::from(
        "# Trackwire's configuration: defaults merged with the file, TRACKWIRE_* variables and flags.\n\
         # Optional fields that are unset are commented out.\n\n",
    );
    schema.write_table(&mut out, "", &schema.root, &values);
    Ok(out)
}

/// Every field of the configuration that has no doc comment, as key paths (to be none).
pub fn undocumented_fields() -> anyhow::Result<Vec<String>> {
    let schema = Schema::of_config()?;
    let mut missing = Vec::new();
    schema.visit("", &schema.root, &mut |path, field| {
        if schema.description(field).is_none() {
            missing.push(path.to_owned());
        }
    });
    Ok(missing)
}

struct Schema {
    root: Ref,
    /// Named schemas that properties refer to, by name.
    named: HashMap<String, Ref>,
}

type Ref = RefOr<schema::Schema>;

impl Schema {
    fn of_config() -> anyhow::Result<Schema> {
        let mut named = Vec::new();
        Config::schemas(&mut named);
        Ok(Schema { root: Config::schema(), named: named.into_iter().collect() })
    }

    /// The object a property is, directly or through a reference (alone or as the only member
    /// of a `oneOf`, as a documented reference is).
    fn target<'a>(&'a self, property: &'a Ref) -> Option<&'a schema::Object> {
        match property {
            RefOr::Ref(reference) => self.named_target(reference),
            RefOr::T(schema::Schema::Object(object)) => Some(object),
            RefOr::T(schema::Schema::OneOf(one_of)) => match one_of.items.as_slice() {
                [only] => self.target(only),
                _ => None,
            },
            RefOr::T(_) => None,
        }
    }

    fn named_target<'a>(&'a self, reference: &'a utoipa::openapi::Ref) -> Option<&'a schema::Object> {
        let name = reference.ref_location.rsplit('/').next()?;
        self.target(self.named.get(name)?)
    }

    /// A property's doc comment: its own, or else its type's.
    fn description<'a>(&'a self, property: &'a Ref) -> Option<&'a str> {
        let own = match property {
            RefOr::Ref(reference) => Some(reference.description.as_str()),
            RefOr::T(schema::Schema::Object(object)) => object.description.as_deref(),
            RefOr::T(schema::Schema::Array(array)) => array.description.as_deref(),
            RefOr::T(schema::Schema::OneOf(one_of)) => {
                let only_reference = match one_of.items.as_slice() {
                    [RefOr::Ref(reference)] => Some(reference.description.as_str()),
                    _ => None,
                };
                one_of.description.as_deref().or(only_reference)
            }
            RefOr::T(_) => None,
        };
        own.filter(|d| !d.is_empty())
            .or_else(|| self.target(property).and_then(|object| object.description.as_deref()))
            .filter(|d| !d.is_empty())
    }

    /// Sub-tables are properties whose schema has properties of its own.
    fn is_table(&self, property: &Ref) -> bool {
        self.target(property).is_some_and(|object| !object.properties.is_empty())
    }

    fn properties<'a>(&'a self, table: &'a Ref) -> impl Iterator<Item = (&'a String, &'a Ref)> {
        self.target(table).into_iter().flat_map(|object| object.properties.iter())
    }

    fn visit(&self, path: &str, table: &Ref, each: &mut dyn FnMut(&str, &Ref)) {
        for (name, property) in self.properties(table) {
            let path = if path.is_empty() { name.clone() } else { format!("{path}.{name}") };
            each(&path, property);
            if self.is_table(property) {
                self.visit(&path, property, each);
            }
        }
    }

    fn write_table(&self, out: &mut String, path: &str, table: &Ref, values: &toml::Table) {
        let empty = toml::Table::new();
        for (name, property) in self.properties(table).filter(|(_, p)| !self.is_table(p)) {
            self.write_doc(out, property);
            match values.get(name) {
                Some(value) => {
                    let _ = writeln!(out, "{name} = {value}\n");
                }
                None => {
                    let _ = writeln!(out, "# {name} = {}\n", placeholder(self.target(property)));
                }
            }
        }
        for (name, property) in self.properties(table).filter(|(_, p)| self.is_table(p)) {
            let path = if path.is_empty() { name.clone() } else { format!("{path}.{name}") };
            self.write_doc(out, property);
            let _ = writeln!(out, "[{path}]\n");
            let values = values.get(name).and_then(toml::Value::as_table).unwrap_or(&empty);
            self.write_table(out, &path, property, values);
        }
    }

    fn write_doc(&self, out: &mut String, property: &Ref) {
        for line in self.description(property).unwrap_or_default().lines() {
            let _ = writeln!(out, "{}", format!("# {line}").trim_end());
        }
    }
}

/// What an unset optional field would look like set, by its type.
fn placeholder(object: Option<&schema::Object>) -> &'static str {
    use schema::{SchemaType, Type};
    let types = match object.map(|object| &object.schema_type) {
        Some(SchemaType::Type(t)) => vec![t.clone()],
        Some(SchemaType::Array(ts)) => ts.clone(),
        _ => Vec::new(),
    };
    if types.contains(&Type::Integer) {
        "0"
    } else if types.contains(&Type::Number) {
        "0.0"
    } else if types.contains(&Type::Boolean) {
        "false"
    } else {
        "\"\""
    }
}
