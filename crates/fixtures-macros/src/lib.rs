//! `#[fixtures::test(env = path::to::env())]`: a test whose arguments are fixtures.
//!
//! Thin by design: it parses the attribute and the function, checks them
//! (reporting every mistake with its span at once), and renders the test's body and
//! environment as functions, registers them (for `fixtures::main!()`'s harness and for
//! planning), and a plain `#[test]` that calls `fixtures::__private::run_test`.

#![warn(missing_docs)]

mod krate;

use proc_macro::TokenStream;
use proc_macro2::Span;
use quote::{format_ident, quote};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Expr, FnArg, Ident, ItemFn, Pat, Token, Type};

struct Args {
    env: Option<Expr>,
    krate: Option<syn::Path>,
    errors: Vec<syn::Error>,
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = Args { env: None, krate: None, errors: Vec::new() };
        while !input.is_empty() {
            if input.peek(Token![crate]) {
                let key: Token![crate] = input.parse()?;
                input.parse::<Token![=]>()?;
                let path: syn::Path = input.parse()?;
                if args.krate.replace(path).is_some() {
                    args.errors.push(syn::Error::new(key.span, "`crate` is given twice"));
                }
                if !input.is_empty() {
                    input.parse::<Token![,]>()?;
                }
                continue;
            }
            let key: Ident = input.parse()?;
            input.parse::<Token![=]>()?;
            let value: Expr = input.parse()?;
            match key.to_string().as_str() {
                "env" if args.env.is_some() => args.errors.push(syn::Error::new(key.span(), "`env` is given twice")),
                "env" => args.env = Some(value),
                other => args.errors.push(syn::Error::new(
                    key.span(),
                    format!(
                        "unknown argument `{other}`; expected `env = <expression giving an Env>` \
                         (and, for a library reached by another path, `crate = <path>`)"
                    ),
                )),
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(args)
    }
}

/// Marks a test whose arguments are fixtures of an environment, by name:
///
/// ```text
/// #[fixtures::test(env = common::env())]
/// async fn api_answers(apiserver: &Container) -> fixtures::Result<()> { ... }
/// ```
///
/// The test may be `async` or not, and return `()` or a `Result` whose error is `Debug`.
/// An argument `name: &T` borrows the fixture (any `T`, `Clone` or not); `name: T` gets a
/// clone. `#[fixture("web-app")] web: &Container` binds an argument to a fixture whose name
/// is not a Rust identifier (a compose service `web-app`), or to another name. When the fixtures it needs have alternatives, it runs once per case. The body runs
/// on the library's runtime, driven from the test's thread.
///
/// The rendered code names the library as the crate's Cargo.toml does (`fixtures`, or a
/// rename of it); `crate = path` says it where the manifest does not.
#[proc_macro_attribute]
pub fn test(attr: TokenStream, item: TokenStream) -> TokenStream {
    let args = match syn::parse::<Args>(attr) {
        Ok(a) => a,
        Err(e) => return e.to_compile_error().into(),
    };
    let func = match syn::parse::<ItemFn>(item) {
        Ok(f) => f,
        Err(e) => return e.to_compile_error().into(),
    };
    let mut errors = args.errors;
    if args.env.is_none() {
        errors.push(syn::Error::new(Span::call_site(), "missing `env = <expression giving an Env>`"));
    }
    if !func.sig.generics.params.is_empty() {
        errors.push(syn::Error::new(func.sig.generics.span(), "a fixture test cannot be generic"));
    }
    let mut names = Vec::new();
    let mut fetch = Vec::new();
    let mut pass = Vec::new();
    for input in &func.sig.inputs {
        let FnArg::Typed(arg) = input else {
            errors.push(syn::Error::new(input.span(), "a fixture test cannot take `self`"));
            continue;
        };
        let Pat::Ident(pat) = arg.pat.as_ref() else {
            errors.push(syn::Error::new(
                arg.pat.span(),
                "name each fixture argument after its fixture, like `apiserver: &Container`",
            ));
            continue;
        };
        // `#[fixture("web-app")] web: &Container`: a fixture whose name is not an identifier.
        let named = match arg.attrs.iter().find(|a| a.path().is_ident("fixture")) {
            Some(attr) => match attr.parse_args::<syn::LitStr>() {
                Ok(lit) if !lit.value().is_empty() => Some(lit.value()),
                Ok(lit) => {
                    errors.push(syn::Error::new(lit.span(), "name the fixture: `#[fixture(\"web-app\")]`"));
                    None
                }
                Err(_) => {
                    errors.push(syn::Error::new(
                        attr.span(),
                        "write the fixture's name as a string: `#[fixture(\"web-app\")] web: &Container`",
                    ));
                    None
                }
            },
            None => None,
        };
        let name = match named {
            Some(name) => name,
            None => {
                let name = pat.ident.to_string();
                name.strip_prefix("r#").unwrap_or(&name).to_owned()
            }
        };
        let local = format_ident!("__fixture_{}", pat.ident);
        let (ty, by_ref) = match arg.ty.as_ref() {
            Type::Reference(r) => {
                if r.mutability.is_some() {
                    errors.push(syn::Error::new(r.span(), "fixtures are shared: take `&T`, not `&mut T`"));
                }
                (r.elem.as_ref().clone(), true)
            }
            other => (other.clone(), false),
        };
        // `&T` needs no `Clone`: the test borrows the fixture the environment shares.
        if by_ref {
            fetch.push(quote! { let #local: ::std::sync::Arc<#ty> = __t.shared::<#ty>(#name).await?; });
            pass.push(quote! { &*#local });
        } else {
            fetch.push(quote! { let #local: #ty = __t.get::<#ty>(#name).await?; });
            pass.push(quote! { #local });
        }
        names.push(name);
    }
    if let Some(first) = errors.pop() {
        let mut all = first;
        for e in errors {
            all.combine(e);
        }
        return all.to_compile_error().into();
    }
    let env = args.env;
    let krate = args.krate.map_or_else(krate::path, |p| quote! { #p });
    let attrs = &func.attrs;
    // `#[cfg]` applies to everything the attribute renders; `#[ignore]` and `#[should_panic]`
    // are read for the harness and left on the `#[test]` for libtest.
    let cfgs: Vec<&syn::Attribute> = attrs.iter().filter(|a| a.path().is_ident("cfg")).collect();
    let ignore = attrs.iter().any(|a| a.path().is_ident("ignore"));
    let should_panic = match attrs.iter().find(|a| a.path().is_ident("should_panic")) {
        None => quote! { #krate::__private::ShouldPanic::No },
        Some(a) => match should_panic_message(a) {
            Ok(Some(m)) => quote! { #krate::__private::ShouldPanic::WithMessage(#m) },
            Ok(None) => quote! { #krate::__private::ShouldPanic::Yes },
            Err(e) => return e.to_compile_error().into(),
        },
    };
    let vis = &func.vis;
    let test_name = &func.sig.ident;
    let test_str = test_name.to_string();
    let test_str = test_str.strip_prefix("r#").unwrap_or(&test_str).to_owned();
    let env_fn = format_ident!("__fixtures_env_{}", test_str);
    let body_fn = format_ident!("__fixtures_body_{}", test_str);
    let registered = format_ident!("__FIXTURES_TEST_{}", test_str);
    let mut inner = func.clone();
    inner.attrs.clear();
    // `#[fixture(..)]` is read above; the body's own parameters do not carry it.
    for input in &mut inner.sig.inputs {
        if let FnArg::Typed(arg) = input {
            arg.attrs.retain(|a| !a.path().is_ident("fixture"));
        }
    }
    inner.vis = syn::Visibility::Inherited;
    inner.sig.ident = format_ident!("__fixtures_body");
    let call = if func.sig.asyncness.is_some() {
        quote! { __fixtures_body(#(#pass),*).await }
    } else {
        quote! { #krate::__private::run_sync(|| __fixtures_body(#(#pass),*)) }
    };
    quote! {
        #(#cfgs)*
        #[doc(hidden)]
        #[allow(non_snake_case)]
        fn #env_fn() -> #krate::Env {
            #env
        }

        #(#cfgs)*
        #[doc(hidden)]
        #[allow(non_snake_case)]
        fn #body_fn(__t: #krate::TestEnv) -> #krate::__private::Body {
            #inner
            ::std::boxed::Box::pin(async move {
                #(#fetch)*
                ::std::result::Result::Ok(#krate::__private::Outcome::into_outcome(#call))
            })
        }

        #(#cfgs)*
        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        const #registered: #krate::__private::Registered = #krate::__private::Registered {
            module: ::core::module_path!(),
            name: #test_str,
            requested: &[#(#names),*],
            env: #env_fn,
            body: #body_fn,
            ignore: #ignore,
            should_panic: #should_panic,
        };

        #(#cfgs)*
        #krate::__private::inventory::submit! { #registered }

        // Who runs this test: libtest's harness (which keeps `#[test]` items, so the local
        // function below exists) or, under `harness = false` (where rustc drops them),
        // `fixtures::main!()`, which defines the same name at the crate root. With
        // neither, the name is missing: the file needs `fixtures::main!()`.
        #(#cfgs)*
        #[allow(unnameable_test_items)]
        const _: () = {
            #[::core::prelude::v1::test]
            fn this_file_needs_fixtures_main() {}
            #[allow(unused_imports)]
            use crate::*;
            let _: fn() = this_file_needs_fixtures_main;
        };

        #[::core::prelude::v1::test]
        #(#attrs)*
        #vis fn #test_name() {
            #krate::__private::run_test(&#registered)
        }
    }
    .into()
}

/// `#[should_panic(expected = "..")]` or `#[should_panic = ".."]`: the message, if given.
fn should_panic_message(attr: &syn::Attribute) -> syn::Result<Option<syn::LitStr>> {
    match &attr.meta {
        syn::Meta::Path(_) => Ok(None),
        syn::Meta::NameValue(nv) => match &nv.value {
            Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) => Ok(Some(s.clone())),
            other => Err(syn::Error::new(other.span(), "expected a string: `#[should_panic = \"message\"]`")),
        },
        syn::Meta::List(_) => {
            let mut expected = None;
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("expected") {
                    expected = Some(meta.value()?.parse::<syn::LitStr>()?);
                    Ok(())
                } else {
                    Err(meta.error("expected `expected = \"message\"`"))
                }
            })?;
            Ok(expected)
        }
    }
}

/// The harness for a test target with `harness = false`: runs its `#[fixtures::test]`
/// functions, one test per case, as libtest does (filters, `--list`, `--exact`, `--ignored`,
/// `--test-threads`), for `cargo test` and cargo-nextest alike.
///
/// ```text
/// # Cargo.toml
/// [[test]]
/// name = "api"
/// harness = false
///
/// // tests/api.rs
/// fixtures::main!();
/// ```
///
/// `main!(setup = path::to::function)` runs that `fn()` once before the first test;
/// `main!(crate = path)` names the library where the crate's Cargo.toml cannot say.
#[proc_macro]
pub fn main(input: TokenStream) -> TokenStream {
    match main_args(input.into()) {
        Ok(MainArgs { setup, krate }) => {
            let setup = match setup {
                Some(f) => quote! { ::core::option::Option::Some(#f as fn()) },
                None => quote! { ::core::option::Option::None },
            };
            let krate = krate.map_or_else(krate::path, |p| quote! { #p });
            quote! { #krate::__harness_main!(#setup); }.into()
        }
        // The error alone: no second one about a missing `main`.
        Err(e) => {
            let e = e.to_compile_error();
            quote! { #e fn main() {} }.into()
        }
    }
}

/// The arguments of `main!`: an optional `setup = <path>` and `crate = <path>`.
struct MainArgs {
    setup: Option<syn::Path>,
    krate: Option<syn::Path>,
}

impl Parse for MainArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut setup = None;
        let mut krate = None;
        while !input.is_empty() {
            if input.peek(Token![crate]) {
                let key: Token![crate] = input.parse()?;
                input.parse::<Token![=]>()?;
                if krate.replace(input.parse::<syn::Path>()?).is_some() {
                    return Err(syn::Error::new(key.span, "`crate` is given twice"));
                }
                if !input.is_empty() {
                    input.parse::<Token![,]>()?;
                }
                continue;
            }
            let key: Ident = input.parse()?;
            match key.to_string().as_str() {
                "setup" if setup.is_some() => return Err(syn::Error::new(key.span(), "`setup` is given twice")),
                "setup" => {
                    input.parse::<Token![=]>()?;
                    setup = Some(input.parse::<syn::Path>()?);
                }
                other => {
                    return Err(syn::Error::new(
                        key.span(),
                        format!(
                            "unknown argument `{other}` to `fixtures::main!`; it takes none, or \
                             `setup = <path to a fn()>` to run once before the tests (and `crate = <path>` \
                             for a library reached by another path)"
                        ),
                    ));
                }
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(MainArgs { setup, krate })
    }
}

fn main_args(input: proc_macro2::TokenStream) -> syn::Result<MainArgs> {
    syn::parse2::<MainArgs>(input)
}

#[cfg(test)]
mod tests {
    use super::{main_args, quote};

    #[::core::prelude::v1::test]
    fn main_takes_setup_or_nothing() {
        assert!(main_args(quote! {}).expect("empty").setup.is_none());
        assert!(main_args(quote! { setup = crate::init_tracing }).expect("setup").setup.is_some());
        let both = main_args(quote! { setup = init, crate = fx }).expect("both");
        assert!(both.setup.is_some() && both.krate.is_some());
        let Err(e) = main_args(quote! { threads = 4 }) else { panic!("unknown") };
        assert_eq!(
            e.to_string(),
            "unknown argument `threads` to `fixtures::main!`; it takes none, or `setup = <path to a fn()>` to run once before the tests (and `crate = <path>` for a library reached by another path)"
        );
        let Err(e) = main_args(quote! { setup = a, setup = b }) else { panic!("twice") };
        assert_eq!(e.to_string(), "`setup` is given twice");
    }
}
