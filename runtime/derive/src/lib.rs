//! `#[derive(Trace)]` for spanheap (re-exported as `spanheap::Trace`).
//!
//! For a struct or enum it generates:
//! - `unsafe impl Trace`: `trace` calls `Trace::trace` on every field not
//!   marked `#[trace(skip)]`; `NO_GC` is the AND of the fields' `NO_GC`
//!   (evaluated at compile time), which decides whether objects of the
//!   type are ever scanned. Type parameters get a `Trace` bound.
//! - `unsafe impl Rebrand` (unless `#[trace(no_rebrand)]`): the type's one
//!   lifetime parameter (its brand, if any) becomes `'gc`, and each type
//!   parameter `T` that a traced field mentions becomes `T::At<'gc>` (the
//!   others occur only in skipped, `'static` fields and stay). Bounds on a
//!   struct's type parameters cannot be restated for `T::At<'gc>`; put
//!   them on impls instead, or use `#[trace(no_rebrand)]` (such a type can
//!   then be a field of an object but not an object itself).
//! - an impl of `spanheap::__private::MustNotImplDrop`, which conflicts
//!   with the blanket impl for `T: Drop`: a traced type cannot implement
//!   `Drop` (its drop could dereference a `Gc` whose object was already
//!   freed in the same sweep). Put a `Drop` type in a `#[trace(skip)]`
//!   field instead.
//!
//! Attributes:
//! - field `#[trace(skip)]`: not traced; the field's type must be
//!   `'static` (so it cannot hold a `Gc`), enforced by a where-clause;
//! - container `#[trace(no_gc)]`: nothing is traced and `NO_GC = true`;
//!   the type must be `'static`;
//! - container `#[trace(gc)]`: `NO_GC = false` without evaluating the
//!   fields' constants (breaks a cycle in recursive types such as
//!   `struct T { kids: Vec<T> }`, which the compiler rejects otherwise);
//! - container `#[trace(no_rebrand)]`: no `Rebrand` impl (for types with
//!   several lifetimes or bounded type parameters); `Scope::alloc` needs
//!   `Rebrand`, so such types can only be fields of other objects.
//!
//! Soundness rests on the generated code only: every field is traced or
//! proven `'static`, and `NO_GC` is derived from the fields'.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote};
use syn::{
    Data, DeriveInput, Fields, GenericParam, Ident, Lifetime, Type, parse_macro_input, parse_quote,
    spanned::Spanned,
};

/// Derives `spanheap::Trace` (and `Rebrand`); see the crate docs.
#[proc_macro_derive(Trace, attributes(trace))]
pub fn derive_trace(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(input) {
        Ok(ts) => ts.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

#[derive(Default)]
struct ContainerAttrs {
    no_gc: bool,
    gc: bool,
    no_rebrand: bool,
}

fn container_attrs(attrs: &[syn::Attribute]) -> syn::Result<ContainerAttrs> {
    let mut c = ContainerAttrs::default();
    for a in attrs.iter().filter(|a| a.path().is_ident("trace")) {
        a.parse_nested_meta(|m| {
            if m.path.is_ident("no_gc") {
                c.no_gc = true;
            } else if m.path.is_ident("gc") {
                c.gc = true;
            } else if m.path.is_ident("no_rebrand") {
                c.no_rebrand = true;
            } else {
                return Err(m.error("expected `no_gc`, `gc` or `no_rebrand`"));
            }
            Ok(())
        })?;
    }
    if c.no_gc && c.gc {
        return Err(syn::Error::new(
            Span::call_site(),
            "`#[trace(no_gc)]` and `#[trace(gc)]` contradict each other",
        ));
    }
    Ok(c)
}

fn field_skipped(f: &syn::Field) -> syn::Result<bool> {
    let mut skip = false;
    for a in f.attrs.iter().filter(|a| a.path().is_ident("trace")) {
        a.parse_nested_meta(|m| {
            if m.path.is_ident("skip") {
                skip = true;
                Ok(())
            } else {
                Err(m.error("expected `skip`"))
            }
        })?;
    }
    Ok(skip)
}

struct FieldInfo {
    binding: Ident,
    member: TokenStream2,
    ty: Type,
    skip: bool,
}

fn fields_of(fields: &Fields) -> syn::Result<Vec<FieldInfo>> {
    fields
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let (binding, member) = match &f.ident {
                Some(id) => (format_ident!("__f_{}", id), quote!(#id)),
                None => {
                    let idx = syn::Index::from(i);
                    (format_ident!("__f_{}", i), quote!(#idx))
                }
            };
            Ok(FieldInfo {
                binding,
                member,
                ty: f.ty.clone(),
                skip: field_skipped(f)?,
            })
        })
        .collect()
}

fn expand(input: DeriveInput) -> syn::Result<TokenStream2> {
    let attrs = container_attrs(&input.attrs)?;
    let name = &input.ident;
    let krate = quote!(::spanheap);

    // Variants as (pattern path, fields).
    let variants: Vec<(TokenStream2, Vec<FieldInfo>, &Fields)> = match &input.data {
        Data::Struct(s) => vec![(quote!(Self), fields_of(&s.fields)?, &s.fields)],
        Data::Enum(e) => e
            .variants
            .iter()
            .map(|v| {
                if let Some(a) = v.attrs.iter().find(|a| a.path().is_ident("trace")) {
                    return Err(syn::Error::new(
                        a.span(),
                        "#[trace(...)] is not supported on enum variants; put #[trace(skip)] on their fields",
                    ));
                }
                let id = &v.ident;
                Ok((quote!(Self::#id), fields_of(&v.fields)?, &v.fields))
            })
            .collect::<syn::Result<_>>()?,
        Data::Union(u) => {
            return Err(syn::Error::new(
                u.union_token.span(),
                "Trace cannot be derived for unions (the collector cannot know which field is live)",
            ));
        }
    };

    // --- Trace ---
    // A type parameter needs `Trace` only if a traced field mentions it
    // (`struct S<T> { #[trace(skip)] x: T }` must not require `T: Trace`).
    let traced_tokens: Vec<String> = variants
        .iter()
        .flat_map(|(_, fs, _)| fs.iter().filter(|f| !f.skip))
        .flat_map(|f| idents_in(&f.ty))
        .collect();
    let mut trace_generics = input.generics.clone();
    for p in trace_generics.params.iter_mut() {
        if let GenericParam::Type(t) = p
            && traced_tokens.iter().any(|i| t.ident == i)
        {
            t.bounds.push(parse_quote!(#krate::Trace));
        }
    }
    {
        let wc = trace_generics.make_where_clause();
        for (_, fs, _) in &variants {
            for f in fs.iter().filter(|f| f.skip) {
                let ty = &f.ty;
                wc.predicates.push(parse_quote!(#ty: 'static));
            }
        }
        if attrs.no_gc {
            let (_, ty_g, _) = input.generics.split_for_impl();
            wc.predicates.push(parse_quote!(#name #ty_g: 'static));
        }
    }
    let (impl_g, ty_g, where_c) = trace_generics.split_for_impl();

    let no_gc_expr = if attrs.no_gc {
        quote!(true)
    } else if attrs.gc {
        quote!(false)
    } else {
        let terms = variants.iter().flat_map(|(_, fs, _)| {
            fs.iter().filter(|f| !f.skip).map(|f| {
                let ty = &f.ty;
                quote!(&& <#ty as #krate::Trace>::NO_GC)
            })
        });
        quote!(true #(#terms)*)
    };

    let trace_body = if attrs.no_gc {
        quote!()
    } else {
        let arms = variants.iter().map(|(path, fs, shape)| {
            let calls = fs.iter().filter(|f| !f.skip).map(|f| {
                let b = &f.binding;
                quote!(#krate::Trace::trace(#b, __tracer);)
            });
            let pat = match shape {
                Fields::Named(_) => {
                    let binds = fs.iter().map(|f| {
                        let m = &f.member;
                        let b = &f.binding;
                        if f.skip {
                            quote!(#m: _)
                        } else {
                            quote!(#m: #b)
                        }
                    });
                    quote!(#path { #(#binds),* })
                }
                Fields::Unnamed(_) => {
                    let binds = fs.iter().map(|f| {
                        let b = &f.binding;
                        if f.skip { quote!(_) } else { quote!(#b) }
                    });
                    quote!(#path ( #(#binds),* ))
                }
                Fields::Unit => quote!(#path),
            };
            quote!(#pat => { #(#calls)* })
        });
        quote! {
            #[allow(unreachable_patterns)]
            match self {
                #(#arms)*
                _ => {}
            }
        }
    };

    let trace_impl = quote! {
        // SAFETY (generated): every field is traced or bounded `'static`
        // (so it holds no Gc); NO_GC is the AND of the traced fields';
        // `Drop` is ruled out by MustNotImplDrop below.
        #[automatically_derived]
        unsafe impl #impl_g #krate::Trace for #name #ty_g #where_c {
            const NO_GC: bool = #no_gc_expr;
            #[inline]
            #[allow(unused_variables)]
            fn trace(&self, __tracer: &mut #krate::Tracer<'_>) {
                #trace_body
            }
        }
    };

    // --- MustNotImplDrop ---
    let (impl_plain, ty_plain, where_plain) = input.generics.split_for_impl();
    let drop_guard = quote! {
        #[automatically_derived]
        impl #impl_plain #krate::__private::MustNotImplDrop for #name #ty_plain #where_plain {}
    };

    // --- Rebrand ---
    let rebrand = if attrs.no_rebrand {
        quote!()
    } else {
        let lifetimes: Vec<&Lifetime> = input.generics.lifetimes().map(|l| &l.lifetime).collect();
        if lifetimes.len() > 1 {
            return Err(syn::Error::new(
                input.generics.span(),
                "Trace's Rebrand impl supports at most one lifetime (the brand); \
                 add #[trace(no_rebrand)] to derive Trace alone",
            ));
        }
        let gc: Lifetime = parse_quote!('__gc);
        // Parameters that traced fields mention are renamed through their
        // own Rebrand; the others appear only in skipped ('static) fields
        // and stay as they are.
        let mentioned = |id: &Ident| traced_tokens.iter().any(|i| id == i);
        let mut rb_generics = input.generics.clone();
        for p in rb_generics.params.iter_mut() {
            if let GenericParam::Type(t) = p {
                if mentioned(&t.ident) {
                    t.bounds.push(parse_quote!(#krate::Rebrand));
                } else {
                    t.bounds.push(parse_quote!('static));
                }
            }
        }
        let (rb_impl, rb_ty, rb_where) = rb_generics.split_for_impl();
        let args = input.generics.params.iter().map(|p| match p {
            GenericParam::Lifetime(_) => quote!(#gc),
            GenericParam::Type(t) => {
                let id = &t.ident;
                if mentioned(id) {
                    quote!(<#id as #krate::Rebrand>::At<#gc>)
                } else {
                    quote!(#id)
                }
            }
            GenericParam::Const(c) => {
                let id = &c.ident;
                quote!(#id)
            }
        });
        let at = if input.generics.params.is_empty() {
            quote!(#name)
        } else {
            quote!(#name < #(#args),* >)
        };
        quote! {
            // SAFETY (generated): `At<'__gc>` is `Self` with the brand
            // lifetime and the parameters' brands renamed, nothing else.
            #[automatically_derived]
            unsafe impl #rb_impl #krate::Rebrand for #name #rb_ty #rb_where {
                type At<#gc> = #at;
            }
        }
    };

    Ok(quote! {
        #trace_impl
        #drop_guard
        #rebrand
    })
}

/// Every identifier in a type's tokens (to find which type parameters a
/// field type mentions).
fn idents_in(ty: &Type) -> Vec<String> {
    fn walk(ts: TokenStream2, out: &mut Vec<String>) {
        for t in ts {
            match t {
                proc_macro2::TokenTree::Ident(i) => out.push(i.to_string()),
                proc_macro2::TokenTree::Group(g) => walk(g.stream(), out),
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(quote!(#ty), &mut out);
    out
}
