//! The path the rendered code names the library by: `::fixtures` as users depend on it, under
//! whatever name their Cargo.toml gives it (`fx = { package = "fixtures", .. }`, a workspace
//! dependency renamed in the workspace's manifest), or `::fixtures_core` for a crate that
//! depends on that alone. Found with proc-macro-crate, which reads the manifests as cargo
//! does; `crate = path` in the attribute wins.

use proc_macro_crate::{FoundCrate, crate_name};
use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;

/// The library's path: `::fixtures`, `::<rename>`, or `::fixtures_core`.
pub(crate) fn path() -> TokenStream {
    let name = match (crate_name("fixtures"), crate_name("fixtures-core")) {
        (Ok(FoundCrate::Name(name)), _) => name,
        // The `fixtures` package's own tests, examples and doc tests: the attribute is never
        // used inside its library, which only re-exports.
        (Ok(FoundCrate::Itself), _) => "fixtures".to_owned(),
        (Err(_), Ok(FoundCrate::Name(name))) => name,
        (Err(_), Ok(FoundCrate::Itself)) => "fixtures_core".to_owned(),
        // Not in the manifest (a crate cargo does not build): the usual name.
        (Err(_), Err(_)) => "fixtures".to_owned(),
    };
    let ident = Ident::new(&name, Span::call_site());
    quote! { ::#ident }
}
