//! `#[fixtures_core::test(env = path::to::env())]`: a test whose arguments are fixtures.
//!
//! Thin by design: it parses the attribute and the function, checks them
//! (reporting every mistake with its span at once), and renders a plain
//! `#[test]` that calls `fixtures_core::__private::run_test`.

use proc_macro::TokenStream;
use proc_macro2::Span;
use quote::{format_ident, quote};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Expr, FnArg, Ident, ItemFn, Pat, Token, Type};

struct Args {
    env: Option<Expr>,
    errors: Vec<syn::Error>,
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = Args { env: None, errors: Vec::new() };
        while !input.is_empty() {
            let key: Ident = input.parse()?;
            input.parse::<Token![=]>()?;
            let value: Expr = input.parse()?;
            match key.to_string().as_str() {
                "env" if args.env.is_some() => args.errors.push(syn::Error::new(key.span(), "`env` is given twice")),
                "env" => args.env = Some(value),
                other => args.errors.push(syn::Error::new(
                    key.span(),
                    format!("unknown argument `{other}`; expected `env = <expression giving an Env>`"),
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
/// #[fixtures_core::test(env = common::env())]
/// async fn api_answers(apiserver: &Container) -> fixtures_core::Result<()> { ... }
/// ```
///
/// The test may be `async` or not, and return `()` or a `Result` whose error is `Debug`.
/// An argument `name: &T` borrows the fixture (any `T`, `Clone` or not); `name: T` gets a
/// clone. When the fixtures it needs have alternatives, it runs once per case. The body runs
/// on the library's runtime, driven from the test's thread.
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
        let name = pat.ident.to_string();
        let name = name.strip_prefix("r#").unwrap_or(&name).to_owned();
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
    let attrs = &func.attrs;
    let vis = &func.vis;
    let test_name = &func.sig.ident;
    let test_str = test_name.to_string();
    let mut inner = func.clone();
    inner.attrs.clear();
    inner.vis = syn::Visibility::Inherited;
    inner.sig.ident = format_ident!("__fixtures_body");
    let call = if func.sig.asyncness.is_some() {
        quote! { __fixtures_body(#(#pass),*).await }
    } else {
        quote! { ::fixtures_core::__private::run_sync(|| __fixtures_body(#(#pass),*)) }
    };
    quote! {
        #[::core::prelude::v1::test]
        #(#attrs)*
        #vis fn #test_name() {
            #inner
            ::fixtures_core::__private::run_test(
                ::core::module_path!(),
                #test_str,
                &[#(#names),*],
                || #env,
                |__t: ::fixtures_core::TestEnv| ::std::boxed::Box::pin(async move {
                    #(#fetch)*
                    ::std::result::Result::Ok(::fixtures_core::__private::Outcome::into_outcome(#call))
                }),
            );
        }
    }
    .into()
}
