//! The hooks of `chathooks:plugin`, read from this crate's `wit/` folder (a copy of the repository's) with
//! `wit-parser`.
//!
//! Nothing about a hook is written down in this crate: its Rust name, parameters, kind and docs all come
//! from the exports of the world [`HOOKS_WORLD`], and the package's name and version from its `package`
//! line. Adding a hook to the WIT adds it to `Plugin` and `#[plugin]` on the next build.

use std::path::Path;

use wit_parser::{
    Function, InterfaceId, PackageId, Resolve, Type, TypeDefKind, TypeId, TypeOwner, WorldId,
    WorldItem, WorldKey,
};

/// The world that exports every hook the server can call.
pub const HOOKS_WORLD: &str = "all-hooks";
/// The world every plugin includes: the server's imports.
pub const IMPORTS_WORLD: &str = "imports";
/// The interface holding the records hooks receive; the SDK re-exports it as `chathooks_sdk::types`.
pub const TYPES_INTERFACE: &str = "types";
/// The timer callback: shaped like an after-hook, but called by the plugin's own timers, not by an event.
const TIMER_HOOK: &str = "on-timer";
/// The record a before-hook returns.
const DECISION: &str = "decision";

/// The WIT package as the macros need it.
#[derive(Debug)]
pub struct Contract {
    /// `namespace:name`, e.g. `chathooks:plugin`.
    pub package: String,
    /// The package's namespace and name in snake case, as `wit_bindgen::generate!` names modules.
    pub module_path: (String, String),
    /// The package version, e.g. `0.3.0`.
    pub version: String,
    /// Every hook, in the order of the world's exports.
    pub hooks: Vec<Hook>,
    /// The interfaces of the imports world (kebab case), `types` included.
    pub imports: Vec<String>,
}

/// What a hook returns, which decides the shape of its default body and its docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Returns a `decision`.
    Before,
    /// Returns `result<_, string>`.
    After,
    /// `on-timer`: returns `result<_, string>`, called by the plugin's timers.
    Timer,
}

/// One hook: an exported interface with one function of the same name.
#[derive(Debug)]
pub struct Hook {
    /// The WIT name of the interface (and its function), e.g. `after-message-sent`.
    pub wit_name: String,
    /// The Rust name: the WIT name in snake case.
    pub name: String,
    /// Before, after or timer.
    pub kind: Kind,
    /// Parameters in WIT order.
    pub params: Vec<Param>,
    /// The function's doc comment, as lines (parameter names in backticks written in snake case).
    pub docs: Vec<String>,
    /// The version that added the hook, when its interface's docs say (`Since 0.3.0.`).
    pub since: Option<String>,
}

/// One hook parameter.
#[derive(Debug)]
pub struct Param {
    /// The Rust name: the WIT name in snake case (`_` appended to a Rust keyword, as wit-bindgen does).
    pub name: String,
    /// Its Rust type.
    pub ty: RustType,
}

/// The Rust type of a hook parameter, as wit-bindgen generates it with `types` mapped to
/// `::chathooks_sdk::types`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RustType {
    /// A primitive (`bool`, `u32`, ...) or `String`.
    Primitive(&'static str),
    /// A type of the `types` interface, in upper camel case (`Message`, `EventContext`, ...).
    Named(String),
    /// `list<T>`.
    List(Box<RustType>),
    /// `option<T>`.
    Option(Box<RustType>),
}

impl Contract {
    /// Reads the package in `dir` (this crate's `wit/`, a copy of the repository's; never `wit/versions/`).
    pub fn load(dir: &Path) -> Result<Self, String> {
        let mut resolve = Resolve::default();
        let (package_id, _) = resolve.push_dir(dir).map_err(|error| {
            format!(
                "cannot read the WIT package in {}: {error:#}",
                dir.display()
            )
        })?;
        let reader = Reader {
            resolve: &resolve,
            package: package_id,
            types: interface(&resolve, package_id, TYPES_INTERFACE)?,
        };
        let package = &resolve.packages[package_id];
        let version = package
            .name
            .version
            .as_ref()
            .map(ToString::to_string)
            .ok_or_else(|| format!("the WIT package {} has no version", package.name))?;
        Ok(Contract {
            package: format!("{}:{}", package.name.namespace, package.name.name),
            module_path: (snake(&package.name.namespace), snake(&package.name.name)),
            version,
            hooks: reader.hooks()?,
            imports: reader.imports()?,
        })
    }

    /// `namespace:name/interface@version`, as `wit_bindgen::generate!` keys interfaces.
    pub fn qualified(&self, interface: &str) -> String {
        format!("{}/{interface}@{}", self.package, self.version)
    }

    /// The hook with this Rust name.
    pub fn hook(&self, name: &str) -> Option<&Hook> {
        self.hooks.iter().find(|hook| hook.name == name)
    }
}

/// The parsed package and the ids the derivation keeps going back to.
struct Reader<'a> {
    resolve: &'a Resolve,
    package: PackageId,
    types: InterfaceId,
}

impl Reader<'_> {
    fn world(&self, name: &str) -> Result<WorldId, String> {
        self.resolve.packages[self.package]
            .worlds
            .get(name)
            .copied()
            .ok_or_else(|| format!("the WIT package has no world `{name}`"))
    }

    /// The interfaces of the imports world, in order.
    fn imports(&self) -> Result<Vec<String>, String> {
        let world = &self.resolve.worlds[self.world(IMPORTS_WORLD)?];
        let mut names = Vec::new();
        for item in world.imports.values() {
            if let WorldItem::Interface { id, .. } = item
                && let Some(name) = &self.resolve.interfaces[*id].name
            {
                names.push(name.clone());
            }
        }
        Ok(names)
    }

    /// One [`Hook`] per interface the hooks world exports.
    fn hooks(&self) -> Result<Vec<Hook>, String> {
        let world = &self.resolve.worlds[self.world(HOOKS_WORLD)?];
        let mut hooks = Vec::new();
        for (key, item) in &world.exports {
            let WorldItem::Interface { id, .. } = item else {
                return Err(format!(
                    "world `{HOOKS_WORLD}` exports `{}`, which is not an interface",
                    self.resolve.name_world_key(key)
                ));
            };
            let name = match key {
                WorldKey::Name(name) => name.clone(),
                WorldKey::Interface(_) => self.resolve.interfaces[*id]
                    .name
                    .clone()
                    .unwrap_or_default(),
            };
            hooks.push(self.hook(&name, *id)?);
        }
        Ok(hooks)
    }

    fn hook(&self, wit_name: &str, id: InterfaceId) -> Result<Hook, String> {
        let interface = &self.resolve.interfaces[id];
        let function = match interface.functions.get(wit_name) {
            Some(function) if interface.functions.len() == 1 => function,
            _ => {
                return Err(format!(
                    "hook interface `{wit_name}` must hold exactly one function, also named `{wit_name}`"
                ));
            }
        };
        let kind = self.kind(function)?;
        let params = function
            .params
            .iter()
            .map(|param| {
                Ok(Param {
                    name: rust_ident(&param.name),
                    ty: self.rust_type(&param.ty).map_err(|why| {
                        format!("hook `{wit_name}`, parameter `{}`: {why}", param.name)
                    })?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let docs = docs(function, &params);
        Ok(Hook {
            wit_name: wit_name.to_owned(),
            name: snake(wit_name),
            kind,
            params,
            docs,
            since: since(interface.docs.contents.as_deref().unwrap_or_default()),
        })
    }

    /// Before if the function returns `decision`, after (or timer) if `result<_, string>`.
    fn kind(&self, function: &Function) -> Result<Kind, String> {
        let shape = function.result.as_ref().map(|ty| self.rust_type(ty));
        if let Some(Ok(RustType::Named(name))) = &shape
            && *name == camel(DECISION)
        {
            return Ok(Kind::Before);
        }
        if let Some(Type::Id(id)) = function.result
            && let TypeDefKind::Result(result) = &self.resolve.types[self.unalias(id)].kind
            && result.ok.is_none()
            && result.err == Some(Type::String)
        {
            return Ok(if function.name == TIMER_HOOK {
                Kind::Timer
            } else {
                Kind::After
            });
        }
        Err(format!(
            "hook `{}` must return `{DECISION}` (a before-hook) or `result<_, string>` (an after-hook)",
            function.name
        ))
    }

    /// Follows `use` aliases (a type defined outside `types` as another type) to the type they name.
    fn unalias(&self, mut id: TypeId) -> TypeId {
        loop {
            let def = &self.resolve.types[id];
            match (&def.kind, def.owner) {
                (TypeDefKind::Type(Type::Id(inner)), owner)
                    if owner != TypeOwner::Interface(self.types) =>
                {
                    id = *inner;
                }
                _ => return id,
            }
        }
    }

    fn rust_type(&self, ty: &Type) -> Result<RustType, String> {
        Ok(RustType::Primitive(match ty {
            Type::Bool => "bool",
            Type::U8 => "u8",
            Type::U16 => "u16",
            Type::U32 => "u32",
            Type::U64 => "u64",
            Type::S8 => "i8",
            Type::S16 => "i16",
            Type::S32 => "i32",
            Type::S64 => "i64",
            Type::F32 => "f32",
            Type::F64 => "f64",
            Type::Char => "char",
            Type::String => "String",
            Type::ErrorContext => return Err("`error-context` is not supported".to_owned()),
            Type::Id(id) => return self.rust_type_def(*id),
        }))
    }

    fn rust_type_def(&self, id: TypeId) -> Result<RustType, String> {
        let id = self.unalias(id);
        let def = &self.resolve.types[id];
        match &def.kind {
            TypeDefKind::List(inner) => Ok(RustType::List(Box::new(self.rust_type(inner)?))),
            TypeDefKind::Option(inner) => Ok(RustType::Option(Box::new(self.rust_type(inner)?))),
            _ => match (&def.name, def.owner) {
                (Some(name), TypeOwner::Interface(owner)) if owner == self.types => {
                    Ok(RustType::Named(camel(name)))
                }
                _ => Err(format!(
                    "a hook parameter must be a primitive, a list, an option or a type of interface \
                     `{TYPES_INTERFACE}`, not this {}",
                    def.kind.as_str()
                )),
            },
        }
    }
}

/// The id of interface `name` of the package.
fn interface(resolve: &Resolve, package: PackageId, name: &str) -> Result<InterfaceId, String> {
    resolve.packages[package]
        .interfaces
        .get(name)
        .copied()
        .ok_or_else(|| format!("the WIT package has no interface `{name}`"))
}

/// The function's doc comment as lines, with `` `param-name` `` written as its Rust name.
fn docs(function: &Function, params: &[Param]) -> Vec<String> {
    let text = function.docs.contents.as_deref().unwrap_or_default();
    text.lines()
        .map(|line| {
            let mut line = line.to_owned();
            for (wit, rust) in function.params.iter().zip(params) {
                if wit.name != rust.name {
                    line = line.replace(&format!("`{}`", wit.name), &format!("`{}`", rust.name));
                }
            }
            line
        })
        .collect()
}

/// The version in a `Since 0.3.0.` note of an interface's docs.
fn since(docs: &str) -> Option<String> {
    let rest = &docs[docs.find("Since ")? + "Since ".len()..];
    let version: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let version = version.trim_end_matches('.');
    (!version.is_empty()).then(|| version.to_owned())
}

/// `after-message-sent` → `after_message_sent`.
pub fn snake(kebab: &str) -> String {
    kebab.replace('-', "_")
}

/// `event-context` → `EventContext`, as wit-bindgen names types.
pub fn camel(kebab: &str) -> String {
    kebab
        .split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_uppercase().chain(chars).collect::<String>()
            })
        })
        .collect()
}

/// A WIT name as a Rust identifier: snake case, with `_` appended to a keyword (`type` → `type_`).
fn rust_ident(kebab: &str) -> String {
    let name = snake(kebab);
    if syn::parse_str::<syn::Ident>(&name).is_ok() {
        name
    } else {
        format!("{name}_")
    }
}

#[cfg(test)]
mod tests;
