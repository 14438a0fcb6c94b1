//! Lox's runtime values and heap objects, on spanheap's heap (clox's
//! `value.h` / `object.h`, chapters 18–29).
//!
//! A [`Value`] is a `Copy` enum: nil, booleans and numbers inline, every
//! other kind a typed [`Gc`] pointer. Each clox object type is a Rust type
//! allocated with `Scope::alloc`: [`LoxStr`], [`Function`], [`Native`],
//! [`Closure`], [`Upvalue`], [`Class`], [`Instance`], [`BoundMethod`]. The
//! collector finds the pointers through `#[derive(Trace)]`; mutable parts
//! (an upvalue's location, a class's methods, an instance's fields) are in
//! `GcRefCell`s, whose writes run the write barrier.
//!
//! Invariants:
//! - strings are interned (see `vm::Strings`): two live `LoxStr`s never
//!   have the same contents, so string equality is pointer equality, as
//!   in clox; `LoxStr::hash` is the FNV-1a hash of the contents;
//! - a `Function` is immutable once allocated (its constants are built
//!   first);
//! - an `Upvalue` is `Open(slot)` while the stack slot it captures is live
//!   and `Closed(value)` after; it never reopens.

use spanheap::{Gc, GcRefCell, Trace};
use std::fmt;

/// A Lox value.
#[derive(Clone, Copy, Trace)]
pub enum Value<'gc> {
    Nil,
    Bool(bool),
    Number(f64),
    Str(Gc<'gc, LoxStr>),
    Function(Gc<'gc, Function<'gc>>),
    Native(Gc<'gc, Native>),
    Closure(Gc<'gc, Closure<'gc>>),
    Class(Gc<'gc, Class<'gc>>),
    Instance(Gc<'gc, Instance<'gc>>),
    Bound(Gc<'gc, BoundMethod<'gc>>),
}

impl<'gc> Value<'gc> {
    /// Lox's falsiness: `nil` and `false`.
    #[inline]
    pub fn is_falsey(self) -> bool {
        matches!(self, Value::Nil | Value::Bool(false))
    }

    /// clox's `valuesEqual`: same kind and same value; objects (strings
    /// included, being interned) by identity.
    #[inline]
    pub fn equals(self, other: Value<'gc>) -> bool {
        match (self, other) {
            (Value::Nil, Value::Nil) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Number(a), Value::Number(b)) => a == b,
            (Value::Str(a), Value::Str(b)) => Gc::ptr_eq(a, b),
            (Value::Function(a), Value::Function(b)) => Gc::ptr_eq(a, b),
            (Value::Native(a), Value::Native(b)) => Gc::ptr_eq(a, b),
            (Value::Closure(a), Value::Closure(b)) => Gc::ptr_eq(a, b),
            (Value::Class(a), Value::Class(b)) => Gc::ptr_eq(a, b),
            (Value::Instance(a), Value::Instance(b)) => Gc::ptr_eq(a, b),
            (Value::Bound(a), Value::Bound(b)) => Gc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl fmt::Display for Value<'_> {
    /// clox's `printValue`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Value::Nil => f.write_str("nil"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Number(n) => f.write_str(&format_number(n)),
            Value::Str(s) => f.write_str(&s.chars),
            Value::Function(func) => write_function(f, &func),
            Value::Native(_) => f.write_str("<native fn>"),
            Value::Closure(c) => write_function(f, &c.function),
            Value::Class(c) => f.write_str(&c.name.chars),
            Value::Instance(i) => write!(f, "{} instance", i.class.name.chars),
            Value::Bound(b) => write_function(f, &b.method.function),
        }
    }
}

fn write_function(f: &mut fmt::Formatter<'_>, func: &Function<'_>) -> fmt::Result {
    match func.name {
        Some(name) => write!(f, "<fn {}>", name.chars),
        None => f.write_str("<script>"),
    }
}

/// Formats a number as C's `printf("%g", n)` does (clox prints numbers
/// that way): six significant digits, trailing zeros dropped, scientific
/// notation (`1e+20`, `1.5e-07`) below 1e-4 and from 1e6 (after rounding).
pub fn format_number(n: f64) -> String {
    if n.is_nan() {
        return if n.is_sign_negative() { "-nan" } else { "nan" }.to_string();
    }
    if n.is_infinite() {
        return if n < 0.0 { "-inf" } else { "inf" }.to_string();
    }
    if n == 0.0 {
        return if n.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    // Round to 6 significant digits first: the exponent after rounding
    // decides the style (%g's rule, with P = 6).
    let sci = format!("{n:.5e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let m = strip_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", exp.unsigned_abs())
    } else {
        let decimals = (5 - exp).max(0) as usize;
        strip_zeros(&format!("{n:.decimals$}")).to_string()
    }
}

/// Drops trailing zeros after a decimal point, and the point if bare.
fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// An interned string (clox's `ObjString`).
#[derive(Trace)]
pub struct LoxStr {
    /// FNV-1a of `chars` (clox's `hashString`).
    pub hash: u32,
    pub chars: String,
}

/// clox's string hash (FNV-1a, 32 bits).
pub fn hash_str(s: &str) -> u32 {
    let mut h: u32 = 2_166_136_261;
    for b in s.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(16_777_619);
    }
    h
}

/// A compiled function (clox's `ObjFunction`); immutable.
#[derive(Trace)]
pub struct Function<'gc> {
    pub arity: u8,
    pub upvalue_count: u16,
    /// `None` for the top-level script.
    pub name: Option<Gc<'gc, LoxStr>>,
    pub code: Vec<u8>,
    pub lines: Vec<u32>,
    pub constants: Vec<Value<'gc>>,
}

/// The natives Lox programs can call.
#[derive(Clone, Copy, Trace)]
pub enum NativeFn {
    /// `clock()`: seconds since the interpreter started.
    Clock,
}

/// A native function (clox's `ObjNative`).
#[derive(Trace)]
pub struct Native {
    pub function: NativeFn,
}

/// A function with its captured variables (clox's `ObjClosure`);
/// immutable (upvalues are captured before it is allocated).
#[derive(Trace)]
pub struct Closure<'gc> {
    pub function: Gc<'gc, Function<'gc>>,
    pub upvalues: Vec<Gc<'gc, Upvalue<'gc>>>,
}

/// Where a captured variable lives.
#[derive(Clone, Copy, Trace)]
pub enum UpLoc<'gc> {
    /// Still on the VM stack, at this absolute slot.
    Open(u32),
    /// Moved off the stack when its scope ended.
    Closed(Value<'gc>),
}

/// A captured variable (clox's `ObjUpvalue`). (A `GcRefCell`: a
/// `GcCell` holding GC pointers must fit in one word, and a closed
/// upvalue holds a two-word `Value`.)
#[derive(Trace)]
pub struct Upvalue<'gc> {
    pub loc: GcRefCell<'gc, UpLoc<'gc>>,
}

/// A class (clox's `ObjClass`).
#[derive(Trace)]
pub struct Class<'gc> {
    pub name: Gc<'gc, LoxStr>,
    pub methods: GcRefCell<'gc, Table<'gc>>,
}

/// An instance (clox's `ObjInstance`).
#[derive(Trace)]
pub struct Instance<'gc> {
    pub class: Gc<'gc, Class<'gc>>,
    pub fields: GcRefCell<'gc, Table<'gc>>,
}

/// A method bound to its receiver (clox's `ObjBoundMethod`).
#[derive(Trace)]
pub struct BoundMethod<'gc> {
    pub receiver: Value<'gc>,
    pub method: Gc<'gc, Closure<'gc>>,
}

/// A table keyed by interned strings (clox's `Table`): globals, fields,
/// methods. Open addressing with linear probing over a power-of-two
/// array, at most 3/4 full, as clox's; keys compare by identity (strings
/// are interned) and hash by their stored hash. Lox never deletes a
/// key, so there are no tombstones.
#[derive(Default, Trace)]
pub struct Table<'gc> {
    /// Empty (no storage) or a power-of-two number of entries.
    entries: Vec<Entry<'gc>>,
    /// Keys present.
    count: usize,
}

#[derive(Clone, Copy, Trace)]
struct Entry<'gc> {
    key: Option<Gc<'gc, LoxStr>>,
    value: Value<'gc>,
}

impl<'gc> Table<'gc> {
    /// The index of `key`'s entry, or of the empty entry where it would go.
    /// The table must have storage.
    #[inline]
    fn find(&self, key: Gc<'gc, LoxStr>) -> usize {
        let mask = self.entries.len() - 1;
        let mut i = key.hash as usize & mask;
        loop {
            match self.entries[i].key {
                Some(k) if !Gc::ptr_eq(k, key) => i = (i + 1) & mask,
                _ => return i,
            }
        }
    }

    /// The value of `key`.
    #[inline]
    pub fn get(&self, key: Gc<'gc, LoxStr>) -> Option<Value<'gc>> {
        if self.count == 0 {
            return None;
        }
        let e = &self.entries[self.find(key)];
        e.key.map(|_| e.value)
    }

    /// A mutable reference to the value of `key`.
    #[inline]
    pub fn get_mut(&mut self, key: Gc<'gc, LoxStr>) -> Option<&mut Value<'gc>> {
        if self.count == 0 {
            return None;
        }
        let i = self.find(key);
        let e = &mut self.entries[i];
        e.key.map(|_| &mut e.value)
    }

    /// Sets `key` to `value`; true if the key is new.
    #[inline]
    pub fn set(&mut self, key: Gc<'gc, LoxStr>, value: Value<'gc>) -> bool {
        if (self.count + 1) * 4 > self.entries.len() * 3 {
            self.grow();
        }
        let i = self.find(key);
        let e = &mut self.entries[i];
        let new = e.key.is_none();
        if new {
            self.count += 1;
        }
        *e = Entry {
            key: Some(key),
            value,
        };
        new
    }

    /// Every key and value, in storage order.
    pub fn iter(&self) -> impl Iterator<Item = (Gc<'gc, LoxStr>, Value<'gc>)> + '_ {
        self.entries
            .iter()
            .filter_map(|e| e.key.map(|k| (k, e.value)))
    }

    fn grow(&mut self) {
        let cap = (self.entries.len() * 2).max(8);
        let old = std::mem::replace(
            &mut self.entries,
            vec![
                Entry {
                    key: None,
                    value: Value::Nil,
                };
                cap
            ],
        );
        for e in old {
            if let Some(k) = e.key {
                let i = self.find(k);
                self.entries[i] = e;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::format_number;

    #[test]
    fn numbers_print_like_printf_g() {
        let cases = [
            (1.0, "1"),
            (2.5, "2.5"),
            (-0.0, "-0"),
            (0.0, "0"),
            (1.0 / 3.0, "0.333333"),
            (100.0, "100"),
            (123456.0, "123456"),
            (1234567.0, "1.23457e+06"),
            (999999.5, "1e+06"),
            (1e20, "1e+20"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (-3.75, "-3.75"),
            (1e100, "1e+100"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (0.1 + 0.2, "0.3"),
        ];
        for (n, s) in cases {
            assert_eq!(format_number(n), s, "{n:e}");
        }
    }
}
